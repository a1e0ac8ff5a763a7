"""CPython 3.11 in the store, for real (issue 17, item 1): site-configs/pkgs/python.yaml built
with gcc-12 over the store's zlib, bzip2, xz, libffi, ncurses, readline, sqlite, expat and
openssl, from their upstream sources seeded offline (Debian's orig tarballs,
tests/tools/fetch-upstream-sources.sh; sqlite's and expat's are not the release files, see
tests/upstream_sources.py). The slow lane (`python -m pytest -m slow`): one build (6 min
wall on 2 cores, -j 2: OpenSSL 200 s, CPython 118 s, sqlite 93 s), then the profile's
python3 and pip3 under an empty environment (`env -i`). The build itself passed the library
check (ELF and link metadata), with no allow_host_libs in any of the recipes. Then Python
packages on that python: jinja2 (MarkupSafe's C speedups), pygments, and NumPy from its
sdist over the store's OpenBLAS (with LAPACK), imported under `env -i`."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from tests import pypi_index
from tests.conftest import REPO, need, run_clean, run_hit
from tests.upstream_sources import PYTHON_SOURCES, SOURCES, seed_sources, upstream_folder

PKGS = REPO / "site-configs" / "pkgs"
# built from the base's Debian files: zlib (a repack) and xz; bzip2, libffi, ncurses and
# readline are Debian's releases byte for byte, named by the recipes as they are
SEEDED = ("zlib", "xz", "openblas", *PYTHON_SOURCES)
BUILT = {"zlib", "bzip2", "xz", "libffi", "ncurses", "readline", *PYTHON_SOURCES}
IMPORTS = "import ssl, sqlite3, lzma, bz2, zlib, ctypes, readline, pyexpat, hashlib, curses"
CHECK = (
    f"{IMPORTS}; "
    "print(ssl.OPENSSL_VERSION); print(sqlite3.sqlite_version); "
    "print(hashlib.sha256(b'').hexdigest()); "
    "print(ctypes.CDLL(None).strlen(b'four')); "
    "print(lzma.decompress(lzma.compress(b'xz')), bz2.decompress(bz2.compress(b'bz')))"
)


@pytest.mark.slow
def test_python_builds_over_the_base_and_runs_under_env_i(tmp_path):
    need(shutil.which("gcc-12") is not None, "gcc-12")
    wanted = [SOURCES[n].debian for n in ("zlib", "xz")]
    wanted += [PYTHON_SOURCES[n].debian for n in PYTHON_SOURCES]
    wanted += ["bzip2_1.0.8.orig.tar.*", "libffi_3.4.4.orig.tar.*"]
    wanted += ["ncurses_6.4.orig.tar.*", "readline_8.2.orig.tar.*"]
    wanted += [SOURCES["openblas"].release]  # with LAPACK, for NumPy
    upstream = upstream_folder(wanted)
    shutil.copytree(PKGS, tmp_path / "pkgs")
    used = seed_sources(tmp_path / "pkgs", upstream, SEEDED)
    run_hit("externals", "detect", "--write", str(tmp_path / "externals.yaml"))
    need("  gcc-12:" in (tmp_path / "externals.yaml").read_text(), "gcc-12 external")
    profile = tmp_path / "py.yaml"
    profile.write_text(
        "extends: [externals.yaml]\n"
        "package_dirs: [pkgs]\n"
        "toolchain: {compiler: gcc-12}\n"
        "packages:\n  python:\n"
    )
    env = {**os.environ, "HIT_HOME": str(tmp_path / "home")}
    run_hit("fetch", "--from", str(upstream), env=env, timeout=600)
    start = time.monotonic()
    r = run_hit("build", "-j", "2", str(profile), env=env, timeout=5000)
    wall = time.monotonic() - start
    times = dict(re.findall(r"([\w.+-]+)/\w+\s+built in ([\d.]+) s", r.err))
    print("\nsources:", *(f"  {n}: {what}" for n, what in used.items()), sep="\n")
    print(f"hit build of python with gcc-12: {wall:.0f} s wall, -j 2")
    for name, seconds in times.items():
        print(f"  {name}: built in {seconds} s")
    assert set(times) == BUILT, r.err

    bin_ = tmp_path / "py" / "bin"
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
    run_hit("verify", env=env)

    # Python packages on the store's python (issue 17, items 2 and 3): the site-configs
    # recipes, their release files seeded offline (tests/tools/fetch-python-sources.sh);
    # NumPy from its sdist with meson-python and Cython, over the store's OpenBLAS
    pypi = pypi_index.PYPI
    need((pypi / "numpy-1.26.4.tar.gz").is_file(), f"numpy-1.26.4.tar.gz in {pypi}")
    run_hit("fetch", "--from", str(pypi), env=env, timeout=600)
    sci = tmp_path / "sci.yaml"
    sci.write_text(
        "extends: [externals.yaml]\n"
        "package_dirs: [pkgs]\n"
        "toolchain: {compiler: gcc-12}\n"
        "packages: [py-jinja2, py-numpy, py-pygments]\n"
    )
    start = time.monotonic()
    r = run_hit("build", "-j", "2", str(sci), env=env, timeout=7200)
    wall = time.monotonic() - start
    times = dict(re.findall(r"([\w.+-]+)/\w+\s+built in ([\d.]+) s", r.err))
    print(f"hit build of jinja2, numpy, pygments on the store's python: {wall:.0f} s wall")
    for name, seconds in times.items():
        print(f"  {name}: built in {seconds} s")
    assert {"openblas", "py-numpy", "py-markupsafe", "py-cython"} <= set(times), r.err
    link = tmp_path / "sci"
    code = (
        "import sys, jinja2, markupsafe._speedups, numpy as np; print(sys.prefix); "
        "a = np.array([[4.0, 1.0], [2.0, 3.0]]); print(np.linalg.solve(a, [1.0, 2.0]).round(3)); "
        "print(np.__version__); from numpy.core import _multiarray_umath as m; print(m.__file__)"
    )
    out = run_clean([str(link / "bin" / "python3"), "-c", code])
    assert out.returncode == 0, out.stderr
    prefix, solved, version, umath = out.stdout.splitlines()
    assert prefix == str(link) and version == "1.26.4" and solved == "[0.1 0.6]", out.stdout
    # NumPy's BLAS/LAPACK is the store's libopenblas, found through RUNPATH under env -i
    ldd = run_clean(["ldd", umath]).stdout
    blas = next(line for line in ldd.splitlines() if "libopenblas" in line)
    assert str(tmp_path / "home") in blas and "not found" not in blas, ldd
    out = run_clean([str(link / "bin" / "pygmentize"), "-V"])
    assert out.returncode == 0 and "2.18.0" in out.stdout, out.stderr
    run_hit("verify", env=env)
