#!/usr/bin/env python3
"""Benchmark: a synthetic profile of trivial packages (100 by default).

Builds it once, then reports medians of `hit --version`, a no-op `hit build`, a rebuild
after removing one package (a profile switch) and the one putting it back (a switch to a
profile that exists), each next to `python -c pass` on the same interpreter, interleaved in
the same run. Issue 18's goals: a no-op within 2.5x of
`python -c pass` at 100 and at 5,000 packages, a switch within 0.3 s.
Usage: python bench/bench_profile.py [--packages 100] [--repeat 15] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, bench_env, console_script, medians, python_pass, table, timed  # noqa: E402

COMMAND = "python bench/bench_profile.py --packages {n}"


def make_stack(root: Path, n: int) -> Path:
    """`n` recipes in root/pkgs (chains of 10, each a path source of three files, a bin
    script and a share folder) and root/default.yaml listing them all; returns the YAML."""
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


def measure(n: int, repeat: int, keep: bool = False) -> tuple[list[Row], float]:
    """The rows for a profile of `n` packages (medians of `repeat`), and the first build's
    seconds (`-j 2`)."""
    root = Path(tempfile.mkdtemp(prefix="hit-bench-"))
    env = bench_env(root / "home")
    hit = console_script("hit")
    names = [f"p{i:03d}" for i in range(n)]
    switch_count = [0]
    backs: list[float] = []

    def switch() -> float:  # remove one package: a profile never built before
        k = switch_count[0] = switch_count[0] + 1
        write_profile(profile, names[:k] + names[k + 1 :])
        t = timed([*hit, "build", "-q"], root, env)
        write_profile(profile, names)
        backs.append(timed([*hit, "build", "-q"], root, env))  # back: that profile exists
        return t

    try:
        profile = make_stack(root, n)
        start = time.perf_counter()
        timed([*hit, "build", "-j", "2", "-q"], root, env)
        first = time.perf_counter() - start
        os.sync()  # the switches' commits flush the disk: not the first build's writes too
        m = medians(
            {
                "py": lambda: python_pass(root, env),
                "cli": lambda: timed([*hit, "--version"], root, env),
                "noop": lambda: timed([*hit, "build", "-q"], root, env),
                "switch": switch,
            },
            repeat,
        )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    py, cmd = m["py"], COMMAND.format(n=n)
    rows = [
        Row("`hit --version`", m["cli"], "python -c pass", py, "≤ 2×", max_ratio=2.0, command=cmd),
        Row(
            f"no-op `hit build`, {n:,} packages",
            m["noop"],
            "python -c pass",
            py,
            "≤ 2.5×",
            max_ratio=2.5,
            command=cmd,
        ),  # fmt: skip
        Row(
            f"switch after removing one of {n:,} packages",
            m["switch"],
            "python -c pass",
            py,
            "≤ 0.3 s",
            max_seconds=0.3,
            command=cmd,
        ),  # fmt: skip
        Row(
            f"switch back to all {n:,} packages (that profile exists)",
            statistics.median(backs),
            "python -c pass",
            py,
            command=cmd,
        ),  # fmt: skip
    ]
    return rows, first


def rows(quick: bool) -> list[Row]:
    """For bench/run.py: 100 packages (and 5,000 unless `quick`)."""
    out, _ = measure(100, 5 if quick else 15)
    if not quick:
        out += measure(5000, 5)[0][1:]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    out, first = measure(args.packages, args.repeat, args.keep)
    print(f"{args.packages} packages, first build (-j2): {first:.1f} s; medians of {args.repeat}:")
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
