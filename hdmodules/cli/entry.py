"""The `hit` console script's entry point: `hit --version` and a no-op `hit build`
(cli/noop.py) are answered before click is imported; any other command, and any argument the
small parser of noop.py does not know, goes to the click CLI, which parses the command line
itself and says what is wrong with it."""

from __future__ import annotations

import os
import sys

from .noop import noop_build
from .process import fewer_gc_passes, flush_output


def answer_fast(args: list[str]) -> None:
    """Answer `hit --version` and a no-op `hit build` (`args`: the command line after the
    program's name) and exit; return when the click CLI must answer. The collector is set by
    fewer_gc_passes before anything is imported: importing the CLI alone took some 26
    passes."""
    fewer_gc_passes()
    if args == ["--version"]:  # as click's version_option words it
        from .. import __version__

        print(f"hit, version {__version__}")
        sys.exit(0)
    try:
        answered = noop_build(args)
    except BrokenPipeError:
        os._exit(flush_output(141, "hit"))
    if answered:
        # answered: nothing is left to clean up, and the interpreter's teardown (freeing
        # every object, module by module) costs ~10 ms at 5,000 packages (issue 18)
        os._exit(flush_output(0, "hit"))


def hit() -> None:
    """The `hit` console script."""
    answer_fast(sys.argv[1:])
    from .hit import main

    main()
