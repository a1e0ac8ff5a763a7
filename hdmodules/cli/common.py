"""What both commands share: turning every failure into one plain line and an exit code."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import NoReturn

import click

from ..errors import ConfigError, FollowStopped, HitError
from .process import fewer_gc_passes, flush_output


def jobs_options(where: str):
    """`-j/--jobs N` and `--concurrent-packages N` of `hit build` and `hdmod build`, their
    defaults read from `where` (config.yaml's, the root's)."""
    jobs = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1),
        metavar="N",
        help=f"CPUs for all builds together: one make jobserver (default: {where} jobs)",
    )
    packages = click.option(
        "--concurrent-packages",
        type=click.IntRange(1),
        metavar="N",
        help=f"packages built at once, at most (default: {where}, else -j's N)",
    )
    return lambda f: jobs(packages(f))


def externals_group(prog: str) -> click.Group:
    """`hit externals` and `hdmod externals`: the same commands for users and admins."""

    @click.group("externals")
    def group() -> None:
        """Host compilers and MPIs used as pinned build inputs."""

    @group.command("detect")
    @click.option(
        "--prefix",
        "prefixes",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        help="also look in PREFIX/bin (repeatable)",
    )
    @click.option(
        "--write",
        "write",
        type=click.Path(dir_okay=False),
        help="write the YAML to this file instead of printing it",
    )
    def detect(prefixes: tuple[str, ...], write: str | None) -> None:
        """Find compilers (gcc, gcc-N, clang ...) and MPIs (Open MPI, MPICH) on PATH.

        Prints ready-to-use `externals:` YAML with each tool's pin; a profile uses them with
        `toolchain: {compiler: gcc-12, mpi: openmpi-4.1.4}` (or `extends:` the written file).
        """
        from pathlib import Path

        from ..atomic import write_atomic
        from ..spec.externals import detect as find
        from ..spec.externals import to_yaml

        text = to_yaml(find([Path(p) for p in prefixes]))
        if write:
            write_atomic(Path(write), text)
            click.echo(f"wrote {write}", err=True)
        else:
            click.echo(text, nl=False)

    return group


_received: list[int] = []  # SIGTERM or SIGHUP, once received


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM or SIGHUP (`timeout`, `scancel`, a closed terminal): handled as Ctrl-C is, so
    the builds under way are stopped too (the scheduler's interrupt path)."""
    _received.append(signum)
    raise KeyboardInterrupt


def run_cli(cli: click.Group, prog: str) -> int:
    """Run a click group; user errors become `prog: error: ...` and exit 1, never a traceback.
    SIGTERM and SIGHUP stop it as Ctrl-C does (the builds under way with it; exit 128 + the
    signal), instead of leaving its builds running. A reader that went away (`hit status |
    head -1`) exits 141, as SIGPIPE would. The garbage collector runs less often
    (process.fewer_gc_passes)."""
    fewer_gc_passes()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        rv = cli.main(prog_name=prog, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except FollowStopped as e:  # the jobs keep running: say how to follow them
        click.echo(str(e), err=True)
        return 130
    except click.exceptions.Abort:  # click's word for a KeyboardInterrupt it caught
        click.echo(f"{prog}: interrupted", err=True)
        return 128 + _received[0] if _received else 130
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted; builds under way were stopped", err=True)
        return 128 + _received[0] if _received else 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except BrokenPipeError:
        return 141
    except SystemExit:
        # click answers a broken pipe with exit 1 and wraps the streams to keep quiet;
        # exit as a process killed by SIGPIPE would (141), as git does
        if isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
            return 141
        raise
    except (HitError, OSError) as e:
        click.echo(f"{prog}: error: {error_text(e)}", err=True)
        return 1


def leave(code: int, prog: str = "hit") -> NoReturn:
    """Exit with `code` once a command is done, without the interpreter's teardown: freeing
    every object one by one took ~120 ms after a switch of a 5,000-package profile (issue
    18). The standard streams are flushed (141 when the reader is gone) and the atexit
    functions run first (filelock releases a lock still held, logging flushes). While
    another thread still runs, or a profiler or tracer watches (cProfile writes its figures
    after the program), this is a plain exit."""
    if threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        sys.exit(code)
    code = flush_output(code, prog)
    atexit._run_exitfuncs()  # what a normal exit runs before tearing the interpreter down
    os._exit(code)


def error_text(e: HitError | OSError) -> str:
    """The one line a user sees for an error: a bad input file's place first (`file:line:
    message`, as editors read it), an OSError's reason and path."""
    if isinstance(e, ConfigError):
        return f"{e.where}: {e.message}"
    if isinstance(e, OSError):
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}"
    return str(e)
