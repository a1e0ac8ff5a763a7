"""Module trees over time: which replaced trees are kept, and the hidden stand-ins ("ghosts")
a new tree carries for the modules an earlier tree had and it has not.

A shell that loaded a module unloads it by evaluating again the file at the path it loaded it
from (Lmod's module table `fn`, Environment Modules' `_LMFILES_`), through the tree link. When
a rebuild renames a module (a hash-suffixed version: `app/1.0-abc1234` becomes
`app/1.0-def5678`) or removes it, that path is gone: Environment Modules then refuses to
unload it and Lmod forgets it with its paths still set. So each tree lists its modules in a
manifest, and a new tree gets, for every module a kept tree lists and it lacks, a ghost at
the same path: hidden from avail, refusing to load, and on unload evaluating the file of the
tree the shell recorded (moduletree.LoadRecord).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .modulefiles import Entry

MANIFEST = ".modules.json"  # in each tree: the (level, name, version) of its real modules


def trees_folder(link: Path) -> Path:
    """Where the trees behind a module path link live: `<parent>/.<link name>-trees`."""
    return link.parent / f".{link.name}-trees"


def kept_trees(
    trees: Path, keep: tuple[Path | None, ...], now: float, keep_days: int
) -> list[Path]:
    """The trees in `trees` to keep: those in `keep` (the current and the one just replaced)
    and those replaced less than `keep_days` days before `now` (seconds since the epoch; a
    tree's mtime is set when it is replaced, moduletree.write_tree). Sorted by name."""
    kept = []
    for tree in sorted(trees.iterdir()) if trees.is_dir() else []:
        if tree.name.startswith(".") or not tree.is_dir():
            continue
        if tree in keep or now - tree.stat().st_mtime <= keep_days * 86400:
            kept.append(tree)
    return kept


def manifest(entries: list[Entry]) -> bytes:
    """The manifest of a tree of `entries`: its real modules (not ghosts), sorted, as JSON."""
    modules = sorted({(e.level, e.name, e.version) for e in entries if e.kind != "ghost"})
    return json.dumps([[list(level), name, version] for level, name, version in modules]).encode()


def listed(tree: Path) -> set[tuple[tuple[str, ...], str, str]]:
    """The modules a tree's manifest lists; none when it has no readable manifest (a tree
    written before manifests, or damaged: its modules get no ghosts)."""
    try:
        doc = json.loads((tree / MANIFEST).read_bytes())
        return {(tuple(level), name, version) for level, name, version in doc}
    except (OSError, ValueError, TypeError):
        return set()


def ghost_entries(link: Path, entries: list[Entry], now: float, keep_days: int) -> list[Entry]:
    """The ghosts a new tree of `entries` behind `link` needs: one per module the trees kept
    after it is published list and it lacks, unless its file would clash with a folder of
    the new tree (or the other way round, in the Tcl tree: `app/1.0` and `app/1.0/x`), or its
    name is now an alias (a plain `1.0` that a clash made the alias of `1.0-<hash>` builds:
    a file there would shadow the alias; such a module unloads as before this existed).
    Two ghosts that would clash so (trees of two namings: `app/1.0` and `app/1.0/<hash>`)
    are not both made: the newer tree's wins (by mtime, set when it is replaced); with both,
    the tree could not be written, and every later one failed the same way."""
    current = Path(os.readlink(link)) if link.is_symlink() else None
    new = {(e.level, e.name, e.version) for e in entries}
    aliases = {(e.level, e.name, e.alias) for e in entries if e.alias}
    paths = {"/".join((*lv, n, v)) for lv, n, v in new}
    folders = {p.rsplit("/", k)[0] for p in paths for k in range(1, p.count("/") + 1)}
    ghosts: dict[tuple[tuple[str, ...], str, str], Entry] = {}
    kept = kept_trees(trees_folder(link), (current,), now, keep_days)
    for tree in sorted(kept, key=lambda t: t.stat().st_mtime, reverse=True):
        for level, name, version in sorted(listed(tree) - new - aliases - set(ghosts)):
            path = "/".join((*level, name, version))
            above = {path.rsplit("/", k)[0] for k in range(1, path.count("/") + 1)}
            if path in folders or above & paths:
                continue
            paths.add(path)  # what later ghosts must not clash with, as a module
            folders |= above
            ghosts[(level, name, version)] = Entry("ghost", name, version, level, hidden=True)
    return sorted(ghosts.values(), key=lambda e: (e.level, e.name, e.version))
