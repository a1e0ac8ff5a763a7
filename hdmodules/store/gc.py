"""Garbage collection: mark what the roots reach, sweep the rest.

Reachable means: each root's profile, every artifact a profile lists, and their dependencies,
transitively (read from each artifact's build spec), plus the temporary roots of builds in
flight. The collector holds the store's GC lock exclusive, so it waits for running builds
and builds wait for it. Each dead artifact is first renamed into `.trash/` (one atomic step
out of the store's namespace: nothing is ever left that looks installed but misses files),
then removed; the trash a killed collector leaves behind is emptied by the next one.
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
from ..spec.buildspec import record_id, references
from . import roots as gcroots
from .layout import MANIFEST, META, Store, read_spec, remove_tree

if TYPE_CHECKING:
    from ..spec.resolve import Resolved
    from .home import Home


@dataclass
class Artifact:
    """One folder of the store as the collector sees it: its id, what it keeps alive, whether it is
    complete."""

    prefix: Path
    id: str
    refs: list[str]  # ids it keeps alive: dependencies, or a profile's artifacts
    complete: bool


@dataclass
class Report:
    """What a collection did (or would do): removed ids, bytes freed, roots and records kept or
    dropped, timings in seconds."""

    removed: list[str] = field(default_factory=list)
    kept_recent: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    stale: list[gcroots.Root] = field(default_factory=list)
    dropped: list[gcroots.Root] = field(default_factory=list)
    users: list[gcroots.UseRecord] = field(default_factory=list)  # users' records honoured
    dropped_users: list[gcroots.UseRecord] = field(default_factory=list)
    bad_records: list[gcroots.BadRecord] = field(default_factory=list)  # skipped, with why
    mark_seconds: float = 0.0
    sweep_seconds: float = 0.0
    modulefiles_removed: list[Path] = field(default_factory=list)  # the user's, now orphans
    sources_removed: list[str] | None = None  # sha256 of cached sources; None: not asked


def scan(store: Store) -> dict[Path, Artifact]:
    """Every artifact folder of this store (complete or not), by prefix, with its id and the
    ids it keeps alive (`buildspec.references`: a build's dependencies, a profile's
    artifacts). A folder without a readable build.json has the id "" and keeps nothing
    alive."""
    out = {}
    for prefix in store.prefixes():
        complete = (prefix / META / MANIFEST).exists()
        record = read_spec(prefix)
        out[prefix] = Artifact(prefix, record_id(record), list(references(record)), complete)
    return out


def reachable(
    store: Store, gc_roots: Path, artifacts: dict[Path, Artifact]
) -> tuple[set[Path], list[gcroots.Root]]:
    """The live set, and the roots found (stale ones keep the profile they last reached)."""
    by_id = {a.id: a.prefix for a in artifacts.values() if a.id}
    found = gcroots.list_roots(gc_roots, store.root)
    starts = [r.target or r.last for r in found if (r.target or r.last)]
    starts += list(gcroots.temp_prefixes(gc_roots))
    starts += gcroots.generation_targets(gc_roots)
    for record in gcroots.use_records(gc_roots):
        if record.state != "gone":  # alive, or a home we cannot look into: keep, to be safe
            starts += [by_id[i] for i in record.ids if i in by_id]
    return _reach_from(store, artifacts, by_id, starts), found


def _reach_from(
    store: Store, artifacts: dict[Path, Artifact], by_id: dict[str, Path], starts: list[Path]
) -> set[Path]:
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


def empty_trash(store: Store) -> None:
    """Remove what an earlier collection moved into the trash (a killed one may have left some)."""
    if store.trash.exists():
        for leftover in store.trash.iterdir():
            remove_tree(leftover)


def collect(
    store: Store,
    gc_roots: Path,
    dry_run: bool = False,
    older_than: float | None = None,
    drop_stale: bool = False,
    on_wait=None,
) -> Report:
    """Mark and sweep under the store's GC lock (exclusive: it waits for running builds and
    they wait for it; `on_wait()` is called once if it has to wait). `older_than` (seconds)
    keeps unreachable artifacts built or used more recently; `drop_stale` forgets registered
    roots whose link is gone. With `dry_run` nothing is removed or forgotten. Returns what
    was (or would be) removed, kept and dropped, with timings in seconds."""
    report = Report()
    with store.gc_lock(True, on_wait):
        if not dry_run:
            empty_trash(store)
        start = time.monotonic()
        _forget_gone_roots(report, store, gc_roots, drop_stale, dry_run)
        artifacts = scan(store)
        live, found = reachable(store, gc_roots, artifacts)
        report.stale = [r for r in found if r.stale]
        dead = _dead(store, artifacts, live, older_than, report)
        report.mark_seconds = time.monotonic() - start
        start = time.monotonic()
        _sweep(store, [artifacts[p] for p in dead], report, dry_run)
        report.sweep_seconds = time.monotonic() - start
    return report


def _forget_gone_roots(
    report: Report, store: Store, gc_roots: Path, drop_stale: bool, dry_run: bool
) -> None:
    """Drop stale registered roots (with `drop_stale`) and users' records whose link no
    longer points at the recorded profile; note the records honoured and the bad ones."""
    if drop_stale:
        for r in gcroots.list_roots(gc_roots, store.root):
            if r.stale and r.own:
                report.dropped.append(r)
                if not dry_run:
                    gcroots.deregister(gc_roots, r.link)
    for record in gcroots.use_records(gc_roots, report.bad_records):
        if record.state != "gone":
            report.users.append(record)
            continue
        report.dropped_users.append(record)
        if not dry_run:
            record.file.unlink(missing_ok=True)


def _dead(
    store: Store,
    artifacts: dict[Path, Artifact],
    live: set[Path],
    older_than: float | None,
    report: Report,
) -> list[Path]:
    """The prefixes to remove: not live, and not used within `older_than` seconds."""
    now = time.time()
    dead = []
    for prefix, art in sorted(artifacts.items()):
        if prefix in live:
            continue
        if older_than is not None and art.complete:
            name, _, h = art.id.partition("/")
            used = store.last_used(name, h) or (prefix / META / MANIFEST).stat().st_mtime
            if now - used < older_than:
                report.kept_recent.append(art.id)
                continue
        dead.append(prefix)
    return dead


def _sweep(store: Store, dead: list[Artifact], report: Report, dry_run: bool) -> None:
    """Each dead artifact out of the store's namespace in one rename, then removed."""
    for art in dead:
        prefix = art.prefix
        report.removed.append(art.id or f"{prefix.parent.name}/{prefix.name} (incomplete)")
        report.bytes_freed += _size(prefix)
        if not dry_run:
            move_out(store, prefix)  # out of the namespace first: never half-visible
    if not dry_run:
        empty_trash(store)


