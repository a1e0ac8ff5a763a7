"""`hit`: the user's command. Thin: parse, call one function, print. Heavy modules are
imported inside commands so that `hit --version` and a no-op `hit build` start fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import __version__
from .common import externals_group, run_cli

PROFILE_HELP = "profile YAML (default: default.yaml in this folder)"


def _resolve(profile: str, repin: bool = False):
    from ..profiles import load_profile
    from ..resolve import resolve

    resolved = resolve(load_profile(Path(profile)), repin=repin)
    for note in resolved.notes:
        click.echo(note, err=True)
    return resolved


def _home():
    from ..config import load_home

    return load_home()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hit")
def cli() -> None:
    """Build software profiles from YAML into a hashed store of artifacts.

    Every package is built once into its own prefix, named by the hash of everything that
    went into it; a profile is a symlink farm over those prefixes, and `hit build X.yaml`
    leaves a link `X` next to the YAML file pointing at it.

    The home (store, source cache, gc roots) is ~/.hashdist, or $HIT_HOME.
    """


@cli.command("init-home")
def init_home() -> None:
    """Create the home (~/.hashdist or $HIT_HOME) with a commented config.yaml."""
    from ..config import default_home, init_home

    click.echo(init_home(default_home()))


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
@click.option(
    "-j", "--jobs", type=click.IntRange(1), help="builds at once (default: config.yaml's jobs)"
)
@click.option("-q", "--quiet", is_flag=True, help="do not list packages that are already built")
@click.option("--repin", is_flag=True, help="re-pin externals that changed (rewrites their YAML)")
def build(profile: str, jobs: int | None, quiet: bool, repin: bool) -> None:
    """Build every package of PROFILE that is missing, then assemble the profile.

    The link (e.g. `default` for default.yaml) is made next to the YAML file and
    registered as a gc root. Progress goes to stderr; the link's path to stdout.
    """
    from .. import memo
    from ..config import default_home
    from ..progress import Progress

    file = Path(os.path.abspath(profile))
    fast = None if repin else memo.up_to_date(default_home(), file)
    if fast is not None:  # nothing changed since the last build: no YAML, no hashing
        refs, prefix = fast
        progress = Progress(len(refs), quiet=quiet)
        for ref in refs:
            progress.cached(ref.short)
        click.echo(f"{memo.profile_link(file)} -> {prefix} (up to date)")
        return
    from ..plan import build_profile

    home = _home()
    resolved = _resolve(profile, repin)
    progress = Progress(len(resolved.nodes), quiet=quiet)
    result = build_profile(resolved, home, jobs or home.jobs, progress)
    if result.link_changed:
        click.echo(f"{result.link} -> {result.profile}")
    else:
        click.echo(f"{result.link} -> {result.profile} (up to date)")


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def status(profile: str) -> None:
    """For each package of PROFILE: built or needs build, with its short id."""
    from ..store import Store

    home = _home()
    resolved = _resolve(profile)
    store = Store(home.store)
    width = max([len(n) for n in resolved.nodes] + [7])
    for node in resolved.nodes.values():
        state = "built" if store.is_installed(node.ref) else "needs build"
        extra = "" if node.name in resolved.roots else "  (dependency)"
        click.echo(
            f"{node.name:<{width}}  {node.recipe.version:<10}  {node.ref.short}  {state}{extra}"
        )
    pstate = "built" if store.is_installed(resolved.profile_ref) else "needs build"
    click.echo(f"{'profile':<{width}}  {'':<10}  {resolved.profile_ref.short}  {pstate}")


@cli.group()
def show() -> None:
    """Show what a build would use: its build spec or its build script."""


@show.command("buildspec")
@click.argument("package")
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def show_buildspec(package: str, profile: str) -> None:
    """The canonical build spec of PACKAGE (its hash is the artifact id)."""
    from ..resolve import node_for

    node = node_for(_resolve(profile), package)
    click.echo(json.dumps({"id": node.ref.id, **node.spec}, indent=2, sort_keys=True))


@show.command("script")
@click.argument("package")
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def show_script(package: str, profile: str) -> None:
    """The exact build script PACKAGE is built with (environment included)."""
    from ..builder import build_folder, render_script
    from ..resolve import node_for
    from ..store import Store

    home = _home()
    resolved = _resolve(profile)
    node = node_for(resolved, package)
    store = Store(home.store)
    folder = build_folder(home, node)
    click.echo(
        render_script(resolved, node, store, store.prefix(node.ref), folder, home.jobs), nl=False
    )


@cli.command()
@click.argument("package")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def bdir(package: str, folder: Path, profile: str) -> None:
    """Unpack PACKAGE's sources into FOLDER/src with its build script FOLDER/build.sh.

    `bash FOLDER/build.sh` then builds by hand exactly as `hit build` would, except that it
    installs into FOLDER/artifact rather than the store.
    """
    from ..builder import bdir as make_bdir
    from ..resolve import node_for
    from ..store import Store

    home = _home()
    resolved = _resolve(profile)
    node = node_for(resolved, package)
    script = make_bdir(resolved, node, home, Store(home.store), folder.absolute(), home.jobs)
    click.echo(f"sources in {folder / 'src'}; run: bash {script}")


@cli.command()
@click.argument("url_or_file", required=False)
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="add every archive in this folder to the cache")  # fmt: skip
def fetch(url_or_file: str | None, from_dir: Path | None) -> None:
    """Put a source into the cache and print its sha256 and a `sources:` snippet.

    With --from DIR, seed the cache from every archive in DIR (for sites without internet:
    copy the upstream tarballs there; their hashes are what recipes name).
    """
    from ..sources import add_file, fetch_any, is_archive

    home = _home()
    if (url_or_file is None) == (from_dir is None):
        raise click.UsageError("give either URL_OR_FILE or --from DIR")
    if from_dir is not None:
        files = sorted(p for p in from_dir.iterdir() if p.is_file() and is_archive(p.name))
        for f in files:
            click.echo(f"{add_file(home.source_cache, f)}  {f.name}")
        click.echo(f"{len(files)} archive(s) added to {home.source_cache}", err=True)
        return
    sha, url = fetch_any(home.source_cache, url_or_file, home.mirrors)
    click.echo(f"sha256: {sha}\n\nsources:\n  - url: {url}\n    sha256: {sha}")


cli.add_command(externals_group("hit"))


def main() -> None:
    sys.exit(run_cli(cli, "hit"))


if __name__ == "__main__":
    main()
