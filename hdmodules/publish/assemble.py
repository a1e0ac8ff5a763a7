"""After the builds: a profile assembled as an artifact (a symlink farm), its link pointed at it
and registered as a gc root, a generation recorded, and the upstream stores told which of
their artifacts it uses."""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from ..build.memo import GONE, prefix_text
from ..errors import HitError
from ..spec.artifact import ArtifactRef
from ..spec.buildspec import ProfileDoc
from ..spec.resolvecache import note, seen
from ..store import roots
from ..store.generations import Switch, switch
from ..store.home import Home
from ..store.layout import MANIFEST, META, Store, abandon, read_manifest, remove_tree
from .farm import (
    EXTERNAL,
    Manifests,
    Planned,
    after_removal,
    joined_owners,
    plan_farm_links,
    write_farm,
)

if TYPE_CHECKING:  # the resolver: imported when something is resolved (quickswitch.py)
    from ..spec.resolve import Resolved
    from .pyvenv import ProfilePython  # imported for a profile with Python (7 ms)

EXTERNAL_PYTHON = f"python{EXTERNAL}"  # never a package name (names.py allows no space)
EXTERNAL_ROOT = "/(external python)"  # where its links are planned, then replaced
# beside a profile's manifest: package -> [prefix, the paths of its manifest, the stamp of
# that manifest] (assemble), a `marshal` file: some MB for 5,000 packages, written and read
# on every switch, 3-5 times faster than JSON (issue 18). Its writer is the store's owner,
# whose artifacts the reader runs anyway; one another Python cannot read is not used.
FARM_INDEX = "farm.index"


def check_link(link: Path) -> None:
    """Refuse, before anything is built, a profile link path that holds something else than a
    symlink. Raises HitError."""
    if link.exists() and not link.is_symlink():  # say so now, not after hours of building
        raise HitError(f"{link} exists and is not a symlink; move it away first")


@dataclass(frozen=True)
class ProfilePlan:
    """What assembling, linking and recording a profile takes, from a resolution (`plan_of`)
    or from the no-op memo (publish/quickswitch.py, which knows no Node): the link, the
    profile artifact and what it is made of, the artifact of each package it holds (name ->
    ref: where it is, prefix_text says when the profile is assembled), every artifact it uses (its
    packages and their dependencies, for temporary roots and upstream records) and its
    interpreter (pyvenv.profile_python; None for a profile without Python)."""

    link: Path
    ref: ArtifactRef
    doc: ProfileDoc
    held: dict[str, ArtifactRef]
    uses: tuple[ArtifactRef, ...]
    python: ProfilePython | None = None


def plan_of(resolved: Resolved, store: Store) -> ProfilePlan:
    """The ProfilePlan of `resolved`, whose artifacts are all installed."""
    from .pyvenv import profile_python

    held = {name: resolved.nodes[name].ref for name in resolved.profile_doc.artifacts}
    uses = tuple(n.ref for n in resolved.nodes.values())
    python = profile_python(resolved, store)
    doc = resolved.profile_doc
    return ProfilePlan(resolved.profile.link_path, resolved.profile_ref, doc, held, uses, python)


@dataclass(frozen=True)
class FarmLinks:
    """A profile's farm as planned before it is written (`farm_links`): the profile its link
    points at now (None: none) and that profile's index, each package's prefix and paths
    (its index's `packages`), and every link of the farm (rel -> target: `links`), with
    what the next switch may plan from (`planned`, kept in the index)."""

    previous: Path | None
    index: FarmIndex
    packages: Manifests
    links: dict[str, str]
    planned: Planned | None  # None: not one the next switch may start from (Python's)


