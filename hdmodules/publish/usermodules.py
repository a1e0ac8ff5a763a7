"""A user's own module tree: the modules of the packages their site-style profiles
(`toolchain: [compiler]`) built in their own store, at the levels of the site's hierarchy (the
site's compiler and MPI modules open the same levels of `$HIT_HOME/modules`).

Each build of a site-style profile saves what the profile's modules are: its record, beside
the gc roots (roots.module_record), planned once from the resolved profile, so nothing later
reads YAML files that may have moved. The tree is then regenerated whole from the records of
every live profile (roots.live_profiles: the profiles the gc keeps), names settled across all
of them by the site's rule (modulenames.settle_names: two artifacts under one name in one
folder both get a hash suffix, `hello/1.0-abc1234`, and the plain version becomes an alias of
one of them), and published like a site's tree (moduletree.write_tree: rendered into
`$HIT_HOME/.modules-trees/<id>`, then `$HIT_HOME/modules` is re-pointed at it). That happens at
every `hit build` and after `hit gc` and `hit rm`: no module file is ever added or removed on
its own, so no module silently replaces another's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HitError
from ..spec.resolve import Resolved
from ..spec.site import ModuleConfig, Site, Stack
from ..store import roots
from ..store.home import Home
from ..store.layout import Store
from .modulefiles import Entry, plan
from .modulenames import settle_names
from .moduletree import MODULERC_LUA, _folder_rcs, publish_tree
from .treehistory import MANIFEST, listed, trees_folder

RECORD_FORMAT = 1  # the record's `format`: another one is skipped, naming the profile
RECORD_MAX_BYTES = 16 << 20
_FIELDS = {f.name for f in dataclasses.fields(Entry)}

# one module's run dependencies in a record: (artifact id, module name) each; the id is ""
# for a dependency outside the user's tree (a site module, named as the site names it)
Depends = list[tuple[str, str]]


@dataclass(frozen=True)
class Module:
    """One module of the user's tree: its `level` (`("Compiler", "gcc", "12.2.0")`), its name
    as written (`full`: `hello/1.0-abc1234`), its artifact, the plain version it stands for when
    it has a hash suffix (`alias`: `1.0`, else ""), and the profile links it comes from."""

    level: tuple[str, ...]
    full: str
    artifact_id: str
    alias: str
    links: tuple[Path, ...]

    @property
    def where(self) -> str:
        """`hello/1.0-abc1234 (Compiler/gcc/12.2.0)`: how it is named to the user."""
        return f"{self.full} ({'/'.join(self.level)})" if self.level else self.full


@dataclass(frozen=True)
class Clash:
    """Several artifacts under one name in one folder: `plain` (`hello/1.0`) at `level`, the
    modules each got (`members`) and the one `module load hello` and `hello/1.0` load
    (`loads`: a full name)."""

    level: tuple[str, ...]
    plain: str
    members: tuple[Module, ...]
    loads: str


@dataclass(frozen=True)
class Refresh:
    """A regeneration of the user's tree: the tree the link points at, whether the link
    changed, every module now in it (in the records' order), the clashes, the
    modules gone since the tree before and those new in it (`level/name/version` paths; a
    name that became the alias of a clash is not gone), and notes for the user (records
    skipped, an old folder moved aside)."""

    tree: Path
    changed: bool
    modules: tuple[Module, ...]
    clashes: tuple[Clash, ...]
    removed: tuple[str, ...]
    added: tuple[str, ...]
    notes: tuple[str, ...]


def modules_path(home: Home) -> Path:
    """The user's module tree: `$HIT_HOME/modules` (a link once regenerated)."""
    return home.root / "modules"


# --- records: what a profile's modules are -----------------------------------------------------


def _user_site(
    file: Path, home: Home, stacks: tuple[Stack, ...] = (), externals=None, naming=None
) -> Site:
    """The Site a user's modules are planned and written with: the user's tree, the site's
    hierarchy (its compiler and MPI modules are provided by the site), named by the site's
    rule when the profile builds on a site stack (`naming`: its modulenaming.SiteNaming), so
    that a module names the site's modules it loads as the site named them (the names the
    stack's copy lists, else by that rule). Its files are
    readable by all (Lmod ignores root-owned module files others may not read, even for
    root); a private home keeps them the user's (_private_trees)."""
    cfg = ModuleConfig(path=modules_path(home), provided=True)
    if naming is not None:
        named = {"naming_mpi": naming.naming_mpi, "root_variable": naming.root_variable}
        cfg = replace(cfg, naming=naming.naming, given_names=naming.names, **named)
    return Site(file, home.root, stacks, externals or {}, cfg, mode=0o755)


def _private_trees(home: Home) -> None:
    """A private home's trees folder is the user's only (0700), like the home itself, so
    the readable files inside stay the user's."""
    if home.private:
        folder = trees_folder(modules_path(home))
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)


