"""The no-op fast path of `hit build`: remember what a profile resolved to, and from what.

Running `hit build` on an unchanged profile is the common case and should cost little more
than starting Python. After each successful build the memo records every input by
(mtime_ns, size, inode): the profile YAMLs, the home config, every recipe file, the listing of
every package dir (a recipe added earlier in the search order shadows a later one), every file
and folder of path sources, every patch file beside a recipe, every file that can be a build
system's phase template (each package dir's `build_systems/<system>.sh.j2`, present or not, and
the built-in one), and this package's own resolver code. When every stamp still matches, the
artifact ids are taken from the memo without reading YAML or hashing sources.
Externals are inputs too: every command and every file a pin names (a compiler replaced by
a package upgrade or an alternatives switch) is stamped, so the fast path never hides drift.
Any difference, or anything missing from the store, falls back to a full resolution.
A file resolving stamped before it read it (the profile YAMLs, the home's config.yaml, the
package dirs' listings, recipes, patch files, build-system templates, every file and folder
of path sources: spec/resolvecache.py's `seen` and `note`) keeps that stamp, so a file
changed while resolving or building is a change to the next `hit build`, not part of a no-op.

Like make, this trusts stat: a file rewritten with the same size within one mtime tick would
be missed (ext4 and xfs stamps are in nanoseconds, so that takes deliberate effort).

The check (`up_to_date`) imports only built-in modules (os, marshal, zlib, array, gc) and knows
nothing of the store's layout: `save` records, from store/layout.py and store/roots.py, the
stamps of the exact files that must be there (each artifact's manifest, upstream or local)
and the links that must point where they point (the profile's link, its gc root). The memo
is a `marshal` file of a few objects (the paths as one string, the stamps as one array of
integers), so it loads in milliseconds at 5,000 packages; one from another Python version or
a damaged one is simply not trusted (a full resolution follows and writes it anew). A long
list is stamped by two processes at once (`unchanged`): stat is a system call each, and two
cores take half the time.
"""

from __future__ import annotations

import marshal
import os
import zlib
from array import array

from .. import __version__
from ..collector import collector_paused

# the code whose change can change what resolving gives (below the package folder): the
# no-op path trusts the memo only while none of it changed (a checkout being edited)
OWN_CODE = ("spec/*.py", "hashing.py", "names.py", "urls.py", "build/memo.py")
FORMAT = 6  # the memo file's layout: a memo of another layout is not trusted

# A path's stamp: (st_mtime_ns, st_ctime_ns, st_size, st_ino) of os.stat (symlinks
# followed), or GONE. The ctime catches a file whose mtime was put back (`touch -d`, `cp -p`,
# an archive unpacked over it): only the kernel sets it.
GONE = (-1, -1, -1, -1)  # the stamp of a path that does not exist (or cannot be read)


