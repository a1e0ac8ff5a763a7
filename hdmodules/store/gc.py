"""Garbage collection: mark what the roots reach, sweep the rest, tidy the debris.

Reachable means: what any gc root reaches (every kind, keep.gather: profile links, stale
roots, your own roots, earlier generations kept as rollback history, builds in flight, users'
records), every artifact a profile lists, and their dependencies, transitively (read from
each artifact's build spec). The collector holds the store's GC lock exclusive, so it waits
for running builds and builds wait for it. Each dead artifact is first renamed into
`.trash/` (one atomic step out of the store's namespace: nothing is ever left that looks
installed but misses files), then removed; the trash a killed collector leaves behind is
emptied by the next one. Then the generations whose profile went are forgotten, and the
build folders of builds no longer running and the empty package folders are removed
(debris.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..durations import parse_duration
from ..errors import HitError
from . import debris, generations, keep
from . import roots as gcroots
from .debris import Debris, Tidy
from .files import remove_trees
from .gcscan import Artifact, scan
from .generations import Generation, History
from .keep import Kept
from .layout import MANIFEST, META, Store

if TYPE_CHECKING:
    from ..spec.resolve import Resolved
    from .home import Home


@dataclass
class Report:
    """What a collection did (or would do): removed ids, bytes freed, what was kept and why
    (the live artifacts, the roots of each kind, keep.counts), roots and records dropped,
    generations forgotten, debris tidied, timings in seconds."""

    removed: list[str] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)
    unstamped: list[str] = field(default_factory=list)  # last use not handed down (hand_down)
    left_in_trash: list[str] = field(default_factory=list)  # by a collection killed before
    bytes_freed: int = 0
    live: int = 0  # artifacts the roots reach
    kept_by: str = ""  # keep.counts: the roots of each kind that keep something
    history: History = field(default_factory=History)
    stale: list[Kept] = field(default_factory=list)
    dropped: list[Kept] = field(default_factory=list)
    users: list[gcroots.UseRecord] = field(default_factory=list)  # users' records honoured
    dropped_users: list[gcroots.UseRecord] = field(default_factory=list)
    bad_records: list[gcroots.BadRecord] = field(default_factory=list)  # skipped, with why
    forgotten: list[tuple[Path, Generation]] = field(default_factory=list)  # their profile went
    debris: Debris | None = None
    mark_seconds: float = 0.0
    sweep_seconds: float = 0.0
    modulefiles_removed: list[Path] = field(default_factory=list)  # the user's, now orphans
    sources_removed: list[str] | None = None  # sha256 of cached sources; None: not asked


def reachable(
    store: Store,
    gc_roots: Path,
    artifacts: dict[Path, Artifact],
    history: History | None = None,
) -> tuple[set[Path], list[Kept]]:
    """The live set, and every gc root found (keep.gather; earlier generations chosen by
    `history`, none by default)."""
    kept = keep.gather(gc_roots, store, history or History())
    return _reach_from(store, artifacts, _starts(kept, artifacts)), kept


def _starts(kept: list[Kept], artifacts: dict[Path, Artifact]) -> list[Path]:
    """The store paths the roots `kept` name, a user's record's ids looked up here."""
    by_id = _by_id(artifacts)
    return [p for k in kept for p in (*k.paths, *(by_id[i] for i in k.ids if i in by_id))]


def _by_id(artifacts: dict[Path, Artifact]) -> dict[str, Path]:
    return {a.id: a.prefix for a in artifacts.values() if a.id}


def _reach_from(store: Store, artifacts: dict[Path, Artifact], starts: list[Path]) -> set[Path]:
    by_id = _by_id(artifacts)
    live: set[Path] = set()
    todo = list(starts)
    while todo:
        path = todo.pop()
        # a root may point inside an artifact (a file of a profile): climb to its prefix
        while path not in artifacts and path != store.root and path.parent != path:
            path = path.parent
        if path in live or path not in artifacts:
            continue
        live.add(path)
        todo += [by_id[i] for i in artifacts[path].refs if i in by_id]
    return live


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


def move_out(store: Store, prefix: Path) -> None:
    """Take an artifact out of the store's namespace in one rename (removed later)."""
    store.trash.mkdir(exist_ok=True)
    os.chmod(prefix.parent, 0o755)
    os.replace(prefix, store.trash / f"{prefix.parent.name}-{prefix.name}-{os.getpid()}")


