"""Python packages in the site's module trees (issue 17, item 4), with the real `hdmod build`,
the real Lmod and the real Environment Modules: the host's python3.11 as the stacks' python
external (no store CPython: that build takes minutes), py-jinja2 (a wheel) and py-markupsafe
(an sdist with a C extension, built with setuptools and wheel from their recipes), served by
tests/pypi_index.py. One stack is `core` (python/3.11.2 in Core, its packages in
Python/python/3.11.2), one is below gcc-12 (Python/gcc/12.2.0/python/3.11.2)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hdmodules.spec.externals import External, fingerprint
from tests import pypi_index
from tests.conftest import need, run_hit
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import avail, module_shell

TOOLS = ("lmod", "tcl")
HOST_PYTHON = "/usr/bin/python3.11"
RELEASES = {  # recipe -> (index name, version, dependencies)
    "py-setuptools": ("setuptools", "69.5.1", ["python"]),
    "py-wheel": ("wheel", "0.43.0", ["python"]),
    "py-markupsafe": ("markupsafe", "2.1.5", ["python", "py-setuptools", "py-wheel"]),
    "py-jinja2": ("jinja2", "3.1.4", ["python", "py-markupsafe"]),
}
IMPORT = 'python3 -c "import jinja2, markupsafe, sys; print(jinja2.__file__, sys.executable)"'


def _site_yaml(tmp: Path, layout: str = "hierarchy") -> Path:
    """The site: gcc-12 detected, the host python pinned, two stacks, both tools' trees."""
    python = External("host-python", "python", "3.11.2", {"python": HOST_PYTHON})
    pin = json.dumps(fingerprint(python))
    site = tmp / "site.yaml"
    site.write_text(
        "root: root\npackage_dirs: [pkgs]\nexternals_from: [externals.yaml]\n"
        # no version: given: the pin's (Python 3.11.2) names the module python/3.11.2
        "externals:\n  host-python:\n    kind: python\n"
        f"    commands: {{python: {HOST_PYTHON}}}\n    pin: {pin}\n"
        "stacks:\n"
        "  python:\n    core: true\n    compiler: gcc-12\n    python: host-python\n"
        "    packages: [py-jinja2]\n"
        "  gcc12-python:\n    compiler: gcc-12\n    python: host-python\n"
        "    packages: [py-jinja2]\n"
        f"modules:\n  layout: {layout}\n  externals: [gcc-12, host-python]\n"
    )
    return site


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    """The site built once (both stacks share the artifacts), its hierarchy tree."""
    need(shutil.which("gcc-12") is not None, "gcc-12")
    need(os.system(f"{HOST_PYTHON} -m pip --version >/dev/null 2>&1") == 0, "python3.11's pip")
    dists = pypi_index.ensure([name for name, _v, _d in RELEASES.values()])
    tmp = tmp_path_factory.mktemp("pysite")
    pkgs = tmp / "pkgs"
    pkgs.mkdir()
    for recipe, (name, version, deps) in RELEASES.items():
        text = pypi_index.recipe(recipe, version, pypi_index.DISTS[name], deps)
        (pkgs / f"{recipe}.yaml").write_text(text)
    hdmod("externals", "detect", "--write", str(tmp / "externals.yaml"))
    site_yaml = _site_yaml(tmp)
    with pypi_index.serve(dists) as index:
        env = {**os.environ, "PIP_INDEX_URL": index}
        hdmod("build", str(site_yaml), "-j", "2", env=env)
    return {
        "yaml": site_yaml,
        "tmp": tmp,
        "root": tmp / "root",
        "modules": tmp / "root" / "modules",
    }


def _core(site, tool: str) -> Path:
    return site["modules"] / tool / "Core"


@pytest.mark.parametrize("tool", TOOLS)
def test_python_packages_appear_after_loading_python(site, tool):
    names = avail(tool, [_core(site, tool)])
    assert "python/3.11.2" in names and not any(n.startswith("py-") for n in names), names
    run = module_shell(tool, f"module use {_core(site, tool)}; module load python; module -t avail")
    assert run.code == 0, run.err
    listed = run.err.split()
    assert {"py-jinja2/3.1.4", "py-markupsafe/2.1.5"} <= set(listed), run.err
    level = site["modules"] / tool / "Python" / "python" / "3.11.2"
    assert f"{level}:" in listed, run.err  # the Python level, keyed by the interpreter


@pytest.mark.parametrize("tool", TOOLS)
def test_load_python_and_jinja2_imports_from_the_store(site, tool):
    run = module_shell(
        tool, f"module use {_core(site, tool)}; module load python py-jinja2 && {IMPORT}"
    )
    assert run.code == 0, run.err
    jinja2, executable = run.out.split()
    assert Path(jinja2).is_relative_to(site["root"] / "bld" / "py-jinja2"), run.out
    assert executable == HOST_PYTHON  # python3: the module's wrapper of the external
    entries = run.env["PYTHONPATH"].split(":")
    assert entries[0] == str(Path(jinja2).parent.parent)  # its site-packages, first
    assert any("/bld/py-markupsafe/" in e for e in entries)  # its dependency's module
    # PATH: the tree's python3, python and python3.11 first, not the external's /usr/bin
    path = run.env["PATH"].split(":")
    assert path.index(str(site["modules"] / "wrappers/python/3.11.2/bin")) < path.index("/usr/bin")
    assert path.count("/usr/bin") == 1, path


