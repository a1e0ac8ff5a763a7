"""`hit`: the user's command. Thin: parse, call one function, print. Heavy modules are
imported inside commands so that `hit --version` and a no-op `hit build` start fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import escaped
from .common import externals_group, jobs_options, run_cli
from .guard import leave
from .hit_helpers import PROFILE_HELP, _home, _resolve, _resolve_package, open_store
from .hit_store import cp, diff, gc, history, mv, purge, rm, rollback, verify


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
    from ..store.home import default_home, init_home

    click.echo(init_home(default_home()))


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
@jobs_options("config.yaml's")
@click.option("-q", "--quiet", is_flag=True, help="do not list packages that are already built")
@click.option("--repin", is_flag=True, help="re-pin externals that changed (rewrites their YAML)")
@click.option("--slurm", is_flag=True, help="build the missing packages as Slurm batch jobs")
@click.option(
    "--pack",
    type=click.IntRange(0),
    metavar="N",
    help="with --slurm: up to N quick packages per job",
)
@click.option("--wait", is_flag=True, help="with --slurm: follow the jobs, then assemble here")
@click.option(
    "--dirty", is_flag=True, help="build git checkouts with uncommitted changes, hashed by content"
)
@click.option(
    "--explain", is_flag=True, help="say, for each artifact to build, why no built one fits"
)
def build(profile: str, **options) -> None:
    """Build every package of PROFILE that is missing, then assemble the profile.

    The link (e.g. `default` for default.yaml) is made next to the YAML file and
    registered as a gc root. Progress goes to stderr; the link's path to stdout.
    """
    from ..options import HitBuild
    from .plainbuild import run_build

    run_build(profile, HitBuild(**options), lambda line: click.echo(line, err=True), click.echo)


@cli.command("build-artifact", hidden=True)
@click.argument("profile")
@click.option("--artifact", "artifacts", multiple=True, required=True, metavar=":ID")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1)
def build_artifact(profile: str, artifacts, jobs: int) -> None:
    """Build the given artifacts of PROFILE here (what a Slurm job runs)."""
    from ..progress import Progress
    from ..publish.profilebuild import build_only

    ids = {a.partition(":")[2] for a in artifacts}
    build_only([_resolve(profile)], ids, _home(), jobs, Progress(len(ids)))


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def status(profile: str) -> None:
    """For each package of PROFILE: built or needs build, with its short id."""

    from ..publish.status import profile_status

    text, note = profile_status(profile, _home(write=False), _resolve)
    click.echo(text)
    if note is not None:
        click.echo(escaped(note), err=True)


@cli.group()
def show() -> None:
    """Show what a build would use: its build spec or its build script."""


@show.command("buildspec")
@click.argument("package")
@click.option("-p", "--profile", help=PROFILE_HELP)
def show_buildspec(package: str, profile: str | None) -> None:
    """The canonical build spec of PACKAGE (its hash is the artifact id).

    PACKAGE: a package of the profile, or a recipe file (pkgs/NAME.yaml)."""
    _, node = _resolve_package(package, profile)
    click.echo(json.dumps(node.spec.record(node.ref.id), indent=2, sort_keys=True))


@show.command("script")
@click.argument("package")
@click.option("-p", "--profile", help=PROFILE_HELP)
def show_script(package: str, profile: str | None) -> None:
    """The exact build script PACKAGE is built with (environment included).

    PACKAGE: a package of the profile, or a recipe file (pkgs/NAME.yaml). On a terminal,
    control characters but line breaks and tabs are shown escaped (\\x1b)."""
    from ..build.buildjob import build_job

    home = _home(write=False)
    resolved, node = _resolve_package(package, profile)
    job = build_job(resolved, node, home, open_store(home), home.jobs)
    script = escaped(job.script, keep="\n\t") if sys.stdout.isatty() else job.script
    click.echo(script, nl=False, color=True)  # the script's bytes as they are, off a terminal


@cli.command()
@click.argument("package")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-p", "--profile", help=PROFILE_HELP)
def bdir(package: str, folder: Path, profile: str | None) -> None:
    """Unpack PACKAGE's sources into FOLDER/src with its build script FOLDER/build.sh.

    `bash FOLDER/build.sh` then builds by hand exactly as `hit build` would, except that it
    installs into FOLDER/artifact rather than the store. PACKAGE: a package of the profile,
    or a recipe file (pkgs/NAME.yaml).
    """
    from ..build.builder import bdir as make_bdir
    from ..build.buildjob import build_job

    home = _home()
    resolved, node = _resolve_package(package, profile)
    job = build_job(resolved, node, home, open_store(home), home.jobs, folder.absolute())
    script = make_bdir(job)
    click.echo(f"sources in {folder / 'src'}; run: bash {script}")


@cli.command()
@click.argument("what", required=False, metavar="[URL_OR_FILE | PROFILE.yaml]")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="add every archive and patch in this folder, and a seed folder's sha256/, to the cache",
)
def fetch(what: str | None, from_dir: Path | None) -> None:
    """Put sources into the cache.

    With a URL or file: fetch it and print its sha256 and a `sources:` snippet. With a
    PROFILE.yaml: fetch everything its recipes download (URL sources and patches, remote git
    repositories), so that `hit build` then needs no internet. With --from DIR: seed the
    cache from DIR (for sites without internet: a folder of upstream tarballs, or what
    `hdmod fetch SITE.yaml --to DIR` made).
    """
    from ..urls import is_url

    home = _home()
    if (what is None) == (from_dir is None):
        raise click.UsageError("give either URL_OR_FILE, PROFILE.yaml or --from DIR")
    if from_dir is not None:
        from ..build.sources import seed_from

        added = seed_from(home.source_cache, from_dir)
        for sha, name in added:
            click.echo(escaped(f"{sha}  {name}"))
        click.echo(f"{len(added)} source(s) added to {home.source_cache}", err=True)
        return
    assert what is not None
    if what.endswith((".yaml", ".yml")) and not is_url(what):
        from ..publish.fetches import fetch_profile

        done = fetch_profile(
            Path(os.path.abspath(what)), home, lambda s: click.echo(escaped(s), err=True)
        )
        click.echo(
            escaped(f"{done.needed} download(s) of {what} in {done.folder} ({done.fetched} new)")
        )
        return
    from ..build.sources import fetch_any

    sha, url = fetch_any(home.source_cache, what, home.mirrors)
    click.echo(f"sha256: {sha}\n\nsources:\n  - url: {url}\n    sha256: {sha}")


@cli.command()
@click.argument("what", metavar="URL_OR_FILE")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="default: NAME.yaml"
)
@click.option("-f", "--force", is_flag=True, help="replace the output file if it exists")
@click.option("--name", help="the package name (default: guessed)")
@click.option("--version", "version", help="the version (default: guessed)")
def create(what: str, output: Path | None, force: bool, name, version) -> None:
    """Write a starting recipe for the source archive URL_OR_FILE (fetched into the cache).

    Name and version come from a Python distribution's metadata or the file name
    (foo-1.2.3.tar.gz), the build system from the archive's top folder (pyproject.toml or
    setup.py, meson.build, CMakeLists.txt, configure, Makefile); the sources: entry has the
    archive's sha256. Check every line before building with it.
    """
    from ..publish.create import create_recipe

    home = _home()
    file, made = create_recipe(home.source_cache, what, home.mirrors, output, force, name, version)
    system = made.build_system or "none recognised: write its build: script"
    click.echo(escaped(f"{file}: {made.name} {made.version}, build_system: {system}"))


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[PROFILE.yaml] DIR")
@click.option("-j", "--jobs", type=click.IntRange(1), help="builds at once")
@click.option(
    "--python",
    "python",
    default="python3",
    show_default=True,
    help="for a profile without its own Python: the one whose venv DIR gets",
)
@click.option("--no-python", is_flag=True, help="no Python venv in DIR")
def develop(args, jobs, python, no_python) -> None:
    """Build PROFILE (default.yaml), then make DIR a writable environment over it.

    DIR holds writable folders linking every file of the profile's packages, a Python venv
    (so `DIR/bin/pip install` works), `DIR/activate` (bash/zsh) and modulefiles in
    DIR/modulefiles. It is a gc root while it exists; rerun to update it in place.
    """
    from ..names import text_path
    from ..progress import Progress
    from ..publish.develop import check_folder
    from ..publish.develop import develop as make
    from ..publish.profilebuild import build_and_assemble

    if len(args) > 2:
        raise click.UsageError("give [PROFILE.yaml] DIR")
    profile, folder = args if len(args) == 2 else ("default.yaml", args[0])
    target = Path(folder).absolute()
    check_folder(target)
    text_path(Path(profile))  # its link is named in records once built: refused before
    home = _home()
    resolved = _resolve(profile)
    prefix = build_and_assemble(resolved, home, jobs or home.jobs, Progress(len(resolved.nodes)))
    for change in make(home, open_store(home), prefix, target, None if no_python else python):
        click.echo(change, err=True)
    import shlex  # the hint is pasted into a shell: the folder's name quoted for it

    activate, modules = shlex.quote(f"{target}/activate"), shlex.quote(f"{target}/modulefiles/lmod")
    click.echo(escaped(f"{target}: source {activate}  (or: module use {modules})"))


for command in (gc, cp, mv, rm, diff, history, rollback, verify, purge):
    cli.add_command(command)
cli.add_command(externals_group("hit"))


def main() -> None:
    """The `hit` console script: run the CLI, exit with its code (no traceback) at once
    (guard.leave)."""
    leave(run_cli(cli, "hit"))


if __name__ == "__main__":
    from .noop import answer_early
    from .process import interrupted_early

    try:  # as the console script (cli/entry.py) does
        answer_early(sys.argv[1:])
    except KeyboardInterrupt:
        interrupted_early("hit")
    main()
