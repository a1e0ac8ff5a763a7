"""Publishing a site: build its stacks into the shared store, link each stack's profile at
`<root>/profiles/<stack>` (a gc root), and write the module tree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import modulefiles
from .config import Home, load_home, open_store
from .errors import HitError
from .permissions import apply
from .plan import build_profiles
from .progress import Progress
from .resolve import Resolved, resolve
from .site import Site, Stack


@dataclass(frozen=True)
class Published:
    built: int
    modules: int  # modulefiles written (all formats)
    tree: Path
    changed: bool


def resolve_stacks(site: Site, repin: bool = False) -> list[tuple[Stack, Resolved]]:
    out = []
    for stack in site.stacks:
        resolved = resolve(stack.profile, repin=repin)
        out.append((stack, resolved))
    return out


def site_home(site: Site) -> Home:
    """The site root is laid out as a `hit` home (created on first use)."""
    return load_home(site.root)


def refresh_modules(site: Site, stacks: list[tuple[Stack, Resolved]]) -> tuple[int, Path, bool]:
    """Regenerate the module tree from what is built; missing artifacts are an error."""
    store = open_store(site_home(site))
    missing = sorted(
        {n.ref.short for _s, r in stacks for n in r.nodes.values() if not store.is_installed(n.ref)}
    )
    if missing:
        raise HitError(
            f"not built yet: {', '.join(missing)}; run `hdmod build {site.file.name}` first"
        )
    entries = modulefiles.plan(site, stacks, store)
    files = modulefiles.render_tree(site, entries)
    tree, changed = modulefiles.write_tree(site, files)
    count = sum(1 for p in files if not p.endswith(modulefiles.MODULERC))
    return count, tree, changed


def build_site(site: Site, jobs: int, progress: Progress, repin: bool = False) -> Published:
    stacks = resolve_stacks(site, repin)
    home = site_home(site)
    results = build_profiles([r for _s, r in stacks], home, jobs, progress)
    store = open_store(home)
    if site.group is not None or site.mode != 0o755:
        for _s, r in stacks:
            for node in [*r.nodes.values()]:
                apply(store.prefix(node.ref), site.group, site.mode, read_only=True)
    count, tree, changed = refresh_modules(site, stacks)
    return Published(results[0].built if results else 0, count, tree, changed)
