"""`hit build` once its options are known: build the profile (publish.builds.hit_build), then
its link's line on stdout. Without click: a `hit build` with only the options the no-op
check parses (cli/noop.py) is built before click is imported, which with the CLI is some
15-20 ms of every build and profile switch (issue 18). The click command (cli/hit.py `build`)
runs the same function, for the other options."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from ..options import HitBuild
from .guard import Say, guarded, leave


def run_build(profile: str, o: HitBuild, say: Say, out: Say) -> int:
    """Build the profile YAML `profile` with the options `o`: progress and notes to `say`
    (stderr), the link's line to `out` (stdout). Returns 0 (exit code). Raises HitError
    (ConfigError, BuildFailed, ...) as hit_build does."""
    from ..errors import escaped
    from ..publish.builds import hit_build

    file = Path(os.path.abspath(profile))
    result = hit_build(file, o, say)
    if result is not None:
        same = "" if result.link_changed else " (up to date)"
        out(escaped(f"{result.link} -> {result.profile}{same}"))
    return 0


def _err(line: str) -> None:
    _echo(line, err=True)


def _out(line: str) -> None:
    _echo(line, err=False)


def _echo(line: str, err: bool) -> None:
    """One line on stderr (`err`) or stdout, as the click command's click.echo writes it:
    ANSI styles are left out unless the stream is a terminal (a build log's lines have none
    left: errors.log_line). click is imported for such a line only."""
    if "\x1b" in line:
        import click

        click.echo(line, err=err)
        return
    print(line, file=sys.stderr if err else sys.stdout, flush=err)


def build_before_click(options: tuple[str, bool, int | None, int | None]) -> NoReturn:
    """`hit build` with the options noop.noop_options parsed (profile, quiet, jobs,
    concurrent packages), run and left as the click CLI runs a command (guard.guarded,
    guard.leave)."""
    profile, quiet, jobs, packages = options
    o = HitBuild(
        jobs=jobs,
        concurrent_packages=packages,
        quiet=quiet,
        repin=False,
        slurm=False,
        pack=None,
        wait=False,
        dirty=False,
        explain=False,
    )
    leave(guarded(lambda: run_build(profile, o, _err, _out), "hit", _err), "hit")