def empty_trash(store: Store) -> list[str]:
    """Remove what this collection, or an earlier one killed meanwhile, moved into the trash:
    several trees at once (files.remove_trees). Returns the names of what was there (each
    `<name>-<folder>-<pid of the collector>`), sorted."""
    if not store.trash.exists():
        return []
    trees = sorted(store.trash.iterdir())
    remove_trees(trees)
    return [t.name for t in trees]


def collect(
    store: Store,
    gc_roots: Path,
    dry_run: bool = False,
    older_than: float | None = None,
    drop_stale: bool = False,
    on_wait=None,
    history: History | None = None,
    tidy: Tidy | None = None,
) -> Report:
    """Mark and sweep under the store's GC lock (exclusive: it waits for running builds and
    they wait for it; `on_wait()` is called once if it has to wait). The roots are every
    kind keep.gather finds, earlier generations chosen by `history` (none by default).
    `older_than` (seconds) keeps unreachable artifacts built or used more recently;
    `drop_stale` forgets stale roots (registered links that are gone, stale generations).
    The generations whose profile is removed are forgotten; with `tidy`, the build folders
    of builds no longer running and the empty package folders are removed too
    (debris.tidy). With `dry_run` nothing is removed or forgotten. Returns what was (or
    would be) removed, kept and dropped, with timings in seconds."""
    history = history or History()
    report = Report(history=history)
    with store.gc_lock(True, on_wait):
        if not dry_run:  # what a collection killed half way left (move_out's names)
            report.left_in_trash = empty_trash(store)
        elif store.trash.is_dir():
            report.left_in_trash = sorted(t.name for t in store.trash.iterdir())
        start = time.monotonic()
        kept = _forget_gone_roots(report, store, gc_roots, history, drop_stale, dry_run)
        artifacts = scan(store)
        live = _reach_from(store, artifacts, _starts(kept, artifacts))
        report.live, report.kept_by = len(live), keep.counts(kept, history)
        report.stale = [k for k in kept if k.kind == "stale"]
        unreachable = [artifacts[p] for p in sorted(artifacts) if p not in live]
        uses = older_than is not None or not dry_run  # (a dry run keeps every stamp)
        when = last_used(store, unreachable) if uses else {}
        dead = _dead(unreachable, when, older_than, report)
        report.mark_seconds = time.monotonic() - start
        start = time.monotonic()
        removed = [artifacts[p] for p in dead]
        if not dry_run:
            report.unstamped = hand_down(store, artifacts, removed, when)
        _sweep(store, removed, report, dry_run)
        report.forgotten = generations.forget(gc_roots, set(dead), dry_run)
        if tidy is not None:
            gone = set(dead)
            holding = frozenset(os.path.dirname(str(p)) for p in artifacts if p not in gone)
            report.debris = debris.tidy(store, tidy, dry_run, gone, _size, holding)
        report.sweep_seconds = time.monotonic() - start
    return report


def _forget_gone_roots(
    report: Report,
    store: Store,
    gc_roots: Path,
    history: History,
    drop_stale: bool,
    dry_run: bool,
) -> list[Kept]:
    """Drop stale roots (with `drop_stale`: registered links that are gone, stale marks of
    generations) and users' records whose link no longer points at the recorded profile;
    note the records honoured and the bad ones. Returns the roots that remain."""
    kept = keep.gather(gc_roots, store, history)
    if drop_stale:
        report.dropped = [k for k in kept if k.kind == "stale" and k.link is not None]
        for k in report.dropped:
            if not dry_run and k.number is None:
                gcroots.deregister(gc_roots, k.link)
        generations.drop_stale(gc_roots, dry_run)
    for record in gcroots.use_records(gc_roots, report.bad_records):
        if record.state != "gone":
            report.users.append(record)
            continue
        report.dropped_users.append(record)
        if not dry_run:
            record.file.unlink(missing_ok=True)
    return [k for k in kept if k not in report.dropped]


def _dead(
    unreachable: list[Artifact], when: dict[Path, float], older_than: float | None, report: Report
) -> list[Path]:
    """The prefixes to remove: of the `unreachable` artifacts, those not used within
    `older_than` seconds (`when`: last_used's), and every incomplete one."""
    if older_than is None:
        return [art.prefix for art in unreachable]
    now = time.time()
    dead = []
    for art in unreachable:
        if art.prefix in when and now - when[art.prefix] < older_than:
            report.kept_recent.append(art.id)
            continue
        dead.append(art.prefix)
    return dead


