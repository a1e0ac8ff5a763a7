"""`hdmod`: the site admin's command (site stacks, module trees, Slurm). Thin, like `hit`."""

from __future__ import annotations

import sys

import click

from .. import __version__
from .common import externals_group, run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdmod")
def cli() -> None:
    """Build a site's software stacks into a shared store and write its module tree.

    Site stacks, externals and modulefiles come in the next releases; today `hdmod` shares
    the store format of `hit`, so `HIT_HOME=DIR hit ...` works on a site store.
    """


cli.add_command(externals_group("hdmod"))


def main() -> None:
    sys.exit(run_cli(cli, "hdmod"))