def purge(store: Store, gc_roots: Path, ids: list[str]) -> list[str]:
    """Remove the given artifacts now; refused for any a root still reaches."""
    with store.gc_lock(True):
        artifacts = scan(store)
        by_id = {a.id: p for p, a in artifacts.items() if a.id}
        targets = []
        for i in ids:
            prefix = store.find(i) or by_id.get(i)
            if prefix is None:
                raise HitError(f"no artifact {i} in {store.root}")
            targets.append(prefix)
        found = gcroots.list_roots(gc_roots, store.root)
        for root in found:
            start = root.target or root.last
            if start is None:
                continue
            live = _reach_from(store, artifacts, by_id, [start])
            for prefix in targets:
                if prefix in live:
                    raise HitError(
                        f"{artifacts[prefix].id} is still reached from the root {root.link}; "
                        f"remove that link first (`hit rm {root.link}`)"
                    )
        for prefix in targets:
            move_out(store, prefix)
        empty_trash(store)
        return [artifacts[p].id for p in targets]


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
    """What `hit gc` was asked to do. `older_than` is the age as given (`30d`, durations.py);
    `keep_sources` the sha256 of the cached sources to keep (None: leave the cache alone)."""

    dry_run: bool = False
    older_than: str | None = None
    drop_stale: bool = False
    keep_sources: frozenset[str] | None = None


def sources_to_keep(resolved: Iterable[Resolved]) -> frozenset[str]:
    """The sha256 of every fetched source and patch of every package of these resolved
    profiles: what `hit gc --sources PROFILE.yaml...` keeps in the source cache."""
    recipes = [n.recipe for r in resolved for n in r.nodes.values()]
    return frozenset(s.sha256 for r in recipes for s in (*r.sources, *r.patches) if s.sha256)


def collect_home(
    home: Home, store: Store, request: Request, on_wait: Callable[[], None] | None = None
) -> Report:
    """`hit gc`: collect the home's store (`collect`), then drop the module records of the
    profiles removed (roots.drop_module_records), remove the modulefiles whose artifact is
    gone from a module folder an earlier hit wrote file by file (prune_user_modules) and,
    when asked, the cached sources not kept. The user's module tree (a link, regenerated
    whole from the records of the live profiles) is the publish layer's to regenerate
    afterwards (publish/usermodules.refresh). Raises HitError for a bad `older_than`."""
    age = parse_duration(request.older_than) if request.older_than else None
    report = collect(store, home.gc_roots, request.dry_run, age, request.drop_stale, on_wait)
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


def describe(report: Report, store: Store, request: Request) -> Lines:
    """The lines `hit gc` prints for `report`: roots and records dropped or stale, each
    artifact removed (or that would be), the summary with the bytes freed (MiB), the
    modulefiles and cached sources removed."""
    verb = "would remove" if request.dry_run else "removed"
    err = [f"dropped root {r.link}: the link no longer exists" for r in report.dropped]
    err += [f"skipped a user's record {b.file}: {b.why}" for b in report.bad_records]
    err += [
        f"dropped a user's record {u.file.name}: {u.link} no longer points at {u.profile}"
        for u in report.dropped_users
    ]
    if report.users:
        kept = sum(len(u.ids) for u in report.users)
        err.append(f"kept what {len(report.users)} user profile(s) use ({kept} references)")
    for r in report.stale:
        if r not in report.dropped:
            kept = f"; kept {store.label(r.last)} it last pointed to" if r.last else ""
            err.append(
                f"stale root {r.link}: the link is gone (moved or deleted outside hit){kept}; "
                f"`hit gc --drop-stale` forgets it"
            )
    err += [f"{verb} {i}" for i in report.removed]
    if report.kept_recent:
        n = len(report.kept_recent)
        err.append(f"kept {n} unreachable artifact(s) used within {request.older_than}")
    err += [
        f"removed the modulefile {p} (its artifact is gone)" for p in report.modulefiles_removed
    ]
    out = [f"{verb} {len(report.removed)} artifact(s), {report.bytes_freed / (1 << 20):.1f} MiB"]
    if report.sources_removed is not None:
        out.append(f"{verb} {len(report.sources_removed)} cached source(s)")
    return Lines(out, err)


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