def last_used(store: Store, arts: list[Artifact]) -> dict[Path, float]:
    """When each complete artifact of `arts` (unreachable ones, which their users are
    too) was last used, in seconds since the epoch: the newest of its own `.used` stamp
    (else its manifest's mtime) and the last use of every one of `arts` that holds it (a
    profile holds its packages, a package its dependencies).

    A switch stamps its profile alone (publish/profilebuild.link_plan: stamping its 5,000
    packages was 15 ms of each switch, issue 18), a build everything it used, and an
    artifact that leaves the store hands its last use down to what it held (`hand_down`):
    so an artifact's last use is that of the last build or switch that used it, as when
    every switch stamped every artifact. Each artifact is reached once, from the most
    recently used first, so a damaged store's cycle ends too."""
    own = {art.prefix: _own_use(store, art) for art in arts if art.complete}
    by_id = {a.id: a for a in arts if a.prefix in own}
    when: dict[Path, float] = {}
    for art in sorted((a for a in arts if a.prefix in own), key=lambda a: -own[a.prefix]):
        todo = [art]
        while todo:
            held = todo.pop()
            if held.prefix not in when:
                when[held.prefix] = own[art.prefix]
                todo += [by_id[i] for i in held.refs if i in by_id]
    return when


def hand_down(
    store: Store, artifacts: dict[Path, Artifact], removed: list[Artifact], when: dict[Path, float]
) -> list[str]:
    """Before the artifacts `removed` leave the store, give each artifact of `artifacts`
    that one of them holds and that stays their last use (`when`, last_used's), as its own
    `.used` stamp where that is later than its own last use, so that it is not lost with
    them (last_used). Returns the ids whose stamp could not be written (another user's
    file in a shared store: setting a time needs its owner), which gc --older-than may
    then count as used earlier; raises nothing."""
    gone = {art.prefix for art in removed}
    by_id = _by_id(artifacts)
    later: dict[Path, float] = {}
    for art in removed:
        t = when.get(art.prefix)
        for i in art.refs if t is not None else ():
            held = by_id.get(i)
            if held is not None and held not in gone and t > later.get(held, 0.0):
                later[held] = t
    failed = []
    for prefix, t in later.items():
        art = artifacts[prefix]
        try:
            if _own_use(store, art) < t:
                store.stamp_used(*_name_and_hash(art), t)
        except OSError:
            failed.append(art.id)
    return failed


def _own_use(store: Store, art: Artifact) -> float:
    """When `art` (complete) was last used by its own stamp, else when it was installed
    (its manifest's mtime), in seconds since the epoch. Raises OSError."""
    return store.last_used(*_name_and_hash(art)) or (art.prefix / META / MANIFEST).stat().st_mtime


def _name_and_hash(art: Artifact) -> tuple[str, str]:
    """The package name and the hash of `art`'s id (`name/hash`)."""
    name, _, hash_ = art.id.partition("/")
    return name, hash_


def users_first(arts: list[Artifact]) -> list[Artifact]:
    """`arts` ordered so that each comes before the artifacts it uses (a profile before its
    packages, a package before its dependencies): removed in this order, a collection
    killed half way never leaves an artifact whose dependencies or links are gone (the
    closure invariant Nix keeps by deleting referrers first)."""
    from graphlib import CycleError, TopologicalSorter

    by_id = {a.id: a.prefix for a in arts if a.id}
    graph = {a.prefix: {by_id[i] for i in a.refs if i in by_id} for a in arts}
    try:
        order = list(TopologicalSorter(graph).static_order())  # what is used, first
    except CycleError:  # a damaged build.json: no order keeps the closure whole
        return arts
    at = {a.prefix: a for a in arts}
    return [at[p] for p in reversed(order)]


def _sweep(store: Store, dead: list[Artifact], report: Report, dry_run: bool) -> None:
    """Each dead artifact out of the store's namespace in one rename (users first), then
    removed."""
    for art in users_first(dead):
        prefix = art.prefix
        report.removed.append(art.id or f"{prefix.parent.name}/{prefix.name} (incomplete)")
        report.bytes_freed += _size(prefix)
        if not dry_run:
            move_out(store, prefix)  # out of the namespace first: never half-visible
            _forget_use(store, art)
    if not dry_run:
        empty_trash(store)


