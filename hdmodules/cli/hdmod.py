"""`hdmod`: the site admin's command (site stacks, module trees, Slurm). Thin, like `hit`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from .common import externals_group, run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdmod")
def cli() -> None:
    """Build a site's software stacks into a shared store and write its module tree.

    The site root is laid out like a `hit` home, so `HIT_HOME=ROOT hit status ...` works on
    a site store. Users `module use ROOT/modules/lmod/Core` (Lmod) or
    `module use ROOT/modules/tcl/Core` (Environment Modules).
    """


cli.add_command(externals_group("hdmod"))


SITE_OPTIONS = [
    click.argument("site_yaml", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option("--root", type=click.Path(file_okay=False, path_type=Path),
                 help="build here instead of site.yaml's root (laid out like a hit home)"),
    click.option("--modules", "modules_dir", type=click.Path(file_okay=False, path_type=Path),
                 help="write the module tree here (default: ROOT/modules)"),
]  # fmt: skip


def site_options(f):
    for option in reversed(SITE_OPTIONS):
        f = option(f)
    return f


def _site(site_yaml: Path, root: Path | None, modules_dir: Path | None):
    from ..site import load_site

    return load_site(site_yaml, root, modules_dir)


@cli.command()
@site_options
@click.option("-j", "--jobs", type=click.IntRange(1), help="builds at once (default: CPUs)")
@click.option("--repin", is_flag=True, help="re-pin externals that changed (rewrites their YAML)")
def build(site_yaml: Path, root: Path | None, modules_dir: Path | None, jobs, repin) -> None:
    """Build every stack of SITE_YAML into the shared store, link each stack's profile at
    ROOT/profiles/<stack>, and write the Lmod/Tcl module tree."""
    from ..progress import Progress
    from ..publish import build_site, resolve_stacks

    site = _site(site_yaml, root, modules_dir)
    total = len({n.ref.id for _s, r in resolve_stacks(site) for n in r.nodes.values()})
    published = build_site(site, jobs or 2, Progress(total), repin)
    state = "updated" if published.changed else "unchanged"
    click.echo(f"{published.modules} modulefiles in {site.modules.path} ({state})")
    for stack in site.stacks:
        click.echo(f"stack {stack.name}: {stack.profile.link_path}")


@cli.group()
def modules() -> None:
    """The site's module tree."""


@modules.command("refresh")
@site_options
def modules_refresh(site_yaml: Path, root: Path | None, modules_dir: Path | None) -> None:
    """Regenerate the module tree from what is built, without building anything."""
    from ..publish import refresh_modules, resolve_stacks

    site = _site(site_yaml, root, modules_dir)
    count, _tree, changed = refresh_modules(site, resolve_stacks(site))
    state = "updated" if changed else "unchanged"
    click.echo(f"{count} modulefiles in {site.modules.path} ({state})")


def main() -> None:
    sys.exit(run_cli(cli, "hdmod"))


if __name__ == "__main__":
    main()
