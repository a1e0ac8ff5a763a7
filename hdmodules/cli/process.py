"""How a command's process is set up: the garbage collector tuned for a command that makes
many long-lived objects (issue 18). The `gc` module only: the no-op `hit build`
(cli/entry.py) sets it before anything else is imported. (How a command leaves:
common.leave.)"""

from __future__ import annotations

import gc

# The cyclic garbage collector's first threshold (container objects allocated between two
# passes; CPython's default is 700): a command makes some 100 objects a package (recipes,
# specs, manifests' paths) that live until it ends and hardly any cycles, so at the default
# a switch of a 5,000-package profile spent ~130 ms (8%) in 450 passes, three of them over
# everything; at this one, ~40 ms (issue 18). Cycles are still collected.
GC_THRESHOLD = 100_000


def fewer_gc_passes() -> None:
    """Let the garbage collector run every GC_THRESHOLD allocations (its other thresholds
    kept)."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