def _forget_use(store: Store, art: Artifact) -> None:
    """Remove the `.used` stamp of `art`, which left the store: its last use was handed
    down (hand_down), and a stamp per artifact ever built would pile up."""
    if art.id:
        store.forget_used(*_name_and_hash(art))


# what `hit purge` says of a root that reaches what it was asked to remove, by kind
HOLDS = {
    "link": ("a profile link", "remove that link first (`hit rm {link}`)"),
    "stale": (
        "a stale root: a link moved or removed outside hit may still point there",
        "`hit gc --drop-stale` forgets it",
    ),
    "yours": ("your root in the roots folder", "remove {name} first"),
    "generation": ("rollback history", "it is kept by {why} in config.yaml"),
    "temporary": ("a build running now", "wait until it ends"),
    "user": ("a user's record", "the user's link still points at that profile"),
}


@dataclass(frozen=True)
class Purged:
    """What `hit purge` removed: the artifacts asked for, and the artifacts no root keeps
    that used them (`also`: profiles of earlier generations, say), taken along so that
    nothing left in the store points at a removed artifact; `unstamped`: as Report's."""

    removed: list[str]
    also: list[str]
    unstamped: list[str] = field(default_factory=list)


def purge(store: Store, gc_roots: Path, ids: list[str], history: History | None = None) -> Purged:
    """Remove the given artifacts of this store (ids, unique starts of them, or package
    names naming one artifact) now, with the artifacts no root keeps that use them.
    Refused, naming the root, for any that a gc root of any kind reaches (keep.gather,
    earlier generations chosen by `history`). Raises HitError."""
    history = history or History()
    with store.gc_lock(True):
        artifacts = scan(store)
        targets = {store.pick(i, local=True) for i in ids}
        for k in keep.gather(gc_roots, store, history):
            if not k.keeps:
                continue
            live = _reach_from(store, artifacts, _starts([k], artifacts))
            for prefix in sorted(targets & live):
                what, hint = HOLDS[k.kind]
                hint = hint.format(link=k.link, name=k.name, why=history.why)
                raise HitError(
                    f"{artifacts[prefix].id} is still reached from the root {k.name}, "
                    f"{what}; {hint}"
                )
        also = _users_of(artifacts, targets)
        removed = [artifacts[p] for p in sorted(targets | also)]
        unstamped = hand_down(store, artifacts, removed, last_used(store, removed))
        for art in users_first(removed):
            move_out(store, art.prefix)
            _forget_use(store, art)
        empty_trash(store)
        gone = targets | also
        generations.forget(gc_roots, gone)
        debris.empty_package_folders(store, False, set())
        return Purged(
            sorted(artifacts[p].id for p in targets),
            sorted(artifacts[p].id for p in also),
            unstamped,
        )


def _users_of(artifacts: dict[Path, Artifact], targets: set[Path]) -> set[Path]:
    """The artifacts that use any of `targets`, directly or through others (no root reaches
    them: a root that did would reach the targets)."""
    by_id = _by_id(artifacts)
    users: set[Path] = set()
    grew = True
    while grew:
        grew = False
        for prefix, art in artifacts.items():
            if prefix in targets or prefix in users:
                continue
            if any(by_id.get(i) in targets | users for i in art.refs):
                users.add(prefix)
                grew = True
    return users


def collect_sources(cache: Path, keep: set[str], dry_run: bool = False) -> list[str]:
    """Remove cached sources whose sha256 is not in `keep`."""
    folder = cache / "sha256"
    removed = []
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.name.startswith(".") or f.name in keep:
                continue
            removed.append(f.name)
            if not dry_run:
                f.unlink()
    return removed


# --- `hit gc`: what the user asked, and what to tell them ---------------------------------


@dataclass(frozen=True)
class Request:
    """What `hit gc` was asked to do. `older_than` and `keep_history` are ages as given
    (`30d`, durations.py); `keep_history` replaces config.yaml's history rule for this run;
    `keep_sources` the sha256 of the cached sources to keep (None: leave the cache alone)."""

    dry_run: bool = False
    older_than: str | None = None
    drop_stale: bool = False
    keep_sources: frozenset[str] | None = None
    keep_history: str | None = None


