"""Python stacks (README "Python stacks"): `pypi:` sources, `build_system: python`, a profile
that is a Python environment, the guide's remove/re-add walk-through, and `hit develop` with
the profile's own Python. The interpreter here is the host's python3 pinned as an external
(`kind: python`); tests/test_python_real.py builds the store's CPython and NumPy from
source (slow lane)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests import pypi_index
from tests.conftest import need, run_clean, run_hit, write_profile, write_recipe

HOST_PYTHON = "/usr/bin/python3.11"
PACKAGES = {  # recipe -> (distribution, dependencies)
    "py-setuptools": ("setuptools", ["python"]),
    "py-wheel": ("wheel", ["python"]),
    "py-flit-core": ("flit-core", ["python"]),
    "py-markupsafe": ("markupsafe", ["python", "py-setuptools", "py-wheel"]),
    "py-jinja2": ("jinja2", ["python", "py-markupsafe"]),
    "py-pygments": ("pygments", ["python"]),
}


def host_python() -> None:
    need(os.path.exists(HOST_PYTHON), HOST_PYTHON)
    probe = subprocess.run([HOST_PYTHON, "-m", "pip", "--version"], capture_output=True)
    need(probe.returncode == 0, f"pip of {HOST_PYTHON} (python3-pip)")
    include = subprocess.run(
        [HOST_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('include'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    need(os.path.exists(f"{include}/Python.h"), "Python.h (python3-dev)")


@pytest.fixture
def index(monkeypatch):
    """The release files of PACKAGES on a package index of this machine (PIP_INDEX_URL)."""
    host_python()
    dists = pypi_index.ensure([dist for dist, _deps in PACKAGES.values()])
    with pypi_index.serve(dists) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        yield url


def stack(tmp_path: Path, packages: list[str], name: str = "default.yaml") -> Path:
    """The recipes of PACKAGES in tmp_path/pkgs and a profile listing `packages`, with the
    host's python3 as its interpreter (pinned by the first `hit build --repin`)."""
    pkgs = tmp_path / "pkgs"
    for recipe, (dist, deps) in PACKAGES.items():
        d = pypi_index.DISTS[dist]
        text = pypi_index.recipe(recipe, d.requirement.split("==")[1], d, deps)
        write_recipe(pkgs, recipe, text)
    return write_profile(
        tmp_path / name,
        "package_dirs: [pkgs]\n"
        f"externals:\n  host-python:\n    kind: python\n    commands: {{python: {HOST_PYTHON}}}\n"
        "toolchain: {python: host-python}\n"
        f"packages: [{', '.join(packages)}]\n",
    )


def python(link: Path, code: str) -> subprocess.CompletedProcess:
    return run_clean([str(link / "bin" / "python3"), "-c", code])


def test_a_profile_is_a_python_environment_and_the_guide_walk_through(home, index, tmp_path):
    yaml = stack(tmp_path, ["py-jinja2", "py-pygments"])
    r = run_hit("build", "--repin", str(yaml))
    assert "markupsafe==2.1.5  fetched" in r.err and "from http://127.0.0.1:" in r.err
    link = tmp_path / "default"
    code = (
        "import sys, jinja2, markupsafe._speedups as s; "
        "print(sys.prefix); print(jinja2.__file__); print(s.__file__)"
    )
    out = python(link, code)
    assert out.returncode == 0, out.stderr
    prefix, jinja, speedups = out.stdout.split()
    assert prefix == str(link)  # the profile, not the interpreter's prefix
    assert jinja == f"{link}/lib/python3.11/site-packages/jinja2/__init__.py"
    # MarkupSafe's C speedups, compiled here against the interpreter's headers
    assert speedups.endswith(".so") and os.path.realpath(speedups).startswith(str(home))
    # nothing of the host's packages: Debian's dist-packages are not on sys.path
    assert "dist-packages" not in python(link, "import sys; print(sys.path)").stdout
    # a console script runs from the profile, with the profile's packages
    out = run_clean([str(link / "bin" / "pygmentize"), "-V"])
    assert out.returncode == 0 and "Pygments version 2.18.0" in out.stdout, out.stderr
    lexer = run_clean([str(link / "bin" / "pygmentize"), "-N", "x.py"])
    assert lexer.stdout.strip() == "python"

    # the guide: remove py-jinja2, rebuild: nothing builds (how long: bench_python_profile.py)
    yaml.write_text(yaml.read_text().replace("[py-jinja2, py-pygments]", "[py-pygments]"))
    r = run_hit("build", str(yaml))
    assert "building" not in r.err and "assembled" in r.err
    gone = python(link, "import jinja2")
    assert gone.returncode != 0 and "No module named 'jinja2'" in gone.stderr
    assert python(link, "import markupsafe").returncode != 0  # only jinja2 brought it
    assert python(link, "import pygments").returncode == 0
    # put it back: the earlier profile is still in the store, the link returns to it
    yaml.write_text(yaml.read_text().replace("[py-pygments]", "[py-jinja2, py-pygments]"))
    r = run_hit("build", str(yaml))
    assert "exists already; link switched" in r.err, r.err
    assert python(link, "import jinja2").returncode == 0


