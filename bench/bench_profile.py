#!/usr/bin/env python3
"""Benchmark: a synthetic profile of 100 trivial packages.

Builds it once, then reports medians of `hit --version`, a no-op `hit build`, and a rebuild
after removing one package (a profile switch), each next to `python -c pass` on the same
interpreter in the same run. Usage: python bench/bench_profile.py [--packages 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"cli": 2.0, "noop": 3.0, "switch_s": 0.3}


def hit_exe() -> list[str]:
    """The installed console script next to this interpreter (no shims in the way)."""
    exe = Path(sys.executable).parent / "hit"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hdmodules.cli.hit"]


def make_stack(root: Path, n: int) -> Path:
    pkgs = root / "pkgs"
    for i in range(n):
        src = root / "src" / f"p{i:03d}"
        src.mkdir(parents=True)
        for j in range(3):
            (src / f"file{j}.txt").write_text(f"package {i} file {j}\n")
        dep = f"dependencies: [p{i - 1:03d}]\n" if i % 10 else ""
        pkgs.mkdir(exist_ok=True)
        (pkgs / f"p{i:03d}.yaml").write_text(
            f'version: "1.0"\nsources: [{{path: ../src/p{i:03d}}}]\n{dep}'
            f"build: |\n"
            f'  mkdir -p "$ARTIFACT/share/p{i:03d}" "$ARTIFACT/bin"\n'
            f'  cp file*.txt "$ARTIFACT/share/p{i:03d}/"\n'
            f"  printf '#!/bin/sh\\necho p{i:03d}\\n' > \"$ARTIFACT/bin/p{i:03d}\"\n"
            f'  chmod +x "$ARTIFACT/bin/p{i:03d}"\n'
        )
    profile = root / "default.yaml"
    write_profile(profile, [f"p{i:03d}" for i in range(n)])
    return profile


def write_profile(profile: Path, names: list[str]) -> None:
    profile.write_text("package_dirs: [pkgs]\npackages:\n" + "".join(f"  {p}:\n" for p in names))


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hit-bench-"))
    env = {**os.environ, "HIT_HOME": str(root / "home")}
    hit = hit_exe()
    names = [f"p{i:03d}" for i in range(args.packages)]
    try:
        profile = make_stack(root, args.packages)
        first = timed([*hit, "build", "-j", "2", "-q"], root, env)
        med = lambda xs: statistics.median(xs)  # noqa: E731
        py, cli, noop, switch = [], [], [], []
        for k in range(args.repeat):
            py.append(timed([sys.executable, "-c", "pass"], root, env))
            cli.append(timed([*hit, "--version"], root, env))
            noop.append(timed([*hit, "build", "-q"], root, env))
            write_profile(profile, names[:k] + names[k + 1 :])  # a profile never built before
            switch.append(timed([*hit, "build", "-q"], root, env))
            write_profile(profile, names)
            timed([*hit, "build", "-q"], root, env)  # back (instant: that profile exists)
        p = med(py)
        rows = [
            ("python -c pass", p, 1.0, None),
            ("hit --version", med(cli), med(cli) / p, f"<= {TARGETS['cli']}x"),
            ("no-op hit build", med(noop), med(noop) / p, f"<= {TARGETS['noop']}x"),
            ("rebuild after removing 1 package", med(switch), med(switch) / p, "<= 0.3 s"),
        ]
        print(
            f"{args.packages} packages, first build (-j2): {first:.1f} s; medians of {args.repeat}:"
        )
        print("| what | median | vs python -c pass | target |")
        print("|---|---|---|---|")
        for what, t, ratio, target in rows:
            print(f"| {what} | {t * 1000:.0f} ms | {ratio:.2f}x | {target or ''} |")
        ok = (
            med(cli) / p <= TARGETS["cli"]
            and med(noop) / p <= TARGETS["noop"]
            and med(switch) <= TARGETS["switch_s"]
        )
        print("all targets met" if ok else "some targets missed")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