def sources_to_keep(resolved: Iterable[Resolved]) -> frozenset[str]:
    """The sha256 of every fetched source and patch of every package of these resolved
    profiles: what `hit gc --sources PROFILE.yaml...` keeps in the source cache."""
    recipes = [n.recipe for r in resolved for n in r.nodes.values()]
    return frozenset(s.sha256 for r in recipes for s in (*r.sources, *r.patches) if s.sha256)


def history_rule(home: Home, keep_history: str | None = None) -> History:
    """Which earlier generations are gc roots: `--keep-history AGE` when given, else
    config.yaml's `history_keep` and `history_days`. Raises HitError for a bad AGE."""
    if keep_history is not None:
        age = parse_duration(keep_history, "--keep-history")
        return History(0, age, f"--keep-history {keep_history}")
    return generations.history_of(home.history_keep, home.history_days)


def tidy_rule(home: Home) -> Tidy:
    """Where the home's build folders are, and how long a failure's is kept."""
    days = home.keep_failed_days
    return Tidy(home.build_temp, days * 86400.0, f"keep_failed_days: {days}")


def collect_home(
    home: Home, store: Store, request: Request, on_wait: Callable[[], None] | None = None
) -> Report:
    """`hit gc`: collect the home's store (`collect`, with the home's history rule or
    `--keep-history`, and its debris rule), then drop the module records of the profiles
    removed (roots.drop_module_records), remove the modulefiles whose artifact is gone from
    a module folder an earlier hit wrote file by file (prune_user_modules) and, when asked,
    the cached sources not kept. The user's module tree (a link, regenerated whole from the
    records of the live profiles) is the publish layer's to regenerate afterwards
    (publish/usermodules.refresh). Raises HitError for a bad `older_than` or
    `keep_history`."""
    age = parse_duration(request.older_than) if request.older_than else None
    history = history_rule(home, request.keep_history)
    report = collect(
        store,
        home.gc_roots,
        request.dry_run,
        age,
        request.drop_stale,
        on_wait,
        history,
        tidy_rule(home),
    )
    if not request.dry_run:
        gcroots.drop_module_records(home.gc_roots, store)
    if not request.dry_run and report.removed:
        report.modulefiles_removed = prune_user_modules(home.root, store)
    if request.keep_sources is not None:
        report.sources_removed = collect_sources(
            home.source_cache, set(request.keep_sources), request.dry_run
        )
    return report


@dataclass(frozen=True)
class Lines:
    """What a command prints: `out` to stdout (the summary), `err` to stderr (the notes)."""

    out: list[str]
    err: list[str]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


# what gc and purge warn of for each id hand_down could not stamp
UNSTAMPED = (
    "warning: could not record in .used/ that {} was used when what it removed was "
    "(not its file's owner?); gc --older-than may count it as used earlier"
)


def describe(report: Report, store: Store, request: Request) -> Lines:
    """The lines `hit gc` prints for `report`. To stderr: roots and records dropped or
    stale, each artifact removed (or that would be), the generations forgotten and why,
    the build folders removed or kept and why, the empty folders, the modulefiles removed.
    To stdout: what was removed (bytes freed, MiB), what was kept and the roots of each kind
    that keep it, the debris and cached sources removed."""
    dry = request.dry_run
    verb, drop = ("would remove", "would drop") if dry else ("removed", "dropped")
    err = [_dropped(k, drop, store) for k in report.dropped]
    if report.left_in_trash:
        left = report.left_in_trash
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        emptied = "would empty" if dry else "emptied"
        err.append(
            f"{emptied} what an interrupted collection had moved out of the store "
            f"({len(left)} folder(s) of .trash/: {shown})"
        )
    err += [f"skipped a user's record {b.file}: {b.why}" for b in report.bad_records]
    err += [
        f"{drop} a user's record {u.file.name}: {u.link} no longer points at {u.profile}"
        for u in report.dropped_users
    ]
    if report.users:
        kept = sum(len(u.ids) for u in report.users)
        err.append(f"kept what {len(report.users)} user profile(s) use ({kept} references)")
    err += [_stale(k, store) for k in report.stale]
    err += [f"{verb} {i}" for i in report.removed]
    err += _forgotten(report, dry)
    err += [UNSTAMPED.format(i) for i in report.unstamped]
    if report.kept_recent:
        n = len(report.kept_recent)
        err.append(f"kept {n} unreachable artifact(s) used within {request.older_than}")
    debris_lines, debris_out = _debris(report.debris, verb)
    err += debris_lines
    err += [
        f"removed the modulefile {p} (its artifact is gone)" for p in report.modulefiles_removed
    ]
    out = [f"{verb} {len(report.removed)} artifact(s), {_mib(report.bytes_freed)}"]
    if report.kept_by:
        out.append(f"kept {report.live} artifact(s), reached from {report.kept_by}")
    else:
        out.append("kept 0 artifact(s): no gc root keeps anything")
    out += debris_out
    if report.sources_removed is not None:
        out.append(f"{verb} {len(report.sources_removed)} cached source(s)")
    return Lines(out, err)


