"""Resolution's cache: recipes as loaded and the content hashes of path sources, kept between
runs, so that resolving a profile of thousands of packages after a small change (a profile
switch) costs a few stats per package instead of parsing its YAML and hashing its sources.

What is cached is only what is a function of files alone, each keyed by the stat stamps
(mode, mtime_ns, ctime_ns, size, inode) of every file it was made from:
- a recipe (`recipe_named`): `recipes.load_recipe(file)`, by the recipe file's path and
  the stamps of that file and of every patch file it names (loading checks they exist and
  are not empty). Which file a package name finds (package_dirs order, a recipe shadowing
  another), the version and variants chosen, the templates a build system renders, the
  externals and the home config are all applied after loading, anew on every run, never
  cached;
- a folder's content hash (`tree_hash`), by its path and the stamps of everything below
  it (what hashing.tree_entries walks: `.git` folders left out), kept as the list of paths
  and their stamps as one array: checking an entry is one lstat a path, as the no-op memo's
  check is (a file added, removed or renamed changes its folder's stamp);
- a build system's rendered body (`body`: buildsystems.body), by the recipe's steps and
  `build:`, the template file that is first in the lookup order now (found anew each
  time) and its stamp, and the stamps of every built-in template (what it may include):
  Jinja2 is neither imported nor run for an unchanged recipe.
The same rules keep one value made from a few files in a file of its own (`remembered`):
the home's settings, from its config.yaml (store/home.py), which a profile switch then reads
without importing PyYAML.
The whole cache also holds the tool's version and the stamps of its own resolver code
(OWN_CODE, as build/memo.py stamps it): code being edited drops it.

Like make and build/memo.py, this trusts stat, with git's guard against "racy" stamps: a
file's timestamps move in ticks of the kernel's coarse clock (milliseconds), so a file
rewritten with the same size within one tick keeps its stamp; an entry is therefore kept
only when every file it was made from was last changed more than SETTLE_NS before (a file
changed since changes its ctime, which only root can set back). Anything
else that goes wrong -- no cache, a damaged one, one written by another version, one not
owned by this user or writable by others -- means a full resolution, never a wrong answer.

Stored in one file, `<home>/.cache/resolve.pickle` (the folder is the caller's: `hit build`
passes its home's; a resolution given none caches nothing), replaced atomically
(atomic.write_atomic) at the end of a resolution that computed something new (`save`); a
cache that cannot be written is simply not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import stat
import time
from array import array
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, TypeVar

from .. import __version__
from ..atomic import write_atomic
from ..hashing import tree_hash as hash_tree

FILE = "resolve.pickle"
# the code whose change can change what resolving gives (below the package folder)
OWN_CODE = ("spec/*.py", "hashing.py", "names.py", "urls.py", "templating.py")
FORMAT = 3  # bump when what is stored changes shape

Stamp = tuple[int, int, int, int, int] | None  # mode, mtime_ns, ctime_ns, size, inode
T = TypeVar("T")
SETTLE_NS = 2_000_000_000  # a stamp younger than this (or from the future) is not cached


# What this process saw while resolving, for the no-op memo (build/memo.py), which is
# written from it rather than by listing and stating every input again after the build:
# path -> (mtime_ns, ctime_ns, size, inode) of os.stat (symlinks followed; memo.stamps'
# shape), the first stamp taken of it (before its content was read, so a change made since
# is seen by the next no-op check); and each path source folder walked -> every path below
# it that the memo names (memo.tree's set: `.git` folders left out).
_SEEN: dict[str, tuple[int, int, int, int]] = {}
_LISTED: dict[str, list[str]] = {}


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    _SEEN.setdefault(path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    return (st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def note(path: str) -> None:
    """Take `path`'s stamp for the no-op memo (`seen`) before it is read, unless this process
    took one already: what resolving reads besides recipes and sources (a profile YAML, the
    home's config.yaml, a package dir before a recipe is looked up in it, a build system's
    template files, present or not). A path that does not exist is noted as missing
    (memo.GONE): one that appears later is a change too. One stat the first time a path is
    noted, nothing after."""
    if path in _SEEN:
        return
    try:
        st = os.stat(path)
    except OSError:
        _SEEN[path] = (-1, -1, -1, -1)  # memo.GONE
    else:
        _SEEN[path] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def note_tree(root: str) -> None:
    """`note` every path below the folder `root` that memo.tree lists (`.git` folders left
    out, symlinks not followed): a git checkout, before git reads it."""
    _tree_stamps(root)


def forget(path: str) -> None:
    """Drop the stamp `note` took of `path`: this process rewrote that file (a re-pinned
    external: externals.rewrite_pin) and reads it again, and `note` stamps it then."""
    _SEEN.pop(path, None)


def seen() -> dict[str, tuple[int, int, int, int]]:
    """The stamps this process took while resolving (path -> memo.stamps' four integers)."""
    return _SEEN


def listing(root: str) -> list[str] | None:
    """Every path below the folder `root` (the folder first) as this process's resolution
    walked it, when it did (a path source: `tree_hash`); else None."""
    return _LISTED.get(root)


class _Cache:
    """The cache of this process in one folder: loaded by `start`, saved by `save`."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.dirty = False
        self.file: Path | None = None
        self.recipes: dict[str, tuple[tuple[Stamp, ...], Any]] = {}
        # folder -> (its paths, NUL-separated; their stamps: `_tree_stamps`; its hash)
        self.trees: dict[str, tuple[str, bytes, str]] = {}
        self.bodies: dict[str, tuple[str, tuple, str]] = {}  # by recipe file
        self.builtin: bytes | None = None  # the stamps of the built-in templates, once
        if folder is not None and folder.parent.is_dir():
            self.file = folder / FILE
            doc = _read(self.file)
            if doc is not None and doc.get("code") == _code_key():
                self.recipes, self.trees = doc["recipes"], doc["trees"]
                self.bodies = doc["bodies"]


_CACHE = _Cache()


def start(folder: Path | None) -> None:
    """Resolve with the cache in `folder` (a home's `.cache`), loaded once a process while
    the folder stays the same; with None, with an empty cache kept in memory only."""
    global _CACHE
    if folder is None or _CACHE.folder != folder:
        _CACHE = _Cache(folder)


def _code_key() -> tuple:
    """The tool's version and the stamps of the code that decides what resolving gives."""
    here = Path(__file__).parent.parent
    files = sorted(str(f) for pattern in OWN_CODE for f in here.glob(pattern))
    return (FORMAT, __version__, tuple((f, _stamp(f)) for f in files))


def _read(file: Path) -> dict | None:
    """The cache file's content, or None when it is missing, damaged, or not trustworthy
    (`_unpickled`)."""
    doc = _unpickled(file)
    parts = ("recipes", "trees", "bodies")
    ok = isinstance(doc, dict) and all(isinstance(doc.get(k), dict) for k in parts)
    return doc if ok else None


def _unpickled(file: Path) -> Any:
    """What the pickle `file` holds; None when it is missing, damaged, or not trustworthy
    (another owner's, or writable by others: unpickling runs what the file says)."""
    try:
        with open(file, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None
            return pickle.load(f)
    except Exception:  # noqa: BLE001 - any damage means: no cache
        return None


def remembered(
    file: Path, inputs: list[str], code: list[str], key: tuple, make: Callable[[], T]
) -> T:
    """`make()`, or the value it gave a run before, kept in `file` (one pickle, this user's)
    while every file of `inputs` and of `code` (the source files that make it) has the stamp
    it had then and `key` (what else the value depends on) is the same. The inputs are
    stamped with `note`, before `make` reads them: the no-op memo records them as it does
    when nothing is cached. As for a recipe, the value is kept only when every input was
    last changed more than SETTLE_NS before; one that cannot be read or written is made
    anew. Raises what `make` raises (nothing is kept then)."""
    for path in inputs:
        note(path)
    stamps = tuple(_SEEN[path] for path in inputs)
    made_by = tuple((f, _stamp(f)) for f in code)
    whole = (FORMAT, __version__, key, made_by, tuple(inputs), stamps)
    doc = _unpickled(file)
    if type(doc) is tuple and len(doc) == 2 and doc[0] == whole:
        return doc[1]
    value = make()
    now = time.time_ns()
    if all(s[0] >= 0 and now - SETTLE_NS > max(s[0], s[1]) for s in stamps):
        with contextlib.suppress(Exception):  # only a cache: a full disk, a value not to pickle
            file.parent.mkdir(exist_ok=True)
            write_atomic(file, _pickled((whole, value)), 0o600)
    return value


def recipe_named(name: str, package_dirs: list[Path]):
    """The recipe of package `name`: the first `<dir>/<name>.yaml` in search order that is a
    file, loaded (`_recipe`); None when there is none. The stat
    that finds the file is its stamp (one stat a package on a switch, no Path made for a
    recipe the cache holds). Raises ConfigError as load_recipe does."""
    for d in package_dirs:
        key = os.path.join(d, f"{name}.yaml")
        first = _stamp(key)
        if first is not None and stat.S_ISREG(first[0]):
            return _recipe(key, first)
    return None


def _recipe(key: str, first: Stamp):
    """`recipes.load_recipe` of the file `key` whose stamp is `first` (taken before anything
    is read), from the cache when the file and its patch files are unchanged. Raises
    ConfigError as load_recipe does (errors are never cached)."""
    from .recipes import load_recipe

    cache = _CACHE
    hit = cache.recipes.get(key)
    if hit is not None:
        stamps, loaded = hit
        if stamps[0] == first and stamps[1:] == tuple(_stamp(str(p)) for p in _patch_files(loaded)):
            return loaded
    loaded = load_recipe(Path(key))
    stamps = (first, *(_stamp(str(p)) for p in _patch_files(loaded)))
    if _settled(stamps) and first == _stamp(key):  # and not rewritten while it was read
        cache.recipes[key] = (stamps, loaded)
        cache.dirty = True
    return loaded


def _settled(stamps) -> bool:
    """Whether every stamp is of a file last changed more than SETTLE_NS ago."""
    now = time.time_ns()
    return all(s is not None and now - SETTLE_NS > max(s[1], s[2]) for s in stamps)


def _patch_files(loaded) -> list[Path]:
    """The patch files beside the recipe that loading it checked (its own and its `when:`
    blocks')."""
    patches = [*loaded.patches, *(p for block in loaded.when for p in block.patches)]
    return [p.path for p in patches if p.path is not None]


def source_hash(source) -> str:
    """`recipes.source_hash(source, tree_hash)` (source: a recipes.Source): a path source
    the cache holds as a folder is answered by `tree_hash` without asking first whether it
    is a folder (its stamp says so: a file or a link there now is a change)."""
    from .recipes import source_hash as hashed

    if source.path is not None and not source.sha256 and not source.commit:
        key = str(source.path)
        hit = _CACHE.trees.get(key)
        if hit is not None and _same_tree(key, hit[0], hit[1]):  # it noted every path
            return "tree:" + hit[2]
    if source.path is not None:  # for the no-op memo: a file's stamp before it is hashed
        note(str(source.path))
    return hashed(source, tree_hash)


def tree_hash(root: Path) -> str:
    """`hashing.tree_hash(root)`, from the cache when nothing below `root` changed."""
    cache = _CACHE
    key = str(root)
    hit = cache.trees.get(key)
    if hit is not None and _same_tree(key, hit[0], hit[1]):
        return hit[2]
    paths, before, newest = _tree_stamps(key)
    value = hash_tree(root)
    settled = time.time_ns() - SETTLE_NS > newest
    if settled and _tree_stamps(key)[1] == before:  # and nothing changed while it was hashed
        cache.trees[key] = ("\0".join(paths), before, value)
        cache.dirty = True
    return value


def _same_tree(root: str, paths: str, saved: bytes) -> bool:
    """Whether the paths below `root` that `_tree_stamps` listed (NUL-separated) still have
    the stamps `saved`: one lstat each, no listing (a file added, removed or renamed
    changes its folder's mtime and ctime; a file's content, its own). When they do, what
    they are is noted for the no-op memo (`seen`, `listing`) as `_tree_stamps` notes it."""
    names = paths.split("\0")
    out = array("q")
    listed = []
    lstat = os.lstat
    try:
        for path in names:
            st = lstat(path) if out else os.stat(path)  # the root followed, as walked
            mode = st.st_mode
            out.extend((mode, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
            if stat.S_ISDIR(mode) and path.endswith("/.git") and path != root:
                continue  # not entered, not in the memo (as `_tree_stamps`)
            listed.append(path)
            if not stat.S_ISLNK(mode):  # taken before anything is read: as `_tree_stamps`
                _SEEN.setdefault(path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    except OSError:
        return False
    if out.tobytes() != saved:
        return False
    _LISTED.setdefault(root, listed)
    return True


def body(steps, build: str, package_dirs: tuple[Path, ...]) -> str:
    """`buildsystems.body(steps, build, package_dirs)`, from the cache when the recipe's
    steps, the template chosen and every built-in template are unchanged. Raises
    ConfigError as body does (errors are never cached)."""
    from . import buildsystems

    if steps is None:
        return build
    files = buildsystems.template_files(steps, package_dirs)
    for f in files:  # each, before the first that is a file is read (the memo stamps each)
        note(str(f))
    chosen = next((f for f in files if f.is_file()), None)
    if chosen is None:  # body says what is wrong
        return buildsystems.body(steps, build, package_dirs)
    cache = _CACHE
    if cache.builtin is None:
        from ..templating import builtin_dirs

        cache.builtin = b"".join(_digest(*_tree_stamps(str(d))[:2]) for d in builtin_dirs())
    what = repr((str(chosen), steps, build))
    stamps = (_stamp(str(chosen)), cache.builtin)
    hit = cache.bodies.get(str(steps.file))  # one entry a recipe file: the last one made
    if hit is not None and hit[0] == what and hit[1] == stamps:
        return hit[2]
    value = buildsystems.body(steps, build, package_dirs)
    if _settled(stamps[:1]) and _stamp(str(chosen)) == stamps[0]:
        cache.bodies[str(steps.file)] = (what, stamps, value)
        cache.dirty = True
    return value


def _tree_stamps(root: str) -> tuple[list[str], bytes, int]:
    """`root` and every path below it (symlinks below it not followed; `.git` folders listed but not
    entered, as hashing.tree_entries does), folders before what they hold, each folder's
    entries by name; their stamps (lstat: mode, mtime_ns, ctime_ns, size, inode; a path
    that cannot be read: GONE_STAMP) as the bytes of one array of 64-bit integers; and the
    newest of their mtimes and ctimes (ns; a tree that cannot be read counts as changed
    now)."""
    paths: list[str] = []
    out = array("q")
    newest = 0
    listed = []  # what memo.tree lists: `.git` folders left out
    try:
        st = os.stat(root)  # a link to the folder is followed (as os.walk does); below: not
    except OSError:
        return [root], array("q", GONE_STAMP).tobytes(), time.time_ns()
    todo = [(root, st)]
    while todo:
        path, st = todo.pop()
        paths.append(path)
        out.extend((st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
        if stat.S_ISDIR(st.st_mode) and path.endswith("/.git") and path != root:
            continue  # listed, not entered
        listed.append(path)
        if not stat.S_ISLNK(st.st_mode):  # as os.stat gives it: the memo's stamp
            _SEEN.setdefault(path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            with os.scandir(path) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError:
            out.extend(GONE_STAMP)  # an unreadable folder: never cached
            newest = time.time_ns()
            continue
        # depth first, each folder's entries by name: pushed in reverse
        todo += [(e.path, e.stat(follow_symlinks=False)) for e in reversed(found)]
    _LISTED.setdefault(root, listed)
    return paths, out.tobytes(), newest


GONE_STAMP = (-1, -1, -1, -1, -1)  # a path that cannot be read or listed


def _digest(paths: list[str], stamps: bytes) -> bytes:
    """One digest of `_tree_stamps`' paths and stamps."""
    return hashlib.sha256("\0".join(paths).encode() + b"\0" + stamps).digest()


def save() -> None:
    """Write the cache if this process added to it (atomically; OSError is ignored: it is
    only a cache), without the entries of files and folders that no longer exist."""
    cache = _CACHE
    if not cache.dirty or cache.file is None:
        return
    # what names a file or folder that is gone is dropped: the cache does not grow forever
    doc = {
        "code": _code_key(),
        "recipes": {k: v for k, v in cache.recipes.items() if os.path.exists(k)},
        "trees": {k: v for k, v in cache.trees.items() if os.path.exists(k)},
        "bodies": {k: v for k, v in cache.bodies.items() if os.path.exists(k)},
    }
    try:
        cache.file.parent.mkdir(exist_ok=True)  # the home exists
        write_atomic(cache.file, _pickled(doc), 0o600)
        cache.dirty = False
    except Exception:  # noqa: BLE001 - only a cache: an object that does not pickle, a full disk
        pass


class _Pickler(pickle.Pickler):
    """pickle's, with a path stored as its string (`PosixPath('/a/b')`), not its parts: the
    cache holds two a recipe, and a path is made from one string in half the time it is
    made from its parts (10,000 paths: 28 ms against 58 ms to load). The same path loads."""

    def reducer_override(self, obj):
        if isinstance(obj, PurePath):
            return type(obj), (str(obj),)
        return NotImplemented


def _pickled(doc: dict) -> bytes:
    """`doc` pickled (`_Pickler`)."""
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(doc)
    return out.getvalue()
