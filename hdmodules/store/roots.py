"""GC roots: registered profile links, links users put in the roots folder by hand, and the
temporary roots of builds in flight.

`gc_roots/_<hash>` -> the profile link (e.g. /home/me/proj/default), and beside it
`_<hash>.last` -> the profile that link last pointed to. The second one is what keeps a
profile alive when its link was moved with a plain `mv`: the moved link still points at it
somewhere, so a stale root is reported, never silently dropped. Names starting with `_` are
the tool's own; any other symlink in the folder is a user's root.

`gc_roots/_tmp/<pid>`: the paths a running build uses (temporary roots); `gc_roots/users/`:
users' records of what their profiles use (a site); `gc_roots/_gen/`: the generations of each
link (generations.py). Everything the gc keeps, of every kind, is gathered in keep.py.

`gc_roots/_modules/<profile>.json`: the modules a site-style profile plans (written by
publish/usermodules.py when it is built, read when the user's module tree is regenerated from
the live profiles, dropped by the gc with the profile).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_atomic
from ..errors import HitError
from .flocks import flocked
from .links import set_link

if TYPE_CHECKING:
    from .layout import Store

TEMP = "_tmp"
GENERATIONS = "_gen"  # the generations of each link (generations.py)
STALE = ".stale"  # `<n>.stale` beside generation n: its link vanished outside hit


@dataclass(frozen=True)
class Root:
    """One gc root: its entry in the roots folder, the link it names, what it reaches (None: stale)
    and what a stale one keeps."""

    entry: Path  # the file in the roots folder
    link: Path  # the profile link it names (for a user's root: the entry itself)
    target: Path | None  # what it reaches now (a store path), None if stale
    last: Path | None  # for a stale registered root: the profile its link last pointed to
    own: bool  # registered by hit (name starts with _)

    @property
    def stale(self) -> bool:
        return self.target is None


def entry_for(gc_roots: Path, link: Path) -> Path:
    """Where the gc root of `link` is kept: `_` + a hash of the link's absolute path."""
    key = os.fsencode(link.absolute())  # a name's bytes: UTF-8 text, or not (names.text_path)
    return gc_roots / ("_" + hashlib.sha256(key).hexdigest()[:20])


def register(gc_roots: Path, link: Path, target: Path, last: bool = True) -> Path:
    """Record `link` (now pointing at `target`) as a gc root; idempotent. Without `last`, a
    root whose link disappears keeps nothing (a `hit develop` folder removed on purpose)."""
    gc_roots.mkdir(parents=True, exist_ok=True)
    entry = entry_for(gc_roots, link)
    set_link(entry, link.absolute())
    if last:
        set_link(entry.with_name(entry.name + ".last"), target)
    return entry


def point(gc_roots: Path, link: Path, target: Path, last: bool = True) -> bool:
    """Point the profile link `link` at `target` (a store path) as a registered gc root.

    The root is registered before the link is switched: a link is never visible before
    the root that keeps its target exists, so a `hit` killed between the two steps leaves
    the link on its old profile (still reached) and, at worst, a root whose `.last` keeps
    the new profile until it is collected as stale. Returns False when the link already
    pointed there. When the link cannot be made, a root registered for it now is
    forgotten again (HitError naming the link)."""
    known = entry_for(gc_roots, link).is_symlink()
    register(gc_roots, link, target, last)
    try:
        return set_link(link, target)
    except HitError:
        if not known:  # no link was made: a root for it would keep `target` as stale
            deregister(gc_roots, link)
        raise


def deregister(gc_roots: Path, link: Path) -> None:
    """Forget `link` as a root, its generations included (it was removed on purpose), but
    the stale ones: another link, moved outside hit, may still point at their profiles
    (generations.switch); they stay until `hit gc --drop-stale`."""
    import shutil

    entry = entry_for(gc_roots, link)
    for path in (entry, entry.with_name(entry.name + ".last")):
        if path.is_symlink():
            path.unlink()
    folder = gen_folder(gc_roots, link)
    names = set(os.listdir(folder)) if folder.is_dir() else set()
    if not any(n.endswith(STALE) for n in names):
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in names:
        if name.isdigit() and name + STALE not in names:
            (folder / name).unlink()


