"""Writing module trees: render planned modules (modulefiles.plan) through the Jinja2
templates in templates/lmod and templates/tcl, with each folder's rc file (defaults, aliases,
hidden versions), and publish the tree.

The whole tree is rendered in memory, written into a staging folder named by its content
hash, then the tree's link is re-pointed at it: a user running `module avail` during a refresh
sees the old tree or the new one, never a half-written one. The same site.yaml gives
byte-identical files (nothing time-dependent).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, HitError
from ..names import (
    env_value_problem,
    env_var_problem,
    module_word,
    module_word_problem,
    name_problem,
    text_problem,
    version_problem,
)
from ..spec.site import Site
from ..spec.versions import newest
from ..store.layout import remove_tree
from ..store.links import set_link
from ..templating import snapshot, template_errors
from . import forked
from .modulefiles import Entry
from .permissions import apply, group_id, wanted
from .spidercache import CACHE_DIR, spider_cache_files, write_spider_cache
from .treehistory import MANIFEST, ghost_entries, kept_trees, manifest, trees_folder

MODULERC = ".modulerc"  # the Tcl tree's rc file (Environment Modules; Lmod reads it too)
MODULERC_LUA = ".modulerc.lua"  # the Lmod tree's: Lmod 8 reads it natively, without tclsh
RC_FILES = (MODULERC, MODULERC_LUA)
# format -> (rc file name, its template)
RC_OF_FORMAT = {"lmod": (MODULERC_LUA, "lmod/modulerc.lua"), "tcl": (MODULERC, "tcl/modulerc.tcl")}


@dataclass(frozen=True)
class FolderRc:
    """What one module folder's rc file says: `versions`, (module, symbolic name) pairs (the
    one `default`, then each plain alias of hash-suffixed versions), and the modules `hidden`
    from avail. Written as `.modulerc.lua` in the Lmod tree (module_version, hide_version:
    Lmod 8's own rc functions, read without a tclsh) and `.modulerc` in the Tcl tree
    (module-version; module-hide for Environment Modules 5, hide-version when Lmod reads it:
    Lmod's Tcl rc reader, RC2lua.tcl, stops on module-hide)."""

    folder: tuple[str, ...]  # below the format's root: level, then the module name
    versions: tuple[tuple[str, str], ...]
    hidden: tuple[str, ...]


def admin_defaults(site: Site, entries: list[Entry]) -> dict[str, str]:
    """`modules: defaults:` as module name -> module version (both spelt by
    names.module_word, so `17.0.2+8` names the module `17.0.2_8`). Each must name a module
    version that some folder of `entries` (modulefiles.plan) holds; ConfigError at the
    key's line in site.yaml if not (both tools would silently pick another default):
    `hdmod build` asks before anything builds, and again before anything is written."""
    versions: dict[str, set[str]] = {}
    for e in entries:
        if e.kind == "ghost":
            continue
        versions.setdefault(e.name, set()).add(e.version)
    wanted = {}
    for key, version in site.modules.defaults.items():
        name = "/".join(module_word(part) for part in key.split("/"))
        mapped = module_word(version)
        if mapped not in versions.get(name, ()):
            have = ", ".join(sorted(versions.get(name, ()))) or "none: no module has that name"
            raise ConfigError(
                site.file,
                site.modules.defaults_lines.get(key),
                f"modules: defaults: {key}: no module {name}/{mapped} is written "
                f"(versions: {have})",
            )
        wanted[name] = mapped
    return wanted


def _folder_rcs(site: Site, entries: list[Entry]) -> list[FolderRc]:
    """The rc file of each module folder that needs one. Exactly one default per folder, since
    with two `default` lines Lmod takes the last and Environment Modules warns and takes the
    first: the admin's choice (`modules: defaults:`) where the folder holds it, else, when the
    folder needs an explicit default, the first in site.yaml order of the versions that need
    one: hash-suffixed versions (both tools sort hash suffixes unpredictably) and hidden ones
    (neither tool picks a hidden version as the implicit default, so `module load NAME` would
    fail). A folder holding several versions (`hdf5/1.10.8`, `hdf5/1.14.3`) without the
    admin's choice gets the newest (versions.newest; of its hash-suffixed builds, the first in
    site.yaml order; a visible one before a hidden one). Each plain alias (`1.0` of
    `1.0-abc1234`) names the default when it is one of its versions, else the first of them,
    so `NAME` and `NAME/1.0` load the same module."""
    wanted = admin_defaults(site, entries)
    folders: dict[tuple[str, ...], list[Entry]] = {}
    for e in entries:  # plan order: site.yaml order
        folders.setdefault((*e.level, e.name), []).append(e)
    rcs = []
    for folder, group in sorted(folders.items()):
        real = [e for e in group if e.kind != "ghost"]
        chosen = [e for e in real if e.version == wanted.get(e.name)]
        need = [e for e in real if e.alias or e.hidden]
        if len(real) < len(group):  # ghosts beside: name the default, never a ghost
            need = need or real
        plain = {e.alias or e.version for e in real}
        if len(plain) > 1:  # versions side by side: the newest, never left to each tool's sort
            top = newest(plain)
            need = sorted((e for e in real if (e.alias or e.version) == top), key=_is_hidden)
        default = next(iter(chosen or need), None)
        versions = [(default.full, "default")] if default else []
        aliases: dict[str, list[Entry]] = {}
        for e in real:
            if e.alias:
                aliases.setdefault(e.alias, []).append(e)
        for alias, members in sorted(aliases.items()):
            target = default if default in members else members[0]
            versions.append((target.full, alias))
        hidden = tuple(sorted(e.full for e in group if e.hidden))
        if versions or hidden:
            rcs.append(FolderRc(folder, tuple(versions), hidden))
    return rcs


def _is_hidden(e: Entry) -> bool:
    return e.hidden


@dataclass(frozen=True)
class LoadRecord:
    """What a module file records when it is loaded, so that unloading it after a rebuild undoes
    what it did rather than what its successor at the same path would do.

    Both tools unload a module by evaluating again the file it was loaded from, by path (Lmod's
    module table `fn`, Environment Modules' `_LMFILES_`), and shells reach that path through the
    re-pointed tree link. So each file sets `variable` to the id of its tree on load; on unload,
    a file whose tree is not the recorded one evaluates the recorded tree's file at the same
    path instead (kept in `trees` for `modules: keep_days`), and stops. The id is
    TREE_ID_PLACEHOLDER until write_tree names the tree."""

    variable: str  # __HDMOD_<module>_<8 hex>: one per loaded module name
    tree: str  # the id of the tree the file is written into
    trees: str  # the folder holding the trees (absolute)
    path: str  # the file's path inside a tree (`lmod/Core/hello/1.0.lua`)


# Control characters no rendered value can hold (the lua and tcl filters and comments escape
# them), so replacing it can only touch the tree ids the templates put there (unquoted: an id
# is 16 hex digits).
TREE_ID_PLACEHOLDER = "\x00tree-id\x00"


def record_variable(full: str) -> str:
    """The variable a module named `full` (`hello/1.0`) records its tree in: a shell identifier,
    readable, and distinct for distinct names (`a-b/1` and `a_b/1` differ in the hash)."""
    readable = "".join(c if c.isalnum() else "_" for c in full)[:40]
    return f"__HDMOD_{readable}_{hashlib.sha256(full.encode()).hexdigest()[:8]}"


# Entries from which the last format's files are rendered, and written, in a forked child
# while this process does the others (forked.py): a fork of hdmod holding a resolved site
# costs a few ms, and rendering 1,000 entries in one format about 50 ms (issue 18).
FORK_FROM = 1000


def render_tree(site: Site, entries: list[Entry]) -> dict[str, bytes]:
    """Every file of the tree: relative path -> content, with TREE_ID_PLACEHOLDER where the
    tree's id goes (write_tree fills it in). From FORK_FROM entries on, with two formats, a
    forked child renders the second format's module files (forked.py); the result is the
    same. A mistake in a template (a site's override) raises ConfigError naming its line
    (templating.template_errors), whichever process rendered it."""
    cfg = site.modules
    env = snapshot((cfg.templates,) if cfg.templates else ())
    _check_entries(site, entries)
    rcs = _folder_rcs(site, entries)
    ordered = sorted(entries, key=lambda e: (e.level, e.name, e.version))
    formats = list(cfg.formats)
    child = None
    if len(formats) > 1 and len(entries) >= FORK_FROM:
        child = forked.start(_render_modules, site, env, ordered, formats.pop())
    try:
        files: dict[str, bytes] = {}
        for fmt in formats:
            files.update(_render_modules(site, env, ordered, fmt))
    except BaseException:
        if child is not None:
            child.cancel()
        raise
    if child is not None:
        files.update(child.result())
    files[MANIFEST] = manifest(entries)
    with template_errors():
        for rc in rcs:
            for fmt in cfg.formats:
                name, template = RC_OF_FORMAT[fmt]
                text = env.get_template(template).render(versions=rc.versions, hidden=rc.hidden)
                files["/".join((fmt, *rc.folder, name))] = text.encode()
        for e in entries:  # a compiler's or MPI's commands (compiling.py), executable (#!)
            for w in e.wrappers:
                text = env.get_template(w.template).render(
                    name=w.name, real=w.real, external=e.full, fortran=w.fortran,
                    rpath=cfg.compile.rpath,
                )  # fmt: skip
                files["/".join((*e.wrapper_dir, w.name))] = text.encode()
    # part of the tree's content: turning the cache on or off, or a new Lmod, makes a new tree
    files.update(spider_cache_files(site))
    return files


def _render_modules(site: Site, env, entries: list[Entry], fmt: str) -> dict[str, bytes]:
    """The module file of each of `entries` in the format `fmt` ("lmod", "tcl"), rendered
    with the Jinja environment `env`: its path in the tree -> its content. Raises ConfigError
    for a mistake in a template (templating.template_errors)."""
    root = str(site.modules.path / fmt)
    trees = str(trees_folder(site.modules.path))
    files: dict[str, bytes] = {}
    with template_errors():
        get = env.get_template
        templates = {kind: get(f"lmod/{kind}.lua" if fmt == "lmod" else f"tcl/{kind}.tcl")
                     for kind in ("ghost", "module")}  # fmt: skip
        for e in entries:
            if fmt == "lmod":
                path = "/".join(("lmod", *e.level, e.name, f"{e.version}.lua"))
            else:
                path = "/".join(("tcl", *e.level, e.name, e.version))
            context = {
                "m": e,
                "modulepath": "/".join((root, *e.modulepath)) if e.modulepath else None,
                "record": LoadRecord(record_variable(e.full), TREE_ID_PLACEHOLDER, trees, path),
            }
            template = templates["ghost" if e.kind == "ghost" else "module"]
            files[path] = template.render(**context).encode()
    return files


def _check_entries(site: Site, entries: list[Entry]) -> None:
    """The last guard before anything is rendered, whatever made the entries. Names, versions
    and levels become folders of the tree and words of `.modulerc` (evaluated as Tcl by both
    tools on `module avail`): each must follow names.py's rules. Variable names cannot be
    escaped (both tools write `export NAME=...` into the shell `module load` evaluates): each
    must be a shell identifier. Values are escaped, but a line break cannot be (see
    names.env_value_problem). Anything else raises HitError naming the site file and module.
    Help and whatis text may hold line breaks: they are printed, never evaluated. The words
    of module names hold no `+` or `~` that Environment Modules 5 would read as a variant
    (names.module_word_problem; plan maps them). No module file can be a folder's control
    file (`.modulerc`, `.modulerc.lua`, `.version`): names and versions never start with a
    dot, and hidden modules keep their own file names (the rc file hides them)."""

    for e in entries:
        where = f"{site.file}: module {e.name}/{e.version}"
        words = [(p, name_problem(p)) for p in e.name.split("/")]
        words += [(p, version_problem(p)) for p in (e.version, *e.level, *(e.modulepath or ()))]
        words += [(p, module_word_problem(p)) for p in (*e.name.split("/"), e.version)]
        for word, problem in words:
            if problem:
                raise HitError(f"{where}: {word!r} {problem}")
        for key, value in (*e.setenv, *e.prepend):
            problem = env_var_problem(key)
            if problem:
                raise HitError(f"{where}: variable name {key!r} {problem}")
            problem = env_value_problem(value)
            if problem:
                raise HitError(f"{where}: the value of {key} {problem}")
        for w in e.wrappers:  # file names in the tree; commands run by sh (quoted)
            problem = name_problem(w.name) or env_value_problem(w.real)
            if problem or not w.real.startswith("/"):
                raise HitError(
                    f"{where}: command {w.name!r} ({w.real!r}) {problem or 'is not absolute'}"
                )
        texts = {"description": e.description, "homepage": e.homepage, "variant": e.variant}
        if e.artifact_id:  # help names the artifact's prefix
            texts["prefix"] = e.prefix
        for what, text in texts.items():
            problem = text_problem(text)
            if problem:
                raise HitError(f"{where}: the {what} {problem}")


def tree_id(files: dict[str, bytes]) -> str:
    """16 hex characters naming a tree by its content (paths and file hashes)."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()[:16]


def write_tree(site: Site, files: dict[str, bytes], now: float | None = None) -> tuple[Path, bool]:
    """Write the tree into `<parent>/.<name>-trees/<content id>` (trees_folder) and point the
    module path link at it.

    Returns (the tree, whether anything changed). A tree replaced by another is kept for
    `modules: keep_days` after it was replaced (its folder's mtime records when), since shells
    that loaded modules from it read its files again to unload them (LoadRecord); the tree
    just replaced is always kept. Older ones are removed. `now` is the clock in seconds since
    the epoch (time.time() if None). Raises HitError when the module path is not a link."""

    import filelock

    link = site.modules.path
    if link.exists() and not link.is_symlink():
        raise HitError(f"{link} exists and is not a link made by hdmod; move it away first")
    trees = trees_folder(link)
    trees.mkdir(parents=True, exist_ok=True)
    name = tree_id(files)
    tree = trees / name
    now = time.time() if now is None else now
    # one refresh at a time: two would each remove trees the other just made
    with filelock.FileLock(trees / ".lock"):
        previous = Path(os.readlink(link)) if link.is_symlink() else None
        # under the lock no other refresh runs: any staging folder is a killed one's debris
        for debris in trees.glob(".staging-*"):
            remove_tree(debris)
        if not tree.exists():
            staging = trees / f".staging-{os.getpid()}"
            staging.mkdir(0o700)
            _write_files(staging, files, name, site)
            try:
                write_spider_cache(site, staging)  # inside the tree: swapped in with it
            except HitError:
                remove_tree(staging)  # (a killed refresh's is removed by the next one)
                raise
            apply(staging / CACHE_DIR, site.group, site.mode, read_only=True)
            _seal(staging, group_id(site.group), site.mode)  # last: the tree is whole
            os.replace(staging, tree)
        changed = set_link(link, tree)
        if changed and previous is not None and previous.is_dir():
            os.utime(previous, (now, now))  # replaced now: kept for keep_days from here
        kept = kept_trees(trees, (tree, previous), now, site.modules.keep_days)
        for old in trees.iterdir():
            if not old.name.startswith(".") and old not in kept:
                remove_tree(old)
    return tree, changed


def _write_files(staging: Path, files: dict[str, bytes], name: str, site: Site) -> None:
    """Each of `files` (relative path -> content) below the new, empty folder `staging`, with
    the tree id `name` in place of TREE_ID_PLACEHOLDER, and a folder for each of the site's
    formats (an empty tree is still a tree). Everything gets the group and mode
    permissions.apply would give it for site.yaml's group and mode (read-only; execute bits
    for the wrappers of compilers and MPIs, which start with `#!`) as it is made, so that no
    walk of the tree follows: each file is created with its mode (set again when the umask
    took bits from it) and group, each folder is made once and sealed once its files are in,
    deepest first. Left open: `staging` itself and the spider cache's folder (CACHE_DIR),
    which write_spider_cache adds to (write_tree seals them). A site's tree holds tens of
    thousands of files: from FORK_FROM files on, with two formats, a forked child writes the
    second format's folder (forked.py) while this process writes the rest."""
    paths = [*files, *(f"{fmt}/" for fmt in site.modules.formats)]
    child = None
    if len(site.modules.formats) > 1 and len(files) >= FORK_FROM:
        folder = f"{site.modules.formats[-1]}/"
        theirs = [rel for rel in paths if rel.startswith(folder)]
        child = forked.start(_write_part, staging, files, name, site, theirs)
        paths = [rel for rel in paths if not rel.startswith(folder)]
    try:
        _write_part(staging, files, name, site, paths)
    except BaseException:
        if child is not None:
            child.cancel()
        raise
    if child is not None:
        child.result()


def _write_part(
    staging: Path, files: dict[str, bytes], name: str, site: Site, paths: list[str]
) -> None:
    """_write_files for the relative `paths`: each a file of `files` or a folder (`tcl/`).
    Makes and seals the folders that hold them, which hold no path of another part."""
    placeholder, tree_id = TREE_ID_PLACEHOLDER.encode(), name.encode()
    gid = group_id(site.group)
    umask = os.umask(0)  # (read, then put back)
    os.umask(umask)
    top = str(staging)
    made: set[str] = {top}
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    plain, executable = (wanted(site.mode, False, x, True) for x in (False, True))
    for rel in paths:
        path = f"{top}/{rel}"
        _make_folders(path.rpartition("/")[0], made)
        if rel.endswith("/"):
            continue
        content = files[rel]
        want = executable if content.startswith(b"#!") else plain
        fd = os.open(path, flags, want)
        try:
            if want & umask:
                os.fchmod(fd, want)
            if gid != -1:
                os.fchown(fd, -1, gid)
            data = memoryview(content.replace(placeholder, tree_id))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
    cache = f"{top}/{CACHE_DIR}"
    sealed = (f for f in made if f != top and f != cache and not f.startswith(f"{cache}/"))
    for folder in sorted(sealed, key=lambda f: f.count("/"), reverse=True):
        _seal(folder, gid, site.mode)


def _make_folders(folder: str, made: set[str]) -> None:
    """`folder` and the folders above it that are not in `made` (those made already, the
    staging folder first), writable by their owner only until sealed; each added to `made`."""
    if folder in made:
        return
    _make_folders(folder.rpartition("/")[0], made)
    os.mkdir(folder, 0o700)
    made.add(folder)


def _seal(folder: str | Path, gid: int, mode: int) -> None:
    """Give a folder of the tree, once its content is in, its group (`gid`, -1: as is) and
    the read-only mode permissions.apply gives folders under the site's `mode`."""
    if gid != -1:
        os.chown(folder, -1, gid)
    os.chmod(folder, wanted(mode, True, True, True))


def publish_tree(
    site: Site, entries: list[Entry], now: float | None = None
) -> tuple[dict[str, bytes], Path, bool]:
    """Render `entries` with the ghosts the kept trees need (treehistory.ghost_entries) and
    write the tree (write_tree). Returns (its files, the tree, whether anything changed);
    raises HitError."""
    now = time.time() if now is None else now
    cfg = site.modules
    ghosts = ghost_entries(cfg.path, entries, now, cfg.keep_days)
    files = render_tree(site, [*entries, *ghosts])
    tree, changed = write_tree(site, files, now)
    return files, tree, changed
