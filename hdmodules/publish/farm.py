"""A profile artifact is a symlink farm over the artifacts it lists: which links it holds
(`plan_links`, where conflicts between packages are decided) and making them (`write_farm`).

Both run on every profile switch, over every file of every package (10,000 links for 5,000
small packages), so they work on plain strings: no pathlib in the loops, each folder's
ancestors registered once per package, each folder of the farm made once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import HitError

# package -> (its prefix, the paths of its manifest: relative, "/"-separated, normalized)
Manifests = dict[str, tuple[Path | str, Iterable[str]]]


@dataclass(frozen=True)
class Planned:
    """A farm's links (rel -> target), with what planning it learned that a later plan of
    fewer packages can start from (`after_removal`): each folder's owners (the packages
    with something in it: a set, or as a farm's index keeps them, `joined_owners`) and the
    files more than one package ships."""

    links: dict[str, str]
    owners: dict[str, set[str] | str]
    shared: set[str]


def joined_owners(owners: dict) -> dict[str, str]:
    """Each folder's owners (Planned.owners) as a farm's index keeps them: the names joined
    by NUL, which no name holds (names.py). marshal writes and reads 5,000 such strings
    2-3 times faster than 5,000 sets (issue 18); `after_removal` makes sets of the few a
    switch touches."""
    return {d: o if isinstance(o, str) else "\0".join(o) for d, o in owners.items()}


def _owner_set(owners: dict, folder: str) -> set[str] | None:
    """The owners of `folder` (Planned.owners, sets or joined) as a set; None for none."""
    had = owners.get(folder)
    return set(had.split("\0")) if isinstance(had, str) else had


def plan_links(
    manifests: Manifests,
    prefer: list[str] | tuple[str, ...],
    fold: bool = True,
    open_dirs: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """`plan_farm_links`' links alone."""
    return plan_farm_links(manifests, prefer, fold, open_dirs).links


def plan_farm_links(
    manifests: Manifests,
    prefer: list[str] | tuple[str, ...],
    fold: bool = True,
    open_dirs: frozenset[str] = frozenset(),
) -> Planned:
    """Decide the profile's links: relative path -> target (`<prefix>/<path>`), from each
    package's (prefix, manifest paths).

    Folders are merged; a folder only one package contributes to becomes one link to that
    package's folder (as Nix's buildEnv and stow fold trees), which keeps profile switches
    fast; never the folders of `open_dirs` (the profile adds links of its own there). When
    packages ship the same file, the one earliest in `prefer` wins, in whatever order they
    are listed (Nix's buildEnv: the highest priority wins); with none of them preferred the
    profile cannot be assembled (HitError naming the first two, before anything is written).
    """
    rank = {name: i for i, name in enumerate(dict.fromkeys(prefer))}  # a name twice: its first
    files: dict[str, str] = {}  # rel -> package
    dirs: dict[str, set[str]] = {}  # folder -> the packages with something in it
    shared: set[str] = set()  # files two packages or more ship
    unsettled: dict[str, tuple[str, str]] = {}  # file -> the first two unpreferred shippers
    for pkg, (_prefix, manifest) in manifests.items():
        mine: set[str] = set()  # this package's folders registered so far (with their parents)
        for rel in manifest:
            cut = rel.rfind("/")
            while cut != -1:
                d = rel[:cut]
                if d in mine:
                    break
                mine.add(d)
                owners = dirs.get(d)
                if owners is None:
                    dirs[d] = {pkg}
                else:
                    owners.add(pkg)
                cut = rel.rfind("/", 0, cut)
            holder = files.get(rel)
            if holder is None:
                files[rel] = pkg
            elif holder in rank or pkg in rank:
                files[rel] = _conflict(rel, holder, pkg, rank)
                shared.add(rel)
            else:  # an error unless a package in `prefer` ships it too, listed before or after
                unsettled.setdefault(rel, (holder, pkg))
                shared.add(rel)
    for rel, (a, b) in unsettled.items():
        if files[rel] not in rank:
            _conflict(rel, a, b, rank)  # raises
    for rel, pkg in files.items():
        if rel in dirs:
            other = next(iter(dirs[rel] - {pkg}), pkg)
            _conflict(rel, other, pkg, rank, "a folder in one, a file in the other")
    folded: dict[str, str] = {}
    if fold:
        for d, owners in dirs.items():
            if len(owners) != 1 or d in open_dirs:
                continue
            cut = d.rfind("/")
            if cut == -1 or len(dirs[d[:cut]]) > 1 or d[:cut] in open_dirs:
                folded[d] = next(iter(owners))
    bases = {pkg: str(prefix) for pkg, (prefix, _m) in manifests.items()}
    links = {d: f"{bases[pkg]}/{d}" for d, pkg in folded.items()}
    covered: dict[str, bool] = {}  # folder -> whether it or a folder above it is folded
    for rel, pkg in files.items():
        cut = rel.rfind("/")
        if folded and cut != -1:
            parent = rel[:cut]
            hidden = covered.get(parent)  # looked up here: a call per file cost 3 ms in 20,000
            if hidden is None:
                hidden = _covered(parent, folded, covered)
            if hidden:
                continue
        links[rel] = f"{bases[pkg]}/{rel}"
    return Planned(links, dirs, shared)