def test_pypi_sources_are_checked_and_fetched_by_hash(home, index, tmp_path):
    yaml = stack(tmp_path, ["py-pygments"])
    recipe = tmp_path / "pkgs" / "py-pygments.yaml"
    text = recipe.read_text()
    # not one release: refused at its line before anything is fetched
    recipe.write_text(text.replace("pygments==2.18.0", "pygments>=2"))
    r = run_hit("build", "--repin", str(yaml), check=False)
    assert r.code != 0 and f"{recipe}:4: 'pypi' must be NAME==VERSION" in r.err, r.err
    # a sha256 the index does not list: one message naming the page, nothing built
    wrong = "ab" * 32
    recipe.write_text(text.replace(pypi_index.DISTS["pygments"].sha256, wrong))
    r = run_hit("build", "--repin", str(yaml), check=False)
    assert r.code != 0 and "cannot fetch pygments==2.18.0" in r.err, r.err
    assert f"{index}pygments/: no file of 1 listed has sha256 {wrong[:16]}" in r.err
    assert "Nothing was built" in r.err and not (tmp_path / "default").exists()
    # no sha256 at all
    recipe.write_text(text.replace(f"    sha256: {pypi_index.DISTS['pygments'].sha256}\n", ""))
    r = run_hit("build", str(yaml), check=False)
    assert r.code != 0 and "needs the sha256 of the one file" in r.err, r.err


def test_a_binary_wheel_with_bundled_libraries_fails_the_library_check(home, tmp_path, monkeypatch):
    """NumPy's manylinux wheel bundles OpenBLAS and libgfortran, which find each other only
    once loaded (no RUNPATH): refused, naming them; the store's NumPy is built from source
    against the openblas recipe (tests/test_python_real.py)."""
    host_python()
    dist = pypi_index.ensure(["numpy-wheel"])[0]
    yaml = stack(tmp_path, ["py-numpy"])
    write_recipe(
        tmp_path / "pkgs", "py-numpy", pypi_index.recipe("py-numpy", "1.26.4", dist, ["python"])
    )
    with pypi_index.serve([dist]) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        r = run_hit("build", "--repin", str(yaml), check=False)
    assert r.code != 0 and "py-numpy/" in r.err and "library check failed" in r.err, r.err
    assert "numpy.libs/libopenblas64_p" in r.err and "not found in its RUNPATH" in r.err
    assert not (tmp_path / "default").exists()