def planned(home: Home, resolved: Resolved, store: Store) -> list[tuple[Entry, Depends]]:
    """The modules of a site-style profile's packages built in the user's own store (the
    site's own artifacts have the site's modules), in plan order, each with its run
    dependencies. Raises HitError when a module name or value is refused (modulefiles.plan)."""
    profile = resolved.profile
    naming = profile.site_naming
    name = naming.stack if naming else "user"  # the `{stack}` field: the site stack's name
    stack = Stack(name, replace(profile, link=None), profile.core)  # as the site's stack
    site = _user_site(profile.file, home, (stack,), profile.externals, naming)
    entries = plan(site, [(stack, resolved)], store)
    ours = [
        e
        for e in entries
        if e.kind == "package" and Path(e.prefix).is_relative_to(store.root) and e.artifact_id
    ]
    by_name = {(e.level, e.full): e for e in entries}
    out = []
    for e in ours:
        deps = []
        for dep in e.depends:
            d = by_name.get((e.level, dep))
            deps.append((d.artifact_id if d in ours else "", dep))
        if e.alias:  # a record keeps the plain name: names are settled across all profiles
            e.version, e.alias = e.alias, ""
        out.append((e, deps))
    return out


def save_record(
    home: Home, profile: Path, file: Path, modules: list[tuple[Entry, Depends]]
) -> Path:
    """Write the record of `profile` (its store path) built from `file` (the YAML): its
    modules, as JSON, beside the gc roots. Returns the record's path; raises OSError."""
    folder = roots.module_records(home.gc_roots)
    folder.mkdir(mode=0o700 if home.private else 0o755, parents=True, exist_ok=True)
    docs = []
    for e, deps in modules:
        doc = dataclasses.asdict(e)
        doc["depends"] = [list(d) for d in deps]
        docs.append(doc)
    record = {"format": RECORD_FORMAT, "profile": str(profile), "file": str(file)}
    path = roots.module_record(home.gc_roots, profile)
    write_atomic(path, json.dumps({**record, "modules": docs}, indent=1, sort_keys=True))
    return path


def _entry(doc: object) -> tuple[Entry, Depends]:
    """One module of a record. Raises ValueError when it is not one hit wrote."""
    if not isinstance(doc, dict):
        raise ValueError("a module is not a mapping")
    kw = {k: v for k, v in doc.items() if k in _FIELDS and k != "depends"}
    try:
        kw["level"] = tuple(kw["level"])
        if kw.get("modulepath") is not None:
            kw["modulepath"] = tuple(kw["modulepath"])
        for key in ("setenv", "prepend"):
            kw[key] = [(str(k), str(v)) for k, v in kw.get(key, [])]
        deps = [(str(i), str(n)) for i, n in doc.get("depends", [])]
        e = Entry(**kw)
    except (KeyError, TypeError, ValueError):
        raise ValueError("a module lacks a field or has one of the wrong type") from None
    words = [e.kind, e.name, e.version, e.artifact_id, e.prefix, *e.level]
    if not all(isinstance(w, str) for w in words) or not e.artifact_id:
        raise ValueError("a module's name, version, level or artifact is not text")
    return e, deps


