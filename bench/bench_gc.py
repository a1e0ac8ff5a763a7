#!/usr/bin/env python3
"""Benchmark: `hit gc` on a store of 1,000 artifacts of which 900 are dead, and
`hit gc --list` on 100 roots.

The store is synthesised (artifact folders with a build spec, a manifest and a few files,
as `hit build` leaves them) so the figure is the collector's, not the compiler's. Reports
the mark (finding what is dead, per dead artifact) and the sweep (moving out and removing
files) separately. Usage: python bench/bench_gc.py [--artifacts 1000] [--dead 900]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdmodules.store.gc import collect  # noqa: E402
from hdmodules.store.layout import Store  # noqa: E402
from hdmodules.store.roots import register  # noqa: E402


def make_store(root: Path, n: int, dead: int, roots: int) -> None:
    """n artifacts in chains of 10 (each depends on the one before); the first n - dead are
    reached from `roots` profiles."""
    store = root / "bld"
    ids = []
    for i in range(n):
        h = f"{i:032d}"
        prefix = store / f"p{i:04d}" / f"1.0-{h[:12]}"
        (prefix / ".hit").mkdir(parents=True)
        (prefix / "share").mkdir()
        for j in range(5):
            (prefix / "share" / f"f{j}").write_text(f"{i} {j}\n")
        deps = {f"p{i - 1:04d}": ids[-1]} if i % 10 else {}
        aid = f"p{i:04d}/{h}"
        (prefix / ".hit" / "build.json").write_text(json.dumps({"id": aid, "dependencies": deps}))
        (prefix / ".hit" / "manifest.json").write_text("{}")
        ids.append(aid)
    live = ids[: n - dead]
    per = max(1, len(live) // roots)
    for r in range(roots):
        h = f"{r:012d}" + "a" * 20
        prefix = store / "profile" / h[:12]
        (prefix / ".hit").mkdir(parents=True)
        chunk = live[r * per : (r + 1) * per] or live[-1:]
        spec = {"id": f"profile/{h}", "artifacts": {a.split("/")[0]: a for a in chunk}}
        (prefix / ".hit" / "build.json").write_text(json.dumps(spec))
        (prefix / ".hit" / "manifest.json").write_text("{}")
        link = root / "links" / f"p{r}"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(prefix)
        register(root / "gcroots", link, prefix)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=int, default=1000)
    ap.add_argument("--dead", type=int, default=900)
    ap.add_argument("--roots", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    hit = Path(sys.executable).parent / "hit"
    hit_cmd = [str(hit)] if hit.exists() else [sys.executable, "-m", "hdmodules.cli.hit"]
    marks, sweeps, totals, lists = [], [], [], []
    for _ in range(args.repeat):
        root = Path(tempfile.mkdtemp(prefix="hd-bench-gc-"))
        try:
            make_store(root, args.artifacts, args.dead, args.roots)
            (root / "config.yaml").write_text("store: bld\n")
            env = {**os.environ, "HIT_HOME": str(root)}
            start = time.perf_counter()
            subprocess.run(
                [*hit_cmd, "gc", "--list"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            lists.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = collect(Store(root / "bld"), root / "gcroots")
            totals.append(time.perf_counter() - start)
            assert len(report.removed) == args.dead, len(report.removed)
            marks.append(report.mark_seconds)
            sweeps.append(report.sweep_seconds)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    med = statistics.median
    per_dead = med(marks) / args.dead * 1000
    print(
        f"{args.artifacts} artifacts, {args.dead} dead, {args.roots} roots, "
        f"median of {args.repeat}:"
    )
    rows = [
        ("mark (scan, reach, decide)", f"{med(marks) * 1000:.0f} ms = {per_dead:.3f} ms per dead",
         "<= 0.5 ms per dead artifact"),
        (f"sweep (move out, remove {args.dead} artifacts' files)", f"{med(sweeps) * 1000:.0f} ms",
         "(file removal)"),
        ("whole collection", f"{med(totals) * 1000:.0f} ms", ""),
        (f"`hit gc --list`, {args.roots} roots (whole command)", f"{med(lists) * 1000:.0f} ms",
         "<= 200 ms"),
    ]  # fmt: skip
    print("| what | time | target |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    ok = per_dead <= 0.5 and med(lists) <= 0.2
    print("\ntargets met" if ok else "\ntargets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