def _reach(path: Path, store: Path) -> Path | None:
    """Where a link (chain) ends, if that is inside the store."""
    real = Path(os.path.realpath(path))
    return real if real.is_relative_to(store) and real.exists() else None


def list_roots(gc_roots: Path, store: Path) -> list[Root]:
    """Every gc root in `gc_roots`, registered ones and users' own symlinks, with what each reaches
    in `store`."""
    if not gc_roots.is_dir():
        return []
    roots = []
    for entry in sorted(gc_roots.iterdir()):
        if entry.name in (TEMP, USERS, GENERATIONS, MODULES) or entry.name.endswith(".last"):
            continue
        if not entry.name.startswith("_"):
            roots.append(Root(entry, entry, _reach(entry, store), None, own=False))
            continue
        try:
            link = Path(os.readlink(entry))
        except OSError:
            continue
        target = _reach(link, store) if link.is_symlink() else None
        last = None
        if target is None:
            last = _reach(entry.with_name(entry.name + ".last"), store)
        roots.append(Root(entry, link, target, last, own=True))
    return roots


def live_profiles(gc_roots: Path, store: Path) -> list[tuple[Path, Path]]:
    """The profiles the roots keep, as the gc sees them, each once as (link, profile), sorted
    by link path: a root's profile, or what a stale registered root last pointed to (until
    `hit gc --drop-stale`). A profile several links reach comes with the first of them. Not
    included: the generations a link pointed to before, and temporary roots of builds."""
    found: dict[Path, Path] = {}
    for r in sorted(list_roots(gc_roots, store), key=lambda r: str(r.link)):
        profile = r.target or r.last
        if profile is not None and profile not in found:
            found[profile] = r.link
    return sorted(((link, profile) for profile, link in found.items()), key=lambda x: str(x[0]))


# --- records of the modules each profile plans ------------------------------------------------

MODULES = "_modules"


def module_records(gc_roots: Path) -> Path:
    """The folder of the module records: `gc_roots/_modules` (created by the first record)."""
    return gc_roots / MODULES


def module_record(gc_roots: Path, profile: Path) -> Path:
    """Where the record of the modules `profile` (a store path, `.../profile/<hash>`) plans is
    kept: `gc_roots/_modules/<hash>.json`."""
    return module_records(gc_roots) / f"{profile.name}.json"


def drop_module_records(gc_roots: Path, store: Store) -> list[Path]:
    """Remove the module records whose profile is no longer in `store` (the gc removed it);
    returns the records removed."""
    from ..spec.artifact import ArtifactRef

    folder = module_records(gc_roots)
    if not folder.is_dir():
        return []
    dropped = []
    for f in sorted(folder.glob("*.json")):
        if not store.local_prefix(ArtifactRef("profile", "", f.stem)).exists():
            f.unlink(missing_ok=True)
            dropped.append(f)
    return dropped


# --- temporary roots of builds in flight ------------------------------------------------------


def add_temp(gc_roots: Path, prefixes: list[Path] | list[str]) -> Path:
    """A build's inputs and outputs, protected while this process lives."""
    folder = gc_roots / TEMP
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / str(os.getpid())
    write_atomic(f, "".join(f"{p}\n" for p in prefixes))
    return f


def temp_roots(gc_roots: Path) -> dict[int, set[Path]]:
    """The paths each build still running protects, by its process id (the files of
    processes that are gone are removed)."""
    out: dict[int, set[Path]] = {}
    folder = gc_roots / TEMP
    if not folder.is_dir():
        return out
    for f in folder.iterdir():
        if not f.name.isdigit():
            continue
        if not os.path.exists(f"/proc/{f.name}"):
            f.unlink(missing_ok=True)
            continue
        with contextlib.suppress(FileNotFoundError):  # the build ended meanwhile
            out[int(f.name)] = {Path(line) for line in f.read_text().splitlines() if line}
    return out


# --- hit cp / mv / rm -------------------------------------------------------------------------


def _profile_target(link: Path, store: Path, upstreams: tuple[Path, ...] = ()) -> Path:
    """What the profile link `link` points at, in `store` or one of the `upstreams` (store
    roots). Raises HitError for anything else."""
    if not link.is_symlink():
        raise HitError(f"{link} is not a profile link (a symlink into the store)")
    for root in (store, *upstreams):
        target = _reach(link, root)
        if target is not None:
            return target
    raise HitError(f"{link} does not point into the store {store}")


