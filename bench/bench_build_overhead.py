#!/usr/bin/env python3
"""Benchmark: what `hit build` adds to each artifact beyond its build script (issue 18, goal 2:
at most 5 ms per artifact, so a 20,000-artifact site rebuild spends its time compiling).

N trivial packages (bench_profile.make_stack: three files copied into $ARTIFACT and a small bin
script each) are built into a fresh HIT_HOME with `hit build -j 1`, and again with `-j 2`. The
anchor is the same build scripts alone: one bash process that, for each package in turn, makes
a fresh folder, copies the package's sources into it and runs the recipe's `build:` text with
`bash -e` and ARTIFACT set. Per-artifact overhead = (hit's time - the scripts' time) / N; it
includes hit's start-up and resolve, spread over the N artifacts, but not the home's creation
(`hit init-home` before each build, untimed: a user's home exists). After an untimed warm-up
build (byte-code written), rounds are interleaved (the scripts, then -j 1, then -j 2) and the
medians are printed.

`--before DIR` also times the hdmodules checkout in DIR (e.g. a worktree of the code before a
change) in the same rounds, so a before/after comparison sees the same machine load.

`--breakdown` prints where the time of each artifact goes instead: one `hit build -j 1` per
checkout (this one, and DIR with `--before`), with the steps of a build wrapped to time them
(BREAKDOWN: wall milliseconds per call; [bg] marks work of the group commit's thread, off the
path from one build to the next). A step a checkout lacks is left out.

Usage: python bench/bench_build_overhead.py [--packages 100] [--repeat 3] [--before DIR]
       [--breakdown]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_profile import make_stack  # noqa: E402
from common import Row, code, console_script, timed  # noqa: E402

GOAL_MS = 5.0  # per artifact, issue 18


def scripts_alone(root: Path, n: int) -> str:
    """The anchor: one bash script that runs every package's `build:` text in turn, each in a
    fresh folder holding a copy of its sources, ARTIFACT a fresh prefix."""
    import yaml  # the recipes are YAML; the bench reads their `build:` as hit does

    lines = ["set -e", 'out="$1"']
    for i in range(n):
        name = f"p{i:03d}"
        recipe = yaml.safe_load((root / "pkgs" / f"{name}.yaml").read_text())
        src = shlex.quote(str(root / "src" / name))
        lines += [
            f'mkdir -p "$out/{name}/src"',
            f'cp -R {src}/. "$out/{name}/src/"',
            f'(cd "$out/{name}/src" && ARTIFACT="$out/{name}/artifact" '
            f"/bin/bash -e -c {shlex.quote(recipe['build'])})",
        ]
    script = root / "scripts-alone.sh"
    script.write_text("\n".join(lines) + "\n")
    return str(script)


def init_home(home: Path, env: dict[str, str]) -> None:
    """Create the empty home `home` (config.yaml and its folders), untimed: a user's home
    exists before the build of N packages measured (its creation, once a home, is some
    20 ms of writing config.yaml from its template)."""
    subprocess.run([*console_script("hit"), "init-home"], env=env, check=True, capture_output=True)


def measure(n: int, repeat: int, before: Path | None = None, keep: bool = False) -> dict:
    """Medians in seconds of interleaved rounds: "scripts" (the anchor), "j1", "j2" (and
    "before j1", "before j2" for the checkout `before`)."""
    root = Path(tempfile.mkdtemp(prefix="hit-overhead-"))
    # as a user runs it: from byte-code written once (a PYTHONDONTWRITEBYTECODE set in the
    # caller's environment would make every run compile every module again)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    hit = [*console_script("hit"), "build", "-q"]  # as the installed `hit` runs
    runs = {"j1": ("1", code()), "j2": ("2", code())}
    if before:
        runs |= {"before j1": ("1", before.resolve()), "before j2": ("2", before.resolve())}
    try:
        make_stack(root, n)
        anchor = scripts_alone(root, n)
        for _jobs, checkout in runs.values():  # untimed: byte-code written, caches warm
            home = root / "home-warm"
            warm_env = {**env, "HIT_HOME": str(home), "PYTHONPATH": str(checkout)}
            timed([*hit, "-j", "2"], root, warm_env)
            subprocess.run(["chmod", "-R", "u+w", str(home)], check=False)
            shutil.rmtree(home, ignore_errors=True)
        times: dict[str, list[float]] = {"scripts": [], **{key: [] for key in runs}}
        for k in range(repeat):
            out = root / f"alone-{k}"
            times["scripts"].append(timed(["/bin/bash", anchor, str(out)], root, env))
            for key, (jobs, checkout) in runs.items():
                home = root / f"home-{k}"
                run_env = {**env, "HIT_HOME": str(home), "PYTHONPATH": str(checkout)}
                init_home(home, run_env)
                times[key].append(timed([*hit, "-j", jobs], root, run_env))
                subprocess.run(["chmod", "-R", "u+w", str(home)], check=False)
                shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
        return {what: statistics.median(t) for what, t in times.items()}
    finally:
        if keep:
            print(f"kept {root}")
        else:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
            shutil.rmtree(root, ignore_errors=True)


# Run by `--breakdown` in a `hit build` process: each step of a build wrapped to add up its
# wall time (perf_counter), then `hit build` itself; a table on stderr at exit.
BREAKDOWN = """
import atexit, collections, sys, time
from hdmodules.build import builder
from hdmodules.store import layout
import hdmodules.reaper as reaper
total, calls = collections.defaultdict(float), collections.Counter()
def wrap(owner, name, label):
    real = getattr(owner, name, None)
    if real is None:
        return
    def timed(*a, **k):
        start = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            total[label] += time.perf_counter() - start
            calls[label] += 1
    setattr(owner, name, timed)
