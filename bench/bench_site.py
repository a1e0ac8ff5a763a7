#!/usr/bin/env python3
"""Benchmark: a synthetic site at scale (issue 18, goal 4).

Generates a site of STACKS stacks of trivial packages (a file and a bin script each, chains of
ten dependencies) reaching about ARTIFACTS artifacts (packages + one profile per stack), builds
it once with `hdmod build -j 2`, builds a user's profile extending the first stack (upstream:
the site store; one own package), then times, as medians of `--repeat` runs interleaved with
`python -c pass`:

- a no-op `hdmod build` and a no-op `hit build` of the user's profile,
- `hit status` of the user's profile and the site's `HIT_HOME=ROOT hit gc --dry-run`,
- a no-op `hdmod modules refresh`,
- writing both module trees (Lmod and Tcl) from scratch (`hdmod modules refresh --modules`
  into a fresh folder), as modulefiles per second, next to plain Python writing as many
  files, each in a folder of its own (the filesystem's own speed, measured in the same run);
  and the same two into a fresh folder of a memory filesystem (/dev/shm, when it is one),
  whose speed is the machine's, not the disk's.

Nothing the bench writes to disk is removed before its last timed run: on an ext4 without a
journal (this machine's root: `dmesg` says "mounted filesystem ... without journal"), ext4
does not reuse an inode freed in the last 60 s (6 min while its inode table block is not yet
written back) and, creating a file or folder, scans past every such inode of the block group
(`recently_deleted` in fs/ext4/ialloc.c): after 40,000 files were removed, creating as many
took 10-30x the kernel time for minutes. Removing each tree before the next timed run charged
that to the next run. Other work on the machine that removes many files has the same effect:
the load average and the tmpfs row say how far a figure is the disk's mood.

Given two sizes (`--artifacts 5000 20000`), each operation is timed at both and the ratio of
the times is printed next to the ratio of the sizes: a cost linear in the store shows the size
ratio, a super-linear one more, a cost independent of the store about 1.

Building 20,000 artifacts takes a while; `--keep DIR` builds each size under DIR/a<N> and
leaves it there, and a later run with the same DIR reuses what is built (a no-op build).

Usage: python bench/bench_site.py [--artifacts 5000 20000] [--stacks 4] [--repeat 5] [--keep DIR]
       python bench/bench_site.py --artifacts 500 2000 --repeat 3     # quick
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from common import Row, code, timed  # noqa: E402

HIT = [sys.executable, "-m", "hdmodules.cli.hit"]
HDMOD = [sys.executable, "-m", "hdmodules.cli.hdmod"]
# goal 4: seconds for each operation (module generation: files per second, at least)
GOALS = {
    "noop_hdmod": 0.5,
    "noop_hit": 0.5,
    "status": 1.0,
    "gc": 1.0,
    "refresh": 0.3,
}
RATE_GOAL = 5000.0


@dataclass(frozen=True)
class Site:
    """A generated, built site: its site.yaml, root, the user's project and environment."""

    yaml: Path
    root: Path
    user: Path
    artifacts: int  # packages + one profile per stack
    modulefiles: int  # of both trees, as `hdmod modules refresh` counts them


