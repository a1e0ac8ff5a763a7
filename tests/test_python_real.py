"""Python stacks for real (issue 17), the slow lane (`python -m pytest -m slow`): a site
builds, with gcc-12, CPython 3.11 from its release over the store's zlib, bzip2, xz, libffi,
ncurses, readline, sqlite, expat and openssl (site-configs/pkgs/python.yaml), and on it
jinja2 (MarkupSafe's C speedups), pygments, and NumPy 1.26.4 from its sdist with
meson-python and Cython over the store's OpenBLAS (with LAPACK). Every build passes the
library check (ELF and link metadata) with no allow_host_libs.

Sources are seeded offline: the C libraries from Debian's orig tarballs
(tests/tools/fetch-upstream-sources.sh; sqlite's and expat's are not the release files, see
tests/upstream_sources.py), OpenBLAS's release, and the Python release files
(tests/tools/fetch-python-sources.sh) with `hit fetch --from DIR`.

- test_the_interpreter_runs_under_env_i: the stack's python3 imports ssl, sqlite3, lzma,
  bz2, zlib, ctypes, readline, pyexpat, hashlib, curses with an empty environment; pip3 runs.
- test_the_stack_is_a_python_environment: the stack's profile (what `hit build` links for a
  user) imports jinja2, markupsafe's speedups and numpy under `env -i`, sys.prefix is the
  profile, NumPy's BLAS is the store's libopenblas (RUNPATH), pygmentize runs from bin/.
- test_develop_on_the_store_python: `hit develop` and `DIR/bin/pip install -e .` on it.
- test_module_load_python_py_numpy: `module load python py-numpy py-jinja2` in the real Lmod
  and Environment Modules, then `python3 -c "import numpy, jinja2"`.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hdmodules.store.home import init_home
from tests import pypi_index
from tests.conftest import REPO, need, run_clean, run_hdmod, run_hit
from tests.module_tools import module_shell
from tests.upstream_sources import PYTHON_SOURCES, SOURCES, seed_sources, upstream_folder

pytestmark = pytest.mark.slow

PKGS = REPO / "site-configs" / "pkgs"
# built from the base's Debian files: zlib (a repack) and xz; bzip2, libffi, ncurses and
# readline are Debian's releases byte for byte, named by the recipes as they are
SEEDED = ("zlib", "xz", "openblas", *PYTHON_SOURCES)
STACK = "python"
PACKAGES = ("python", "py-jinja2", "py-numpy", "py-pygments")
PYTHON_CLOSURE = {"zlib", "bzip2", "xz", "libffi", "ncurses", "readline", *PYTHON_SOURCES}
PY_PACKAGES = {"py-setuptools", "py-wheel", "py-markupsafe", "py-jinja2", "py-pygments"}
PY_PACKAGES |= {"py-packaging", "py-pyproject-metadata", "py-meson", "py-meson-python"}
PY_PACKAGES |= {"py-cython", "py-numpy"}
IMPORTS = "import ssl, sqlite3, lzma, bz2, zlib, ctypes, readline, pyexpat, hashlib, curses"
CHECK = (
    f"{IMPORTS}; "
    "print(ssl.OPENSSL_VERSION); print(sqlite3.sqlite_version); "
    "print(hashlib.sha256(b'').hexdigest()); "
    "print(ctypes.CDLL(None).strlen(b'four')); "
    "print(lzma.decompress(lzma.compress(b'xz')), bz2.decompress(bz2.compress(b'bz')))"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once: one core stack of gcc-12 with python, py-jinja2, py-numpy,
    py-pygments; Lmod and Tcl trees. Returns a namespace of paths."""
    need(shutil.which("gcc-12") is not None, "gcc-12")
    wanted = [SOURCES[n].debian for n in ("zlib", "xz")]
    wanted += [PYTHON_SOURCES[n].debian for n in PYTHON_SOURCES]
    wanted += ["bzip2_1.0.8.orig.tar.*", "libffi_3.4.4.orig.tar.*"]
    wanted += ["ncurses_6.4.orig.tar.*", "readline_8.2.orig.tar.*"]
    wanted += [SOURCES["openblas"].release]  # with LAPACK, for NumPy
    upstream = upstream_folder(wanted)
    blas = SOURCES["openblas"].release  # Debian fetches only its repack, which has no LAPACK
    need((upstream / blas).is_file(), f"{blas} in {upstream} (OpenBLAS with LAPACK, for NumPy)")
    pypi_index.ensure(["numpy"])  # the sdist py-numpy builds; the build fetches the rest
    pypi = pypi_index.PYPI
    base = tmp_path_factory.mktemp("pysite")
    site_dir, root = base / "site", base / "root"
    shutil.copytree(PKGS, site_dir / "pkgs")
    used = seed_sources(site_dir / "pkgs", upstream, SEEDED)
    run_hdmod("externals", "detect", "--write", str(site_dir / "externals.yaml"))
    need("  gcc-12:" in (site_dir / "externals.yaml").read_text(), "gcc-12 external")
    (site_dir / "site.yaml").write_text(
        "package_dirs: [pkgs]\n"
        "externals_from: [externals.yaml]\n"
        f"stacks:\n  {STACK}:\n    core: true\n    compiler: gcc-12\n"
        f"    packages: [{', '.join(PACKAGES)}]\n"
        "modules:\n  formats: [lmod, tcl]\n  externals: [gcc-12]\n"
    )
    init_home(root, private=False)
    env = {**os.environ, "HIT_HOME": str(root)}
    run_hit("fetch", "--from", str(upstream), env=env, timeout=600)
    run_hit("fetch", "--from", str(pypi), env=env, timeout=600)
    start = time.monotonic()
    r = run_hdmod("build", str(site_dir / "site.yaml"), "--root", str(root), "-j", "2",
                  timeout=7200)  # fmt: skip
    wall = time.monotonic() - start
    times = dict(re.findall(r"([\w.+-]+)/\w+\s+built in ([\d.]+) s", r.stderr))
    print("\nsources:", *(f"  {n}: {what}" for n, what in used.items()), sep="\n")
    print(f"hdmod build of {', '.join(PACKAGES)} with gcc-12: {wall:.0f} s wall, -j 2")
    for name, seconds in times.items():
        print(f"  {name}: built in {seconds} s")
    assert set(times) == PYTHON_CLOSURE | PY_PACKAGES | {"openblas"}, r.stderr
    run_hit("verify", env=env)
    return SimpleNamespace(root=root, profile=root / "profiles" / STACK, env=env, dir=site_dir)


