"""How a command's process starts and ends: the garbage collector set for a command that
makes many long-lived objects, and a quick exit once its answer is out (issue 18: both
cost a profile switch of 5,000 packages over 100 ms). Built-in modules only: the no-op
`hit build` (cli/entry.py) uses it before anything else is imported."""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn

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


def leave(code: int) -> NoReturn:
    """Exit with `code` once a command is done, without the interpreter's teardown: freeing
    every object one by one took ~120 ms after a switch of a 5,000-package profile (issue
    18). The standard streams are flushed (141 when the reader is gone) and the atexit
    functions run first (filelock releases a lock still held, logging flushes). While
    another thread still runs, or a profiler or tracer watches (cProfile writes its figures
    after the program), this is a plain exit."""
    import atexit
    import threading

    if threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = 141
    atexit._run_exitfuncs()  # what a normal exit runs before tearing the interpreter down
    os._exit(code)
