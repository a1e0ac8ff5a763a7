"""The `hit` console script's entry point: `hit --version` and a no-op `hit build`
(cli/noop.py) are answered before click is imported, and any other `hit build` whose
arguments the small parser of noop.py knows is built without click (cli/plainbuild.py); any
other command, and any argument that parser does not know, goes to the click CLI, which
parses the command line itself and says what is wrong with it."""

from __future__ import annotations

import sys

from .noop import answer_early


def hit() -> None:
    """The `hit` console script."""
    answer_early(sys.argv[1:])
    from .hit import main

    main()
