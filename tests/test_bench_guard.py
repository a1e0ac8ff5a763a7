"""CI's regression guard for speed (issue 18, goal 6): the quick run of every benchmark, each
figure judged as a ratio to its anchor measured in the same run (never a timed assertion),
fails only when a ratio is past its goal by more than a wide margin."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

MARGIN = "3"  # wide: a regression of several times, not the noise of a loaded machine


def test_quick_benchmarks_stay_within_a_wide_margin_of_their_goals():
    r = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--guard", MARGIN],
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "no-op `hit build`, 100 packages" in r.stdout  # the guard measured something