LOCK = "lock"  # in gc_roots/GENERATIONS: held while a profile link changes (links_locked)


@contextmanager
def links_locked(gc_roots: Path) -> Iterator[None]:
    """Hold the lock of the profile links whose roots are in `gc_roots` (`_gen/lock`, made if
    missing) while one of them, its root and its generations change: `hit build`'s switch
    (generations.switch), `hit rollback`, `hit cp`, `hit mv`, `hit rm`. Two builds of one
    profile that finish together would otherwise both number a new generation 1 and one of
    them fail on the other's symlink, or one write over the other's generation. One lock for
    every link (each holds it for milliseconds): it lives in no link's folder, which `hit
    mv` renames and `hit rm` removes. Not reentrant. Raises HitError when it cannot be made
    or opened."""
    top = gc_roots / GENERATIONS
    with ExitStack() as held:
        try:
            top.mkdir(parents=True, exist_ok=True)
            held.enter_context(flocked(top / LOCK))
        except OSError as e:
            raise HitError(f"cannot lock {top / LOCK}: {e.strerror or e}") from None
        yield


def copy_link(gc_roots: Path, store: Path, link: Path, new: Path) -> Path:
    """`hit cp`: a new profile link `new` to what `link` points at, registered as a gc root;
    returns the profile."""
    with links_locked(gc_roots):
        return _copy_link(gc_roots, store, link, new)


def _copy_link(gc_roots: Path, store: Path, link: Path, new: Path) -> Path:
    target = _profile_target(link, store)
    if new.exists() or new.is_symlink():
        raise HitError(f"{new} exists already")
    if not new.parent.is_dir():  # as cp and mv: no folder is made (root would make any path)
        raise HitError(f"cannot make {new}: no such folder {new.parent}")
    point(gc_roots, new, target)
    return target


def move_link(gc_roots: Path, store: Path, link: Path, new: Path) -> Path:
    """`hit mv`: `link` becomes `new`, its root and generations with it; returns the profile."""
    with links_locked(gc_roots):
        target = _copy_link(gc_roots, store, link, new)
        old_gens, new_gens = gen_folder(gc_roots, link), gen_folder(gc_roots, new)
        if old_gens.is_dir() and not new_gens.exists():  # the history moves with the link
            old_gens.rename(new_gens)
            write_atomic(new_gens / "link", str(new.absolute()))
        link.unlink()
        deregister(gc_roots, link)
    return target


def remove_link(
    gc_roots: Path,
    store: Path,
    link: Path,
    upstream_gc_roots: tuple[Path, ...] = (),
    upstreams: tuple[Path, ...] = (),
) -> Path:
    """`hit rm`: remove the profile link `link` and its root, and the records that told the
    upstream stores (their roots folders `upstream_gc_roots`) what it used. Returns what it
    pointed to; raises HitError when it is not a link into `store` or one of the upstream
    stores `upstreams` (a user's profile the site built the same: the link points there)."""
    with links_locked(gc_roots):
        target = _profile_target(link, store, upstreams)
        link.unlink()
        deregister(gc_roots, link)
    for up in upstream_gc_roots:
        forget_use(up, link)
    return target


# --- users of an upstream store ---------------------------------------------------------------

USERS = "users"


@dataclass(frozen=True)
class UseRecord:
    """A user's record in `gcroots/users/`: the user's profile link, the profile it pointed
    at when recorded, and the ids of this store's artifacts that profile uses."""

    file: Path
    link: Path
    profile: Path
    ids: tuple[str, ...]
    # alive, gone (the link no longer points at that profile), unknown (cannot look),
    # building (a build running now uses them: record_building)
    state: str = "unknown"


def _record_name(link: Path) -> str:
    return f"{os.getuid()}-{hashlib.sha256(os.fsencode(link)).hexdigest()[:16]}.json"


def record_use(upstream_gc_roots: Path, link: Path, profile: Path, ids: list[str]) -> bool:
    """Tell an upstream store (the site's) that the profile behind `link` uses these of its
    artifacts, so its GC keeps them while the link lives. False if the site does not let us."""
    doc = {"link": str(link), "profile": str(profile), "uses": sorted(ids)}
    return _write_record(upstream_gc_roots / USERS / _record_name(link), doc)


