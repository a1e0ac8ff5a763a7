#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine, as root: compilers (a second gcc),
# two MPIs, git, the build systems' tools (cmake, meson, ninja, pkg-config, and pip and
# setuptools for the host python that the python build system's test wraps), the real module
# tools (Lmod + Environment Modules side by side) and the Slurm packages (started later, per
# test session, by tests/slurm_cluster.py).
# Idempotent: a quick no-op when everything is there. Run by the test session itself when
# HDMOD_TEST_SETUP=1 or CI=true (see tests/conftest.py), never by a bare `python -m pytest`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-host.sh: must run as root (installs packages with apt)" >&2
    exit 1
fi
packages=(build-essential binutils git patch ca-certificates gcc-11 g++-11 gfortran-11 gfortran
          libopenmpi-dev openmpi-bin libmpich-dev mpich util-linux passwd cmake pkg-config
          meson ninja-build python3-pip python3-dev python3-setuptools python3-wheel python3-venv)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash "$HERE/install-module-tools.sh" "${HDMOD_ENVMOD_PREFIX:-/opt/envmod}"
