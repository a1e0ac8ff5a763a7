#!/usr/bin/env bash
# Download the Python package files that site-configs/pkgs/py-*.yaml pin (their `pypi:`
# sources) with pip, and check each against its sha256. One file per recipe: the wheel, or
# the sdist where the recipe builds from source (py-markupsafe, py-numpy). Also numpy's
# binary wheel for CPython 3.11 on manylinux2014 x86-64, which no recipe names (a test uses
# it). Each is pip's own download: --no-deps, --only-binary :all: for a wheel (for Cython
# with --platform any, so the pure-Python py2.py3-none-any wheel, not a compiled one),
# --no-binary NAME for an sdist. A file already there with the right sha256 is not
# downloaded again (an sdist's download runs its build backend for the metadata: numpy's
# runs Meson, minutes, and needs a C/C++ compiler and ninja).
# Usage: fetch-python-sources.sh   (into ${HDMOD_PYPI:-$HOME/.cache/hdmodules/pypi})
# Exits non-zero when a download fails or a file's sha256 differs from the one below.
set -euo pipefail
dir=${HDMOD_PYPI:-$HOME/.cache/hdmodules/pypi}
mkdir -p "$dir"
cd "$dir"

# file, sha256, pip download arguments (besides --no-deps -d DIR)
files=(
  "setuptools-69.5.1-py3-none-any.whl c636ac361bc47580504644275c9ad802c50415c7522212252c033bd15f301f32 --only-binary :all: setuptools==69.5.1"
  "wheel-0.43.0-py3-none-any.whl 55c570405f142630c6b9f72fe09d9b67cf1477fcf543ae5b8dcb1f5b7377da81 --only-binary :all: wheel==0.43.0"
  "flit_core-3.9.0-py3-none-any.whl 7aada352fb0c7f5538c4fafeddf314d3a6a92ee8e2b1de70482329e42de70301 --only-binary :all: flit-core==3.9.0"
  "packaging-24.0-py3-none-any.whl 2ddfb553fdf02fb784c234c7ba6ccc288296ceabec964ad2eae3777778130bc5 --only-binary :all: packaging==24.0"
  "pyproject_metadata-0.7.1-py3-none-any.whl 28691fbb36266a819ec56c9fa1ecaf36f879d6944dfde5411e87fc4ff793aa60 --only-binary :all: pyproject-metadata==0.7.1"
  "meson-1.4.0-py3-none-any.whl 476a458d51fcfa322a6bdc64da5138997c542d08e6b2e49b9fa68c46fd7c4475 --only-binary :all: meson==1.4.0"
  "meson_python-0.15.0-py3-none-any.whl 3ae38253ff02b2e947a05e362a2eaf5a9a09d133c5666b4123399ee5fbf2e591 --only-binary :all: meson-python==0.15.0"
  "Cython-3.0.10-py2.py3-none-any.whl fcbb679c0b43514d591577fd0d20021c55c240ca9ccafbdb82d3fb95e5edfee2 --only-binary :all: --platform any --python-version 3.11 cython==3.0.10"
  "MarkupSafe-2.1.5.tar.gz d283d37a890ba4c1ae73ffadf8046435c76e7bc2247bbb63c00bd1a709c6544b --no-binary markupsafe markupsafe==2.1.5"
  "jinja2-3.1.4-py3-none-any.whl bc5dd2abb727a5319567b7a813e6a2e7318c39f4f487cfe6c89c6f9c7d25197d --only-binary :all: jinja2==3.1.4"
  "pygments-2.18.0-py3-none-any.whl b8e6aca0523f3ab76fee51799c488e38782ac06eafcf95e7ba832985c8e7b13a --only-binary :all: pygments==2.18.0"
  "numpy-1.26.4.tar.gz 2a02aba9ed12e4ac4eb3ea9421c420301a0c6460d9830d74a9df87efa4912010 --no-binary numpy numpy==1.26.4"
  "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl 666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5 --only-binary :all: --python-version 3.11 --platform manylinux2014_x86_64 numpy==1.26.4"
)

sums=()
for entry in "${files[@]}"; do
  read -r file sha args <<<"$entry"
  sums+=("$sha  $file")
  if [ -f "$file" ] && echo "$sha  $file" | sha256sum -c --quiet - >/dev/null 2>&1; then
    continue
  fi
  # word splitting of $args is wanted (no argument has a space); :all: is no glob
  # shellcheck disable=SC2086
  pip download --no-deps -d "$dir" $args
done
printf '%s\n' "${sums[@]}" | sha256sum -c -