def env_for(home: Path | None = None) -> dict[str, str]:
    """The measured checkout's code first (common.code()); HIT_HOME=`home`; no site config
    from the caller."""
    env = {**os.environ, "PYTHONPATH": str(code())}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code used as in a user's installation
    env.pop("HIT_SITE_CONFIG", None)
    if home is not None:
        env["HIT_HOME"] = str(home)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run `cmd`; its stdout. Raises SystemExit with its stderr when it fails."""
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def recipe(name: str, dep: str | None) -> str:
    """A trivial recipe: a data file and a bin script; `dep` its one dependency."""
    deps = f"dependencies: [{dep}]\n" if dep else ""
    return (
        f'version: "1.0"\ndescription: synthetic package {name}\n{deps}build: |\n'
        f'  mkdir -p "$ARTIFACT/share/{name}" "$ARTIFACT/bin"\n'
        f'  echo {name} > "$ARTIFACT/share/{name}/data.txt"\n'
        f"  printf '#!/bin/sh\\necho {name}\\n' > \"$ARTIFACT/bin/{name}\"\n"
        f'  chmod +x "$ARTIFACT/bin/{name}"\n'
    )


def compilers(externals: Path) -> list[str]:
    """The compiler externals `hdmod externals detect` wrote, in file order."""
    names, current = [], None
    for line in externals.read_text().splitlines():
        m = re.match(r"^  (\S+):$", line)
        if m:
            current = m.group(1)
        elif current and line.strip() == "kind: compiler":
            names.append(current)
    if not names:
        raise SystemExit(f"no compiler in {externals}")
    return names


def generate(folder: Path, artifacts: int, stacks: int) -> Path:
    """site.yaml (+ externals.yaml, pkgs/) in `folder`: `stacks` stacks over the detected
    compilers in turn, each with its own packages, about `artifacts` artifacts in all."""
    per = max(2, artifacts // stacks - 1)
    pkgs = folder / "pkgs"
    pkgs.mkdir(parents=True)
    externals = folder / "externals.yaml"
    run([*HDMOD, "externals", "detect", "--write", str(externals)], folder, env_for())
    ccs = compilers(externals)
    lines = ["root: root", "package_dirs: [pkgs]", "externals_from: [externals.yaml]", "stacks:"]
    for k in range(stacks):
        names = [f"s{k}p{i:05d}" for i in range(per)]
        for i, name in enumerate(names):
            (pkgs / f"{name}.yaml").write_text(recipe(name, names[i - 1] if i % 10 else None))
        lines += [f"  s{k}:", f"    compiler: {ccs[k % len(ccs)]}", "    packages:"]
        lines += [f"      {name}:" for name in names]
    used = sorted({ccs[k % len(ccs)] for k in range(stacks)})
    lines += ["modules:", "  formats: [lmod, tcl]", f"  externals: [{', '.join(used)}]", ""]
    (folder / "site.yaml").write_text("\n".join(lines))
    return folder / "site.yaml"


def user_project(folder: Path, root: Path) -> Path:
    """A user's project extending the first stack, with one package of its own, and a hit
    home whose upstream is the site root."""
    (folder / "mine").mkdir(parents=True, exist_ok=True)
    (folder / "mine" / "extra.yaml").write_text(recipe("extra", None))
    (folder / "default.yaml").write_text(
        f"extends: [{root / 'stacks' / 's0.yaml'}]\npackage_dirs: [mine]\npackages: {{extra: }}\n"
    )
    (folder / "home").mkdir(exist_ok=True)
    (folder / "home" / "config.yaml").write_text(f"upstreams: [{root}]\n")
    return folder


def prepare(folder: Path, artifacts: int, stacks: int) -> Site:
    """The site of `artifacts` in `folder`, generated and built unless it is there already
    (then its build is a no-op); the user's profile built too."""
    yaml = folder / "site.yaml"
    if not yaml.exists():
        folder.mkdir(parents=True, exist_ok=True)
        generate(folder, artifacts, stacks)
    start = time.perf_counter()
    out = run([*HDMOD, "build", str(yaml), "-j", "2"], folder, env_for())
    took = time.perf_counter() - start
    files = int(re.search(r"^(\d+) modulefiles", out, re.M).group(1))
    root = folder / "root"
    user = user_project(folder / "user", root)
    run([*HIT, "build", "-q"], user, env_for(user / "home"))
    n = sum(1 for _ in (folder / "pkgs").iterdir()) + stacks
    print(f"site of {n} artifacts in {folder}: `hdmod build -j 2` {took:.1f} s", flush=True)
    return Site(yaml, root, user, n, files)


def bare_writes(folder: Path, n: int) -> float:
    """Seconds plain Python takes to write `n` files of 2 KB, each in a folder of its own
    (as a module tree has them): the anchor of module generation on this filesystem. The
    files are left there (see the module's docstring)."""
    start = time.perf_counter()
    for i in range(n):
        leaf = folder / f"p{i}"
        leaf.mkdir(parents=True)
        (leaf / "1.0.lua").write_bytes(b"x" * 2048)
    return time.perf_counter() - start


