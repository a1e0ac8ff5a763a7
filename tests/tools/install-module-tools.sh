#!/usr/bin/env bash
# Install the two real module tools side by side for the tests:
#   - Lmod, with apt (init: /usr/share/lmod/lmod/init/bash);
#   - Environment Modules (Tcl), extracted from Debian's .deb into PREFIX (init:
#     PREFIX/usr/share/modules/init/bash). The two Debian packages declare a conflict
#     with each other but share no files, so the second one is unpacked, not installed.
# The hard-coded /usr/share/modules, /usr/lib/x86_64-linux-gnu and /etc/environment-modules
# in its text files and symlinks are rewritten to point into PREFIX, and its default
# modulepaths are switched off so that, like Lmod's bare init, it starts with an empty
# MODULEPATH. Idempotent: a quick no-op when both tools already work. Needs root.
# Usage: install-module-tools.sh [PREFIX]   (default /opt/envmod)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

prefix=$(realpath -m "${1:-/opt/envmod}")
lmod_init=/usr/share/lmod/lmod/init/bash
envmod_init=$prefix/usr/share/modules/init/bash

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Print `module --version` of the tool whose bash init is $1, from a clean shell.
tool_version() {
  [ -f "$1" ] || return 1
  env -i HOME="$work" PATH=/usr/bin:/bin bash --noprofile --norc -c \
    'source "$1" && module --version' _ "$1" 2>&1
}

# Print both versions; fail if either tool does not work.
report() {
  local init out status=0
  for init in "$lmod_init" "$envmod_init"; do
    if out=$(tool_version "$init"); then
      grep -m1 -e Version -e Release <<<"$out"
    else
      printf 'FAILED: module --version with %s\n%s\n' "$init" "$out" >&2
      status=1
    fi
  done
  return $status
}

if tool_version "$lmod_init" >/dev/null && tool_version "$envmod_init" >/dev/null; then
  report
  exit 0
fi

case $prefix in
  / | /usr | /usr/* | /etc | /etc/* | /bin* | /lib* | /sbin* | /var | /home | /root | /tmp)
    echo "refusing PREFIX $prefix" >&2
    exit 2 ;;
esac
# Only ever replace an empty directory or an earlier extraction.
if [ -n "$(ls -A "$prefix" 2>/dev/null)" ] && [ ! -d "$prefix/usr/share/modules" ]; then
  echo "refusing PREFIX $prefix: not empty and not an Environment Modules tree" >&2
  exit 2
fi

apt_updated=no
apt_update() {
  if [ "$apt_updated" = no ]; then
    apt-get update -qq
    apt_updated=yes
  fi
}
# Empty package lists: nothing can be found before an update.
compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt_update
# Run an apt-get command; on failure, update the lists once and retry.
apt_retry() {
  "$@" || { apt_update && "$@"; }
}

if ! tool_version "$lmod_init" >/dev/null; then
  apt_retry apt-get install -y -qq --no-install-recommends lmod tcl8.6 >/dev/null
fi

if ! tool_version "$envmod_init" >/dev/null; then
  # -o APT::Sandbox::User=root: the download dir is root's private temp dir.
  cd "$work"
  apt_retry apt-get download -qq -o APT::Sandbox::User=root environment-modules
  deb=$(echo "$work"/environment-modules_*.deb)
  # Depends, e.g. "tcl8.6, libc6 (>= 2.34), less, procps, python3": first of each alternative.
  mapfile -t deps < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
    sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$')
  apt_retry apt-get install -y -qq --no-install-recommends "${deps[@]}" >/dev/null

  stage=$work/root
  dpkg-deb -x "$deb" "$stage"
  # One pass over each text file, so a rewritten path is never rewritten again.
  grep -rIlZ -e /usr/share/modules -e /usr/lib/x86_64-linux-gnu -e /etc/environment-modules \
    "$stage" | P="$prefix" xargs -0 -r perl -pi -e \
    's#(/usr/share/modules|/usr/lib/x86_64-linux-gnu|/etc/environment-modules)#$ENV{P}$1#g'
  # Absolute symlinks into those directories (init/.modulespath, csh login hook).
  find "$stage" -type l -print0 | while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    case $target in
      /usr/share/modules* | /usr/lib/x86_64-linux-gnu* | /etc/environment-modules*)
        ln -sfn "$prefix$target" "$link" ;;
    esac
  done
  # No default modulepaths (the package's own dot, null, module-info... modulefiles).
  sed -i -e 's|^\([^#[:space:]]\)|# \1|' "$stage/etc/environment-modules/modulespath"
  sed -i -e 's|^module use|# module use|' "$stage/etc/environment-modules/initrc"

  mkdir -p "$(dirname "$prefix")"
  rm -rf "$prefix"
  cp -a "$stage" "$prefix"
fi

report
