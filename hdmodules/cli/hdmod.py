"""`hdmod`: the site admin's command (site stacks, module trees, Slurm). Thin, like `hit`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from .common import externals_group, jobs_options, run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hdmod")
def cli() -> None:
    """Build a site's software stacks into a shared store and write its module tree.

    The site root is laid out like a `hit` home, so `HIT_HOME=ROOT hit status ...` works on
    a site store. Users `module use ROOT/modules/lmod/Core` (Lmod) or
    `module use ROOT/modules/tcl/Core` (Environment Modules).
    """


cli.add_command(externals_group("hdmod"))


def _folder(_ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A folder option as a Path; an empty one is a usage error (it was the current folder:
    `--root ""` made it the site root)."""
    if value == "":
        raise click.BadParameter("give a folder, not an empty string", param=param)
    return None if value is None else Path(value)


SITE_OPTIONS = [
    click.argument("site_yaml", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option(
        "--root",
        type=click.Path(file_okay=False),
        callback=_folder,
        help="build here instead of site.yaml's root (laid out like a hit home)",
    ),
    click.option(
        "--modules",
        "modules_dir",
        type=click.Path(file_okay=False),
        callback=_folder,
        help="write the module tree here (default: ROOT/modules)",
    ),
]


def _stack(options):
    """One decorator applying several click options, in order."""

    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f

    return apply


site_options = _stack(SITE_OPTIONS)


def _site(site_yaml: Path, root: Path | None, modules_dir: Path | None, on_site: bool = True):
    from ..spec.site import load_site

    return load_site(site_yaml, root, modules_dir, on_site)


SLURM_OPTIONS = [
    click.option("--slurm", is_flag=True, help="build as Slurm batch jobs instead of here"),
    click.option(
        "--pack",
        type=click.IntRange(0),
        metavar="N",
        help="with --slurm: up to N quick artifacts per job (default: site.yaml)",
    ),
    click.option(
        "--wait",
        is_flag=True,
        help="with --slurm: follow the jobs, then assemble here (exit 0: all built)",
    ),
]


slurm_options = _stack(SLURM_OPTIONS)


@cli.command()
@site_options
@jobs_options("the root's")
@click.option("--repin", is_flag=True, help="re-pin externals that changed (rewrites their YAML)")
@slurm_options
def build(site_yaml: Path, root, modules_dir, **options) -> None:
    """Build every stack of SITE_YAML into the shared store, link each stack's profile at
    ROOT/profiles/<stack>, and write the Lmod/Tcl module tree.

    With --slurm, each missing artifact becomes a batch job (dependencies as afterok job
    dependencies) and a last job assembles profiles and modules; `hdmod status` follows them.
    """
    if not options["repin"] and not options["slurm"] and _unchanged(site_yaml, root, modules_dir):
        return
    from ..options import SiteBuild
    from ..publish.builds import site_build
    from ..publish.sitememo import save

    site = _site(site_yaml, root, modules_dir)
    published = site_build(site, SiteBuild(**options), lambda line: click.echo(line, err=True))
    if published is None:  # submitted to Slurm, not followed
        return
    if not options["repin"]:  # (re-pinning loaded the site again: the next build saves)
        save(site, published.stacks, published.modules, (site_yaml, root, modules_dir), True)
    state = "updated" if published.changed else "unchanged"
    click.echo(f"{published.modules} modulefiles in {site.modules.path} ({state})")
    for stack in site.stacks:
        click.echo(f"stack {stack.name}: {stack.profile.link_path}")


def _unchanged(site_yaml: Path, root, modules_dir, building: bool = True) -> bool:
    """The no-op fast path (publish/sitememo.py): if nothing the last `hdmod build` (or, not
    `building`, `modules refresh`) depended on changed, say what it said and return True."""
    from ..publish.sitememo import unchanged

    done = unchanged(site_yaml, root, modules_dir, building)
    if done is None:
        return False
    if building:
        click.echo("nothing changed since the last build: every artifact present", err=True)
    click.echo(f"{done.modulefiles} modulefiles in {done.modules} (unchanged)")
    for name, link in done.stacks if building else ():
        click.echo(f"stack {name}: {link}")
    return True


@cli.command("build-artifact", hidden=True)
@site_options
@click.option("--artifact", "artifacts", multiple=True, required=True, metavar="STACK:ID")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1)
def build_artifact(site_yaml: Path, root, modules_dir, artifacts, jobs) -> None:
    """Build the given artifacts of SITE_YAML here (what a Slurm job runs)."""
    from ..errors import HitError
    from ..progress import Progress
    from ..publish.profilebuild import build_only
    from ..publish.sitebuild import site_home
    from ..spec.resolve import resolve
    from ..store.home import cache_folder

    site = _site(site_yaml, root, modules_dir)
    wanted = [a.partition(":") for a in artifacts]
    names = {stack for stack, _sep, _id in wanted}
    cache = cache_folder(site.root)  # the site's resolve cache, as resolve_stacks uses it
    stacks = [resolve(s.profile, cache=cache) for s in site.stacks if s.name in names]
    missing = names - {s.name for s in site.stacks}
    if missing:
        raise HitError(f"{site_yaml}: no stack {', '.join(sorted(missing))}")
    ids = {i for _s, _sep, i in wanted}
    build_only(stacks, ids, site_home(site), jobs, Progress(len(ids)))


