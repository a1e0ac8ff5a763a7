#!/usr/bin/env python3
"""Benchmark: profile switches on a real profile (ncurses, zlib, xz, bzip2).

Builds the four packages of site-configs/pkgs once, from Debian's orig tarballs in
HDMOD_UPSTREAM (~/.cache/hdmodules/upstream; tests/tools/fetch-upstream-sources.sh fetches
them; zlib's is Debian's repack, so its recipe copy is pointed at it: tests/upstream_sources).
Then, each time next to `python -c pass` on the same interpreter in the same run: removing
one package from the YAML and rebuilding (a profile assembled anew: the one without it is
purged from the store after each run) -- ncurses (its 977 links leave the profile) and xz
(ncurses' stay) -- and putting it back (that profile exists: the link switches); the CPU
time of the removals too (wall time on a loaded 2-core machine is mostly waiting). Usage:
python bench/bench_switch.py [--repeat 9] [--dir DIR (kept, and reused when run again)]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.upstream_sources import UPSTREAM, seed_sources  # noqa: E402

PACKAGES = ["ncurses", "zlib", "xz", "bzip2"]
SEEDED = ["zlib", "xz"]  # the ones tests/upstream_sources knows (the others: the release)
TARGET_S = 0.3  # issue 18, goal 3


def hit_exe() -> list[str]:
    """`hit` of the hdmodules this interpreter imports (PYTHONPATH: a checkout being
    measured), not the console script of whichever one is installed."""
    return [sys.executable, "-m", "hdmodules.cli.hit"]


def write_profile(profile: Path, names: list[str]) -> None:
    profile.write_text(f"package_dirs: [pkgs]\npackages: [{', '.join(names)}]\n")


CPU: list[float] = []  # the CPU seconds (user + system) of each timed command, in order


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict, expect: str = "") -> float:
    """Seconds `cmd` took (its CPU seconds appended to CPU); it must succeed and say
    `expect`."""
    cpu = _children_cpu()
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    CPU.append(_children_cpu() - cpu)
    if r.returncode != 0 or expect not in r.stderr:
        sys.exit(f"{' '.join(cmd)} (exit {r.returncode}): no {expect!r} in:\n{r.stderr}")
    return took


def set_up(root: Path, env: dict, hit: list[str]) -> float:
    """The recipes, their sources and the first build (seconds), unless done already."""
    if (root / "default").is_symlink():
        return 0.0
    pkgs = root / "pkgs"
    pkgs.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        shutil.copy(REPO / "site-configs" / "pkgs" / f"{name}.yaml", pkgs)
    seed_sources(pkgs, UPSTREAM, SEEDED)
    write_profile(root / "default.yaml", PACKAGES)
    timed([*hit, "fetch", "--from", str(UPSTREAM)], root, env)
    return timed([*hit, "build", "-j", "2"], root, env, "assembled in")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--dir", type=Path, help="where to build (kept, reused when run again)")
    args = ap.parse_args()
    root = args.dir.absolute() if args.dir else Path(tempfile.mkdtemp(prefix="hit-bench-sw-"))
    env = {**os.environ, "HIT_HOME": str(root / "home")}
    hit = hit_exe()
    profile, link = root / "default.yaml", root / "default"
    try:
        first = set_up(root, env, hit)
        write_profile(profile, PACKAGES)
        timed([*hit, "build"], root, env)
        py: list[float] = []
        times: dict[str, tuple[list[float], list[float]]] = {"ncurses": ([], []), "xz": ([], [])}
        cpu: dict[str, list[float]] = {"python -c pass": [], "ncurses": [], "xz": []}
        for _ in range(args.repeat):
            for gone, (removed, readded) in times.items():
                py.append(timed([sys.executable, "-c", "pass"], root, env))
                cpu["python -c pass"].append(CPU[-1])
                write_profile(profile, [p for p in PACKAGES if p != gone])
                removed.append(timed([*hit, "build"], root, env, "assembled in"))
                cpu[gone].append(CPU[-1])
                smaller = f"profile/{Path(os.path.realpath(link)).name}"
                write_profile(profile, PACKAGES)
                readded.append(timed([*hit, "build"], root, env, "link switched"))
                timed([*hit, "purge", smaller], root, env)  # so that the next one assembles
        p = statistics.median(py)
        rows = [("python -c pass", p, "")]
        for gone, (removed, readded) in times.items():
            rows.append((f"remove {gone}, hit build (a profile assembled)", removed, "<= 0.3 s"))
            rows.append((f"put {gone} back, hit build (the link switches)", readded, ""))
        built = f"first build (-j 2): {first:.0f} s; " if first else ""
        print(f"{' + '.join(PACKAGES)}: {built}medians of {args.repeat}:")
        print("| what | median | vs python -c pass | target |")
        print("|---|---|---|---|")
        ok = True
        for what, ts, target in rows:
            t = statistics.median(ts) if isinstance(ts, list) else ts
            ok = ok and (not target or t <= TARGET_S)
            print(f"| {what} | {t * 1000:.0f} ms | {t / p:.1f}x | {target} |")
        cpus = ", ".join(f"{k} {statistics.median(v) * 1000:.0f} ms" for k, v in cpu.items())
        print(f"CPU time (user + system; steadier than wall time on a busy machine): {cpus}")
        print("all targets met" if ok else "some targets missed")
        return 0
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
