"""`hit` commands about what the store holds and what keeps it: gc, links (cp, mv, rm),
generations (history, rollback), diff, verify, purge."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import escaped
from .hit_helpers import _resolve, _store_paths


@click.command()
@click.argument("profiles", nargs=-1, metavar="[PROFILE.yaml...]")
@click.option("--list", "list_", is_flag=True, help="list the gc roots of every kind")
@click.option("-n", "--dry-run", is_flag=True, help="say what would be removed, remove nothing")
@click.option(
    "--older-than",
    metavar="AGE",
    callback=lambda _c, p, v: _age(p, v),
    help="keep unreachable artifacts built or used by a build within AGE (30d, 12h)",
)
@click.option(
    "--keep-history",
    metavar="AGE",
    callback=lambda _c, p, v: _age(p, v),
    help="keep the earlier generations links left within AGE (30d), instead of config.yaml's "
    "history_keep/history_days",
)
@click.option(
    "--drop-stale",
    is_flag=True,
    help="forget stale roots: links moved or removed outside hit (their profile may then go)",
)
@click.option(
    "--sources",
    is_flag=True,
    help="also remove cached sources that no recipe of PROFILE.yaml... needs",
)
def gc(profiles, list_: bool, dry_run: bool, older_than, keep_history, drop_stale, sources):
    """Remove every artifact and profile no gc root reaches, and the debris of builds.

    Roots (`--list` shows them all): the profile links hit registered, the profile a link
    moved or removed outside hit last pointed to (stale, until --drop-stale), any symlink
    you put in the roots folder, earlier generations of links when you keep rollback
    history (history_keep/history_days in config.yaml, or --keep-history), builds running
    now (the collector waits for them), and, on a site, users' records. Reachable: a
    root's profile, the artifacts it links, their dependencies. Then build folders of
    builds no longer running (failures kept keep_failed_days) and empty package folders
    are removed, and the no-op memos of profile files that are gone. `hit gc` says what it
    kept and why.
    """
    from ..store import gc as collector

    home, store = _store_paths(write=not (list_ or dry_run))
    if list_:
        from ..store.keep import listing

        _echo(listing(home.gc_roots, store, collector.history_rule(home, keep_history)))
        return
    _bare_ages(profiles if not sources else (), older_than, keep_history)
    if profiles and not sources:
        _misplaced_words(profiles)
    keep = _sources_to_keep(profiles) if sources else None
    request = collector.Request(dry_run, older_than, drop_stale, keep, keep_history)
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
        from ..build.memo import prune

        prune(str(home.root))  # the no-op memos of profile YAML files that are gone
    _echo(lines.out)


def _age(param: click.Parameter, value: str | None) -> str | None:
    """An AGE option's value, checked when the command line is read: a wrong one is a usage
    error (exit 2, as the README says of the command line), not a failure of the gc."""
    from ..durations import parse_duration
    from ..errors import HitError

    if value is not None and not value.isdigit():  # a number alone: said with its unit below
        try:
            parse_duration(value, param.opts[0])
        except HitError as e:
            said = str(e).removeprefix(f"{param.opts[0]} ")  # click names the option
            raise click.BadParameter(said, param=param) from None
    return value


def _bare_ages(words: tuple[str, ...], older_than, keep_history) -> None:
    """An age given as a number without its unit (`_age` lets it through): one written in
    two words (`--older-than 3 days`: `words`, the arguments taken for profiles, follow it)
    is told to write it as one, a number alone to add its unit. Raises click.UsageError."""
    for option, value in (("--older-than", older_than), ("--keep-history", keep_history)):
        if value is not None and value.isdigit():
            if words:
                raise click.UsageError(
                    f"{option} {value} {words[0]}: give the age as one word, "
                    f"like {option} {value}d (units: s, m, h, d, w)"
                )
            raise click.UsageError(f"{option} {value}: give the age with its unit, like {value}d")


def _misplaced_words(profiles: tuple[str, ...]) -> None:
    """`hit gc` got words it takes only with --sources: what the words are for. Raises
    click.UsageError."""
    raise click.UsageError(
        f"unexpected {' '.join(profiles)}: PROFILE.yaml arguments are only taken with "
        f"--sources (the profiles whose cached sources to keep)"
    )


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
    """Each line, escaped (errors.escaped: a link's name may hold a line break or ESC)."""
    for line in lines:
        click.echo(escaped(line), err=err)


def _link_command(name: str, doc: str, fn):
    @click.command(name, help=doc)
    @click.argument("link", type=click.Path(path_type=Path))
    @click.argument("new", type=click.Path(path_type=Path))
    def command(link: Path, new: Path) -> None:
        from ..names import text_path

        text_path(link)  # both before anything changes
        text_path(new)
        home, store = _store_paths()
        target = fn(home.gc_roots, store.root, link.absolute(), new.absolute())
        click.echo(escaped(f"{new} -> {target}"))
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
    from ..names import text_path
    from ..store.roots import remove_link

    text_path(link)  # before the link goes
    home, store = _store_paths()
    upstreams = tuple(up.root for up in store.upstreams)
    target = remove_link(
        home.gc_roots, store.root, link.absolute(), home.upstream_gc_roots, upstreams
    )
    click.echo(escaped(f"removed {link} (was -> {target})"))
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
    from ..names import given_link
    from ..store.generations import history as lines

    home, store = _store_paths(write=False)
    _echo(lines(home.gc_roots, given_link(Path(os.path.abspath(profile))), store))


@click.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def rollback(profile: str) -> None:
    """Point PROFILE's link back at the generation before the current one (no YAML read,
    nothing built). Earlier generations survive `hit gc` only as rollback history
    (history_keep/history_days in config.yaml)."""
    from ..names import given_link
    from ..store.gc import history_rule
    from ..store.generations import rollback as back

    home, store = _store_paths()
    link = given_link(Path(os.path.abspath(profile)))
    gen, changed = back(home.gc_roots, link, history_rule(home))
    if not changed:
        click.echo(
            escaped(f"generation {gen.number} holds the profile {link} points at already; ")
            + "nothing changed"
        )
        return
    click.echo(escaped(f"{link} -> {gen.target} (generation {gen.number})"))
    _refresh_modules(home, store)  # the modules of the generation now live


@click.command()
@click.argument("artifacts", nargs=-1, metavar="[ARTIFACT...]")
def verify(artifacts) -> None:
    """Re-hash artifacts' files against their manifests (all artifacts, profiles included,
    by default), and check their links into the store.

    ARTIFACT is an id (name/hash, or a unique start of it), a package name with one
    artifact, or a path in the store. Prints what was modified, added or removed, and the
    links of a profile whose artifact is gone (dangling); exits 1 if anything is wrong.
    """
    from ..errors import HitError
    from ..store.verify import describe
    from ..store.verify import verify as check

    _home, store = _store_paths(write=False)
    damages = check(store, list(artifacts))
    _echo(describe(damages, store))
    bad = sum(not d.ok for d in damages)
    if bad:
        raise HitError(
            f"{bad} of {len(damages)} artifact(s) differ from their manifest or have dangling links"
        )


@click.command()
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...")
def purge(artifacts) -> None:
    """Remove the given artifacts now (refused, naming the root, for any a gc root of any
    kind still reaches). ARTIFACT: an id, a unique start of one, or a package name with one
    artifact. Artifacts no root keeps that use them (an earlier generation's profile, say)
    go too, so that nothing left points at a removed artifact."""
    from ..store.gc import UNSTAMPED, history_rule
    from ..store.gc import purge as remove

    home, store = _store_paths()
    done = remove(store, home.gc_roots, list(artifacts), history_rule(home))
    for i in done.removed:
        click.echo(f"removed {i}")
    for i in done.also:
        click.echo(f"removed {i} too: it used what was purged, and no gc root keeps it")
    for i in done.unstamped:
        click.echo(UNSTAMPED.format(i), err=True)
