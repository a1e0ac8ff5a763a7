"""A user's own modulefiles: the packages of their site-style profiles (`toolchain: [compiler]`)
built in their own store, at the levels of the site's hierarchy (the site's compiler and MPI
modules open the same levels of `$HIT_HOME/modules`)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_atomic
from ..spec.resolve import Resolved
from ..spec.site import ModuleConfig, Site, Stack
from ..store.layout import Store
from .modulefiles import plan
from .moduletree import render_tree


def write_user_modules(home_root: Path, resolved: Resolved, store: Store) -> list[str]:
    """Modulefiles for the packages of a user's profile built in the user's own store, at the
    levels of the site's hierarchy (the site's compiler and MPI modules open the user's
    levels too). Written file by file, so several profiles add up; returns what was new."""
    from dataclasses import replace

    profile = resolved.profile
    if "compiler" not in profile.toolchain:
        return []
    cfg = ModuleConfig(path=home_root / "modules", provided=True)
    stack = Stack("user", replace(profile, link=None))
    site = Site(profile.file, home_root, (stack,), profile.externals, cfg)
    planned = plan(site, [(stack, resolved)], store)
    ours = [e for e in planned if Path(e.prefix).is_relative_to(store.root)]
    entries = [e for e in ours if e.kind == "package"]
    written = []
    for rel, content in render_tree(site, entries).items():
        path = cfg.path / rel
        if path.exists() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, content)
        written.append(rel)
    return written