def _write_record(path: Path, doc: dict) -> bool:
    """Write one user's record (JSON) atomically; False if the folder does not let us."""
    try:
        write_atomic(path, json.dumps(doc))
    except OSError:
        return False
    return True


BUILDING_GRACE = 24 * 3600  # seconds a user's running build protects what it uses upstream


def record_building(upstream_gc_roots: Path, marker: Path, ids: list[str]) -> Path | None:
    """Tell an upstream store (the site's) that a build running now uses these of its
    artifacts, before it starts: the upstream's GC may run on another machine and cannot see
    our processes (as this home's temporary roots are seen), so the record carries the time
    it was written and counts for BUILDING_GRACE seconds (a build killed without cleaning
    up is forgotten after that). `marker` is the build's temporary root in our own home,
    shown by the upstream's `hit gc --list`. Returns the record, None if it could not be
    written (the caller warns, as for record_use)."""
    name = f"{os.getuid()}-building-{os.getpid()}-{os.urandom(4).hex()}.json"
    doc = {
        "link": str(marker),
        "profile": str(marker),
        "uses": sorted(ids),
        "building": time.time(),
    }
    path = upstream_gc_roots / USERS / name
    return path if _write_record(path, doc) else None


def forget_use(upstream_gc_roots: Path, link: Path) -> None:
    """Remove this user's record for `link` from an upstream's roots folder."""
    (upstream_gc_roots / USERS / _record_name(link)).unlink(missing_ok=True)


RECORD_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class BadRecord:
    """A user's record the GC skipped, and why."""

    file: Path
    why: str


def _read_record(f: Path) -> dict:
    """One user's record, read as root may safely read a file a user wrote: not followed
    if it is a symlink, opened without blocking (a FIFO must not hang the site's GC),
    regular files only, at most RECORD_MAX_BYTES. Raises ValueError saying what is wrong."""
    try:
        fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise ValueError(f"cannot open it ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > RECORD_MAX_BYTES:
            raise ValueError(f"larger than {RECORD_MAX_BYTES} bytes")
        data = os.read(fd, RECORD_MAX_BYTES + 1)
    finally:
        os.close(fd)
    not_ours = "not a record hit wrote (JSON with link, profile, uses)"
    try:
        doc = json.loads(data)
        link, profile, uses = doc["link"], doc["profile"], doc["uses"]
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: [[[[...
        raise ValueError(not_ours) from None
    # absolute and printable: they are opened by root and shown on root's terminal
    paths_ok = all(
        isinstance(p, str) and p.startswith("/") and p.isprintable() for p in (link, profile)
    )
    if not (paths_ok and isinstance(uses, list) and all(isinstance(i, str) for i in uses)):
        raise ValueError(not_ours)
    return doc


def use_records(gc_roots: Path, bad: list[BadRecord] | None = None) -> list[UseRecord]:
    """The records users' builds left in `gc_roots/users/` (a folder users may write).
    A record that cannot be read safely is skipped and, when `bad` is given, listed there
    with the reason."""
    out = []
    folder = gc_roots / USERS
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        try:
            doc = _read_record(f)
        except ValueError as e:
            if bad is not None:
                bad.append(BadRecord(Path(ascii(str(f))[1:-1]), str(e)))  # a user named it
            continue
        link, profile = Path(doc["link"]), Path(doc["profile"])
        ids = tuple(doc["uses"])
        started = doc.get("building")
        if isinstance(started, int | float) and not isinstance(started, bool):
            running = time.time() - started < BUILDING_GRACE
            out.append(UseRecord(f, link, profile, ids, "building" if running else "gone"))
            continue
        try:
            state = "alive" if os.readlink(link) == str(profile) else "gone"
        except FileNotFoundError:
            state = "gone"
        except OSError:
            state = (
                "gone" if link.parent.exists() and os.access(link.parent, os.R_OK) else "unknown"
            )
        out.append(UseRecord(f, link, profile, ids, state))
    return out


# --- generations: where their records live (generations.py reads and writes them) --------------


def gen_folder(gc_roots: Path, link: Path) -> Path:
    """The folder of `link`'s generations: `gc_roots/_gen/<its root's entry name>`."""
    return gc_roots / GENERATIONS / entry_for(gc_roots, link).name
