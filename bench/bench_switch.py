#!/usr/bin/env python3
"""Benchmark: profile switches on a real profile (ncurses, zlib, xz, bzip2; issue 18 goal 3).

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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Row, bench_env, console_script, table  # noqa: E402

from tests.upstream_sources import UPSTREAM, seed_sources  # noqa: E402

PACKAGES = ["ncurses", "zlib", "xz", "bzip2"]
SEEDED = ["zlib", "xz"]  # the ones tests/upstream_sources knows (the others: the release)
REMOVED = ["ncurses", "xz"]
TARGET_S = 0.3  # issue 18, goal 3
COMMAND = "python bench/bench_switch.py"


def write_profile(profile: Path, names: list[str]) -> None:
    profile.write_text(f"package_dirs: [pkgs]\npackages: [{', '.join(names)}]\n")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict, expect: str = "") -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of `cmd`, which must succeed and say
    `expect`."""
    cpu = _children_cpu()
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if r.returncode != 0 or expect not in r.stderr:
        sys.exit(f"{' '.join(cmd)} (exit {r.returncode}): no {expect!r} in:\n{r.stderr}")
    return took, _children_cpu() - cpu


def set_up(root: Path, env: dict, hit: list[str]) -> float:
    """The recipes, their sources and the first build (seconds), unless done already."""
    if (root / "default").is_symlink():
        return 0.0
    pkgs = root / "pkgs"
    pkgs.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        shutil.copy(HERE.parent / "site-configs" / "pkgs" / f"{name}.yaml", pkgs)
    seed_sources(pkgs, UPSTREAM, SEEDED)
    write_profile(root / "default.yaml", PACKAGES)
    timed([*hit, "fetch", "--from", str(UPSTREAM)], root, env)
    return timed([*hit, "build", "-j", "2"], root, env, "assembled in")[0]


def measure(repeat: int, folder: Path | None = None) -> tuple[list[Row], dict[str, float], float]:
    """Rows (medians of `repeat`), the median CPU seconds of each removal and of the anchor,
    and the first build's seconds (0 when `folder` held it already). The build folder is
    `folder` (kept), else a temporary one."""
    root = folder.absolute() if folder else Path(tempfile.mkdtemp(prefix="hit-bench-sw-"))
    env = bench_env(root / "home")
    hit = console_script("hit")
    profile, link = root / "default.yaml", root / "default"
    py: list[float] = []
    wall: dict[str, list[float]] = {f"{w} {g}": [] for g in REMOVED for w in ("remove", "back")}
    cpu: dict[str, list[float]] = {"python -c pass": [], **{g: [] for g in REMOVED}}
    try:
        first = set_up(root, env, hit)
        write_profile(profile, PACKAGES)
        timed([*hit, "build"], root, env)
        for _ in range(repeat):
            for gone in REMOVED:
                took, used = timed([sys.executable, "-c", "pass"], root, env)
                py.append(took)
                cpu["python -c pass"].append(used)
                write_profile(profile, [p for p in PACKAGES if p != gone])
                took, used = timed([*hit, "build"], root, env, "assembled in")
                wall[f"remove {gone}"].append(took)
                cpu[gone].append(used)
                smaller = f"profile/{Path(os.path.realpath(link)).name}"
                write_profile(profile, PACKAGES)
                wall[f"back {gone}"].append(timed([*hit, "build"], root, env, "link switched")[0])
                timed([*hit, "purge", smaller], root, env)  # so that the next one assembles
    finally:
        if folder is None:
            shutil.rmtree(root, ignore_errors=True)
    p = statistics.median(py)
    rows = []
    for gone in REMOVED:
        what = f"real profile ({' + '.join(PACKAGES)}): remove {gone}, hit build"
        rows.append(
            Row(
                what,
                statistics.median(wall[f"remove {gone}"]),
                "python -c pass",
                p,
                "≤ 0.3 s",
                max_seconds=TARGET_S,
                command=COMMAND,
            )  # fmt: skip
        )
        what = f"real profile: put {gone} back (the link switches to the profile that exists)"
        rows.append(Row(what, statistics.median(wall[f"back {gone}"]), "python -c pass", p))
    return rows, {k: statistics.median(v) for k, v in cpu.items()}, first


def rows(quick: bool) -> list[Row]:
    """For bench/run.py: the full run only (it needs Debian's tarballs and builds ncurses)."""
    return [] if quick else measure(5)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--dir", type=Path, help="where to build (kept, reused when run again)")
    args = ap.parse_args()
    out, cpu, first = measure(args.repeat, args.dir)
    built = f"first build (-j 2): {first:.0f} s; " if first else ""
    print(f"{' + '.join(PACKAGES)}: {built}medians of {args.repeat}:")
    print(table(out))
    cpus = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in cpu.items())
    print(f"CPU time of the removals (user + system; steadier on a busy machine): {cpus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