def farm_links(plan: ProfilePlan, store: Store, stamps: dict | None = None) -> FarmLinks:
    """Plan the farm of the profile `plan` (its packages all installed), writing nothing.

    A switch costs what changed: the paths of each package come from the index of the
    profile the link points at now (`FARM_INDEX`, written beside that profile's manifest)
    when the package is the same artifact there, else from the package's own manifest; a
    profile of that one's packages less some (the same artifacts, `prefer`, no Python) is
    planned from that one's plan (farm.after_removal). The links are the same as from
    scratch: `plan_farm_links` sees the same paths either way. `stamps`: manifest path ->
    stamp, taken before (`package_paths`). Raises HitError for a file two packages both
    provide (none `prefer`red), or a missing or damaged manifest."""
    previous = previous_profile(plan.link, store)
    index = read_farm_index(previous)
    held = {name: prefix_text(store, ref) for name, ref in plan.held.items()}
    python = plan.python
    planned = None
    if python is None and index.planned is not None and index.prefer == plan.doc.prefer:
        known = index.packages
        if all(_indexed(known.get(n), p, stamps) for n, p in held.items()):
            gone = {n: (e[0], e[1]) for n, e in known.items() if n not in held}
            planned = after_removal(index.planned, gone)
    if planned is not None:
        packages: Manifests = {n: (p, index.packages[n][1]) for n, p in held.items()}
        return FarmLinks(previous, index, packages, planned.links, planned)
    manifests = package_paths(held, index, stamps)
    packages = dict(manifests)  # the index holds packages only, not an external's links
    if python is not None and python.links:  # an external's: planned like a package's files
        manifests[EXTERNAL_PYTHON] = (EXTERNAL_ROOT, list(python.links))
    open_dirs = frozenset(os.path.dirname(rel) for rel in python.links) if python else frozenset()
    planned = plan_farm_links(manifests, plan.doc.prefer, open_dirs=open_dirs)
    links = planned.links
    for rel, target in python.links.items() if python else ():
        if links.get(rel) == f"{EXTERNAL_ROOT}/{rel}":  # no package's file won (prefer:) there
            links[rel] = str(target)
    return FarmLinks(previous, index, packages, links, planned if python is None else None)


def assemble(
    plan: ProfilePlan,
    store: Store,
    farm: FarmLinks | None = None,
    written: Written | None = None,
    on_wait: Callable[[], None] | None = None,
) -> bool:
    """The profile artifact: a symlink farm over the packages `plan` holds (all installed),
    made once like any artifact, under its lock. Returns False when it existed already.
    Raises HitError as `farm_links` does, before any write. `farm`: its links planned
    already (publish/quickswitch.py plans them while the memo's stamps are checked);
    `written`: the farm written already (`write_ahead`), committed here. `on_wait()` is
    called once when another process holds the profile's lock (a second build of the same
    profile), before waiting for it.

    The links the profile the link points at now holds already (its index says which) are
    hard-linked from it (farm.write_farm)."""
    if written is None:
        if store.is_installed(plan.ref):
            return False
        if farm is None:  # conflicts fail before any write
            farm = farm_links(plan, store)
        written = write_ahead(plan, store, farm, on_wait)
        if written is None:
            return False
    try:
        farm = written.farm
        write_farm_index(written.prefix, farm.packages, farm.links, farm.planned, plan.doc.prefer)
        store.commit(plan.ref, plan.doc.record(plan.ref.id), None, written.manifest)
    finally:
        drop(written)  # its lock let go; the prefix removed unless installed (layout.abandon)
    return True


@dataclass
class Written:
    """A profile's farm written into its private prefix, not committed (`write_ahead`): the
    prefix, its manifest, the farm, and the artifact's lock, held (`held`) until `drop`
    lets it go, after `assemble` committed it or not; `open` until then (not frozen: it is
    settled once, and a second `drop` must not remove a prefix another process began)."""

    prefix: Path
    manifest: dict[str, str]
    farm: FarmLinks
    held: ExitStack
    open: bool = True


def write_ahead(
    plan: ProfilePlan,
    store: Store,
    farm: FarmLinks,
    on_wait: Callable[[], None] | None = None,
    wait: bool = True,
) -> Written | None:
    """Write the farm of the profile `plan` (its links planned: `farm`) into its private
    prefix under the artifact's lock, without committing it: `assemble` commits it, `drop`
    removes it. A switch writes it while the memo's stamps are still checked in a child
    (publish/quickswitch.py): the links' system calls run on the core the wait left idle
    (issue 18). None when the profile is installed already. `on_wait()` is called once
    when another process holds the artifact's lock, before waiting for it; without `wait`,
    that raises BlockingIOError instead (a switch writing ahead leaves the farm to its
    assembly, which says it waits). Raises OSError or HitError, nothing left behind (the
    prefix removed, the lock let go)."""
    ref = plan.ref
    if store.is_installed(ref):
        return None
    with ExitStack() as held:  # the lock let go on any way out but the last (pop_all)
        held.enter_context(store.lock(ref, on_wait, wait=wait))
        if store.is_installed(ref):
            return None
        prefix = store.begin(ref)
        try:
            reuse = str(farm.previous) if farm.previous else None
            manifest = write_farm(prefix, farm.links, reuse, farm.index.links)
            if plan.python is not None:
                from .pyvenv import write_config

                manifest.update(write_config(prefix, plan.python.home))
        except BaseException:
            remove_tree(prefix)
            raise
        return Written(prefix, manifest, farm, held.pop_all())


