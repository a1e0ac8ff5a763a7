"""What both commands share: turning every failure into one plain line and an exit code."""

from __future__ import annotations

import sys

import click

from .guard import guarded, interrupted
from .process import fewer_gc_passes


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
        from ..errors import escaped
        from ..spec.externals import detect as find
        from ..spec.externals import to_yaml

        text = to_yaml(find([Path(p) for p in prefixes]))
        if write:
            write_atomic(Path(write), text)
            click.echo(escaped(f"wrote {write}"), err=True)
        else:
            click.echo(text, nl=False)

    return group


def run_cli(cli: click.Group, prog: str) -> int:
    """Run a click group under guard.guarded (user errors become `prog: error: ...` and exit
    1, never a traceback; SIGTERM and SIGHUP stop it as Ctrl-C does), with click's own
    words for an interruption and a usage error. The garbage collector runs less often
    (process.fewer_gc_passes)."""
    fewer_gc_passes()

    def body() -> int:
        try:
            rv = cli.main(prog_name=prog, standalone_mode=False)
            return rv if isinstance(rv, int) else 0
        except click.exceptions.Abort:  # click's word for a KeyboardInterrupt it caught
            click.echo(f"{prog}: interrupted", err=True)
            return interrupted()
        except click.ClickException as e:
            e.show()
            return e.exit_code
        except SystemExit:
            # click answers a broken pipe with exit 1 and wraps the streams to keep quiet;
            # exit as a process killed by SIGPIPE would (141), as git does
            if isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
                return 141
            raise

    return guarded(body, prog, lambda line: click.echo(line, err=True))
