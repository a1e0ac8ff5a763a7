"""The `hit` console script's entry point: `hit --version` and a no-op `hit build`
(cli/noop.py) are answered before click is imported; any other command, and any argument the
small parser of noop.py does not know, goes to the click CLI, which parses the command line
itself and says what is wrong with it."""

from __future__ import annotations

import gc
import os
import sys

from .noop import noop_build

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


def hit() -> None:
    """The `hit` console script (the collector set by fewer_gc_passes before anything is
    imported: importing the CLI alone took some 26 passes)."""
    fewer_gc_passes()
    if sys.argv[1:] == ["--version"]:  # as click's version_option words it
        from .. import __version__

        print(f"hit, version {__version__}")
        sys.exit(0)
    try:
        if noop_build(sys.argv[1:]):
            sys.stdout.flush()
            sys.stderr.flush()
            # answered: nothing is left to clean up, and the interpreter's teardown (freeing
            # every object, module by module) costs ~10 ms at 5,000 packages (issue 18)
            os._exit(0)
    except BrokenPipeError:
        sys.exit(141)
    from .hit import main

    main()
