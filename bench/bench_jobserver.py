#!/usr/bin/env python3
"""Benchmark: `-j N` is a CPU budget. The real nine-package stack (zlib, bzip2, xz, lz4, zstd,
libpng, libjpeg-turbo, tiff, file) built with `hit build -j N` into a fresh store, beside the
same builds run as a hand-written Makefile DAG with `make -jN` (the anchor: each package a
target that unpacks its tarball and runs its configure/make/make install with $(MAKE), so
every make joins the top make's jobserver), interleaved, in one run.

Prints the wall-clock ratio hit / anchor (goal <= 1.1) and, for each side, the most compiler
processes seen at once (goal <= N), sampled from /proc every ~20 ms: cc1, cc1plus, as and ld
(collect2 only waits for its ld, so a link counts once).

The sources are Debian's orig tarballs (tests/tools/fetch-upstream-sources.sh puts them in
$HDMOD_UPSTREAM, default ~/.cache/hdmodules/upstream), seeded with `hit fetch --from`; tiff's
is the project's tag archive (tests/upstream_sources.py). Usage:
    python bench/bench_jobserver.py [-j 2] [--repeat 1] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.upstream_sources import IMAGE_SOURCES, SOURCES, UPSTREAM, seed_sources  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from common import Row, code  # noqa: E402

GOAL_RATIO = 1.1
STACK = ["zlib", "bzip2", "xz", "lz4", "zstd", "libpng", "libjpeg-turbo", "tiff", "file"]
COMPILERS = {"cc1", "cc1plus", "as", "ld", "ld.bfd", "ld.gold"}
SAMPLE_EVERY = 0.02  # seconds

# The anchor: what each recipe runs, by hand, into one prefix $(P). `cmake` and `make` are
# the recipes' build systems (templates/build_systems), written out.
CMAKE = (
    'cmake -S . -B _build -G "Unix Makefiles" -DCMAKE_INSTALL_PREFIX=$(P) '
    "-DCMAKE_INSTALL_LIBDIR:PATH=lib -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$(P) "
    "-DCMAKE_INSTALL_RPATH=$(P)/lib -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON {args} && "
    "$(MAKE) -C _build && MAKEFLAGS= $(MAKE) -C _build install"
)
AUTOTOOLS = "./configure --prefix=$(P) {args} && $(MAKE) && MAKEFLAGS= $(MAKE) install"
BUILDS = {
    "zlib": ([], AUTOTOOLS.format(args="")),
    "bzip2": (
        [],
        "$(MAKE) -f Makefile-libbz2_so CC=cc && $(MAKE) clean && "
        '$(MAKE) CC=cc LDFLAGS="$$LDFLAGS" && MAKEFLAGS= $(MAKE) install PREFIX=$(P) && '
        "cp -f libbz2.so.1.0.8 $(P)/lib/ && ln -sf libbz2.so.1.0.8 $(P)/lib/libbz2.so.1.0 && "
        "ln -sf libbz2.so.1.0 $(P)/lib/libbz2.so.1 && ln -sf libbz2.so.1.0 $(P)/lib/libbz2.so",
    ),
    "xz": ([], AUTOTOOLS.format(args="--disable-static --disable-doc")),
    "lz4": ([], "$(MAKE) PREFIX=$(P) && MAKEFLAGS= $(MAKE) install PREFIX=$(P)"),
    "zstd": (
        ["zlib", "xz", "lz4"],
        "$(MAKE) PREFIX=$(P) HAVE_ZLIB=1 HAVE_LZMA=1 HAVE_LZ4=1 && "
        "MAKEFLAGS= $(MAKE) install PREFIX=$(P) HAVE_ZLIB=1 HAVE_LZMA=1 HAVE_LZ4=1",
    ),
    "libpng": (["zlib"], AUTOTOOLS.format(args="--disable-static")),
    "libjpeg-turbo": ([], CMAKE.format(args="-DWITH_SIMD=OFF -DENABLE_STATIC=OFF")),
    "tiff": (
        ["zlib", "libjpeg-turbo", "xz", "zstd"],
        CMAKE.format(
            args="-Dzlib=ON -Djpeg=ON -Dlzma=ON -Dzstd=ON -Dwebp=OFF -Dlerc=OFF -Djbig=OFF "
            "-Dlibdeflate=OFF -Dcxx=OFF -Dtiff-opengl=OFF -Dtiff-tests=OFF -Dtiff-contrib=OFF "
            "-Dtiff-docs=OFF -Dsphinx=OFF"
        ),
    ),
    "file": (
        ["zlib", "bzip2", "xz", "zstd"],
        AUTOTOOLS.format(
            args="--disable-static --enable-zlib --enable-bzlib --enable-xzlib "
            "--enable-zstdlib --disable-lzlib --disable-libseccomp"
        ),
    ),
}


def hit_cmd() -> list[str]:
    """The measured checkout's `hit` (PYTHONPATH is set to common.code() in `env`)."""
    return [sys.executable, "-m", "hdmodules.cli.hit"]