def stamps(paths: list[str], taken: dict[str, tuple[int, int, int, int]] | None = None) -> bytes:
    """The stamps of `paths`, flat, as the bytes of an array of 64-bit integers: one object
    to save and to compare, however many paths (5,000 packages: some 30,000). `taken`:
    stamps of some of them taken earlier (path -> the four integers), used as they are."""
    out = array("q")
    stat = os.stat
    if taken:  # a loop of its own: the no-op check's, below, stays as short as it can be
        for path in paths:
            stamp = taken.get(path)
            if stamp is None:
                out.frombytes(stamps([path]))
            else:
                out.extend(stamp)
        return out.tobytes()
    for path in paths:
        try:
            st = stat(path)
        except OSError:
            out.extend(GONE)
        else:
            out.extend((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    return out.tobytes()


# Paths from which `unchanged` stats half of them in a forked child: a fork and wait cost
# 0.5-3 ms on the 2-core development machine (idle to loaded), a stat 2.3-2.6 us, most of
# it the system call (issue 18: 30,032 paths, 75 ms in one process, at 5,000 packages), so
# a fork pays off from 1,000-2,500 paths. Threads did not help (each stat gives the GIL up
# and takes it back).
SPLIT_FROM = 4000
STAMP_BYTES = len(GONE) * 8  # one path's stamp in stamps()'s bytes
# a long list's first paths, checked alone first (inputs() puts the home config, the
# resolver's code and the profile's YAML files there): a profile switch is told at once
HEAD = 64


def unchanged(paths: str, saved: bytes) -> bool:
    """Whether the NUL-separated `paths` (as save() stores them) still have the stamps
    `saved` (stamps() of them). From SPLIT_FROM paths on, a forked child stamps the second
    half while this process stamps the first (two cores: about half the time) and answers
    with its exit status (0: the same); a child that fails or is killed counts as a
    difference, and a difference in the first half kills the child without waiting for it.
    The first HEAD paths are checked before the split: a changed profile is told at once.
    Without fork (an OSError: no memory, too many processes), one process stamps them all."""
    count = len(saved) // STAMP_BYTES
    if count < SPLIT_FROM:
        return stamps(paths.split("\0")) == saved
    head = paths.split("\0", HEAD)[:HEAD]  # what a profile switch changes: seen at once
    if stamps(head) != saved[: len(head) * STAMP_BYTES]:
        return False
    cut = paths.find("\0", len(paths) // 2)  # the first half: up to that NUL
    if cut == -1:  # one path for thousands of stamps: not a memo save() wrote
        return False
    first = paths.count("\0", 0, cut) + 1  # how many paths that half holds
    try:
        pid = os.fork()
    except OSError:
        return stamps(paths.split("\0")) == saved
    if pid == 0:  # the child: the second half; never returns (no atexit, no buffers flushed)
        same = False
        try:
            same = stamps(paths[cut + 1 :].split("\0")) == saved[first * STAMP_BYTES :]
        finally:
            os._exit(0 if same else 1)
    same = False
    try:
        same = stamps(paths[:cut].split("\0")) == saved[: first * STAMP_BYTES]
    finally:
        if not same:
            os.kill(pid, 9)  # SIGKILL: its answer no longer matters
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped already (hit started with SIGCHLD ignored)
            status = -1
    if same and status == -1:  # its answer is lost: the second half stamped here
        return stamps(paths[cut + 1 :].split("\0")) == saved[first * STAMP_BYTES :]
    return same and status == 0


def _site_config() -> str | None:
    """The file HIT_SITE_CONFIG names (the site's defaults for users, store/home.py), made
    absolute as the home reads it (home.site_defaults): a `..` is not folded away, the
    kernel resolves it, after a symlink too (`cur/../user-config.yaml` with `cur` a link
    names a file beside the link's target); None when it is not set."""
    from pathlib import Path  # imported already by the no-op path

    value = os.environ.get("HIT_SITE_CONFIG")
    return str(Path(value).expanduser().absolute()) if value else None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # hdmodules/


def memo_file(home: str, profile: str) -> str:
    """Where the memo of the profile YAML `profile` (an absolute path) is kept in the home at
    `home` (homeroot.home_root()): its name is a checksum of the path, and the memo names
    the path it is for. The running code's folder is part of the checksum: the memo stamps
    that code's files, so another installation of hdmodules (another checkout, a virtual
    environment) never takes a memo written by this one for its own."""
    which = f"{profile}\0{_PACKAGE}"
    key = f"{zlib.crc32(which.encode()):08x}{len(profile):04x}"
    return os.path.join(home, ".cache", f"build-{key}.memo")


def prune(home: str) -> int:
    """Remove the memos in the home at `home` whose profile YAML is gone (a checkout or a CI
    job's folder removed): nothing else removes them, one is written for every profile path
    ever built, and one of a 5,000-package profile is some MB. A memo that cannot be read
    is left (another Python's: only a cache). Returns how many were removed; never raises."""
    removed = 0
    try:
        with os.scandir(os.path.join(home, ".cache")) as it:
            found = [e.path for e in it if e.name.startswith("build-") and e.name.endswith(".memo")]
    except OSError:
        return 0
    for path in found:
        try:
            with open(path, "rb") as f:
                profile = marshal.load(f)["profile"]
            if isinstance(profile, str) and not os.path.lexists(profile):
                os.unlink(path)
                removed += 1
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            continue
    return removed


def tree(root: str | os.PathLike, out: dict[str, None]) -> None:
    """Add `root`, every folder and file below it (symlinks too, not followed; `.git` left
    out) to the ordered set `out`."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        out[dirpath] = None
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            if name in filenames or os.path.islink(path):
                out[path] = None


# Complexity (radon C): a list of every input the no-op path must stamp, each kind of input
# (YAML, recipes, package dirs, externals' files, path and git sources) one short branch.
def inputs(resolved, home) -> dict[str, None]:
    """Every input of `resolved` (spec.resolve.Resolved) built in `home` (a Home), as an
    ordered set of paths (dict keys): what the memo stamps (also the site's memo,
    publish/sitememo.py)."""
    from pathlib import Path

    from ..spec.buildsystems import template_files  # not on the no-op path: it loads PyYAML
    from ..spec.externals import command_paths
    from ..spec.resolvecache import listing

    profile = resolved.profile
    config = str(home.root / "config.yaml")
    out: dict[str, None] = {config: None}  # an ordered set
    if _site_config() is not None:
        out[_site_config()] = None
    out.update(dict.fromkeys(str(f) for f in profile.files))  # first: see HEAD
    here = Path(__file__).parent.parent  # the package folder
    own = sorted(f for pattern in OWN_CODE for f in here.glob(pattern))
    out.update(dict.fromkeys(str(f) for f in own))
    out.update(dict.fromkeys(str(d) for d in profile.package_dirs))
    externals: set[int] = set()  # those listed: every node has the compiler
    for node in resolved.nodes.values():
        for ext in node.toolchain.values():
            if id(ext) in externals:
                continue
            externals.add(id(ext))
            files = [  # a bare command name: as PATH finds it (externals.command_paths)
                *(p for cmd in ext.commands.values() for p in command_paths(cmd)),
                *(v.rsplit("@", 1)[0] for v in (ext.pin or {}).values()),
            ]
            out.update(dict.fromkeys(f for f in files if f.startswith("/")))
        out[str(node.recipe.file)] = None
        templates = template_files(node.recipe.build_system, tuple(profile.package_dirs))
        out.update(dict.fromkeys(str(f) for f in templates))
        for source in node.recipe.sources:
            if source.git is not None and os.path.isdir(source.git):  # a checkout: its refs
                from ..spec.gitrefs import watched_files

                tree(source.git, out)
                out.update(dict.fromkeys(watched_files(Path(source.git), source.ref)))
            if source.path is not None:
                root = str(source.path)
                out[root] = None
                walked = listing(root)  # as resolving walked it (once is enough)
                if walked is not None:
                    out.update(dict.fromkeys(walked))
                elif source.path.is_dir():
                    tree(source.path, out)
        for patch in node.recipe.patches:  # a patch beside the recipe is hashed by content
            if patch.path is not None:
                out[str(patch.path)] = None
    return out


_NOTED: dict[int, tuple[object, dict[str, None]]] = {}  # id(resolved) -> it, its inputs


def note_inputs(resolved, home) -> None:
    """Stamp every input of `resolved` (`inputs`) now, once resolving is done and before
    anything builds, unless resolving stamped it already (resolvecache.seen, which `save`
    and publish/sitememo.py take stamps from): a file edited while the build runs (the
    profile YAML, a recipe added to a package dir, a site's recipe) is then a change to the
    next no-op check, never part of the memo. A missing input is stamped as missing."""
    from ..spec.resolvecache import seen

    found = inputs(resolved, home)
    _NOTED[id(resolved)] = (resolved, found)
    taken = seen()
    for path in found:
        if path not in taken:
            taken[path] = tuple(array("q", stamps([path])))  # type: ignore[assignment]


def noted_inputs(resolved, home) -> dict[str, None]:
    """`inputs(resolved, home)`, as note_inputs listed them if it did (a new dict)."""
    noted = _NOTED.get(id(resolved))
    return dict(noted[1]) if noted is not None and noted[0] is resolved else inputs(resolved, home)


def prefix_text(store, ref) -> str:
    """`store.prefix(ref)` (a store.layout.Store, a spec.artifact.ArtifactRef) as a string,
    by the store's own rule (here, else the first upstream that has it, else here:
    Store._installed_at, Store._local), for the thousands of artifacts a profile switch
    names (save; publish/assemble.py): a Path each costs more than the look-up (issue 18,
    about 7 us an artifact)."""
    if not store.upstreams:
        return store._local(ref)
    return store._installed_at(ref) or store._local(ref)


def installed(store):
    """`store.is_installed` (store: a store.layout.Store) that keeps the stamp of each
    manifest it finds for `save` (resolvecache.seen): a profile switch stats each of its
    thousands of manifests once, not again after the build. A manifest found is the one
    `prefix_text` names (the same rule); one not found is stamped by `save`, after the
    build made it. A manifest gone meanwhile is a change to the next no-op check."""
    from ..spec.resolvecache import seen

    taken = seen()

    def is_installed(ref) -> bool:
        found = store.manifest_stat(ref)
        if found is None:
            return False
        path, st = found
        taken.setdefault(path, (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
        return True

    return is_installed


def save(home, resolved) -> None:
    """Record a successful build of `resolved` (spec.resolve.Resolved) in `home` (the user's
    Home, at homeroot.home_root()): the stamps of its inputs and of its artifacts' manifests
    (which must still be there), the links that must stay as they are, and what a switch
    to another list of the same packages needs (`switch_data`).
    Never raises for an unwritable cache (it is only a cache)."""
    from ..spec.resolvecache import seen
    from ..store.home import open_store
    from ..store.layout import MANIFEST, META
    from .status import status_text

    store = open_store(home)
    found = noted_inputs(resolved, home)
    own = list(found).index(str(resolved.profile.file))
    count = len(found)
    refs = [n.ref for n in resolved.nodes.values()]
    for ref in [*refs, resolved.profile_ref]:  # installed, here or upstream: its manifest is there
        found[f"{prefix_text(store, ref)}/{META}/{MANIFEST}"] = None
    paths = list(found)
    whole = len(paths) == count + len(refs) + 1  # no manifest was an input too
    doc = {
        "format": FORMAT,
        "version": __version__,
        "profile": str(resolved.profile.file),
        "paths": "\0".join(paths),  # one string (a path holds no NUL): loads at once
        # the stamps resolving took (before it read those files) or note_inputs took
        # (before anything built); the others (the manifests) taken now
        "stamps": stamps(paths, seen()),
        "inputs": count,  # the paths before the manifests (one per artifact, the profile's last)
        "own": own,  # where the profile's own YAML is among them
        "links": links(home, resolved.profile.link_path, store.prefix(resolved.profile_ref)),
        "shorts": "\0".join(r.short for r in refs),
        "site_config": _site_config(),
        "switch": switch_data(resolved) if whole else None,
        "status": status_text(resolved, lambda _ref: True),  # all built: its `hit status`
    }
    write(resolved.profile.file, doc)


def links(home, link, prefix) -> list[tuple[str, str]]:
    """The links the memo of a profile linked at `link` (a Path) to `prefix` checks: the
    profile's link, and its gc root in `home` (a Home)."""
    from ..store.roots import entry_for

    return [(str(link), str(prefix)), (str(entry_for(home.gc_roots, link)), str(link.absolute()))]


def write(profile, doc: dict) -> None:
    """Save `doc` as the memo of the profile YAML `profile` (absolute) in the user's home.
    Never raises for an unwritable cache."""
    from pathlib import Path

    from ..atomic import write_atomic
    from ..store.homeroot import home_root

    target = memo_file(home_root(), str(profile))
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_atomic(Path(target), marshal.dumps(doc))
    except OSError:
        pass  # only a cache: a later build simply resolves in full


def switch_data(resolved) -> dict | None:
    """What a profile switch needs besides the stamps (publish/quickswitch.py): the profile's
    key (profiles.switch_key), its `prefer:` and the layout of its text (profiledelta.py),
    and each artifact's id, version and dependencies (their places
    in build order, in the recipe's order), in build order, as strings that load at once,
    and which of them have their manifests stamped (places, in the order of the manifests:
    all of them here; a switch keeps every artifact but stamps those it uses).
    None for a profile whose list of packages cannot change without resolving in full: one
    without a key, a site-style one (its modules are planned from its resolution:
    usermodules.build_lines), or one with Python packages (they bring their interpreter
    into the profile: pythonenv.profile_packages)."""
    from ..spec.profiledelta import of_profile, saved
    from ..spec.profiles import switch_key
    from ..spec.pythonenv import PYTHON, is_python_package

    key = switch_key(resolved.profile)
    nodes = resolved.nodes
    toolchain = resolved.profile.toolchain
    if key is None or "compiler" in toolchain or PYTHON in toolchain or PYTHON in nodes:
        return None
    if any(is_python_package(n.recipe) for n in nodes.values()):
        return None
    place = {name: i for i, name in enumerate(nodes)}
    return {
        "key": key,
        "ids": "\0".join(n.ref.id for n in nodes.values()),
        "versions": "\0".join(n.ref.version for n in nodes.values()),
        "deps": "\0".join(",".join(str(place[d]) for d in n.deps) for n in nodes.values()),
        "kept": ",".join(str(i) for i in range(len(nodes))),  # whose manifests are stamped
        "prefer": list(resolved.profile.prefer),
        "layout": saved(of_profile(resolved.profile)),  # its plain packages' lines
    }


def _read(home: str, profile: str) -> dict | None:
    """The memo of the profile YAML `profile` (absolute) in the home at `home`, if this
    version of hdmodules wrote it for that file under the same site defaults; else None."""
    try:
        with open(memo_file(home, profile), "rb") as f:
            doc = marshal.load(f)
        if doc["format"] != FORMAT or doc["version"] != __version__ or doc["profile"] != profile:
            return None
        if _site_config() != doc["site_config"]:
            return None  # another site's defaults for users (their file is stamped too)
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return doc


def _holds(doc: dict, saved: bytes) -> bool:
    """Whether every path of the memo `doc` has the stamp `saved` gives it (unchanged) and
    every link it lists points where it did."""
    try:
        return unchanged(doc["paths"], saved) and _links_hold(doc)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False


def _links_hold(doc: dict) -> bool:
    """Whether every link the memo `doc` lists points where it did."""
    try:
        links = doc["links"]
        return len(links) == 2 and all(os.readlink(link) == target for link, target in links)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False


def load(home: str, profile: str) -> dict | None:
    """The memo of the profile YAML `profile` (absolute) in the home at `home` if every path
    it stamped (inputs, manifests) has the same stamp and every link it lists points where it
    did; else None. When only the profile's own YAML changed, a check for a switch is begun
    (`_begin_switch_check`)."""
    doc = _read(home, profile)
    if doc is None:
        return None
    if _holds(doc, doc["stamps"]):
        return doc
    _begin_switch_check(home, profile, doc)
    return None


def _with_own(doc: dict, profile: str) -> bytes | None:
    """The memo `doc`'s stamps with the profile YAML `profile`'s own replaced by its stamp
    now (what changed in it is publish/quickswitch.py's to judge); None for a memo without
    what a switch needs (`switch_data`)."""
    if not isinstance(doc.get("switch"), dict):
        return None
    try:
        at = doc["own"] * STAMP_BYTES
        saved = doc["stamps"]
        return saved[:at] + stamps([profile]) + saved[at + STAMP_BYTES :]
    except (KeyError, TypeError):
        return None


# A likely switch, found by the no-op check (`_begin_switch_check`): home, profile, the memo,
# its stamps with the profile's own as it is now, and the pid of the forked child that stamps
# the memo's paths after HEAD (its exit status 0: the same stamps; None: no child, a short
# memo is stamped when `switchable` asks).
_early: tuple[str, str, dict, bytes, int | None] | None = None


def _begin_switch_check(home: str, profile: str, doc: dict) -> None:
    """When the no-op check found a memo with what a switch needs whose first HEAD paths
    differ only in the profile's own YAML, which changed (its package list edited: a
    likely switch; with the YAML unchanged, what changed is elsewhere: no switch),
    remember it (`switch_candidate` answers from it), and for a long memo (SPLIT_FROM paths
    or more) fork a child that stamps every path after them, while this process imports
    what it needs and loads the YAML (publish/quickswitch.py);
    `switchable` takes its answer. Issue 18: the 30,000 stats of a 5,000-package switch
    (60-70 ms) then cost no time of their own on two cores. Without fork (no memory, too
    many processes), the stamps are taken when `switchable` asks."""
    global _early
    saved = _with_own(doc, profile)
    paths = doc.get("paths")
    if saved is None or not isinstance(paths, str):  # a damaged memo: resolved in full
        return
    if saved == doc["stamps"]:  # the YAML is as it was: what changed is elsewhere
        return
    parts = paths.split("\0", HEAD)
    head = parts[:HEAD]
    if stamps(head) != saved[: len(head) * STAMP_BYTES]:
        return  # something else changed too: resolved in full
    pid = None
    if len(saved) // STAMP_BYTES >= SPLIT_FROM and len(parts) > HEAD:
        try:
            pid = os.fork()
        except OSError:
            pid = None
        if pid == 0:  # the child: never returns (no atexit, no buffers flushed)
            same = False
            try:
                os.closerange(0, 3)  # the caller's pipes wait for no child of hit's
                same = stamps(parts[HEAD].split("\0")) == saved[HEAD * STAMP_BYTES :]
            finally:
                os._exit(0 if same else 1)
    _early = (home, profile, doc, saved, pid)


def end_switch_check() -> None:
    """Forget a likely switch nobody checked (the profile was resolved in full): the child
    of its check, if any, killed and reaped: no child outlives the decision."""
    global _early
    if _early is not None:
        pid = _early[4]
        _early = None
        if pid is not None:
            try:
                os.kill(pid, 9)  # SIGKILL: its answer no longer matters
                os.waitpid(pid, 0)
            except OSError:  # reaped already
                pass


def switch_candidate(home: str, profile: str) -> dict | None:
    """The memo of the profile YAML `profile` (absolute) in the home at `home` when it holds
    what a switch needs (`switch_data`); its stamps are not checked yet (`switchable`)."""
    if _early is not None and _early[:2] == (home, profile):
        return _early[2]
    doc = _read(home, profile)
    return doc if doc is not None and _with_own(doc, profile) is not None else None


def checking(home: str, profile: str, doc: dict) -> bool:
    """Whether a child forked by the no-op check stamps the memo `doc` of the profile YAML
    `profile` now (`_begin_switch_check`): `switchable` will wait for it, and a switch may
    do its own work meanwhile (assemble.write_ahead). False when the stamps are taken when
    `switchable` asks (a short memo; a change among its first paths, where nothing is
    gained by writing ahead and the farm would only be dropped)."""
    early = _early
    return (
        early is not None
        and early[:2] == (home, profile)
        and early[2] is doc
        and early[4] is not None
    )


def switchable(home: str, profile: str, doc: dict) -> bool:
    """Whether every path the memo `doc` (switch_candidate's) of the profile YAML `profile`
    stamped but that YAML file has the same stamp, and every link it lists points where it
    did: the answer of the check begun early when there is one (`_begin_switch_check`), else
    taken now. The profile's own stamp is not compared: what changed in it is
    publish/quickswitch.py's to judge."""
    global _early
    early = _early
    if early is not None and early[:2] == (home, profile) and early[2] is doc:
        _early = None
        status = -1  # no child: taken now
        if early[4] is not None:
            try:
                _, status = os.waitpid(early[4], 0)
            except ChildProcessError:  # reaped by someone else: its answer is lost
                status = -1
        if status == 0:
            return _links_hold(doc)
        if status != 1:  # no child, killed, or lost: taken now
            return _holds(doc, early[3])
        return False
    end_switch_check()
    saved = _with_own(doc, profile)
    return saved is not None and _holds(doc, saved)


def status(home: str, profile: str) -> str | None:
    """`hit status` of an unchanged profile whose build is complete and whose link and gc
    root are in place (every artifact built: the memo stamps their manifests), as
    build/status.py rendered it when the memo was saved; None means "resolve and look".
    Begins no switch check (`load` does when only the profile's YAML changed)."""
    with collector_paused():
        doc = _read(home, profile)
        if doc is None or not _holds(doc, doc["stamps"]):
            return None
    text = doc.get("status")
    return text if isinstance(text, str) else None


def up_to_date(home: str, profile: str) -> tuple[list[str], str, str] | None:
    """For an unchanged profile whose build is complete and whose link and gc root are in
    place: the short ids of its artifacts, the profile's link and the profile's prefix (where
    the link points). None means "resolve and build in full". The cyclic garbage collector
    is off meanwhile: the check makes no cycles, and its passes over the stat results of
    some 30,000 paths cost ~5 ms at 5,000 packages."""
    with collector_paused():
        doc = load(home, profile)
    if doc is None:
        return None
    link, prefix = doc["links"][0]
    return doc["shorts"].split("\0") if doc["shorts"] else [], link, prefix
