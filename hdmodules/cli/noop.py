"""The no-op `hit build`, answered from the memo (build/memo.py) before click or any other
part of hdmodules is imported: that import is most of what a no-op would cost (issue 18: a
no-op `hit build` within 2.5x of `python -c pass`); and `hit --version` (answer_early). Used
by the console script (cli/entry.py) and by `python -m hdmodules.cli.hit`."""

from __future__ import annotations

import os
import sys

from .process import fewer_gc_passes, flush_output, output_failed


def _count(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) >= 1  # not '²', a digit to isdigit


def noop_options(args: list[str]) -> tuple[str, bool, int | None, int | None] | None:
    """(profile, quiet, jobs, concurrent packages; None: not given) when `args` (what
    follows `hit`) is `build` with nothing but `-q/--quiet`, `-j/--jobs N` and
    `--concurrent-packages N` (N >= 1) and at most one profile argument; None for anything
    else (the click CLI handles it)."""
    if not args or args[0] != "build":
        return None
    profile, quiet, jobs, packages = None, False, None, None
    rest = iter(args[1:])
    for arg in rest:
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-j", "--jobs", "--concurrent-packages"):
            value = next(rest, "")
            if not _count(value):
                return None
            if arg == "--concurrent-packages":
                packages = int(value)
            else:
                jobs = int(value)
        elif arg.startswith(("--jobs=", "--concurrent-packages=")):
            name, _, value = arg.partition("=")
            if not _count(value):
                return None
            if name == "--jobs":
                jobs = int(value)
            else:
                packages = int(value)
        elif arg.startswith("-j") and _count(arg[2:]):
            jobs = int(arg[2:])
        elif arg.startswith("-") or profile is not None or not arg:
            return None
        else:
            profile = arg
    return profile or "default.yaml", quiet, jobs, packages


def noop_build(args: list[str]) -> bool:
    """Answer `hit build ARGS` from the memo when nothing changed, printing what the full
    path prints for a no-op (a `present` line per artifact unless quiet, then the link);
    False when the memo cannot answer. Output that cannot be written ends the process with
    one error line and exit 1 (process.output_failed), as on the full path."""
    options = noop_options(args)
    if options is None:
        return False
    from ..build import memo
    from ..store.homeroot import home_root

    profile, quiet, _jobs, _packages = options
    fast = memo.up_to_date(home_root(), os.path.abspath(profile))
    if fast is None:
        return False
    from ..errors import escaped
    from ..progress import Progress

    shorts, link, prefix = fast
    progress = Progress(len(shorts), quiet=quiet)
    try:
        for short in shorts:
            progress.present(short)
        print(escaped(f"{link} -> {prefix} (up to date)"))
    except BrokenPipeError:
        raise
    except OSError as e:  # written at once when unbuffered (PYTHONUNBUFFERED=1): a full disk
        os._exit(flush_output(output_failed(e, "hit"), "hit"))
    return True


def answer_early(args: list[str]) -> None:
    """Answer `hit --version` and a no-op `hit build` (`args`: the command line after the
    program's name) and exit, and run any other `hit build` whose options noop_options
    knows without click (cli/plainbuild.py); return when the click CLI must answer. The
    collector is set by fewer_gc_passes before anything is imported: importing the CLI
    alone took some 26 passes."""
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
    options = noop_options(args)
    if options is not None:  # a plain `hit build` that is no no-op: built without click
        from .plainbuild import build_before_click

        build_before_click(options)