class Sampler:
    """Counts the compiler processes descended from process `root` (other work on the
    machine is not counted) in /proc every SAMPLE_EVERY seconds, until stopped; `most` is
    the largest count seen."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """Stop sampling; returns `most`."""
        self._stop.set()
        self._thread.join()
        return self.most

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            parent, compilers = {}, []
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                name, _, rest = stat.partition("(")[2].rpartition(")")
                parent[int(entry)] = int(rest.split()[1])
                if name in COMPILERS:
                    compilers.append(int(entry))
            self.most = max(self.most, sum(self._under_root(p, parent) for p in compilers))

    def _under_root(self, pid: int, parent: dict[int, int]) -> bool:
        while pid > 1:
            if pid == self.root:
                return True
            pid = parent.get(pid, 0)
        return False


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    """Run `cmd`: (seconds, most compilers at once under it, its stderr); exits on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    sampler = Sampler(proc.pid)
    _out, err = proc.communicate()
    seconds = time.perf_counter() - start
    most = sampler.stop()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return seconds, most, err


def anchor_makefile(root: Path, tarballs: dict[str, Path]) -> Path:
    """The hand-written Makefile DAG: a target per package, after its dependencies."""
    prefix = root / "prefix"
    lines = [
        f"P = {prefix}",
        f"export CPPFLAGS = -I{prefix}/include",
        f"export LDFLAGS = -L{prefix}/lib -Wl,-rpath,{prefix}/lib",
        f"export PKG_CONFIG_PATH = {prefix}/lib/pkgconfig",
        f"export PATH := {prefix}/bin:/usr/bin:/bin",
        f"all: {' '.join(STACK)}",
    ]
    for name in STACK:
        deps, build = BUILDS[name]
        src = root / "src" / name
        lines += [
            f"{name}: {' '.join(deps)}",
            f"\trm -rf {src} && mkdir -p {src} && tar xf {tarballs[name]} -C {src} "
            f"--strip-components=1",
            f"\t(cd {src} && {build}) > {root}/{name}.log 2>&1",
        ]
    makefile = root / "Makefile"
    makefile.write_text("\n".join(lines) + "\n.PHONY: all " + " ".join(STACK) + "\n")
    return makefile


def remove(path: Path) -> None:
    """Remove a folder, read-only artifacts of a store included."""
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


def run_anchor(work: Path, tarballs: dict[str, Path], jobs: int) -> tuple[float, int]:
    """One anchor build into a fresh folder: (seconds, most compilers at once)."""
    remove(work)
    work.mkdir(parents=True)
    makefile = anchor_makefile(work, tarballs)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C", "LC_ALL": "C"}
    seconds, most, _err = timed(["make", f"-j{jobs}", "-f", str(makefile)], env, work)
    return seconds, most


def run_hit_build(root: Path, k: int, profile: Path, cache: Path, jobs: int) -> tuple[float, int]:
    """One `hit build -j jobs` into a fresh store sharing the seeded source cache."""
    home = root / f"home{k}"
    remove(home)
    home.mkdir()
    (home / "config.yaml").write_text(f"source_cache: {cache}\njobs: {jobs}\n")
    env = {**os.environ, "HIT_HOME": str(home), "PYTHONPATH": str(code())}
    cmd = [*hit_cmd(), "build", "-j", str(jobs), str(profile)]
    seconds, most, _err = timed(cmd, env, root)
    remove(home)
    return seconds, most