for owner, name, label in [
    (builder, "prepare", "prepare: folder, sources, toolchain, build.sh"),
    (reaper.Reaper, "spawn", "reaper hand-off: request to running"),
    (reaper.Build, "wait", "script and reaper's exit"),
    (builder, "_check_links", "link check"),
    (layout.Store, "begin", "begin: the empty prefix"),
    (layout.Store, "commit", "commit, all of it"),
    (layout.Store, "seal", "seal: checks, read-only"),
    (layout.Store, "describe", "describe: build.json, manifest, log"),
    (layout.Store, "publish", "[bg] publish: build folders, flush, renames"),
    (layout, "remove_tree", "  remove a build folder"),
    (layout, "_syncfs", "  syncfs"),
    (layout, "sync_path", "  fsync of .hit"),
    (layout.Store, "record_duration", "record the duration"),
]:
    wrap(owner, name, label)
start = time.perf_counter()
def table():
    print(f"whole run {1000 * (time.perf_counter() - start):.0f} ms", file=sys.stderr)
    for label, seconds in sorted(total.items(), key=lambda item: -item[1]):
        print(f"BREAKDOWN {label}: {1000 * seconds / calls[label]:.2f} ms x {calls[label]}",
              file=sys.stderr)
atexit.register(table)
from hdmodules.cli.entry import hit
sys.argv = ["hit", "build", "-q", "-j", "1"]
hit()
"""


def breakdown(n: int, checkouts: dict[str, Path]) -> None:
    """Print, for each checkout, where a `hit build -j 1` of `n` trivial packages spends its
    time, step by step (BREAKDOWN)."""
    root = Path(tempfile.mkdtemp(prefix="hit-overhead-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        make_stack(root, n)
        for name, checkout in checkouts.items():
            home = root / f"home-{name}"
            run_env = {**env, "HIT_HOME": str(home), "PYTHONPATH": str(checkout)}
            timed([*console_script("hit"), "build", "-q"], root, run_env)
            subprocess.run(["chmod", "-R", "u+w", str(home)], check=False)
            shutil.rmtree(home)  # warm: byte-code written; now the measured run
            init_home(home, run_env)
            out = subprocess.run(
                [sys.executable, "-c", BREAKDOWN], cwd=root, env=run_env, text=True,
                capture_output=True, check=True,
            )  # fmt: skip
            lines = [x for x in out.stderr.splitlines() if x.startswith(("whole", "BREAK"))]
            print(f"{name} ({checkout}), load average {os.getloadavg()[0]:.1f}:")
            print("\n".join("  " + x.removeprefix("BREAKDOWN ") for x in lines))
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def rows(quick: bool) -> list[Row]:
    """For bench/run.py: the overhead per artifact of `-j 1` and `-j 2` next to the scripts
    alone per artifact (about 3 ms on the idle machine), 100 packages (50 when `quick`)."""
    n = 50 if quick else 100
    med = measure(n, 3)
    per = med["scripts"] / n
    cmd = f"python bench/bench_build_overhead.py --packages {n}"
    return [
        Row(
            f"overhead per artifact, `hit build -j {j}` of {n} trivial packages",
            (med[f"j{j}"] - med["scripts"]) / n,
            "the scripts alone, per artifact",
            per,
            f"≤ {GOAL_MS:.0f} ms" if j == 1 else "",
            max_seconds=GOAL_MS / 1000 if j == 1 else None,
            command=cmd,
            idle_anchor=0.003,
            baseline=2.5 if j == 1 else None,
        )  # fmt: skip
        for j in (1, 2)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--before", type=Path, help="also time the hdmodules checkout in this folder")
    ap.add_argument("--breakdown", action="store_true", help="where each artifact's time goes")
    args = ap.parse_args()
    n = args.packages
    if args.breakdown:
        checkouts = {"this": code()} | ({"before": args.before.resolve()} if args.before else {})
        breakdown(n, checkouts)
        return 0
    med = measure(n, args.repeat, args.before, args.keep)
    runs = [k for k in med if k != "scripts"]
    base = med["scripts"]
    load = os.getloadavg()[0]
    rounds = f"medians of {args.repeat} interleaved rounds (load average {load:.1f})"
    print(f"{n} trivial packages, {rounds}:")
    print("| what | time | per artifact | overhead per artifact | vs scripts | goal |")
    print("|---|---|---|---|---|---|")
    print(f"| the scripts alone | {base:.2f} s | {base / n * 1000:.1f} ms | | 1.00x | |")
    for key in runs:
        t, label = med[key], f"hit build -j {key[-1]}" + (" (before)" if " " in key else "")
        over = (t - base) / n * 1000
        goal = f"<= {GOAL_MS:.0f} ms" if key.endswith("j1") else ""
        print(
            f"| {label} | {t:.2f} s | {t / n * 1000:.1f} ms | {over:.1f} ms "
            f"| {t / base:.2f}x | {goal} |"
        )
    over_j1 = (med["j1"] - base) / n * 1000
    print("goal met" if over_j1 <= GOAL_MS else "goal missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