def drop(written: Written | None) -> None:
    """Let the lock of a farm `write_ahead` wrote go, the farm removed unless it is installed
    (layout.abandon); nothing for one dropped already (or None)."""
    if written is None or not written.open:
        return
    written.open = False
    try:
        abandon(written.prefix)  # not once installed: a Ctrl-C in the commit's last flush
    finally:
        written.held.close()


def package_paths(
    held: dict[str, str] | dict[str, Path], index: FarmIndex, stamps: dict | None = None
) -> Manifests:
    """name -> (prefix, the paths of its manifest) of each package `held` (name -> prefix),
    from `index` (the previous profile's) for a package that is the same artifact there,
    else from its manifest. `stamps`: manifest path -> stamp, used before `manifest_stamp`.
    Raises HitError for a missing or damaged manifest."""
    known = index.packages
    manifests: Manifests = {}
    for name, prefix in held.items():
        entry = known.get(name)
        same = _indexed(entry, prefix, stamps)
        manifests[name] = (prefix, entry[1] if same else list(read_manifest(Path(prefix))))
    return manifests


def _indexed(entry: list | None, prefix: str | Path, stamps: dict | None) -> bool:
    """Whether the index's `entry` of a package (FarmIndex.packages) stands for the artifact
    at `prefix`: the same prefix, and its manifest's stamp the same (`stamps`' when given,
    else `manifest_stamp`)."""
    if entry is None or entry[0] != str(prefix) or entry[2] is None:
        return False
    stamp = stamps.get(f"{prefix}/{META}/{MANIFEST}") if stamps else None
    return entry[2] == (list(stamp) if stamp is not None else manifest_stamp(prefix))


def manifest_stamp(prefix: str | Path) -> list[int] | None:
    """The stamp (os.stat: mtime_ns, ctime_ns, size, inode) of the manifest of the artifact
    at `prefix`, as the check of what to build took it (memo.installed, resolvecache.seen),
    else taken now and kept there; None when it cannot be read. An artifact removed behind
    hit's back and built again at the same prefix has a new manifest, whose paths may
    differ (a build that names a file by the date): the index does not stand for it."""
    path = f"{prefix}/{META}/{MANIFEST}"
    note(path)  # no stat when the check of what to build took it
    stamp = seen()[path]
    return None if stamp == GONE else list(stamp)


def previous_profile(link: Path, store: Store) -> Path | None:
    """The installed profile the profile link `link` points at now (in this store or an
    upstream), or None (no link, or it points elsewhere)."""
    try:
        target = Path(os.readlink(link))
    except OSError:
        return None
    roots = [store.root, *(up.root for up in store.upstreams)]
    if not any(target.parent == root / "profile" for root in roots):
        return None
    return target if (target / META / MANIFEST).is_file() else None


def write_farm_index(
    prefix: Path,
    manifests: Manifests,
    links: dict[str, str],
    planned: Planned | None = None,
    prefer: tuple[str, ...] | list[str] = (),
) -> None:
    """Write the index of the profile being made at `prefix`: package -> [prefix, the paths
    of its manifest (what `package_paths` gave), the stamp of that manifest
    (`manifest_stamp`)], the farm's `links` (rel -> target), and, for a farm the next
    switch may plan from (`planned`), each folder's owners, the files shipped twice and
    `prefer`. Raises OSError."""
    packages = {  # the paths from the index are its lists already
        name: [str(p), rels if type(rels) is list else list(rels), manifest_stamp(p)]
        for name, (p, rels) in manifests.items()
    }
    doc: dict = {"packages": packages, "links": links}
    if planned is not None:
        doc.update(owners=joined_owners(planned.owners), shared=planned.shared, prefer=list(prefer))
    (prefix / META / FARM_INDEX).write_bytes(marshal.dumps(doc))


@dataclass(frozen=True)
class FarmIndex:
    """A profile's index, as `assemble` wrote it: `packages` (name -> its prefix, the paths
    of its manifest, the stamp of that manifest), `links` (rel -> target of every link
    of its farm; None: not known), and what a switch may plan from (`planned`; None: not
    kept) with the `prefer` it was planned with."""

    packages: dict[str, list]  # name -> [prefix, paths (list[str]), stamp (list[int] | None)]
    links: dict[str, str] | None
    planned: Planned | None = None
    prefer: tuple[str, ...] = ()