def test_the_interpreter_runs_under_env_i(site):
    bin_ = site.profile / "bin"
    out = run_clean([str(bin_ / "python3"), "-c", CHECK])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("OpenSSL 3.0.22 "), lines
    assert lines[1] == "3.40.1", lines
    assert lines[2] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert lines[3] == "4", lines
    assert lines[4] == "b'xz' b'bz'", lines
    pip = run_clean([str(bin_ / "pip3"), "--version"])
    assert pip.returncode == 0 and pip.stdout.startswith("pip "), pip.stderr
    assert f"from {site.profile}/lib/python3.11/site-packages/pip" in pip.stdout, pip.stdout


def test_the_stack_is_a_python_environment(site):
    link = site.profile
    code = (
        "import sys, jinja2, markupsafe._speedups, numpy as np; print(sys.prefix); "
        "a = np.array([[4.0, 1.0], [2.0, 3.0]]); print(np.linalg.solve(a, [1.0, 2.0])); "
        "print(np.__version__); from numpy.core import _multiarray_umath as m; print(m.__file__)"
    )
    out = run_clean([str(link / "bin" / "python3"), "-c", code])
    assert out.returncode == 0, out.stderr
    prefix, solved, version, umath = out.stdout.splitlines()
    assert prefix == str(link) and version == "1.26.4" and solved == "[0.1 0.6]", out.stdout
    # NumPy's BLAS and LAPACK are the store's libopenblas, found through RUNPATH under env -i
    ldd = run_clean(["ldd", umath]).stdout
    blas = next(line for line in ldd.splitlines() if "libopenblas" in line)
    assert f"{site.root}/" in blas and "not found" not in blas, ldd
    out = run_clean([str(link / "bin" / "pygmentize"), "-V"])
    assert out.returncode == 0 and "2.18.0" in out.stdout, out.stderr


MODULES = """
module use {core} || exit 10
module load python py-numpy py-jinja2 || exit 11
python3 -c 'import numpy, jinja2, sys
print(numpy.__file__); print(jinja2.__file__); print(sys.executable)' || exit 12
module avail 2>&1
"""


@pytest.mark.parametrize("tool", ["lmod", "tcl"])
def test_module_load_python_py_numpy(site, tools, tool):
    """`module load python py-numpy py-jinja2` in a clean shell with the real tool: python3 is
    the store's, numpy and jinja2 are the store's artifacts, py-numpy/1.26.4 is named as
    sites name it, below the interpreter's level."""
    core = site.root / "modules" / tool / "Core"
    r = module_shell(tool, MODULES.format(core=core), capture_env=False)
    assert r.code == 0, f"{tool}: step {r.code}\n{r.out}\n{r.err}"
    numpy, jinja, executable = r.out.splitlines()[:3]
    store = f"{site.root}/"
    assert numpy.startswith(store) and "/py-numpy/" in numpy, r.out
    assert jinja.startswith(store) and "/py-jinja2/" in jinja, r.out
    assert Path(executable).resolve().is_relative_to(site.root), executable
    assert "py-numpy/1.26.4" in r.out + r.err


def test_develop_on_the_store_python(site, tmp_path):
    """`hit develop` over a profile of the store's python (the site's artifacts, nothing
    built): DIR/bin/pip (the python recipe's, running DIR's python3) installs the user's own
    setuptools project editable, and DIR/bin/python3 imports it with the profile's jinja2."""
    profile = site.dir / "dev.yaml"
    profile.write_text(
        "extends: [externals.yaml]\npackage_dirs: [pkgs]\ntoolchain: {compiler: gcc-12}\n"
        "packages: [python, py-jinja2]\n"
    )
    dev = tmp_path / "dev"
    r = run_hit("develop", str(profile), str(dev), env=site.env, timeout=3600)
    assert "building" not in r.err, r.err  # the site's artifacts, the same ids
    project = tmp_path / "mine"
    (project / "mine").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mine"\nversion = "0.1"\ndependencies = ["jinja2"]\n'
    )
    (project / "mine" / "__init__.py").write_text(
        "import jinja2\n\n\ndef hello():\n    return jinja2.Template('{{ 6 * 7 }}').render()\n"
    )
    pip = [str(dev / "bin" / "pip"), "install", "--no-index", "--no-build-isolation", "-e", "."]
    r = run_clean(pip, cwd=project)
    assert r.returncode == 0, r.stdout + r.stderr
    out = run_clean(
        [str(dev / "bin" / "python3"), "-c", "import sys, mine; print(mine.hello(), sys.prefix)"]
    )
    assert out.stdout == f"42 {dev}\n", out.stderr
