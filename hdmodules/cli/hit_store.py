"""`hit` commands about what the store holds and what keeps it: gc, links (cp, mv, rm),
generations (history, rollback), diff, verify, purge."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .hit_helpers import _mib, _resolve, _short, _store_paths


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
    from .. import gc as collector
    from ..roots import list_roots

    home, store = _store_paths(write=not (list_ or dry_run))
    if list_:
        for r in list_roots(home.gc_roots, store.root):
            who = "" if r.own else "  (your root)"
            if r.stale:
                last = f"; keeps {_short(store, r.last)}" if r.last else ""
                click.echo(f"{r.link}  STALE: the link is gone or points outside the store{last}")
            else:
                click.echo(f"{r.link} -> {_short(store, r.target)}{who}")
        from ..roots import use_records

        for u in use_records(home.gc_roots):
            click.echo(f"{u.link}  (a user's profile, {u.state}: uses {len(u.ids)} artifact(s))")
        return
    keep_sources = None
    if sources:
        if not profiles:
            raise click.UsageError("--sources needs the profiles whose sources to keep")
        keep_sources = {
            s.sha256
            for p in profiles
            for n in _resolve(p).nodes.values()
            for s in n.recipe.sources
            if s.sha256
        }
    elif profiles:
        raise click.UsageError("profiles are only taken with --sources")
    from ..config import parse_duration

    age = parse_duration(older_than) if older_than else None
    report = collector.collect(
        store, home.gc_roots, dry_run, age, drop_stale,
        on_wait=lambda: click.echo("waiting for running builds to finish ...", err=True),
    )  # fmt: skip
    verb = "would remove" if dry_run else "removed"
    for r in report.dropped:
        click.echo(f"dropped root {r.link}: the link no longer exists", err=True)
    for b in report.bad_records:
        click.echo(f"skipped a user's record {b.file}: {b.why}", err=True)
    for u in report.dropped_users:
        click.echo(f"dropped a user's record {u.file.name}: {u.link} no longer points at "
                   f"{u.profile}", err=True)  # fmt: skip
    if report.users:
        kept = sum(len(u.ids) for u in report.users)
        click.echo(f"kept what {len(report.users)} user profile(s) use ({kept} references)",
                   err=True)  # fmt: skip
    for r in report.stale:
        if r not in report.dropped:
            kept = f"; kept {_short(store, r.last)} it last pointed to" if r.last else ""
            click.echo(
                f"stale root {r.link}: the link is gone (moved or deleted outside hit){kept}; "
                f"`hit gc --drop-stale` forgets it",
                err=True,
            )
    for i in report.removed:
        click.echo(f"{verb} {i}", err=True)
    if report.kept_recent:
        click.echo(f"kept {len(report.kept_recent)} unreachable artifact(s) used within "
                   f"{older_than}", err=True)  # fmt: skip
    click.echo(f"{verb} {len(report.removed)} artifact(s), {_mib(report.bytes_freed)}")
    if not dry_run and report.removed:
        from ..modulefiles import prune_user_modules

        for path in prune_user_modules(home.root, store):
            click.echo(f"removed the modulefile {path} (its artifact is gone)", err=True)
    if keep_sources is not None:
        gone = collector.collect_sources(home.source_cache, keep_sources, dry_run)
        click.echo(f"{verb} {len(gone)} cached source(s)")


def _link_command(name: str, doc: str, fn):
    @click.command(name, help=doc)
    @click.argument("link", type=click.Path(path_type=Path))
    @click.argument("new", type=click.Path(path_type=Path))
    def command(link: Path, new: Path) -> None:
        home, store = _store_paths()
        target = fn(home.gc_roots, store.root, link.absolute(), new.absolute())
        click.echo(f"{new} -> {target}")

    return command


def _cp(gc_roots, store, link, new):
    from ..roots import copy_link

    return copy_link(gc_roots, store, link, new)


def _mv(gc_roots, store, link, new):
    from ..roots import move_link

    return move_link(gc_roots, store, link, new)


cp = _link_command("cp", "Copy the profile link LINK to NEW; both are gc roots.", _cp)
mv = _link_command("mv", "Move the profile link LINK to NEW, moving its gc root along.", _mv)


@click.command("rm")
@click.argument("link", type=click.Path(path_type=Path))
def rm(link: Path) -> None:
    """Remove the profile link LINK and its gc root (`hit gc` may then collect the profile)."""
    from ..roots import forget_use, remove_link

    home, store = _store_paths()
    target = remove_link(home.gc_roots, store.root, link.absolute())
    for up in home.upstreams:
        forget_use(up / "gcroots", link.absolute())
    click.echo(f"removed {link} (was -> {target})")


def _package_set(thing: str, store):
    """name -> artifact id for a profile YAML, a profile link (or profile in the store), or
    one artifact (by id or path); plus the specs resolution produced (for YAMLs)."""
    from ..errors import HitError
    from ..store import read_spec

    if thing.endswith((".yaml", ".yml")):
        resolved = _resolve(thing)
        specs = {n.ref.id: {"id": n.ref.id, **n.spec} for n in resolved.nodes.values()}
        return {n.name: n.ref.id for n in resolved.nodes.values()}, specs
    path = Path(thing)
    prefix = Path(os.path.realpath(path)) if path.exists() else store.find(thing)
    if prefix is None:
        raise HitError(f"{thing}: not a profile YAML, a profile link or an artifact id")
    spec = read_spec(prefix)
    if not spec:
        raise HitError(f"{thing}: {prefix} is not an artifact of the store")
    if spec.get("kind") == "profile":
        return dict(spec.get("artifacts", {})), {}
    return {spec["name"]: spec["id"]}, {}


@click.command()
@click.argument("a")
@click.argument("b")
def diff(a: str, b: str) -> None:
    """Explain how A and B differ: two profile links, two artifact ids or two profile YAMLs.

    For each package that differs, the inputs that changed its hash (source, script,
    parameter, pinned external, dependency), a changed dependency followed down to the
    input that changed first.
    """
    from ..explain import diff_sets
    from ..store import read_spec

    _home_, store = _store_paths(write=False)
    set_a, specs_a = _package_set(a, store)
    set_b, specs_b = _package_set(b, store)
    known = {**specs_a, **specs_b}

    def lookup(artifact_id: str):
        if artifact_id in known:
            return known[artifact_id]
        prefix = store.find(artifact_id)
        return read_spec(prefix) if prefix else None

    lines = diff_sets(set_a, set_b, lookup)
    click.echo("\n".join(lines) if lines else "no differences")


@click.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def history(profile: str) -> None:
    """The profiles PROFILE's link has pointed to (generations, newest last)."""
    import time

    from ..roots import generations
    from ..store import profile_link

    home, store = _store_paths(write=False)
    link = profile_link(Path(os.path.abspath(profile)))
    current = os.path.realpath(link) if link.is_symlink() else None
    for g in generations(home.gc_roots, link):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.when))
        mark = "  (current)" if str(g.target) == current else ""
        click.echo(f"{g.number:>4}  {when}  {_short(store, g.target)}{mark}")


