"""The upstream sources of site-configs/pkgs the slow lanes build (tests/test_base_real.py,
tests/test_scientist_real.py), seeded offline from Debian's orig tarballs
(tests/tools/fetch-upstream-sources.sh): many are the upstream release byte for byte; a
repack's bytes differ, so a test points its copy of the recipe at the repack unless the
release itself is in HDMOD_UPSTREAM, and says so."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hdmodules.hashing import sha256_file
from tests.conftest import HOST_SETUP, REPO, need

UPSTREAM = Path(os.environ.get("HDMOD_UPSTREAM", Path.home() / ".cache" / "hdmodules" / "upstream"))


@dataclass(frozen=True)
class Source:
    release: str  # the file the recipe's URL names
    sha256: str  # the release's, as the recipe holds it
    debian: str  # Debian's orig tarball
    debian_sha256: str  # equal to sha256 when Debian's is the release byte for byte
    repack_fix: str = ""  # a pre_configure step the repack needs (what Debian's build does)


SOURCES = {
    "zlib": Source(
        "zlib-1.2.13.tar.gz",
        "b3a24de97a8fdbc835b9833169501030b8977031bcb54b3b3ac13740f846ab30",
        "zlib_1.2.13.dfsg.orig.tar.bz2",
        "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
    ),
    "xz": Source(
        "xz-5.4.1.tar.xz",
        "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5",
        "xz-utils_5.4.1.orig.tar.xz",
        "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5",
    ),
    "zstd": Source(
        "zstd-1.5.4.tar.gz",
        "0f470992aedad543126d06efab344dc5f3e171893810455787d38347343a4424",
        "libzstd_1.5.4+dfsg2.orig.tar.xz",
        "8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953",
    ),
    "m4": Source(
        "m4-1.4.19.tar.xz",
        "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96",
        "m4_1.4.19.orig.tar.xz",
        "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96",
    ),
    "libpng": Source(
        "v1.6.39.tar.gz",
        "a00e9d2f2f664186e4202db9299397f851aea71b36a35e74910b8820e380d441",
        "libpng1.6_1.6.39.orig.tar.gz",
        "a00e9d2f2f664186e4202db9299397f851aea71b36a35e74910b8820e380d441",
    ),
    "gsl": Source(
        "gsl-2.7.1.tar.gz",
        "dcb0fbd43048832b757ff9942691a8dd70026d5da0ff85601e52687f6deeb34b",
        "gsl_2.7.1+dfsg.orig.tar.gz",
        "e560d6b9c6e254e46769bbb03583c00ecafbdd51b062c55db23b3b9612868567",
        # the repack drops the manual's sources, which doc/Makefile.in still lists: leave
        # doc/ out (Debian replaces doc/Makefile.in with an empty stub)
        repack_fix="sed -i '/^SUBDIRS = /s/ doc$//' Makefile.in",
    ),
    "openblas": Source(
        "OpenBLAS-0.3.21.tar.gz",
        "f36ba3d7a60e7c8bcc54cd9aaa9b1223dd42eaf02c811791c37e8ca707c241ca",
        "openblas_0.3.21+ds.orig.tar.xz",
        "bbec5cca61c8033b2d57aaecde205d709323a0b35a5f193290081dbb3826848a",
    ),
    "netcdf-fortran": Source(
        "netcdf-fortran-4.5.4.tar.gz",
        "0a19b26a2b6e29fab5d29d7d7e08c24e87712d09a5cafeea90e16e0a2ab86b81",
        "netcdf-fortran_4.6.0+really4.5.4+ds.orig.tar.xz",
        "3f1916a18e5f621327395d614880fe6d41c04fcf142c55ee2fb3c2d3d2240d4a",
    ),
    "hdf5": Source(
        "hdf5-1.10.8.tar.gz",
        "d341b80d380dd763753a0ebe22915e11e87aac4e44a084a850646ff934d19c80",
        "hdf5_1.10.8+repack1.orig.tar.gz",
        "7b38e58ff83b13fd8959a90b13bf896bc318ba096c940ab0847abf3ad41a0b31",
    ),
    "netcdf-c": Source(
        "v4.9.0.tar.gz",
        "9f4cb864f3ab54adb75409984c6202323d2fc66c003e5308f3cdf224ed41c0a6",
        "netcdf_4.9.0.orig.tar.gz",
        "9f4cb864f3ab54adb75409984c6202323d2fc66c003e5308f3cdf224ed41c0a6",
    ),
    "fftw": Source(
        "fftw-3.3.10.tar.gz",
        "56c932549852cddcfafdab3820b0200c7742675be92179e59e6215b340e26467",
        "fftw3_3.3.10.orig.tar.gz",
        "56c932549852cddcfafdab3820b0200c7742675be92179e59e6215b340e26467",
    ),
}

# CPython 3.11 and the libraries of its standard library (issue 17): apart from SOURCES, so
# the base's lanes (their default `names`/`patterns`) neither need nor check these files.
PYTHON_SOURCES = {
    "sqlite": Source(
        "sqlite-autoconf-3400100.tar.gz",
        "2c5dea207fa508d765af1ef620b637dcb06572afa6f01f0815bd5bbf864b33d9",
        # the project's full source tree, not the autoconf release (the amalgamation is
        # generated with tclsh, a host tool); the same configure arguments
        "sqlite3_3.40.1.orig.tar.xz",
        "aaa776260ab4dc976db34aa7891819484c8676b5b2783123ebc6301e2ca5d655",
    ),
    "expat": Source(
        "expat-2.5.0.tar.gz",
        "6b902ab103843592be5e99504f846ec109c1abb692e85347587f237a4ffa1033",
        "expat_2.5.0.orig.tar.gz",
        "ab00ee05c7067fd10a35c5d2a4922ebba746ddd50ff83b79c828da17bbdf1757",
        # the project's tag archive (libexpat-R_2_5_0/): the library is in expat/
        repack_fix="cd expat",
    ),
    "openssl": Source(
        "openssl-3.0.22.tar.gz",
        "67ebca7e50d17383028045486653492195b83db95f8558709701bb47b5c1ef81",
        "openssl_3.0.22.orig.tar.gz",
        "67ebca7e50d17383028045486653492195b83db95f8558709701bb47b5c1ef81",
    ),
    "python": Source(
        "Python-3.11.2.tgz",
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
        "python3.11_3.11.2.orig.tar.gz",
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
    ),
}

# The nine-package compression and image stack of bench/bench_jobserver.py (issue 18): the
# rest of it is in SOURCES (zlib, xz, zstd, libpng) or Debian's copy is the release (bzip2,
# lz4); apart from SOURCES, so the base's lanes neither need nor check these files.
IMAGE_SOURCES = {
    "bzip2": Source(
        "bzip2-1.0.8.tar.gz",
        "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269",
        "bzip2_1.0.8.orig.tar.gz",
        "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269",
    ),
    "lz4": Source(
        "v1.9.4.tar.gz",
        "0b0e3aa07c8c063ddf40b082bdf7e37a1562bda40a0ff5272957f3e987e0e54b",
        "lz4_1.9.4.orig.tar.gz",
        "0b0e3aa07c8c063ddf40b082bdf7e37a1562bda40a0ff5272957f3e987e0e54b",
    ),
    "libjpeg-turbo": Source(
        "2.1.5.tar.gz",
        "254f3642b04e309fee775123133c6464181addc150499561020312ec61c1bf7c",
        "libjpeg-turbo_2.1.5.orig.tar.gz",
        "254f3642b04e309fee775123133c6464181addc150499561020312ec61c1bf7c",
    ),
    "tiff": Source(
        "tiff-4.5.0.tar.gz",
        "c7a1d9296649233979fa3eacffef3fa024d73d05d589cb622727b5b08c423464",
        # the project's git tag archive (libtiff-v4.5.0/, recompressed with bzip2): the same
        # sources without the generated configure script; the recipe builds with CMake
        "tiff_4.5.0.orig.tar.bz2",
        "638f43d7dea33948d5dee7f39572fc0194d9cc3c74195de9dd26a4388a1f880a",
    ),
    "file": Source(
        "file-5.44.tar.gz",
        "3751c7fba8dbc831cb8d7cc8aff21035459b8ce5155ef8b0880a27d028475f3b",
        "file_5.44.orig.tar.gz",
        "3751c7fba8dbc831cb8d7cc8aff21035459b8ce5155ef8b0880a27d028475f3b",
    ),
}


def seed_sources(pkgs: Path, upstream: Path, names: Iterable[str] = SOURCES) -> dict[str, str]:
    """Check the source of each recipe of `names` (all of SOURCES by default; those of
    PYTHON_SOURCES and IMAGE_SOURCES when named) and point the copies in `pkgs` at what this
    machine has: the release (Debian's identical orig tarball, or the release file itself in
    `upstream`), else Debian's repack. Returns name -> where its source came from."""
    used = {}
    for name in names:
        src = SOURCES.get(name) or PYTHON_SOURCES.get(name) or IMAGE_SOURCES[name]
        recipe = pkgs / f"{name}.yaml"
        text = recipe.read_text()
        assert f"sha256: {src.sha256}" in text, f"{name}.yaml no longer names {src.release}"
        debian = upstream / src.debian
        release = upstream / src.release
        if not debian.is_file() and not release.is_file():
            raise FileNotFoundError(
                f"{debian} is missing: tests/tools/fetch-upstream-sources.sh {upstream} "
                "fetches Debian's orig tarballs (root: it enables deb-src in apt's sources)"
            )
        if src.debian_sha256 == src.sha256:
            assert sha256_file(debian) == src.sha256, f"{debian} is not the release {src.release}"
            used[name] = f"{src.debian} (the release, byte for byte)"
        elif release.is_file() and sha256_file(release) == src.sha256:
            used[name] = f"{src.release} (the release)"
        else:
            assert sha256_file(debian) == src.debian_sha256, f"{debian} is not Debian's repack"
            new, n = re.subn(
                r"  - url: \S+\n    sha256: [0-9a-f]{64}\n",
                f"  - url: file://{debian}\n    sha256: {src.debian_sha256}\n",
                text,
            )
            assert n == 1, text
            if src.repack_fix:
                assert "pre_configure:" not in new, f"{name}.yaml has a pre_configure now"
                new += f"pre_configure: |\n  {src.repack_fix}\n"
            recipe.write_text(new)
            used[name] = f"{src.debian} (Debian's repack, not byte-identical to {src.release})"
    return used


def upstream_folder(patterns: Iterable[str] | None = None) -> Path:
    """UPSTREAM, holding a file for each glob pattern of `patterns` (by default Debian's orig
    tarball of every recipe in SOURCES); fetched with apt (the fetch script enables deb-src
    in apt's sources) only when the run may change the host, else the test needing them
    fails or skips (conftest.need)."""
    wanted = list(patterns) if patterns is not None else [s.debian for s in SOURCES.values()]
    if not all(any(UPSTREAM.glob(w)) for w in wanted):
        need(HOST_SETUP, f"Debian orig tarballs in {UPSTREAM}")
        script = REPO / "tests" / "tools" / "fetch-upstream-sources.sh"
        r = subprocess.run(["bash", str(script), str(UPSTREAM)], capture_output=True, text=True)
        need(r.returncode == 0, f"Debian orig tarballs (fetch script said: {r.stderr[-300:]})")
    return UPSTREAM
