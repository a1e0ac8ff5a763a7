#!/usr/bin/env python3
"""Benchmark: a synthetic DAG of 500 trivial artifacts built through the local Slurm cluster
(slurm/start-cluster.sh), with and without --pack. Reports the submission time (target
<= 10 s) and the wall time until the profile is linked.

Usage: python bench/bench_slurm.py [--packages 500] [--pack 50]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_profile import make_stack  # noqa: E402


def run(profile: Path, home: Path, pack: int | None) -> tuple[float, float, int]:
    env = {**os.environ, "HIT_HOME": str(home)}
    cmd = [sys.executable, "-m", "hdmodules.cli.hit", "build", "--slurm", str(profile)]
    if pack:
        cmd += ["--pack", str(pack)]
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    submitted = time.perf_counter() - start
    final = re.search(r"job (\d+) assembles the result", r.stderr).group(1)
    jobs = int(re.search(r"submitted (\d+) job", r.stderr).group(1))
    while True:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", final, "-o", "%T"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        if out in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            break
        time.sleep(1)
    assert out == "COMPLETED", out
    assert (profile.parent / "default").is_symlink()
    return submitted, time.perf_counter() - start, jobs + 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=500)
    ap.add_argument("--pack", type=int, default=50)
    args = ap.parse_args()
    if not shutil.which("sbatch"):
        print("no sbatch here: start slurm/start-cluster.sh first")
        return 1
    rows = []
    for pack in (args.pack, None):
        root = Path(tempfile.mkdtemp(prefix="hd-bench-slurm-"))
        try:
            profile = make_stack(root, args.packages)
            sub, wall, jobs = run(profile, root / "home", pack)
            rows.append((f"--pack {pack}" if pack else "one job per artifact", jobs, sub, wall))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{args.packages} trivial artifacts through the local one-node Slurm (2 CPUs):")
    print("| mode | jobs | submission | wall time to the linked profile | target |")
    print("|---|---|---|---|---|")
    for mode, jobs, sub, wall in rows:
        print(f"| {mode} | {jobs} | {sub:.1f} s | {wall:.0f} s | submission <= 10 s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
