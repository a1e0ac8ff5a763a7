#!/usr/bin/env bash
# Download the upstream release tarballs of site-configs/pkgs without internet access to the
# upstream sites: Debian's "orig" tarballs of these versions are byte-identical to the
# releases, and Debian's archive is reachable. Needs root (it enables deb-src in apt).
# One exception: Debian repacks HDF5 (hdf5_1.10.8+repack1.orig.tar.gz, sha256 7b38e58f...,
# top folder hdf5-1.10.8+repack1), so its bytes differ from the release hdf5-1.10.8.tar.gz
# (sha256 d341b80d..., what site-configs/pkgs/hdf5.yaml names); tests/test_scientist_real.py
# builds hdf5 from the repack when the release is not in DIR, and says so.
# The curated base (tests/test_base_real.py): xz-utils, m4 and libpng1.6 are the releases
# byte for byte; zlib, libzstd, gsl, openblas and netcdf-fortran are Debian repacks (each
# recipe says what was removed). OpenBLAS's repack lacks the bundled LAPACK: the release
# OpenBLAS-0.3.21.tar.gz, put in DIR by hand, is used when it is there.
# CPython 3.11 and its libraries (issue 17): python3.11's and openssl's are taken for the
# releases (not yet checked against the projects' published sha256: no internet here); sqlite3 is the project's full source tree (not the autoconf release tarball) and
# expat the project's tag archive (not the release tarball), each built as it is.
# The image stack of bench/bench_jobserver.py (issue 18): libjpeg-turbo's and file's are the
# releases byte for byte; tiff's (tiff_4.5.0.orig.tar.bz2, sha256 638f43d7..., top folder
# libtiff-v4.5.0) is the project's git tag archive, not the release tiff-4.5.0.tar.gz
# (sha256 c7a1d929...): no generated configure script; the recipe builds with CMake, so
# tests/upstream_sources.py points a copy of it at the repack.
# Usage: fetch-upstream-sources.sh DIR   (then: hit fetch --from DIR)
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cd "$dir"
sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ] && ! grep -q '^Types:.*deb-src' "$sources"; then
  sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
  apt-get update -qq
elif ! apt-cache showsrc bzip2 >/dev/null 2>&1 || [ -z "$(apt-cache showsrc bzip2 2>/dev/null)" ]; then
  apt-get update -qq
fi
have() { ls "$dir"/"$1"_*.orig.tar.* >/dev/null 2>&1; }
for pkg in bzip2 lz4 libffi ncurses readline fftw3 hdf5 netcdf \
    zlib xz-utils libzstd m4 libpng1.6 gsl openblas netcdf-fortran \
    sqlite3 expat openssl python3.11 libjpeg-turbo tiff file; do
  have "$pkg" && continue
  # The newest version first; a security update whose Debian files the archive no longer
  # serves fails the whole download, so then each older version apt knows, until the orig
  # tarball (shared by all revisions of one upstream version) is here.
  apt-get source --download-only -qq "$pkg" || true
  for v in $(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p'); do
    have "$pkg" && break
    apt-get source --download-only -qq "$pkg=$v" || true
  done
  have "$pkg" || { echo "no orig tarball of $pkg" >&2; exit 1; }
done
ls "$dir"/*.orig.tar.*
