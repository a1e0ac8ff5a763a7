"""Real upstream packages (site-configs/pkgs), seeded offline from Debian's orig tarballs,
built with the real toolchain: ncurses -> readline, and bzip2."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, run_clean, write_profile, write_recipe
from tests.upstream_sources import upstream_folder

WANTED = ("bzip2_1.0.8.orig.tar.*", "ncurses_6.4.orig.tar.*", "readline_8.2.orig.tar.*")
# the recipes the slow test below builds, with the host compiler
SHIPPED = ("bzip2", "fftw", "libffi", "lz4", "ncurses", "readline")


@pytest.fixture(scope="session")
def upstream() -> Path:
    return upstream_folder(WANTED)


RLTEST = r"""
#include <stdio.h>
#include <stdlib.h>
#include <readline/readline.h>
#include <readline/history.h>

int main(void) {
    char *line = readline("");
    if (!line) return 1;
    add_history(line);
    printf("readline %s read: %s\n", rl_library_version, line);
    free(line);
    return 0;
}
"""


def test_ncurses_readline_bzip2_from_upstream_tarballs(hit, home, tmp_path, upstream):
    r = hit("fetch", "--from", str(upstream))
    assert "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269" in r.out
    src = tmp_path / "rltest-src"
    src.mkdir()
    (src / "rltest.c").write_text(RLTEST)
    write_recipe(
        tmp_path / "local",
        "rltest",
        """
        version: "1"
        sources: [{path: ../rltest-src}]
        dependencies: [readline]
        build: |
          gcc $CPPFLAGS -o rltest rltest.c $LDFLAGS -lreadline
          install -Dm755 rltest "$ARTIFACT/bin/rltest"
        """,
    )
    profile = write_profile(
        tmp_path / "default.yaml",
        f"package_dirs: [local, {REPO / 'site-configs' / 'pkgs'}]\n"
        "packages: [ncurses, readline, bzip2, rltest]\n",
    )
    r = hit("build", "-j", "2", str(profile), timeout=1800)
    assert r.err.count("built in") == 4
    prof = tmp_path / "default"

    # bzip2 round trip, with an empty environment
    data = tmp_path / "data.txt"
    data.write_text("hdmodules " * 10000)
    assert run_clean([str(prof / "bin" / "bzip2"), "-k", str(data)]).returncode == 0
    out = run_clean([str(prof / "bin" / "bzcat"), f"{data}.bz2"])
    assert out.returncode == 0 and out.stdout == data.read_text()
    assert (prof / "lib" / "libbz2.so.1.0").exists()

    # ncurses finds its terminfo database inside its own artifact
    info = run_clean([str(prof / "bin" / "infocmp"), "xterm"])
    assert info.returncode == 0 and "xterm" in info.stdout
    assert run_clean([str(prof / "bin" / "tput"), "-T", "vt100", "cols"]).stdout.strip() == "80"

    # readline links the ncurses artifact (not the host's libtinfo) through RUNPATH
    ncurses = next((home / "bld" / "ncurses").iterdir())
    lib = os.path.realpath(prof / "lib" / "libreadline.so")
    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
    assert "libncursesw.so.6" in dyn and "libtinfo" not in dyn
    assert str(ncurses / "lib") in next(x for x in dyn.splitlines() if "RUNPATH" in x)
    rl = run_clean([str(prof / "bin" / "rltest")], input="hello profile\n")
    assert rl.returncode == 0 and "readline 8.2 read: hello profile" in rl.stdout


@pytest.mark.slow
def test_every_shipped_recipe_builds_from_upstream_tarballs(hit, home, tmp_path, upstream):
    """The slow lane (`python -m pytest -m slow`): the first shipped recipes (SHIPPED) built
    for real, in a profile without an MPI (fftw's serial variant), through the unpacker, the
    reaper and the durable commit (fftw with SIMD takes minutes); each artifact passes `hit
    verify` and its libraries load under `env -i`."""
    hit("fetch", "--from", str(upstream))
    # hdf5 (whose release Debian repacks) and netcdf-c on it: tests/test_scientist_real.py
    # builds both variants, serial and with Open MPI, and fftw's MPI variant. The curated
    # base (zlib, xz, zstd, m4, libpng, gsl, openblas, netcdf-fortran; OpenBLAS's
    # DYNAMIC_ARCH alone takes most of an hour here) is built by tests/test_base_real.py.
    names = sorted(SHIPPED)
    for name in names:
        assert (REPO / "site-configs" / "pkgs" / f"{name}.yaml").is_file(), name
    profile = write_profile(
        tmp_path / "default.yaml",
        f"package_dirs: [{REPO / 'site-configs' / 'pkgs'}]\npackages: [{', '.join(names)}]\n",
    )
    r = hit("build", "-j", "2", str(profile), timeout=3600)
    assert r.err.count("built in") == len(names), r.err
    assert hit("verify").code == 0
    prof = tmp_path / "default"
    assert run_clean([str(prof / "bin" / "lz4"), "--version"]).returncode == 0
    assert run_clean([str(prof / "bin" / "fftw-wisdom"), "-V"]).returncode == 0
    for lib in ("libffi.so.8", "liblz4.so.1", "libfftw3.so.3", "libreadline.so.8"):
        assert (prof / "lib" / lib).exists(), lib
