#!/usr/bin/env python3
"""Benchmark: what durable commits cost. `Store.commit` flushes every file and folder of an
artifact to disk (fsync) before the manifest's rename makes it count as installed.

Real trees stand in for real artifacts: /usr/include (about 10,000 small headers, like a
library's development files) and gcc's own lib folder (few, large files: 150 MiB). Each tree
is copied into a fresh prefix and committed three ways, in turn, so the ratios hold when the
machine's speed drifts: without flushing (sync replaced by a no-op), with one syncfs(2) of
the filesystem (what hit does on Linux), and with an fsync of every file and folder (the
fallback). The copy is not timed; the page cache is dirty as after a real build.

Usage: python bench/bench_commit.py [--runs 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdmodules.spec.artifact import ArtifactRef  # noqa: E402
from hdmodules.store import layout as store_mod  # noqa: E402
from hdmodules.store.layout import Store, remove_tree  # noqa: E402

TREES = {
    "/usr/include (many small files)": Path("/usr/include"),
    "gcc-12 lib folder (few large files)": Path("/usr/lib/gcc/x86_64-linux-gnu/12"),
}


def commit_once(root: Path, tree: Path, how: str, n: int) -> float:
    store = Store(root / "bld")
    ref = ArtifactRef("bench", "1", f"{n:032d}")
    prefix = store.begin(ref)
    shutil.copytree(tree, prefix / "payload", symlinks=True)
    real = store_mod.sync_path, store_mod._syncfs
    if how == "none":
        store_mod.sync_path, store_mod._syncfs = (lambda _p: None), (lambda _p: True)
    elif how == "fsync":
        store_mod._syncfs = lambda _p: False
    try:
        start = time.perf_counter()
        store.commit(ref, {"id": ref.id}, None)
        seconds = time.perf_counter() - start
    finally:
        store_mod.sync_path, store_mod._syncfs = real
    remove_tree(prefix)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"{'tree':38} {'files':>6} {'no sync':>8} {'syncfs':>8} {'ratio':>6} "
          f"{'fsync each':>10} {'ratio':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        for label, tree in TREES.items():
            if not tree.is_dir():
                print(f"{label:40} (missing)")
                continue
            files = sum(len(f) for _d, _s, f in os.walk(tree))
            times: dict[str, list[float]] = {"none": [], "syncfs": [], "fsync": []}
            for i in range(args.runs):
                for j, how in enumerate(times):
                    times[how].append(commit_once(Path(tmp), tree, how, 3 * i + j))
            med = {how: statistics.median(t) * 1000 for how, t in times.items()}
            ratio = {how: statistics.median(a / b for a, b in zip(t, times["none"], strict=True))
                     for how, t in times.items()}  # fmt: skip
            print(
                f"{label:38} {files:6d} {med['none']:6.0f}ms {med['syncfs']:6.0f}ms "
                f"{ratio['syncfs']:5.2f}x {med['fsync']:8.0f}ms {ratio['fsync']:5.2f}x"
            )


if __name__ == "__main__":
    main()
