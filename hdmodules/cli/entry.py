"""The `hit` console script's entry point: `hit --version` and a no-op `hit build`
(cli/noop.py) are answered before click is imported, and any other `hit build` whose
arguments the small parser of noop.py knows is built without click (cli/plainbuild.py); any
other command, and any argument that parser does not know, goes to the click CLI, which
parses the command line itself and says what is wrong with it."""

from __future__ import annotations

import sys

from .process import interrupted_early  # built-in modules only


def hit() -> None:
    """The `hit` console script. A Ctrl-C while its modules load is `hit: interrupted`
    (process.interrupted_early): they are imported here, not when this module is."""
    try:
        from .noop import answer_early

        answer_early(sys.argv[1:])
        from .hit import main
    except KeyboardInterrupt:  # raised by an import, before the command's guard
        interrupted_early("hit")
    main()


def hdmod() -> None:
    """The `hdmod` console script (cli/hdmod.py's main), a Ctrl-C while it loads as `hit`'s."""
    try:
        from .hdmod import main
    except KeyboardInterrupt:
        interrupted_early("hdmod")
    main()