@pytest.mark.parametrize("tool", TOOLS)
def test_unload_removes_its_pythonpath_entry(site, tool):
    run = module_shell(
        tool,
        f"module use {_core(site, tool)}; module load python py-jinja2; "
        'echo "BEFORE=$PYTHONPATH"; module unload py-jinja2; echo "AFTER=$PYTHONPATH"',
    )
    assert run.code == 0, run.err
    echoed = run.echoed()
    assert "/bld/py-jinja2/" in echoed["BEFORE"]
    assert "/bld/py-jinja2/" not in echoed["AFTER"]


@pytest.mark.parametrize("tool", TOOLS)
def test_below_a_compiler_the_python_level_names_it(site, tool):
    level = site["modules"] / tool / "Python" / "gcc" / "12.2.0" / "python" / "3.11.2"
    assert (level / "py-jinja2").is_dir()
    run = module_shell(
        tool,
        f"module use {_core(site, tool)}; module load gcc/12.2.0 && module load python py-jinja2"
        f" && {IMPORT}",
    )
    assert run.code == 0, run.err
    assert str(level) in run.env["MODULEPATH"].split(":")


@pytest.mark.parametrize("tool", TOOLS)
def test_flat_tree_loads_python_packages(site, tool):
    flat = site["tmp"] / "flat-modules"
    site_yaml = _site_yaml(site["tmp"], layout="flat")
    hdmod("build", str(site_yaml), "--modules", str(flat))  # nothing to build: all present
    folder = flat / tool
    assert {"py-jinja2/3.1.4", "python/3.11.2"} <= set(avail(tool, [folder]))
    run = module_shell(tool, f"module use {folder}; module load python py-jinja2 && {IMPORT}")
    assert run.code == 0, run.err
    assert "/bld/py-jinja2/" in run.out


@pytest.mark.parametrize("stack", ["python", "gcc12-python"])
@pytest.mark.parametrize("tool", TOOLS)
def test_a_user_s_python_package_loads_after_python_as_the_site_s_do(site, tool, stack, tmp_path):
    """A user extends one of the site's python stacks with a Python package of their own
    (built in their home): its module is at the Python level of the user's tree that the
    site's python module opens, where the site's own Python packages are: below the
    interpreter in Core for the `core: true` stack, below gcc's for the other; `module load
    [gcc] python py-pygments` loads it (the third trial of the twelfth stop: it went to the
    compiler's level with no python parent, which `module load python` does not open). Its
    other packages go below the compiler, where `module load gcc` opens the user's tree."""
    dists = pypi_index.ensure(["pygments"])
    home, proj = tmp_path / "home", tmp_path / "proj"
    (proj / "mypkgs").mkdir(parents=True)
    recipe = pypi_index.recipe("py-pygments", "2.18.0", dists[0], ["python"])
    (proj / "mypkgs" / "py-pygments.yaml").write_text(recipe)
    (proj / "mypkgs" / "mytool.yaml").write_text(  # not a Python package: below the compiler
        'version: "1.0"\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n'
    )
    (proj / "p.yaml").write_text(
        f"extends: [{site['root']}/stacks/{stack}.yaml]\npackage_dirs: [mypkgs]\n"
        "packages:\n  py-pygments:\n  mytool:\n"
    )
    env = {**os.environ, "HIT_HOME": str(home)}
    env["HIT_SITE_CONFIG"] = str(site["root"] / "user-config.yaml")
    with pypi_index.serve(dists) as index:
        r = run_hit("build", "p.yaml", cwd=proj, env={**env, "PIP_INDEX_URL": index})
    level = "Python/python/3.11.2" if stack == "python" else "Python/gcc/12.2.0/python/3.11.2"
    assert f"module written: py-pygments/2.18.0 ({level})" in r.err, r.err
    # a user's other package goes below the compiler, on the core stack too: nothing opens
    # a user's Core (this stop's last trial: it went there, and no `module load` found it)
    assert "module written: mytool/1.0 (Compiler/gcc/12.2.0)" in r.err, r.err
    first = "" if stack == "python" else "module load gcc/12.2.0 && "
    run = module_shell(
        tool,
        f"export HIT_HOME={home}; module use {_core(site, tool)}; {first}"
        'module load python py-pygments && python3 -c "import pygments; print(pygments.__file__)"',
    )
    assert run.code == 0, run.err
    assert Path(run.out.strip()).is_relative_to(home), run.out
    run = module_shell(
        tool,
        f"export HIT_HOME={home}; module use {_core(site, tool)}; "
        "module load gcc/12.2.0 && module load mytool",
    )
    assert run.code == 0 and Path(run.env["MYTOOL_ROOT"]).is_relative_to(home), run.err
    unloaded = module_shell(
        tool,
        f"export HIT_HOME={home}; module use {_core(site, tool)}; {first}"
        "module load python && module unload python && module load py-pygments",
        capture_env=False,
    )
    assert unloaded.code != 0  # not without python: its level is closed again