def test_develop_uses_the_profile_python_and_pip_install_e(home, index, tmp_path):
    yaml = stack(tmp_path, ["py-jinja2", "py-flit-core"])
    run_hit("build", "--repin", str(yaml))
    dev = tmp_path / "dev"
    run_hit("develop", str(yaml), str(dev))
    out = run_clean([str(dev / "bin" / "python3"), "-c", "import sys, jinja2; print(sys.prefix)"])
    assert out.returncode == 0 and out.stdout.strip() == str(dev), out.stderr
    # the user's own package, installed editable with the folder's pip, sees the profile's
    project = tmp_path / "mypkg"
    (project / "mypkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "mypkg"\nversion = "0.1"\ndescription = "mine"\n'
        'dependencies = ["jinja2"]\n'
    )
    (project / "mypkg" / "__init__.py").write_text(
        "import jinja2\n\n\ndef hello():\n"
        "    return jinja2.Template('hi {{ x }}').render(x='there')\n"
    )
    pip = [str(dev / "bin" / "pip"), "install", "--no-index", "--no-build-isolation", "-e", "."]
    r = subprocess.run(["env", "-i", *pip], cwd=project, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = run_clean([str(dev / "bin" / "python3"), "-c", "import mypkg; print(mypkg.hello())"])
    assert out.stdout == "hi there\n", out.stderr
    # edits show at once (editable), and the profile itself is untouched
    (project / "mypkg" / "__init__.py").write_text("def hello():\n    return 'edited'\n")
    out = run_clean([str(dev / "bin" / "python3"), "-c", "import mypkg; print(mypkg.hello())"])
    assert out.stdout == "edited\n"
    assert python(tmp_path / "default", "import mypkg").returncode != 0
    # flit-core leaves the profile: gone from the folder too (no empty namespace package,
    # no empty .dist-info), and what the user installed stays
    yaml.write_text(yaml.read_text().replace("[py-jinja2, py-flit-core]", "[py-jinja2]"))
    r = run_hit("develop", str(yaml), str(dev))
    assert "removed py-flit-core" in r.err, r.err
    code = "import importlib.util as u; print(u.find_spec('flit_core'), u.find_spec('mypkg').name)"
    out = run_clean([str(dev / "bin" / "python3"), "-c", code])
    assert out.stdout == "None mypkg\n", out.stderr
    assert not list((dev / "lib" / "python3.11" / "site-packages").glob("flit_core*"))


def test_hit_create_from_a_wheel_and_an_sdist_then_build(home, index, tmp_path):
    """`hit create` on release files: recipes with `pypi:` sources and the dependencies of
    their metadata, which build as they are (the walk-through's packages, started from
    nothing but the files)."""
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    for dist in ("pygments", "markupsafe", "jinja2"):
        run_hit("create", str(pypi_index.PYPI / pypi_index.DISTS[dist].file), cwd=pkgs)
    jinja = (pkgs / "py-jinja2.yaml").read_text()
    assert "  - pypi: Jinja2==3.1.4\n" in jinja and "  - py-markupsafe\n" in jinja, jinja
    markupsafe = (pkgs / "py-markupsafe.yaml").read_text()
    assert "  - py-setuptools\n" in markupsafe  # a setup.py project: pip builds it with setuptools
    # the sdist's legacy backend also needs wheel (setuptools 69): the one line to add
    (pkgs / "py-markupsafe.yaml").write_text(
        markupsafe.replace("  - py-setuptools\n", "  - py-setuptools\n  - py-wheel\n")
    )
    for recipe in ("py-setuptools", "py-wheel"):
        dist, deps = PACKAGES[recipe]
        d = pypi_index.DISTS[dist]
        write_recipe(pkgs, recipe, pypi_index.recipe(recipe, d.requirement.split("==")[1], d, deps))
    yaml = write_profile(
        tmp_path / "default.yaml",
        "package_dirs: [pkgs]\n"
        f"externals:\n  host-python:\n    kind: python\n    commands: {{python: {HOST_PYTHON}}}\n"
        "toolchain: {python: host-python}\n"
        "packages: [py-jinja2, py-pygments]\n",
    )
    run_hit("build", "--repin", str(yaml))
    out = python(tmp_path / "default", "import jinja2, markupsafe._speedups, pygments; print('ok')")
    assert out.stdout == "ok\n", out.stderr


def test_a_python_external_is_declared_and_used_as_the_interpreter(home, tmp_path):
    """An external of kind python needs its python command; with one in the toolchain, the
    python recipe is never built, and listing it is refused at its line."""
    yaml = stack(tmp_path, ["py-pygments"])
    text = yaml.read_text()
    yaml.write_text(text.replace(f"commands: {{python: {HOST_PYTHON}}}", "commands: {}"))
    r = run_hit("status", str(yaml), check=False)
    assert r.code != 0 and f"{yaml}:4: external 'host-python' (kind: python) needs" in r.err, r.err
    yaml.write_text(text.replace("packages: [py-pygments]", "packages: [python, py-pygments]"))
    r = run_hit("status", str(yaml), check=False)
    assert r.code != 0 and "leave python out of packages" in r.err, r.err
    assert f"{yaml}:7:" in r.err


def test_the_index_is_the_one_pip_is_configured_with(home, index, tmp_path, monkeypatch):
    """No PIP_INDEX_URL: the index-url of pip's own configuration file (pip config)."""
    monkeypatch.delenv("PIP_INDEX_URL")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {index}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    yaml = stack(tmp_path, ["py-pygments"])
    r = run_hit("build", "--repin", str(yaml))
    assert "pygments==2.18.0  fetched (1.1 MB)" in r.err and index.split("/simple")[0] in r.err


def test_attack_findings_on_externals_and_profiles(home, index, tmp_path):
    """A profile whose Python packages ship no bin/ (the interpreter's links are the
    profile's own), an external written on one line pinned in that line, an interpreter
    that is not Python, a bare command name, and a package whose bin/python3 is preferred
    over the external's."""
    yaml = stack(tmp_path, ["py-flit-core"])
    yaml.write_text(
        yaml.read_text().replace(
            f"  host-python:\n    kind: python\n    commands: {{python: {HOST_PYTHON}}}\n",
            f"  host-python: {{kind: python, commands: {{python: {HOST_PYTHON}}}}}  # one line\n",
        )
    )
    run_hit("build", "--repin", str(yaml))
    line = yaml.read_text().splitlines()[2]
    assert line.startswith("  host-python: {kind: python, commands: {python: ") and line.endswith(
        "}}  # one line"
    ), line
    assert ', pin: {"version": "Python 3.11' in line
    link = tmp_path / "default"
    assert (link / "bin").is_dir() and not (link / "bin").is_symlink()
    assert os.readlink(link / "bin" / "python3") == os.path.realpath(HOST_PYTHON)
    assert python(link, "import flit_core").returncode == 0
    assert run_hit("build", str(yaml)).code == 0  # and again: a no-op, no "File exists"

    # an interpreter that is not one: refused when pinned, nothing built
    fake = tmp_path / "notpython"
    fake.write_text("#!/bin/sh\necho 'true (GNU coreutils) 9.1'\n")
    fake.chmod(0o755)
    other = write_profile(
        tmp_path / "fake.yaml",
        "package_dirs: [pkgs]\n"
        f"externals:\n  host-python:\n    kind: python\n    commands: {{python: {fake}}}\n"
        "toolchain: {python: host-python}\npackages: [py-flit-core]\n",
    )
    r = run_hit("build", "--repin", str(other), check=False)
    assert r.code != 0 and f"{fake} is not a Python interpreter" in r.err, r.err
    assert "true (GNU coreutils) 9.1" in r.err
    # a bare name would be looked up on whatever PATH pins it: an absolute path is asked for
    other.write_text(other.read_text().replace(str(fake), "python3.11"))
    r = run_hit("build", "--repin", str(other), check=False)
    assert r.code != 0 and "its interpreter by absolute path" in r.err and f"{other}:4:" in r.err

    # a package's own bin/python3, preferred, wins over the external's link
    write_recipe(
        tmp_path / "pkgs",
        "fakepy",
        'version: "1.0"\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n'
        '  printf "#!/bin/sh\\necho fake\\n" > "$ARTIFACT/bin/python3"\n'
        '  chmod +x "$ARTIFACT/bin/python3"\n',
    )
    text = yaml.read_text().replace("packages: [py-flit-core]", "packages: [py-flit-core, fakepy]")
    yaml.write_text(text)
    r = run_hit("build", str(yaml), check=False)
    said = "package fakepy ships bin/python3, which the profile's python (external) gives too"
    assert r.code != 0 and said in r.err and "list fakepy under `prefer:`" in r.err, r.err
    yaml.write_text(text + "prefer: [fakepy]\n")
    run_hit("build", str(yaml))
    assert run_clean([str(link / "bin" / "python3")]).stdout == "fake\n"


def test_a_pypi_source_is_the_release_it_names(home, index, tmp_path):
    """The sha256 picks the file; the file's own metadata must then be the release the
    recipe names (another project's hash is refused, from the cache as from the index)."""
    yaml = stack(tmp_path, ["py-jinja2"])
    run_hit("fetch", str(stack(tmp_path, ["py-pygments"], name="pyg.yaml")))  # now cached
    jinja = tmp_path / "pkgs" / "py-jinja2.yaml"
    jinja.write_text(
        jinja.read_text().replace(
            pypi_index.DISTS["jinja2"].sha256, pypi_index.DISTS["pygments"].sha256
        )
    )
    r = run_hit("build", "--repin", str(yaml), check=False)
    assert (
        r.code != 0
        and "source pypi: jinja2==3.1.4: the file with that sha256 is pygments 2.18.0" in r.err
    ), r.err


@pytest.mark.parametrize("folder", ["d" * 120, "a space"])
def test_console_scripts_through_links_and_long_paths(tmp_path, index, monkeypatch, folder):
    """A store path too long for a #! line, or with a space (pip then writes a /bin/sh
    launcher): the
    console script still runs from the profile and from its artifact; a link to it beside
    some other python3 (no pyvenv.cfg there) runs the interpreter it was built with."""
    deep = tmp_path / folder / "home"
    monkeypatch.setenv("HIT_HOME", str(deep))
    yaml = stack(tmp_path, ["py-pygments"])
    run_hit("build", "--repin", str(yaml))
    link = tmp_path / "default"
    for script in (
        link / "bin" / "pygmentize",
        Path(os.path.realpath(link / "bin" / "pygmentize")),
    ):
        out = run_clean([str(script), "-V"])
        assert out.returncode == 0 and "Pygments version 2.18.0" in out.stdout, (script, out.stderr)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pygmentize").symlink_to(link / "bin" / "pygmentize")
    (elsewhere / "python3").symlink_to("/bin/false")
    out = run_clean([str(elsewhere / "pygmentize"), "-V"])
    assert out.returncode == 0 and "Pygments version 2.18.0" in out.stdout, out.stderr
    # nor in a venv that does not hold the package (its python3 could not import it)
    venv = tmp_path / "venv"
    subprocess.run([HOST_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "bin" / "pygmentize").symlink_to(link / "bin" / "pygmentize")
    out = run_clean([str(venv / "bin" / "pygmentize"), "-V"])
    assert out.returncode == 0 and "Pygments version 2.18.0" in out.stdout, out.stderr


def test_index_pages_that_are_not_pages():
    """A JSON answer that is not a project page is a message, never a traceback; a link
    from an http index to a local file is not followed."""
    import http.server
    import threading

    from hdmodules.build.pypi import _page_files, find_url
    from hdmodules.errors import HitError

    for bad in ("[1, 2]", '{"files": [{"url": 5, "hashes": "x"}]}', '{"files": 3}'):
        with contextlib.suppress(ValueError):  # refused, or nothing listed
            assert _page_files("http://x/simple/p/", bad, True) == []
    sha = "ab" * 32
    pages = {
        "/local/p/": ("text/html", f'<a href="file:///dev/zero#sha256={sha}">zero</a>'),
        "/space/p/": ("text/html", f'<a href="/files/a b.whl#sha256={sha}">a b</a>'),
        "/deep/p/": ("application/vnd.pypi.simple.v1+json", "[" * 100000 + "]" * 100000),
    }

    class Page(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            kind, text = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(text.encode())

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        server_url = f"http://127.0.0.1:{server.server_address[1]}"
        for index, said in (
            ("local", "the file is at 'file:///dev/zero', not an http"),
            ("space", "the file's URL 'http://127.0.0.1:[0-9]+/files/a b.whl' has a space"),
            ("deep", "not a project page \\(nested too deep\\)"),
        ):
            with pytest.raises(HitError, match=said):
                find_url("p==1", sha, (f"{server_url}/{index}/",))
    finally:
        server.shutdown()
        server.server_close()