def after_removal(before: Planned, removed: Manifests) -> Planned | None:
    """The plan of a farm of `before`'s packages but `removed` (name -> the prefix and paths
    `before` planned it with; the others the same artifacts, with the same `prefer`, no
    open folder), when it follows from `before` alone: every link of a removed package
    dropped, and every folder only removed packages had. None (plan from scratch) when a
    removed package ships a file another ships too (who wins changes), or a folder it
    shared is left with one owner (that folder, and what is below it, fold otherwise).
    The result is what `plan_farm_links` gives the packages left (tests/test_plan.py
    checks it against random farms), at the cost of the removed packages' paths, not of
    every package's (issue 18, goal 3: 25-35 ms of a 5,000-package switch)."""
    gone = set(removed)
    links = dict(before.links)
    owners = dict(before.owners)
    for name, (prefix, paths) in removed.items():
        base = str(prefix)
        folders: set[str] = set()
        for rel in paths:
            if rel in before.shared:
                return None
            if links.get(rel) == f"{base}/{rel}":
                del links[rel]
            cut = rel.rfind("/")
            while cut != -1 and rel[:cut] not in folders:
                folders.add(rel[:cut])
                cut = rel.rfind("/", 0, cut)
        for d in folders:
            had = _owner_set(before.owners, d)
            if had is None or name not in had:
                return None  # not the paths `before` was planned with
            left = had - gone
            if len(left) == 1 and len(had) > 1:
                return None
            if left:
                owners[d] = left
            else:
                owners.pop(d, None)  # (another removed package may have dropped it)
                if links.get(d) == f"{base}/{d}":
                    del links[d]
    return Planned(links, owners, before.shared)


def _covered(d: str, folded: dict[str, str], memo: dict[str, bool]) -> bool:
    """Whether the folder `d` or one above it is folded (answers kept in `memo`)."""
    known = memo.get(d)
    if known is None:
        cut = d.rfind("/")
        known = d in folded or (cut != -1 and _covered(d[:cut], folded, memo))
        memo[d] = known
    return known


def plan_farm(
    manifests: Manifests,
    prefer: list[str] | tuple[str, ...],
    fold: bool = True,
    open_dirs: frozenset[str] = frozenset(),
) -> dict[str, Path]:
    """`plan_links` with the targets as Paths."""
    return {rel: Path(t) for rel, t in plan_links(manifests, prefer, fold, open_dirs).items()}


EXTERNAL = " (external)"  # the end of the name of links planned for an external, not a package


def _conflict(rel: str, a: str, b: str, rank: dict[str, int], why: str | None = None) -> str:
    """The winner of packages `a` and `b` both shipping the file `rel`: the one earlier in
    `prefer` (`rank`). Raises HitError when neither is preferred, or for `why` (a folder
    in one, a file in the other), which no `prefer:` settles: a farm cannot hold both, and
    a folder's other files would vanish under the file, as Nix's buildEnv refuses it."""
    if why is None and (a in rank or b in rank):
        return min((a, b), key=lambda p: rank.get(p, len(rank)))
    fixed = next((n for n in (a, b) if n.endswith(EXTERNAL)), None)  # not a package
    if fixed is not None:
        pkg = b if fixed == a else a
        fix = f"list {pkg} under `prefer:` to use its {rel}, or " if why is None else ""
        raise HitError(
            f"package {pkg} ships {rel}, which the profile's {fixed} gives too; {fix}leave it out"
        )
    if why is not None:
        raise HitError(
            f"packages {a} and {b} conflict on {rel} ({why}); `prefer:` cannot settle that: "
            f"leave one of them out of the profile"
        )
    raise HitError(
        f"packages {a} and {b} conflict on {rel} (both ship it); "
        f"list the one that should win under `prefer:` in the profile (for a site: in the "
        f"stack, beside its packages:)"
    )


def write_farm(
    prefix: Path,
    links: dict[str, str] | dict[str, Path],
    reuse: str | None = None,
    reused: dict[str, str] | None = None,
) -> dict[str, str]:
    """Create the links below `prefix` (an empty folder); returns the profile's manifest
    (rel -> `l:<target>`).

    With `reuse` (the folder of an earlier farm), a link that farm holds with the same target
    is hard-linked from it (a new name for the same symlink inode: no inode to allocate, and
    the same bytes as a new symlink); anything else, or a hard link the filesystem refuses
    (another owner's profile, another filesystem, too many links), is a new symlink. Which
    links that farm holds: `reused` (rel -> target, from its index: assemble.FarmIndex),
    else each read from it (a readlink, half the cost of the hard link: issue 18). From
    SPLIT_FROM links on, two threads make them (`_make_links`). Raises OSError."""
    base = str(prefix)
    made = {""}  # folders made (relative), with all their parents
    manifest = {}
    todo = []
    for rel in sorted(links):
        target = str(links[rel])
        cut = rel.rfind("/")
        parent = rel[:cut] if cut != -1 else ""
        if parent not in made:
            os.makedirs(f"{base}/{parent}", exist_ok=True)
            while parent and parent not in made:
                made.add(parent)
                parent = parent[: max(parent.rfind("/"), 0)]
        manifest[rel] = f"l:{target}"
        todo.append((rel, target))
    _make_links(base, todo, reuse, reused)
    return manifest


