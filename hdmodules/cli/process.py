"""How a command's process is set up: the garbage collector tuned for a command that makes
many long-lived objects (issue 18), and its output flushed before it leaves without the
interpreter's teardown. Built-in modules only: the no-op `hit build` (cli/entry.py) uses
both before anything else is imported. (How a command leaves: guard.leave.)"""

from __future__ import annotations

import gc
import os
import sys

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


def output_failed(e: OSError, prog: str) -> int:
    """Say in one line on stderr that the output could not be written (`e`: the error of
    the write, e.g. ENOSPC from `hit build > /dev/full`), if stderr can take it; returns 1,
    the exit code."""
    try:  # noqa: SIM105 - no contextlib: the no-op path imports built-in modules only
        if sys.stderr is not None:
            sys.stderr.write(f"{prog}: error: cannot write the output: {e.strerror or e}\n")
    except OSError:
        pass
    return 1


def flush_output(code: int, prog: str) -> int:
    """Flush stdout, then stderr, before an exit without the interpreter's teardown (which
    would flush them); returns the exit code: `code`, or 141 when the reader of stdout is
    gone, or 1 (after one line `prog: error: ...` on stderr) when the output could not be
    written (a full disk: `hit build > /dev/full`). A stream that is None (its descriptor
    was closed when Python started: `hit build >&-`) has nothing to flush."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        code = 141
    except OSError as e:
        code = code or output_failed(e, prog)
    try:  # noqa: SIM105 - as above
        if sys.stderr is not None:
            sys.stderr.flush()
    except OSError:
        pass
    return code


def interrupted_early(prog: str) -> None:
    """Ctrl-C before the command's own guard is set up (while its modules load: a
    KeyboardInterrupt from an import): `prog: interrupted` on stderr and exit 130, as the
    guard says it later (cli/guard.py), never a traceback."""
    try:  # noqa: SIM105 - built-in modules only (see the module's docstring)
        sys.stderr.write(f"\n{prog}: interrupted\n")
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(130)
