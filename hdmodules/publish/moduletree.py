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
from dataclasses import dataclass
from pathlib import Path

from ..errors import HitError
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
from ..store.layout import remove_tree
from ..store.links import set_link
from ..templating import render
from .modulefiles import Entry
from .permissions import apply
from .spidercache import write_spider_cache

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


def _admin_defaults(site: Site, entries: list[Entry]) -> dict[str, str]:
    """`modules: defaults:` as module name -> module version (both spelt by
    names.module_word, so `17.0.2+8` names the module `17.0.2_8`). Each must name a module
    version that some folder holds; HitError naming site.yaml and the key if not, before
    anything is written (both tools would silently pick another default)."""
    versions: dict[str, set[str]] = {}
    for e in entries:
        versions.setdefault(e.name, set()).add(e.version)
    wanted = {}
    for key, version in site.modules.defaults.items():
        name = "/".join(module_word(part) for part in key.split("/"))
        mapped = module_word(version)
        if mapped not in versions.get(name, ()):
            have = ", ".join(sorted(versions.get(name, ()))) or "none: no module has that name"
            raise HitError(
                f"{site.file}: modules: defaults: {key}: no module {name}/{mapped} is written "
                f"(versions: {have})"
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
    fail). Each plain alias (`1.0` of `1.0-abc1234`) names the default when it is one of its
    versions, else the first of them, so `NAME` and `NAME/1.0` load the same module."""
    wanted = _admin_defaults(site, entries)
    folders: dict[tuple[str, ...], list[Entry]] = {}
    for e in entries:  # plan order: site.yaml order
        folders.setdefault((*e.level, e.name), []).append(e)
    rcs = []
    for folder, group in sorted(folders.items()):
        chosen = [e for e in group if e.version == wanted.get(e.name)]
        default = next(iter(chosen or [e for e in group if e.alias or e.hidden]), None)
        versions = [(default.full, "default")] if default else []
        aliases: dict[str, list[Entry]] = {}
        for e in group:
            if e.alias:
                aliases.setdefault(e.alias, []).append(e)
        for alias, members in sorted(aliases.items()):
            target = default if default in members else members[0]
            versions.append((target.full, alias))
        hidden = tuple(sorted(e.full for e in group if e.hidden))
        if versions or hidden:
            rcs.append(FolderRc(folder, tuple(versions), hidden))
    return rcs


def render_tree(site: Site, entries: list[Entry]) -> dict[str, bytes]:
    """Every file of the tree: relative path -> content."""
    cfg = site.modules
    overrides = (cfg.templates,) if cfg.templates else ()
    _check_entries(site, entries)
    rcs = _folder_rcs(site, entries)
    files: dict[str, bytes] = {}
    for e in sorted(entries, key=lambda e: (e.level, e.name, e.version)):
        for fmt in cfg.formats:
            root = cfg.path / fmt
            context = {
                "m": e,
                "modulepath": str(root.joinpath(*e.modulepath)) if e.modulepath else None,
            }
            if fmt == "lmod":
                path = "/".join(("lmod", *e.level, e.name, f"{e.version}.lua"))
                text = render("lmod/module.lua", overrides, **context)
            else:
                path = "/".join(("tcl", *e.level, e.name, e.version))
                text = render("tcl/module.tcl", overrides, **context)
            files[path] = text.encode()
    for rc in rcs:
        for fmt in cfg.formats:
            name, template = RC_OF_FORMAT[fmt]
            text = render(template, overrides, versions=rc.versions, hidden=rc.hidden)
            files["/".join((fmt, *rc.folder, name))] = text.encode()
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
        texts = {"description": e.description, "homepage": e.homepage}
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


def write_tree(site: Site, files: dict[str, bytes]) -> tuple[Path, bool]:
    """Write the tree into `<root>/.modules/<content id>` and point the module path at it.

    Returns (the tree, whether anything changed). The previous tree is kept (a user's shell
    may still be reading it); older ones are removed."""

    import filelock

    link = site.modules.path
    if link.exists() and not link.is_symlink():
        raise HitError(f"{link} exists and is not a link made by hdmod; move it away first")
    trees = link.parent / f".{link.name}-trees"
    trees.mkdir(parents=True, exist_ok=True)
    tree = trees / tree_id(files)
    # one refresh at a time: two would each remove trees the other just made
    with filelock.FileLock(trees / ".lock"):
        previous = Path(os.readlink(link)) if link.is_symlink() else None
        # under the lock no other refresh runs: any staging folder is a killed one's debris
        for debris in trees.glob(".staging-*"):
            remove_tree(debris)
        if not tree.exists():
            staging = trees / f".staging-{os.getpid()}"
            for rel, content in files.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            for fmt in site.modules.formats:  # an empty tree is still a tree
                (staging / fmt).mkdir(parents=True, exist_ok=True)
            write_spider_cache(site, staging)  # inside the tree: swapped in with it
            apply(staging, site.group, site.mode, read_only=True)
            os.replace(staging, tree)
        changed = set_link(link, tree)
        for old in trees.iterdir():
            if old not in (tree, previous) and not old.name.startswith("."):
                remove_tree(old)
    return tree, changed
