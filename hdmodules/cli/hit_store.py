"""`hit` commands about what the store holds and what keeps it: gc, links (cp, mv, rm),
generations (history, rollback), diff, verify, purge."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .hit_helpers import _resolve, _store_paths


@click.command()
@click.argument("profiles", nargs=-1, metavar="[PROFILE.yaml...]")
@click.option("--list", "list_", is_flag=True, help="list the gc roots and what they reach")
@click.option("-n", "--dry-run", is_flag=True, help="say what would be removed, remove nothing")
@click.option(
    "--older-than",
    metavar="AGE",
    help="keep unreachable artifacts built or used by a build within AGE (30d, 12h)",
)
@click.option(
    "--drop-stale",
    is_flag=True,
    help="forget registered roots whose link is gone (their profile may then go)",
)
@click.option(
    "--sources",
    is_flag=True,
    help="also remove cached sources that no recipe of PROFILE.yaml... needs",
)
def gc(profiles, list_: bool, dry_run: bool, older_than, drop_stale: bool, sources: bool):
    """Remove every artifact and profile no gc root reaches.

    Roots are the profile links `hit build` registered, any symlink you put in the roots
    folder (names not starting with _), and the inputs of builds running right now (the
    collector waits for running builds). A root whose link was moved or deleted outside
    `hit` is reported as stale and keeps the profile it last pointed to, until
    --drop-stale. Reachable: the root's profile, the artifacts it links, their dependencies.
    """
    from ..store import gc as collector
    from ..store.roots import listing

    home, store = _store_paths(write=not (list_ or dry_run))
    if list_:
        _echo(listing(home.gc_roots, store))
        return
    keep = _sources_to_keep(profiles) if sources else None
    if profiles and not sources:
        raise click.UsageError("profiles are only taken with --sources")
    request = collector.Request(dry_run, older_than, drop_stale, keep)
    report = collector.collect_home(
        home,
        store,
        request,
        on_wait=lambda: click.echo("waiting for running builds to finish ...", err=True),
    )
    lines = collector.describe(report, store, request)
    _echo(lines.err, err=True)
    if not dry_run:
        _refresh_modules(home, store)
    _echo(lines.out)


def _refresh_modules(home, store) -> None:
    """Regenerate the user's module tree from the profiles the roots still keep (the store
    layer cannot: publish/usermodules renders it) and say what changed."""
    from ..publish.usermodules import refresh_lines

    _echo(refresh_lines(home, store), err=True)


def _sources_to_keep(profiles: tuple[str, ...]) -> frozenset[str]:
    from ..store.gc import sources_to_keep

    if not profiles:
        raise click.UsageError("--sources needs the profiles whose sources to keep")
    return sources_to_keep(_resolve(p) for p in profiles)


def _echo(lines: list[str], err: bool = False) -> None:
    for line in lines:
        click.echo(line, err=err)


def _link_command(name: str, doc: str, fn):
    @click.command(name, help=doc)
    @click.argument("link", type=click.Path(path_type=Path))
    @click.argument("new", type=click.Path(path_type=Path))
    def command(link: Path, new: Path) -> None:
        home, store = _store_paths()
        target = fn(home.gc_roots, store.root, link.absolute(), new.absolute())
        click.echo(f"{new} -> {target}")
        _refresh_modules(home, store)  # which profile's build a clashing name loads may change

    return command


def _cp(gc_roots, store, link, new):
    from ..store.roots import copy_link

    return copy_link(gc_roots, store, link, new)


def _mv(gc_roots, store, link, new):
    from ..store.roots import move_link

    return move_link(gc_roots, store, link, new)


cp = _link_command("cp", "Copy the profile link LINK to NEW; both are gc roots.", _cp)
mv = _link_command("mv", "Move the profile link LINK to NEW, moving its gc root along.", _mv)


@click.command("rm")
@click.argument("link", type=click.Path(path_type=Path))
def rm(link: Path) -> None:
    """Remove the profile link LINK and its gc root (`hit gc` may then collect the profile)."""
    from ..store.roots import remove_link

    home, store = _store_paths()
    target = remove_link(home.gc_roots, store.root, link.absolute(), home.upstream_gc_roots)
    click.echo(f"removed {link} (was -> {target})")
    _refresh_modules(home, store)


def _package_set(thing: str, store):
    """explain.package_set, resolving a profile YAML the way every command does."""
    from ..build.explain import package_set

    if thing.endswith((".yaml", ".yml")):
        return package_set(_resolve(thing), store)
    return package_set(thing, store)


@click.command()
@click.argument("a")
@click.argument("b")
def diff(a: str, b: str) -> None:
    """Explain how A and B differ: two profile links, two artifact ids or two profile YAMLs.

    For each package that differs, the inputs that changed its hash (source, script,
    parameter, pinned external, dependency), a changed dependency followed down to the
    input that changed first.
    """
    from ..build.explain import diff_sets, lookup_in

    _home_, store = _store_paths(write=False)
    set_a, specs_a = _package_set(a, store)
    set_b, specs_b = _package_set(b, store)
    lines = diff_sets(set_a, set_b, lookup_in(store, {**specs_a, **specs_b}))
    click.echo("\n".join(lines) if lines else "no differences")


@click.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def history(profile: str) -> None:
    """The profiles PROFILE's link has pointed to (generations, newest last)."""
    from ..names import profile_link
    from ..store.roots import history as lines

    home, store = _store_paths(write=False)
    _echo(lines(home.gc_roots, profile_link(Path(os.path.abspath(profile))), store))


@click.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def rollback(profile: str) -> None:
    """Point PROFILE's link back at the generation before the current one (no YAML read,
    nothing built)."""
    from ..names import profile_link
    from ..store.roots import rollback as back

    home, store = _store_paths()
    link = profile_link(Path(os.path.abspath(profile)))
    gen = back(home.gc_roots, link)
    click.echo(f"{link} -> {gen.target} (generation {gen.number})")
    _refresh_modules(home, store)  # the modules of the generation now live


@click.command()
@click.argument("artifacts", nargs=-1, metavar="[ARTIFACT...]")
def verify(artifacts) -> None:
    """Re-hash artifacts' files against their manifests (all artifacts by default).

    ARTIFACT is an id (name/hash, or a unique start of it) or a path in the store. Prints
    what was modified, added or removed; exits 1 if anything was.
    """
    from ..errors import HitError
    from ..store.verify import describe
    from ..store.verify import verify as check

    _home, store = _store_paths(write=False)
    damages = check(store, list(artifacts))
    _echo(describe(damages, store))
    bad = sum(not d.ok for d in damages)
    if bad:
        raise HitError(f"{bad} of {len(damages)} artifact(s) differ from their manifest")


@click.command()
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...")
def purge(artifacts) -> None:
    """Remove the given artifacts now (refused for any a gc root still reaches)."""
    from ..store.gc import purge as remove

    home, store = _store_paths()
    for i in remove(store, home.gc_roots, list(artifacts)):
        click.echo(f"removed {i}")
