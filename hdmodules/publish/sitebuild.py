"""Publishing a site: build its stacks into the shared store, link each stack's profile at
`<root>/profiles/<stack>` (a gc root), and write the module tree."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HitError
from ..progress import Progress
from ..spec import siteroot
from ..spec.resolve import Resolved, resolve
from ..spec.site import Site, Stack
from ..store import roots
from ..store.home import Home, load_home, open_store
from ..store.layout import Store
from . import modulefiles, moduletree, publishedstacks
from .permissions import apply
from .profilebuild import build_profiles

Say = Callable[[str], None]  # one line for the admin (stderr)


@dataclass(frozen=True)
class Published:
    """What `build_site` did: artifacts built, modulefiles written, the module tree, and
    whether the tree changed."""

    built: int
    modules: int  # modulefiles written (all formats)
    tree: Path
    changed: bool


def resolve_stacks(site: Site) -> list[tuple[Stack, Resolved]]:
    """Each stack of the site with its resolution (pins verified: re-pinning is
    `resolve.repin_externals`, run before, with the site loaded again after)."""
    out = []
    for stack in site.stacks:
        resolved = resolve(stack.profile)
        out.append((stack, resolved))
    return out


def site_home(site: Site) -> Home:
    """The site root is laid out as a `hit` home (created on first use, not private); the
    mirrors site.yaml lists come before those of the root's config.yaml."""
    from dataclasses import replace

    from ..store.home import init_home

    if not (site.root / "config.yaml").exists():
        init_home(site.root, private=False)
    home = load_home(site.root)
    mirrors = tuple(dict.fromkeys((*site.mirrors, *home.mirrors)))
    return replace(home, mirrors=mirrors)


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
    _files, tree, changed = moduletree.publish_tree(site, entries)
    return len(entries) * len(site.modules.formats), tree, changed


def write_user_files(
    site: Site, stacks: list[tuple[Stack, Resolved]], home: Home, store: Store, say: Say
) -> None:
    """What users need to build on the site: ROOT/user-config.yaml (HIT_SITE_CONFIG), each
    stack's published copy and ROOT/stacks/<stack>.yaml to extend (publishedstacks: a stack
    site.yaml no longer has is retired), and ROOT/gcroots/users/ where their builds record
    which site artifacts they use (group-writable with the sticky bit when the site names a
    group, so users can add, never remove, each other's records)."""
    from ..templating import render

    publishedstacks.publish(site, stacks, home, store, say)
    user_config = site.root / siteroot.USER_CONFIG
    text = render("user-config.yaml.j2", site_file=site.file, path=user_config, root=str(site.root))
    write_atomic(user_config, text, mode=0o644)  # concurrent hdmod runs: one wins
    users = home.gc_roots / roots.USERS
    users.mkdir(parents=True, exist_ok=True)
    if site.group is not None:
        import grp

        os.chown(users, -1, grp.getgrnam(site.group).gr_gid)
        users.chmod(0o3770)  # setgid + sticky: the group adds records, nobody removes others'


def build_site(
    site: Site, stacks: list[tuple[Stack, Resolved]], jobs: int, progress: Progress, say: Say
) -> Published:
    """`hdmod build`: build the site's resolved `stacks` (`resolve_stacks(site)`) with `jobs`
    builds at once, link each stack's profile, make the artifacts read-only with the site's
    group and mode, write the module tree and the files users need (`say` tells the admin
    what else publishing did). Raises HitError, scheduler.BuildsFailed."""
    home = site_home(site)
    results = build_profiles([r for _s, r in stacks], home, jobs, progress)
    store = open_store(home)
    if site.group is not None or site.mode != 0o755:
        for _s, r in stacks:
            for node in [*r.nodes.values()]:
                apply(store.prefix(node.ref), site.group, site.mode, read_only=True)
    count, tree, changed = refresh_modules(site, stacks)
    write_user_files(site, stacks, home, store, say)
    return Published(results[0].built if results else 0, count, tree, changed)