def read_record(path: Path) -> list[tuple[Entry, Depends]]:
    """The modules a record lists, in its order. Raises ValueError saying what is wrong
    (unreadable, not JSON, another format, a module that is not one hit wrote)."""
    try:
        if path.stat().st_size > RECORD_MAX_BYTES:
            raise ValueError(f"larger than {RECORD_MAX_BYTES} bytes")
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise ValueError(f"cannot read it ({e.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
        raise ValueError(f"not a record of format {RECORD_FORMAT} (another version of hit?)")
    modules = doc.get("modules")
    if not isinstance(modules, list):
        raise ValueError("no list of modules")
    return [_entry(m) for m in modules]


# --- the tree: all live profiles' modules, names settled, published whole ----------------------


def _union(
    home: Home, store: Store, notes: list[str]
) -> tuple[list[Entry], dict[tuple, list[Path]], dict[tuple, Depends]]:
    """The modules of every live profile with a record, each artifact once per level (the
    first profile's), in the order of the profiles' links (then each record's order): the
    entries, the links each comes from, its dependencies; keys are (level, artifact id). A
    record that cannot be read is skipped with a note; a live profile without one (not
    site-style, or built before records existed) has no modules."""
    entries: dict[tuple, Entry] = {}
    links: dict[tuple, list[Path]] = {}
    depends: dict[tuple, Depends] = {}
    for link, profile in roots.live_profiles(home.gc_roots, store.root):
        path = roots.module_record(home.gc_roots, profile)
        if not path.exists():
            continue
        try:
            modules = read_record(path)
        except ValueError as e:
            notes.append(f"skipped the module record {path} of {link}: {e}; `hit build` it again")
            continue
        for e, deps in modules:
            if store.find(e.artifact_id) is None:  # gone (the profile keeps it: never, but)
                continue
            key = (e.level, e.artifact_id)
            if key not in entries:
                entries[key], depends[key] = e, deps
            links.setdefault(key, []).append(link)
    return list(entries.values()), links, depends


def _make_room(path: Path) -> list[str]:
    """The tree is published as a link at `path`. A plain folder there was written file by
    file by an earlier hit: it is moved aside (never deleted: it may hold files of the
    user's own), or removed when it holds no file at all. Returns a note for the user;
    raises HitError when `path` is a file or cannot be moved."""
    if path.is_symlink() or not path.exists():
        return []
    if not path.is_dir():
        raise HitError(f"{path} is a file, where hit writes your module tree; move it away")
    if not any(files for _d, _s, files in os.walk(path)):
        shutil.rmtree(path)
        return []
    dest = path.with_name(f"{path.name}.before-regeneration")
    n = 1
    while dest.exists() or dest.is_symlink():
        n += 1
        dest = path.with_name(f"{path.name}.before-regeneration-{n}")
    try:
        os.rename(path, dest)
    except OSError as e:
        raise HitError(f"cannot move the old module folder {path} aside: {e.strerror}") from None
    return [
        f"moved {path} (modulefiles an earlier hit wrote one by one) to {dest}: your module "
        f"tree is now generated whole from your profiles; a profile built before gets its "
        f"modules back at its next `hit build` (`hit build --explain` if it is up to date)"
    ]


def _lmod_modules(tree: Path) -> set[str]:
    """The modules of a tree on disk, as `level/name/version`: from its manifest (which lists
    no ghosts, treehistory), else from its Lmod files (a tree written before manifests)."""
    if (tree / MANIFEST).is_file():
        return {"/".join((*lv, n, v)) for lv, n, v in listed(tree)}
    root = tree / "lmod"
    if not root.is_dir():
        return set()
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith(".lua") and f != MODULERC_LUA:
                rel = Path(dirpath, f).relative_to(root).as_posix()
                found.add(rel[: -len(".lua")])
    return found


def _key(e: Entry) -> tuple:
    """An entry's key in the union: (level, artifact id)."""
    return (e.level, e.artifact_id)


def _clashes(site: Site, entries: list[Entry], modules: dict[tuple, Module]) -> list[Clash]:
    """The names several artifacts share, and which one the plain name loads (the alias the
    folder's rc file writes: moduletree._folder_rcs, the one rule for sites and users)."""
    target = {}
    for rc in _folder_rcs(site, entries):
        for full, symbolic in rc.versions:
            if symbolic != "default":
                target[(rc.folder[:-1], f"{rc.folder[-1]}/{symbolic}")] = full
    groups: dict[tuple, list[Module]] = {}
    for e in entries:
        if e.alias:
            groups.setdefault((e.level, f"{e.name}/{e.alias}"), []).append(modules[_key(e)])
    return [
        Clash(level, plain, tuple(members), target.get((level, plain), members[0].full))
        for (level, plain), members in groups.items()
    ]


def refresh(home: Home, store: Store) -> Refresh | None:
    """Regenerate the user's module tree from the records of the live profiles and publish
    it whole (a plain folder from an earlier hit is moved aside first: _make_room). None
    when the home has no records (a site root, or no site-style profile was ever built):
    nothing is touched. One refresh at a time (a lock beside the records), so two builds
    never publish a tree missing the other's modules. Raises HitError (a refused name or
    value, a tree that cannot be written)."""
    import filelock

    folder = roots.module_records(home.gc_roots)
    if not folder.is_dir():
        return None
    path = modules_path(home)
    with filelock.FileLock(folder / ".lock"):
        notes: list[str] = []
        entries, links, depends = _union(home, store, notes)
        site = _user_site(folder, home)
        settle_names(site, entries)
        names = {_key(e): e.full for e in entries}
        for e in entries:  # a dependency in the tree by the name it has now
            e.depends = [names.get((e.level, i), n) if i else n for i, n in depends[_key(e)]]
        notes += _make_room(path)
        before = _lmod_modules(path) if path.is_symlink() else set()
        _private_trees(home)
        _files, tree, changed = publish_tree(site, entries)
    modules = {
        _key(e): Module(e.level, e.full, e.artifact_id, e.alias, tuple(links[_key(e)]))
        for e in entries
    }
    now = {"/".join((*e.level, e.full)) for e in entries}
    aliases = {"/".join((*e.level, e.name, e.alias)) for e in entries if e.alias}
    return Refresh(
        tree,
        changed,
        tuple(modules.values()),
        tuple(_clashes(site, entries, modules)),
        tuple(sorted(before - now - aliases)),  # a name now an alias is in a clash line
        tuple(sorted(now - before)),
        tuple(notes),
    )


# --- what the commands call ----------------------------------------------------------------


def _shown(rel: str) -> str:
    """`Compiler/gcc/12.2.0/hello/1.0` -> `hello/1.0 (Compiler/gcc/12.2.0)`: a module path
    of the tree as the user loads it, and where (Core, Compiler and MPI levels have one,
    three and five parts; Python levels three below Core, `Python/python/3.11.2`, else five);
    any other path is shown as it is."""
    parts = rel.split("/")
    depth = {"Core": 1, "Compiler": 3, "MPI": 5}.get(parts[0], 0)
    if parts[0] == "Python":
        depth = 3 if parts[1:2] == ["python"] else 5
    if 0 < depth <= len(parts) - 2:
        return f"{'/'.join(parts[depth:])} ({'/'.join(parts[:depth])})"
    return rel


def build_lines(home: Home, resolved: Resolved | None, store: Store, profile: Path) -> list[str]:
    """After `hit build` linked `profile` (its store path): save its record when it is
    site-style (`resolved`: its resolution; None for one that is not), and regenerate the
    user's tree (any build: the link may have left a site-style profile). Returns what to
    tell the user: the name each of the profile's modules is written under, each name it
    shares with another build (all names, and which one the plain name loads), the modules
    gone. A home whose `modules` is a link no record
    made (a site root, whose tree hdmod writes) is left alone, with a note. Raises HitError
    (a refused name or value; a record that cannot be written)."""
    folder = roots.module_records(home.gc_roots)
    site_style = resolved is not None and "compiler" in resolved.profile.toolchain
    if site_style and not folder.is_dir() and modules_path(home).is_symlink():
        return [
            f"modules not written: {modules_path(home)} is a module tree hdmod made (this "
            f"home is a site root); hit writes a user's modules into the user's own home"
        ]
    mine: set[tuple] = set()
    if site_style:
        modules = planned(home, resolved, store)
        mine = {_key(e) for e, _deps in modules}
        try:
            save_record(home, profile, resolved.profile.file, modules)
        except OSError as e:
            raise HitError(f"cannot save the record of the profile's modules: {e}") from None
    result = refresh(home, store)
    if result is None:
        return []
    ours = [m for m in result.modules if (m.level, m.artifact_id) in mine]
    lines = list(result.notes)
    lines += [f"module written: {m.where} in {modules_path(home)}" for m in ours]
    lines += [_clash_line(c) for c in result.clashes if set(c.members) & set(ours)]
    lines += [f"module removed: {_shown(rel)}" for rel in result.removed]
    return lines


def _clash_line(c: Clash) -> str:
    level = f" at {'/'.join(c.level)}" if c.level else ""
    each = ", ".join(f"{m.full} ({', '.join(str(x) for x in m.links)})" for m in c.members)
    name = c.plain.rpartition("/")[0]
    return (
        f"module {c.plain}{level} is {len(c.members)} different builds, so each has its own "
        f"name: {each}; `module load {name}` and {c.plain} load {c.loads}"
    )


def refresh_lines(home: Home, store: Store) -> list[str]:
    """After `hit gc` or `hit rm`: regenerate the user's tree from the profiles the roots
    still keep. Returns what to tell the user: notes, the modules gone and the names
    written anew (a module whose clash is gone is back under its plain name). Raises
    HitError."""
    result = refresh(home, store)
    if result is None:
        return []
    lines = list(result.notes)
    lines += [f"module removed: {_shown(rel)}" for rel in result.removed]
    lines += [f"module written: {_shown(rel)}" for rel in result.added]
    return lines
