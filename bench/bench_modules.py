#!/usr/bin/env python3
"""Benchmark: modulefiles for 1,000 artifacts in both formats (files per second), Lmod's
`module avail` on the generated tree, hierarchy vs flat, and Lmod's `module spider` on a
hierarchy of 2,000 artifacts with and without the tree's spider cache (`spider_cache: true`).

Usage: python bench/bench_modules.py [--artifacts 1000] [--spider-artifacts 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hdmodules.publish.modulefiles import Entry  # noqa: E402
from hdmodules.publish.moduletree import render_tree, write_tree  # noqa: E402
from hdmodules.spec.site import ModuleConfig, Site  # noqa: E402

LMOD_INIT = "/usr/share/lmod/lmod/init/bash"
COMPILERS = [("gcc", "12.2.0"), ("gcc", "11.3.0")]


def entries(n: int, hierarchy: bool, store: str) -> list[Entry]:
    """n package modules spread over two compilers, a fifth of them under an MPI."""
    out = []
    for cname, cver in COMPILERS:
        c_level = ("Compiler", cname, cver)
        out.append(Entry("compiler", cname, cver, ("Core",) if hierarchy else (),
                         family="compiler", modulepath=c_level if hierarchy else None))  # fmt: skip
        m_level = ("MPI", cname, cver, "openmpi", "4.1.4")
        out.append(Entry("mpi", "openmpi", "4.1.4", c_level if hierarchy else (), family="mpi",
                         modulepath=m_level if hierarchy else None))  # fmt: skip
        for i in range(n // len(COMPILERS)):
            mpi = i % 5 == 0
            level = (m_level if mpi else c_level) if hierarchy else ()
            version = "1.0" if hierarchy else f"1.0-{cname}{cver}" + ("-openmpi" if mpi else "")
            prefix = f"{store}/pkg{i:04d}/1.0-abcdefabcdef"
            out.append(
                Entry(
                    "package",
                    f"pkg{i:04d}",
                    version,
                    level,
                    description=f'synthetic package {i} with a "quoted" $word',
                    homepage="https://example.org/pkg",
                    artifact_id=f"pkg{i:04d}/abcdefabcdefabcdefabcdefabcdefab",
                    prefix=prefix,
                    setenv=[(f"PKG{i:04d}_ROOT", prefix)],
                    prepend=[("PATH", f"{prefix}/bin"), ("CMAKE_PREFIX_PATH", prefix)],
                    depends=[f"pkg{i - 1:04d}/{version}"] if i % 10 else [],
                    parents=[f"{cname}/{cver}"] + (["openmpi/4.1.4"] if mpi else []),
                )
            )
    return out


def lmod_avail(modulepath: list[Path], load: str, home: Path) -> float:
    uses = "; ".join(f"module use {p}" for p in modulepath)
    script = f"source {LMOD_INIT}; {uses}; {load} module -t avail >/dev/null 2>&1"
    start = time.perf_counter()
    subprocess.run(["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "bash", "--noprofile",
                    "--norc", "-c", script], check=True)  # fmt: skip
    return time.perf_counter() - start


def lmod_spider(core: Path, rc: Path | None, tmp: Path) -> float:
    """Seconds for a whole shell running `module -t spider` from `core`, with LMOD_RC=`rc`
    (the tree's lmodrc.lua) or without a system cache. A fresh HOME each time: Lmod would
    otherwise answer later runs from the user cache a slow walk writes there."""
    home = Path(tempfile.mkdtemp(dir=tmp))
    rc_line = f"export LMOD_RC={rc}; " if rc else ""
    script = f"source {LMOD_INIT}; {rc_line}module use {core}; module -t spider >/dev/null 2>&1"
    start = time.perf_counter()
    subprocess.run(["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "bash", "--noprofile",
                    "--norc", "-c", script], check=True)  # fmt: skip
    return time.perf_counter() - start


def spider_rows(tmp: Path, artifacts: int, repeat: int) -> None:
    """Print `module -t spider` with vs without the tree's cache, and the cache's own cost."""
    cfg = ModuleConfig(path=tmp / "spider" / "modules", formats=("lmod",), spider_cache=True)
    site = Site(tmp / "site.yaml", tmp / "spider", (), {}, cfg)
    files = render_tree(site, entries(artifacts, True, str(tmp / "store")))
    start = time.perf_counter()
    write_tree(site, files)
    with_cache = time.perf_counter() - start
    plain = replace(site, modules=replace(cfg, path=tmp / "plain" / "modules", spider_cache=False))
    start = time.perf_counter()
    write_tree(plain, files)
    without = time.perf_counter() - start
    core, rc = cfg.path / "lmod" / "Core", cfg.path / "lmod-cache" / "lmodrc.lua"
    cached = statistics.median(lmod_spider(core, rc, tmp) for _ in range(repeat))
    walked = statistics.median(lmod_spider(core, None, tmp) for _ in range(repeat))
    print(f"\nLmod `module -t spider` from Core, {len(files)} modulefiles (whole shell, median):")
    print("| spider cache | time | ratio |")
    print("|---|---|---|")
    print(f"| none (walks the hierarchy) | {walked * 1000:.0f} ms | 1 |")
    print(f"| the tree's (LMOD_RC) | {cached * 1000:.0f} ms | {walked / cached:.1f}x faster |")
    print(f"writing the tree: {without * 1000:.0f} ms, with its cache {with_cache * 1000:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=int, default=1000)
    ap.add_argument("--spider-artifacts", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hd-bench-modules-"))
    try:
        rows = []
        trees = {}
        for layout in ("hierarchy", "flat"):
            cfg = ModuleConfig(path=tmp / layout / "modules", layout=layout)
            site = Site(tmp / "site.yaml", tmp / layout, (), {}, cfg)
            es = entries(args.artifacts, layout == "hierarchy", str(tmp / "store"))
            times = []
            for k in range(args.repeat):
                start = time.perf_counter()
                files = render_tree(site, es)
                # a fresh tree each time (a changed file gives a new content id)
                files["lmod/.bench"] = str(k).encode()
                write_tree(site, files)
                times.append(time.perf_counter() - start)
            n_files = len(files) - 1
            t = statistics.median(times)
            rows.append((layout, n_files, t, n_files / t))
            trees[layout] = cfg.path
        print(f"{args.artifacts} artifacts (+ compiler and MPI modules), both formats, "
              f"median of {args.repeat}:")  # fmt: skip
        print("| layout | files | render + write | files per second | target |")
        print("|---|---|---|---|---|")
        for layout, n, t, rate in rows:
            print(f"| {layout} | {n} | {t * 1000:.0f} ms | {rate:,.0f} | >= 1,000 |")
        if Path(LMOD_INIT).exists():
            home = tmp / "home"
            home.mkdir()
            h = trees["hierarchy"] / "lmod"
            flat = trees["flat"] / "lmod"
            hier_core = [lmod_avail([h / "Core"], "", home) for _ in range(args.repeat)]
            hier_load = [
                lmod_avail([h / "Core"], "module load gcc/12.2.0 openmpi/4.1.4;", home)
                for _ in range(args.repeat)
            ]
            flat_t = [lmod_avail([flat], "", home) for _ in range(args.repeat)]
            print("\nLmod `module -t avail` (whole shell, median):")
            print("| tree | modules visible | time |")
            print("|---|---|---|")
            print(f"| hierarchy, Core only | 2 | {statistics.median(hier_core) * 1000:.0f} ms |")
            print(f"| hierarchy, after `module load gcc openmpi` | ~{args.artifacts // 2 + 3} | "
                  f"{statistics.median(hier_load) * 1000:.0f} ms |")  # fmt: skip
            print(f"| flat | {args.artifacts + 4} | {statistics.median(flat_t) * 1000:.0f} ms |")
            spider_rows(tmp, args.spider_artifacts, args.repeat)
        ok = all(rate >= 1000 for *_x, rate in rows)
        print("\ntarget met" if ok else "\ntarget missed")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
