#!/usr/bin/env python3
"""Benchmark: what a compiler module's wrapper (templates/wrappers/compiler.sh) costs a
scientist, side by side with the compiler it runs, in one run.

Renders the gcc wrapper as a module tree does, with LIBRARY_PATH holding `--folders` library
folders, then times (medians of `--repeat` alternating runs) compiling and linking a small C
program with the real gcc and with the wrapper, and `gcc -c` alone. Reports the medians and
the wrapper/real ratio. Usage: python bench/bench_wrappers.py [--compiler /usr/bin/gcc-12]
[--folders 10] [--repeat 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdmodules.templating import render  # noqa: E402

PROGRAM = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one run of `cmd` takes; raises CalledProcessError if it fails."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compiler", default="/usr/bin/gcc-12")
    ap.add_argument("--folders", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=21)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdmod-bench-wrappers-") as tmp:
        work = Path(tmp)
        wrapper = work / "gcc"
        wrapper.write_text(
            render(
                "wrappers/compiler.sh",
                (),
                name="gcc",
                real=args.compiler,
                external="gcc/bench",
                fortran=False,
                rpath=True,
            )  # fmt: skip
        )
        wrapper.chmod(0o755)
        folders = [work / f"lib{i}" for i in range(args.folders)]
        for f in folders:
            f.mkdir()
        (work / "prog.c").write_text(PROGRAM)
        env = {"PATH": "/usr/bin:/bin", "LIBRARY_PATH": ":".join(map(str, folders))}
        cases = {
            "compile+link": ["prog.c", "-o", "prog"],
            "compile only (-c)": ["-c", "prog.c", "-o", "prog.o"],
        }
        print(f"{args.compiler}, LIBRARY_PATH of {args.folders} folders, {args.repeat} runs each")
        print(f"{'what':<20} {'real':>9} {'wrapper':>9} {'ratio':>7}")
        for what, tail in cases.items():
            real, wrapped = [], []
            for _ in range(args.repeat):  # alternate, so drift hits both alike
                real.append(timed([args.compiler, *tail], env, work))
                wrapped.append(timed([str(wrapper), *tail], env, work))
            r, w = statistics.median(real), statistics.median(wrapped)
            print(f"{what:<20} {r * 1000:>7.1f}ms {w * 1000:>7.1f}ms {w / r:>6.2f}x")
        out = subprocess.run(["readelf", "-d", str(work / "prog")], capture_output=True, text=True)
        runpath = [line for line in out.stdout.splitlines() if "RUNPATH" in line]
        entries = runpath[0].split("[", 1)[1].rstrip("]").split(":") if runpath else []
        print(f"wrapper-linked RUNPATH entries: {len(entries)}")


if __name__ == "__main__":
    main()