@cli.command()
@site_options
@click.option(
    "--wait", is_flag=True, help="follow until every job is done; exit 0 only if all built"
)
def status(site_yaml: Path, root, modules_dir, wait) -> None:
    """What the last `hdmod build --slurm` of SITE_YAML submitted: each artifact pending,
    running, built, failed (with its log) or cancelled because a dependency failed."""
    from ..build.slurm import follow, load_record, status_lines
    from ..errors import HitError
    from ..publish.sitebuild import site_home
    from ..store.home import open_store

    site = _site(site_yaml, root, modules_dir)
    home = site_home(site)
    record = load_record(home.root, site.file)
    store = open_store(home)
    if wait:
        try:
            states = follow(record, store, lambda line: click.echo(line))
        except KeyboardInterrupt:
            click.echo("stopped following; the jobs keep running", err=True)
            raise SystemExit(130) from None
    else:
        states, lines = status_lines(record, store)
        for line in lines:
            click.echo(line)
    bad = [s for s in states if s.state != "built"]
    if wait and bad:
        raise HitError(f"{len(bad)} artifact(s) were not built")


@cli.command()
@site_options
def cancel(site_yaml: Path, root, modules_dir) -> None:
    """Cancel every job the last `hdmod build --slurm` of SITE_YAML submitted."""
    from ..build.slurm import cancel as scancel
    from ..build.slurm import load_record
    from ..publish.sitebuild import site_home

    site = _site(site_yaml, root, modules_dir)
    record = load_record(site_home(site).root, site.file)
    ids = record.job_ids + ([record.final] if record.final else [])
    scancel(ids)
    click.echo(f"cancelled {len(ids)} job(s): {', '.join(ids)}")


@cli.command()
@site_options
@click.option(
    "--to",
    type=click.Path(file_okay=False, path_type=Path),
    help="into this seed folder (for `hit fetch --from DIR` at a site without internet)",
)
def fetch(site_yaml: Path, root, modules_dir, to: Path | None) -> None:
    """Fetch every download the recipes of SITE_YAML's stacks use (URL sources and patches,
    remote git repositories) into the site root's source cache, so builds need no internet.

    With --to DIR, into DIR instead (sha256/<hex>, git/, SOURCES.txt), e.g. on a machine
    with internet; carry DIR to the site and run `HIT_HOME=ROOT hit fetch --from DIR` there,
    or list DIR under `mirrors:` in site.yaml.
    """
    from ..publish.fetches import fetch_site

    site = _site(site_yaml, root, modules_dir, on_site=to is None)
    done = fetch_site(site, to, lambda line: click.echo(line, err=True))
    click.echo(f"{done.needed} download(s) of {site_yaml} in {done.folder} ({done.fetched} new)")


@cli.group()
def modules() -> None:
    """The site's module tree."""


@modules.command("refresh")
@site_options
def modules_refresh(site_yaml: Path, root: Path | None, modules_dir: Path | None) -> None:
    """Regenerate the module tree from what is built, without building anything."""
    if _unchanged(site_yaml, root, modules_dir, building=False):
        return
    from ..publish.sitebuild import check_built, refresh_modules, resolve_stacks
    from ..publish.sitememo import save

    site = _site(site_yaml, root, modules_dir)
    check_built(site)
    stacks = resolve_stacks(site)
    refreshed = refresh_modules(site, stacks)
    save(site, stacks, refreshed.count, (site_yaml, root, modules_dir), False)
    state = "updated" if refreshed.changed else "unchanged"
    click.echo(f"{refreshed.count} modulefiles in {site.modules.path} ({state})")


def main() -> None:
    """The `hdmod` console script: run the CLI, exit with its code (no traceback)."""
    sys.exit(run_cli(cli, "hdmod"))


if __name__ == "__main__":
    main()