def _dropped(k: Kept, drop: str, store: Store) -> str:
    if k.number is None:
        return f"{drop} root {k.link}: the link no longer exists"
    profile = store.label(k.paths[0]) if k.paths else "?"
    return (
        f"{drop} root {k.name}: the link was moved or removed outside hit while it pointed at "
        f"{profile}; that profile is no longer kept for it (a moved link still pointing "
        f"there would dangle)"
    )


def _stale(k: Kept, store: Store) -> str:
    profile = store.label(k.paths[0]) if k.paths else None
    if k.number is None:
        kept = f"; kept {profile} it last pointed to" if profile else ""
        return (
            f"stale root {k.link}: the link is gone (moved or deleted outside hit){kept}; "
            f"`hit gc --drop-stale` forgets it"
        )
    return (
        f"stale root {k.name}: the link was moved or removed outside hit while it pointed at "
        f"{profile}, then `hit build` made it again; kept {profile} (a moved link may still "
        f"point at it); `hit gc --drop-stale` forgets it"
    )


def _forgotten(report: Report, dry_run: bool) -> list[str]:
    """One line a link whose earlier generations went with their profiles, and why."""
    by_link: dict[Path, list[int]] = {}
    for link, g in report.forgotten:
        by_link.setdefault(link, []).append(g.number)
    verb = "would forget" if dry_run else "forgot"
    history = report.history
    if history.on:
        why = f"older than the rollback history keeps ({history.why})"
    else:
        why = (
            f"rollback history is not kept ({history.why}); set history_days: N in "
            f"config.yaml, or run `hit gc --keep-history AGE`, to keep earlier generations"
        )
    return [
        f"{verb} generation(s) {', '.join(map(str, sorted(ns)))} of {link}: their profiles "
        f"are removed, {why}"
        for link, ns in sorted(by_link.items())
    ]


def _debris(found: Debris | None, verb: str) -> tuple[list[str], list[str]]:
    """The notes on build folders and empty folders, and the summary line if any."""
    if found is None:
        return [], []
    err = [f"{verb} the build folder {p}: {why}" for p, why in found.removed]
    err += [f"kept the build folder {p}: {why}" for p, why in found.kept]
    err += [f"{verb} the empty folder {p}" for p in found.empty]
    parts = []
    if found.removed:
        n, freed = len(found.removed), _mib(found.bytes_freed)
        parts.append(f"{n} build folder(s) of failed or interrupted builds ({freed})")
    if found.empty:
        parts.append(f"{len(found.empty)} empty package folder(s)")
    return err, [f"{verb} {' and '.join(parts)}"] if parts else []


ARTIFACT_LINE = re.compile(r": artifact (\S+), generated by hdmodules")


def prune_user_modules(home_root: Path, store: Store) -> list[Path]:
    """After a user's gc, in a module folder an earlier hit wrote file by file (a plain
    folder, before the first regeneration replaces it by a link): remove the modulefiles
    whose artifact is gone (each names its artifact in its header line: `: artifact
    NAME/HASH, generated by hdmodules`, see templates/lmod/module.lua and
    templates/tcl/module.tcl). A tree behind a link (the user's, regenerated whole from
    the live profiles' records, or a site's) is left alone. Returns the files removed."""
    root = home_root / "modules"
    if not root.is_dir() or root.is_symlink():
        return []
    removed = []
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(dirpath, name)
            with open(path, errors="replace") as f:
                head = f.read(400)
            m = ARTIFACT_LINE.search(head)
            if m and store.find(m.group(1)) is None:
                path.unlink()
                removed.append(path)
        if dirpath != str(root) and not os.listdir(dirpath):
            os.rmdir(dirpath)
    return removed