def remove(folder: Path) -> None:
    """Remove `folder` (a written tree is read-only: made writable first)."""
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def memory_folder() -> Path | None:
    """/dev/shm when it is a tmpfs (a memory filesystem), else None (no tmpfs rows)."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return None
    if any(m[1] == "/dev/shm" and m[2] == "tmpfs" for m in mounts if len(m) > 2):
        return Path("/dev/shm")
    return None


def measure(site: Site, repeat: int) -> dict[str, float]:
    """Medians (seconds) of each operation on `site`, interleaved with `python -c pass`;
    "rate": modulefiles per second writing both trees from scratch, "bare_rate" plain writes
    of as many files, "mem_rate" and "mem_bare_rate" the same on tmpfs (when there is one);
    "load_start" and "load_end": the 1-minute load average before and after the timed runs."""
    here, user = site.yaml.parent, site.user
    uenv, senv, env = env_for(user / "home"), env_for(site.root), env_for()
    ops = {
        "python": ([sys.executable, "-c", "pass"], here, env),
        "noop_hdmod": ([*HDMOD, "build", str(site.yaml)], here, env),
        "noop_hit": ([*HIT, "build", "-q"], user, uenv),
        "status": ([*HIT, "status"], user, uenv),
        "gc": ([*HIT, "gc", "--dry-run"], here, senv),
        "refresh": ([*HDMOD, "modules", "refresh", str(site.yaml)], here, env),
    }
    times: dict[str, list[float]] = {k: [] for k in [*ops, "scratch", "bare"]}
    memory = memory_folder()
    if memory is not None:
        times.update(mem_scratch=[], mem_bare=[])
    scratch = Path(tempfile.mkdtemp(prefix="trees-", dir=here))
    for name in ("noop_hdmod", "noop_hit", "refresh"):  # warm: the last run may be another's
        cmd, cwd, e = ops[name]
        timed(cmd, cwd, e)
    load_start = os.getloadavg()[0]
    try:
        for k in range(repeat):
            for name, (cmd, cwd, e) in ops.items():
                times[name].append(timed(cmd, cwd, e))
            fresh = scratch / f"m{k}"
            cmd = [*HDMOD, "modules", "refresh", str(site.yaml), "--modules", str(fresh)]
            times["scratch"].append(timed(cmd, here, env))
            times["bare"].append(bare_writes(scratch / f"bare{k}", site.modulefiles))
            if memory is not None:  # removed at once: tmpfs frees without that cost
                mem = Path(tempfile.mkdtemp(prefix="hd-bench-trees-", dir=memory))
                try:
                    cmd = [*HDMOD, "modules", "refresh", str(site.yaml), "--modules", f"{mem}/m"]
                    times["mem_scratch"].append(timed(cmd, here, env))
                    times["mem_bare"].append(bare_writes(mem / "bare", site.modulefiles))
                finally:
                    remove(mem)
        load_end = os.getloadavg()[0]
    finally:
        remove(scratch)
    out = {name: statistics.median(ts) for name, ts in times.items()}
    out["rate"] = site.modulefiles / out["scratch"]
    out["bare_rate"] = site.modulefiles / out["bare"]
    if memory is not None:
        out["mem_rate"] = site.modulefiles / out["mem_scratch"]
        out["mem_bare_rate"] = site.modulefiles / out["mem_bare"]
    out.update(load_start=load_start, load_end=load_end)
    return out


ROWS = [
    ("noop_hdmod", "no-op `hdmod build`"),
    ("noop_hit", "no-op `hit build` (user's profile over the site store)"),
    ("status", "`hit status` (user's profile)"),
    ("gc", "site `hit gc --dry-run`"),
    ("refresh", "no-op `hdmod modules refresh`"),
    ("scratch", "both module trees from scratch"),
]


def report(sizes: list[Site], results: list[dict[str, float]]) -> bool:
    """Print one table per size and the ratios between the first and last; True if every
    goal holds at every size."""
    ok = True
    for site, r in zip(sizes, results, strict=True):
        print(f"\n{site.artifacts} artifacts, {site.modulefiles} modulefiles; medians "
              f"(load average {r['load_start']:.1f} -> {r['load_end']:.1f}):")  # fmt: skip
        print("| operation | median | vs python -c pass | goal | |\n|---|---|---|---|---|")
        print(f"| python -c pass | {r['python'] * 1000:.0f} ms | 1.0x | | |")
        for key, what in ROWS:
            t = r[key]
            if key == "scratch":
                goal, met = f">= {RATE_GOAL:,.0f} files/s", r["rate"] >= RATE_GOAL
                extra = f" ({r['rate']:,.0f} files/s; bare writes {r['bare_rate']:,.0f}/s)"
            else:
                goal, met, extra = f"<= {GOALS[key]} s", t <= GOALS[key], ""
            ok = ok and met
            print(f"| {what} | {t * 1000:.0f} ms{extra} | {t / r['python']:.1f}x | {goal} "
                  f"| {'met' if met else 'MISSED'} |")  # fmt: skip
        if "mem_rate" in r:  # the same on tmpfs: the machine's speed, not the disk's
            t, met = r["mem_scratch"], r["mem_rate"] >= RATE_GOAL
            print(f"| the same into tmpfs (/dev/shm) | {t * 1000:.0f} ms ({r['mem_rate']:,.0f} "
                  f"files/s; bare writes {r['mem_bare_rate']:,.0f}/s) | "
                  f"{t / r['python']:.1f}x | >= {RATE_GOAL:,.0f} files/s | "
                  f"{'met' if met else 'MISSED'} |")  # fmt: skip
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        ra, rb = results[0], results[-1]
        size = b.artifacts / a.artifacts
        print(f"\nscaling {a.artifacts} -> {b.artifacts} artifacts ({size:.1f}x the store):")
        print("| operation | time ratio | minus start-up (python -c pass) |\n|---|---|---|")
        for key, what in ROWS:
            net_a = max(ra[key] - ra["python"], 1e-3)
            net_b = max(rb[key] - rb["python"], 1e-3)
            print(f"| {what} | {rb[key] / ra[key]:.2f}x | {net_b / net_a:.2f}x |")
    print("\nall goals met" if ok else "\nsome goals missed")
    return ok


# The worst ratio to `python -c pass` of both trees from scratch at the quick size (500
# artifacts, 996 files: 1,800 files/s, start-up and site load being a third of it), when
# that was recorded: 13.5x on the development machine, 10.3x on CI's.
SCRATCH_QUICK_RATIO = 14.0


def rows(quick: bool) -> list[Row]:
    """For bench/run.py: a site of 500 artifacts (`quick`) or 2,000, built in a temporary
    folder. (The 20,000-artifact figures: `bench_site.py --artifacts 20000 --keep DIR`, whose
    first build takes most of an hour.)"""
    n = 500 if quick else 2000
    base = Path(tempfile.mkdtemp(prefix="hd-bench-site-"))
    try:
        r = measure(prepare(base / f"a{n}", n, 4), 3 if quick else 5)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    cmd = f"python bench/bench_site.py --artifacts {n}"
    out = [
        Row(f"{what}, {n:,} artifacts", r[key], "python -c pass", r["python"],
            f"≤ {GOALS[key]} s", max_seconds=GOALS[key], command=cmd)
        for key, what in ROWS if key in GOALS
    ]  # fmt: skip
    files = r["rate"] * r["scratch"]
    # Judged against `python -c pass`, as the rows above: writing the trees is CPU-bound
    # (rendering and planning, not the disk), so plain writes, 4x faster on CI's disk than
    # here, made a ratio that moved with the disk and not with this code.
    out.append(
        Row(f"both module trees from scratch, {files:,.0f} files ({r['rate']:,.0f} files/s; "
            f"plain Python writes {r['bare_rate']:,.0f}/s)", r["scratch"], "python -c pass",
            r["python"], f"≥ {RATE_GOAL:,.0f} files/s", max_seconds=files / RATE_GOAL,
            command=cmd, baseline=SCRATCH_QUICK_RATIO)
    )  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--stacks", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build (or reuse) the sites under this folder")
    args = ap.parse_args()
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="hd-bench-site-"))
    try:
        sites = [prepare(base / f"a{n}", n, args.stacks) for n in args.artifacts]
        results = [measure(site, args.repeat) for site in sites]
        report(sites, results)
        return 0
    finally:
        if not args.keep:
            subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