NO_INDEX = FarmIndex({}, None)


def read_farm_index(profile: Path | None) -> FarmIndex:
    """The index of the profile at `profile`; NO_INDEX for none (no profile, one made before
    indexes existed or with another index format, a damaged one): its packages' manifests
    are read instead, and the links of its farm (farm.write_farm)."""
    if profile is None:
        return NO_INDEX
    try:
        doc = marshal.loads((profile / META / FARM_INDEX).read_bytes())
        if "links" not in doc:  # its first form: the packages alone
            doc = {"packages": doc, "links": None}
        packages = doc["packages"]
        if not _packages_shaped(list(packages.values())):
            return NO_INDEX
        links = doc["links"] if isinstance(doc["links"], dict) else None
        owners, shared, prefer = doc.get("owners"), doc.get("shared"), doc.get("prefer")
        planned = None
        if (
            links is not None
            and isinstance(owners, dict)
            and set(map(type, owners.values())) <= {str}  # (in C: 10,000 folders, 0.3 ms)
            and isinstance(shared, set)
            and isinstance(prefer, list)
        ):
            planned = Planned(links, owners, shared)
        return FarmIndex(packages, links, planned, tuple(prefer or ()))
    except (OSError, EOFError, ValueError, TypeError, AttributeError, KeyError):
        return NO_INDEX


def _packages_shaped(entries: list) -> bool:
    """Whether each of `entries` (the index's packages) is [a prefix, a list of paths, a
    stamp], each prefix and path a string: checked a column at a time, in C (5,000
    packages: 1 ms; a loop over them took 8, issue 18)."""
    if not set(map(type, entries)) <= {list} or not set(map(len, entries)) <= {3}:
        return False
    paths = [entry[1] for entry in entries]
    return (
        set(map(type, [entry[0] for entry in entries])) <= {str}
        and set(map(type, paths)) <= {list}
        and set(map(type, chain.from_iterable(paths))) <= {str}
    )


def link_profile(plan: ProfilePlan, home: Home, store: Store) -> tuple[Path, Switch]:
    """Point the profile's link at its (assembled) profile, the gc root registered first,
    and record a generation (generations.switch: a registered link found gone outside hit
    leaves its last profile kept as a stale generation). Returns the link and the switch."""
    return plan.link, switch(home.gc_roots, plan.link, store.prefix(plan.ref))


def vanished_note(link: Path, switched: Switch, store: Store) -> str | None:
    """What `hit build` says when the link it made again had vanished outside hit."""
    if switched.vanished is None:
        return None
    profile = store.label(switched.vanished)
    return (
        f"note: {link} was gone (moved with a plain `mv` or removed outside hit) while it "
        f"pointed at {profile}; a moved link may still point there, so `hit gc` keeps "
        f"{profile} until `hit gc --drop-stale` (`hit mv` and `hit rm` move and remove links "
        f"with their gc roots)"
    )


def record_upstream_use(
    plan: ProfilePlan, home: Home, store: Store, note: Callable[[str], None]
) -> None:
    """Tell each upstream (the site) which of its artifacts the profile's link uses, so that
    its GC keeps them; `note` a warning for each upstream that cannot be told."""
    link = plan.link
    profile = store.prefix(plan.ref)
    pairs = zip(home.upstreams, home.upstream_gc_roots, store.upstreams, strict=True)
    refs = [*plan.uses, plan.ref]
    for _home, up_roots, up_store in pairs:
        # the profile too: the same packages give the same profile, found upstream
        under = f"{up_store.root}/"  # a prefix is ROOT/name/leaf
        ids = [r.id for r in refs if prefix_text(store, r).startswith(under)]
        if ids and not str(link.absolute()).isprintable():  # the site's gc (root) refuses it
            note(
                f"warning: the link {ascii(str(link))[1:-1]} has a control character in its "
                f"path, which the garbage collection of {up_store.root} does not accept in a "
                f"user's record: it may remove the {len(ids)} artifact(s) of that store this "
                "profile uses (build it in a folder whose path is printable)"
            )
            continue
        if ids and not roots.record_use(up_roots, link.absolute(), profile, ids):
            note(
                f"warning: could not record in {up_roots / roots.USERS} that "
                f"{link} uses {len(ids)} artifact(s) of that store; its garbage collection "
                f"may remove them (ask its admin for write access to that folder)"
            )
