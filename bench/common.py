"""What the benchmarks share: timing whole processes, the `python -c pass` anchor, and a row
of the performance table (a figure next to its anchor and its goal).

Speed is never asserted in a timed test: a bench measures a figure and its anchor in the same
run, interleaved, and reports the ratio (issue 18). `bench/run.py` runs every bench and prints
one table; `--guard` turns a ratio far past its goal into a non-zero exit (CI's quick run).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def code() -> Path:
    """The checkout whose code is measured: this one, or the one HDMOD_BENCH_CODE names (an
    older checkout measured with these benches: the "before" of a before/after)."""
    return Path(os.environ.get("HDMOD_BENCH_CODE") or REPO).resolve()


# `python -c pass` in seconds on the idle 2-core development machine: CI's guard judges a goal
# given in seconds (a profile switch within 0.3 s) as that many times this anchor, so that a
# machine twice as slow at starting Python gets twice the time.
PYTHON_PASS_IDLE = 0.040


@dataclass(frozen=True)
class Row:
    """One figure of the performance table: `measured` and `anchor` in seconds (medians of the
    same run), the anchor's name (`python -c pass`, `the scripts alone`...). `max_ratio` is the
    goal as a ratio to the anchor; `max_seconds` a goal in seconds; `goal` how the issue says it;
    `command` what measured it."""

    what: str
    measured: float
    anchor_name: str
    anchor: float
    goal: str = ""
    max_ratio: float | None = None
    max_seconds: float | None = None
    command: str = ""
    idle_anchor: float = PYTHON_PASS_IDLE  # the anchor on the idle machine, in seconds
    unit: str = "s"  # "s": measured and anchor are seconds; "": they are counts
    # for a figure that still misses its goal: the worst ratio measured when that was
    # recorded (README), so that the guard catches it getting worse, not its missing the goal
    baseline: float | None = None

    @property
    def ratio(self) -> float:
        return self.measured / self.anchor if self.anchor > 0 else float("inf")

    def met(self) -> bool | None:
        """Whether the figure meets its goal as the issue states it (None: it has none)."""
        if self.max_ratio is not None:
            return self.ratio <= self.max_ratio
        if self.max_seconds is not None:
            return self.measured <= self.max_seconds
        return None

    def past(self, margin: float) -> bool:
        """Whether the figure misses its goal by more than `margin` times, judged by the ratio
        alone (what CI's guard checks, whatever the machine): a goal in seconds counts as
        that many times the anchor's figure on the idle machine (`idle_anchor`); a figure
        still missing its goal is judged against its `baseline` instead."""
        limit = self.max_ratio
        if limit is None and self.max_seconds is not None:
            limit = self.max_seconds / self.idle_anchor
        if limit is not None and self.baseline is not None:
            limit = max(limit, self.baseline)
        return limit is not None and self.ratio > limit * margin


def timed(cmd: Sequence[str], cwd: Path | None = None, env: dict | None = None) -> float:
    """Seconds one run of `cmd` takes, output discarded; raises CalledProcessError."""
    start = time.perf_counter()
    subprocess.run(
        list(cmd),
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def medians(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """The median of each measurement, taken in turn `repeat` times (interleaved, so that
    the machine's load falls on all of them alike)."""
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            samples[name].append(run())
    return {k: statistics.median(v) for k, v in samples.items()}


def python_pass(cwd: Path | None = None, env: dict | None = None) -> float:
    """One run of the anchor: `python -c pass` on this interpreter."""
    return timed([sys.executable, "-c", "pass"], cwd, env)


def console_script(name: str) -> list[str]:
    """The console script `name` (`hit`, `hdmod`) as the measured checkout's pyproject.toml
    declares it, run the way the installed script runs it (`from MODULE import FUNC;
    sys.exit(FUNC())`) on this interpreter (with bench_env's PYTHONPATH: that checkout's
    code, even where the installed script is another checkout's)."""
    import tomllib

    scripts = tomllib.loads((code() / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts[name].split(":")
    line = f"import sys; from {module} import {func}; sys.exit({func}())"
    return [sys.executable, "-c", line]


def bench_env(home: Path) -> dict[str, str]:
    """The environment of a bench's commands: this one, with HIT_HOME at `home` and the
    measured checkout (code()) first on PYTHONPATH; byte-code written and used as a user's
    installation has it (a PYTHONDONTWRITEBYTECODE of the caller's would make every run
    compile every module it imports again)."""
    path = os.environ.get("PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        "HIT_HOME": str(home),
        "PYTHONPATH": str(code()) + (os.pathsep + path if path else ""),
    }


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table: figure, anchor, ratio, goal, met."""
    out = [
        "| what | measured | anchor | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "no", None: ""}[r.met()]
        out.append(
            f"| {r.what} | {_fmt(r.measured, r.unit)} | {r.anchor_name} {_fmt(r.anchor, r.unit)} | "
            f"{r.ratio:.2f}× | {r.goal} | {met} |"
        )
    return "\n".join(out)


def _fmt(seconds: float, unit: str = "s") -> str:
    if unit != "s":
        return f"{seconds:g}"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"
