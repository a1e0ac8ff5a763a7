#!/usr/bin/env python3
"""Every benchmark of issue 18 in one command, one table: each figure next to its anchor
(`python -c pass`, the build scripts alone, a hand-written Makefile) and its goal.

  python bench/run.py               the full run (builds of 5,000 and 20,000 artifacts: long)
  python bench/run.py --quick       small sizes, a few repeats (about a minute or two)
  python bench/run.py --quick --guard 2
                                    exit 1 when a ratio is past its goal by more than 2x
                                    (CI's regression guard: tests/test_bench_guard.py)
  python bench/run.py --before DIR  each bench also on the code of the checkout DIR (e.g. a
                                    `git worktree` of an older commit), its figures beside

A bench takes part by defining `rows(quick: bool) -> list[common.Row]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, table  # noqa: E402

# in the order of the goals; each is bench/<name>.py
BENCHES = (
    "bench_profile",  # 1 (no-op) and 3 (switch, synthetic)
    "bench_build_overhead",  # 2
    "bench_switch",  # 3 (the real profile with ncurses; full run only)
    "bench_site",  # 4
    "bench_jobserver",  # 5 (real builds of nine packages; full run only)
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--guard", type=float, metavar="MARGIN", help="exit 1 past goal x MARGIN")
    ap.add_argument("--only", action="append", help="run only this bench (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    ap.add_argument("--before", type=Path, metavar="DIR", help="also measure DIR's code")
    args = ap.parse_args()
    rows: list[Row] = []
    before: list[Row] = []
    failed: list[str] = []
    for name in args.only or BENCHES:
        if not (Path(__file__).parent / f"{name}.py").exists():
            continue
        module = importlib.import_module(name)
        if not hasattr(module, "rows"):
            continue
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr)
        try:
            if args.before:
                os.environ["HDMOD_BENCH_CODE"] = str(args.before)
                try:
                    before += module.rows(args.quick)
                finally:
                    del os.environ["HDMOD_BENCH_CODE"]
            rows += module.rows(args.quick)
        except Exception:  # noqa: BLE001 -- one bench failing must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
    if before:
        print(f"before ({args.before}):\n{table(before)}\n\nafter:")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    past = [r for r in rows if args.guard is not None and r.past(args.guard)]
    for r in past:
        print(
            f"past its goal by more than {args.guard}x: {r.what}: {r.ratio:.2f}x", file=sys.stderr
        )
    return 1 if past else 0


if __name__ == "__main__":
    sys.exit(main())