# From this many links on, write_farm makes them in two threads, each half of them (every
# folder made before): link and symlink are system calls that let the GIL go, and the kernel
# serializes only those in one folder. Issue 18: 10,000 links (5,000 in each of two folders)
# took 145-153 ms in one thread, 77-83 ms in two, on the idle 2-core machine.
SPLIT_FROM = 2000


def _make_links(
    base: str, todo: list[tuple[str, str]], reuse: str | None, reused: dict[str, str] | None
) -> None:
    """`_links` of `todo`, the second half in another thread when there are SPLIT_FROM or
    more and this process may run on two CPUs. Raises the first error of either half, once
    both are done (a Ctrl-C too: the other half ends first)."""
    half = len(todo) // 2
    if len(todo) < SPLIT_FROM or len(os.sched_getaffinity(0)) < 2:
        _links(base, todo, reuse, reused)
        return
    import threading  # imported already by what runs hit (progress.py)

    errors: list[BaseException] = []
    done = threading.Event()

    def second() -> None:
        try:
            _links(base, todo[half:], reuse, reused)
        except BaseException as e:  # re-raised below, in the calling thread
            errors.append(e)
        finally:
            done.set()

    try:
        threading.Thread(target=second, name="farm").start()
    except RuntimeError:  # no thread to be had (a limit on processes): one makes them all
        _links(base, todo, reuse, reused)
        return
    try:
        _links(base, todo[:half], reuse, reused)
    finally:
        _wait(done)
    if errors:
        raise errors[0]


def _wait(done) -> None:
    """Wait until `done` (a threading.Event) is set, through a Ctrl-C too: it is raised once
    it is set (the caller removes the folder the other thread writes into). Not
    Thread.join: one a Ctrl-C interrupts takes the thread for ended (Python 3.11).
    Raises KeyboardInterrupt."""
    interrupted = None
    while not done.is_set():
        try:
            done.wait()
        except KeyboardInterrupt as e:
            interrupted = e
    if interrupted is not None:
        raise interrupted


def _links(
    base: str, todo: list[tuple[str, str]], reuse: str | None, reused: dict[str, str] | None
) -> None:
    """Make each (rel, target) of `todo` below `base`, as `write_farm` says: by name within
    each folder, opened once for each run of its links (`_folders`), not by path. Issue 18:
    a hard link of a 5,000-link folder's entry took 11-14 us by path, 8 us by name in the
    open folder. One folder is open at a time: a farm may have more folders (a language's
    share/locale/<lang>/LC_MESSAGES of several packages each) than hit may open files."""
    parent_open: str | None = None  # the folder whose descriptors `fds` are
    fds: tuple[int, int | None] = (-1, None)  # its fd, reuse's
    link, readlink, symlink = os.link, os.readlink, os.symlink
    try:
        for rel, target in todo:
            cut = rel.rfind("/")
            parent, name = (rel[:cut], rel[cut + 1 :]) if cut != -1 else ("", rel)
            if parent != parent_open:
                _close_both(fds)
                fds = (-1, None)  # closed: `_folders` may raise
                fds, parent_open = _folders(base, parent, reuse), parent
            new, old = fds
            if old is not None:
                if reused is not None:  # the earlier farm's index: no readlink
                    same = reused.get(rel) == target
                else:
                    try:
                        same = readlink(name, dir_fd=old) == target
                    except OSError:
                        same = False
                if same:
                    try:
                        link(name, name, src_dir_fd=old, dst_dir_fd=new, follow_symlinks=False)
                        continue
                    except OSError:  # refused once: the rest would be too, make new links only
                        reuse = None
                        _close(old)
                        fds = (new, None)
            symlink(target, name, dir_fd=new)
    finally:
        _close_both(fds)


def _folders(base: str, parent: str, reuse: str | None) -> tuple[int, int | None]:
    """Descriptors of the folder `parent` (relative) below `base`, and of the same folder
    below `reuse` (None: no earlier farm, or it has no such folder). Raises OSError."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    new = os.open(f"{base}/{parent}", flags)
    if reuse is None:
        return new, None
    try:
        return new, os.open(f"{reuse}/{parent}", flags)
    except OSError:
        return new, None


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _close_both(fds: tuple[int, int | None]) -> None:
    """Close `_folders`' descriptors (-1: none was opened)."""
    if fds[0] != -1:
        _close(fds[0])
        _close(fds[1])