def prepare(root: Path, upstream: Path) -> tuple[Path, Path, dict[str, Path]]:
    """The recipes (sources pointed at what this machine has), the profile, a source cache
    seeded from `upstream`, and each package's tarball for the anchor."""
    shutil.copytree(REPO / "site-configs" / "pkgs", root / "pkgs")
    seeded = seed_sources(root / "pkgs", upstream, names=STACK)
    for name, what in seeded.items():
        print(f"  {name}: {what}")
    profile = root / "stack.yaml"
    profile.write_text("package_dirs: [pkgs]\npackages: [" + ", ".join(STACK) + "]\n")
    cache = root / "cache"
    seed = root / "seedhome"
    seed.mkdir()
    (seed / "config.yaml").write_text(f"source_cache: {cache}\n")
    env = {**os.environ, "HIT_HOME": str(seed), "PYTHONPATH": str(REPO)}
    subprocess.run([*hit_cmd(), "fetch", "--from", str(upstream)], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    sources = {**SOURCES, **IMAGE_SOURCES}
    tarballs = {name: upstream / sources[name].debian for name in STACK}
    return profile, cache, tarballs


def measure(jobs: int, repeat: int, keep: bool = False) -> dict[str, float]:
    """Interleaved rounds of `hit build -j jobs` and the Makefile DAG with `make -jjobs`:
    medians of their wall seconds ("hit", "anchor") and the most compilers either ran at once
    ("hit_cc", "anchor_cc")."""
    root = Path(tempfile.mkdtemp(prefix="hit-bench-jobserver-"))
    try:
        print(f"sources (from {UPSTREAM}):")
        profile, cache, tarballs = prepare(root, UPSTREAM)
        anchor, hit, anchor_cc, hit_cc = [], [], [], []
        for k in range(repeat):  # interleaved: hit first (its failure shows soonest)
            seconds, most = run_hit_build(root, k, profile, cache, jobs)
            hit.append(seconds)
            hit_cc.append(most)
            seconds, most = run_anchor(root / "anchor", tarballs, jobs)
            anchor.append(seconds)
            anchor_cc.append(most)
            print(f"round {k + 1}: make -j{jobs} {anchor[-1]:.1f} s ({anchor_cc[-1]} "
                  f"compilers at most), hit build -j {jobs} {hit[-1]:.1f} s "
                  f"({hit_cc[-1]} at most)")  # fmt: skip
        return {
            "hit": statistics.median(hit),
            "anchor": statistics.median(anchor),
            "hit_cc": max(hit_cc),
            "anchor_cc": max(anchor_cc),
        }
    finally:
        if keep:
            print(f"kept {root}")
        else:
            remove(root)


def rows(quick: bool) -> list[Row]:
    """For bench/run.py: nothing when `quick` (real builds of minutes); else one round of
    `-j 2`."""
    if quick:
        return []
    m = measure(2, 1)
    cmd = "python bench/bench_jobserver.py -j 2"
    return [
        Row("nine real packages, `hit build -j 2`", m["hit"], "the same builds as a Makefile "
            "DAG, `make -j2`", m["anchor"], f"≤ {GOAL_RATIO}×", max_ratio=GOAL_RATIO, command=cmd),
        Row("most compilers at once under `hit build -j 2`", m["hit_cc"], "N", 2, "≤ N",
            max_ratio=1.0, command=cmd, unit=""),
    ]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    m = measure(args.jobs, args.repeat, args.keep)
    a, h, n = m["anchor"], m["hit"], args.jobs
    ratio = h / a
    print(f"\n{'':<34}{'anchor':>10}{'hit':>10}{'ratio':>8}  goal")
    print(f"{'nine packages, wall (median, s)':<34}{a:>10.1f}{h:>10.1f}{ratio:>8.2f}  "
          f"<= {GOAL_RATIO}")  # fmt: skip
    print(f"{'most compilers at once':<34}{m['anchor_cc']:>10}{m['hit_cc']:>10}{'':>8}  "
          f"<= {n}")  # fmt: skip
    ok = ratio <= GOAL_RATIO and m["hit_cc"] <= n
    print("goals met" if ok else "goal missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