@click.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def rollback(profile: str) -> None:
    """Point PROFILE's link back at the generation before the current one (no YAML read,
    nothing built)."""
    from ..errors import HitError
    from ..roots import generations, point
    from ..store import profile_link

    home, store = _store_paths()
    link = profile_link(Path(os.path.abspath(profile)))
    gens = generations(home.gc_roots, link)
    current = os.path.realpath(link) if link.is_symlink() else None
    now = max((g.number for g in gens if str(g.target) == current), default=None)
    earlier = [g for g in gens if now is not None and g.number < now and g.target.exists()]
    if not earlier:
        raise HitError(f"{link} has no earlier generation to go back to (`hit history`)")
    back = earlier[-1]
    point(home.gc_roots, link, back.target)
    click.echo(f"{link} -> {back.target} (generation {back.number})")


@click.command()
@click.argument("artifacts", nargs=-1, metavar="[ARTIFACT...]")
def verify(artifacts) -> None:
    """Re-hash artifacts' files against their manifests (all artifacts by default).

    ARTIFACT is an id (name/hash, or a unique start of it) or a path in the store. Prints
    what was modified, added or removed; exits 1 if anything was.
    """
    from ..errors import HitError
    from ..store import MANIFEST, META
    from ..verify import verify as check

    home, store = _store_paths(write=False)
    if artifacts:
        prefixes = []
        for a in artifacts:
            p = Path(a).absolute() if Path(a).exists() else store.find(a)
            if p is None:
                raise HitError(f"no artifact {a} in {store.root}")
            prefixes.append(p)
    else:
        prefixes = [p for p in store.prefixes() if (p / META / MANIFEST).exists()]
    bad = 0
    for prefix in prefixes:
        damage = check(prefix)
        name = _short(store, prefix)
        if damage.ok:
            click.echo(f"ok        {name}")
            continue
        bad += 1
        for kind in ("modified", "added", "removed"):
            for f in getattr(damage, kind):
                click.echo(f"{kind:<9} {name}/{f}")
    if bad:
        raise HitError(f"{bad} of {len(prefixes)} artifact(s) differ from their manifest")


@click.command()
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...")
def purge(artifacts) -> None:
    """Remove the given artifacts now (refused for any a gc root still reaches)."""
    from ..gc import purge as remove

    home, store = _store_paths()
    for i in remove(store, home.gc_roots, list(artifacts)):
        click.echo(f"removed {i}")
