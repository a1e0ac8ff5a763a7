"""Publishing a site: build its stacks into the shared store, link each stack's profile at
`<root>/profiles/<stack>` (a gc root), and write the module tree."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_atomic
from ..collector import collector_paused
from ..errors import HitError
from ..progress import Progress
from ..spec import siteroot, yamlfile
from ..spec.resolve import Resolved, resolve
from ..spec.site import Site, Stack
from ..store import roots
from ..store.home import Home, cache_folder, load_home, open_store, with_package_cap
from ..store.layout import Store
from . import modulefiles, moduletree, publishedstacks
from .modulefiles import Entry
from .permissions import apply, group_id, wanted
from .profilebuild import build_profiles
from .publishedstacks import folder_mode, site_folder
from .treehistory import trees_folder

Say = Callable[[str], None]  # one line for the admin (stderr)


@dataclass(frozen=True)
class Published:
    """What `build_site` did: artifacts built, modulefiles written, the module tree, whether
    the tree changed, and the resolved stacks it published."""

    built: int
    modules: int  # modulefiles written (all formats)
    tree: Path
    changed: bool
    stacks: list[tuple[Stack, Resolved]] = field(default_factory=list, compare=False)


def resolve_stacks(site: Site) -> list[tuple[Stack, Resolved]]:
    """Each stack of the site with its resolution (pins verified: re-pinning is
    `resolve.repin_externals`, run before, with the site loaded again after), through the
    site root's resolve cache (spec/resolvecache.py, in home.cache_folder: loaded recipes and
    source hashes kept between runs; the result is the same with it or without). Before the
    root exists (a first build) nothing is cached."""
    cache = cache_folder(site.root)
    with collector_paused():
        return [(stack, resolve(stack.profile, cache=cache)) for stack in site.stacks]


def site_home(site: Site) -> Home:
    """The site root is laid out as a `hit` home (created on first use, not private: what
    it holds is as readable as site.yaml's permissions say, whatever its config.yaml says;
    claim_root corrects that file), except its cache folder, the admin's only
    (home.cache_folder); the mirrors site.yaml lists come before those of the root's
    config.yaml."""
    from dataclasses import replace

    from ..store.home import init_home

    if not (site.root / "config.yaml").exists():
        init_home(site.root, private=False)
    cache_folder(site.root)  # the admin's only, before a memo is written there
    home = load_home(site.root)
    mirrors = tuple(dict.fromkeys((*site.mirrors, *home.mirrors)))
    return replace(home, mirrors=mirrors, private=False)  # site.yaml says who reads it


def check_built(site: Site) -> None:
    """Before `hdmod modules refresh` reads anything: the site root must be one `hdmod
    build` made (its config.yaml); HitError otherwise, leaving the folder as it is (a
    refresh aimed at a new --root laid a store out there, then refused; one aimed at a
    user's home wrote a resolve cache into it): its config.yaml and stack links folder."""
    if not (site.root / "config.yaml").is_file() or not (site.root / siteroot.PROFILES).is_dir():
        raise HitError(
            f"nothing is built at {site.root}: run `hdmod build {site.file.name}` (with the "
            f"same --root) first"
        )


def refresh_modules(site: Site, stacks: list[tuple[Stack, Resolved]]) -> Refreshed:
    """Regenerate the module tree from what is built; missing artifacts are an error."""
    with collector_paused():
        return _refresh_modules(site, stacks)


@dataclass(frozen=True)
class Refreshed:
    """What refresh_modules did: modulefiles written, the tree, whether it changed, and
    every module of it (modulefiles.plan's entries: the names the stacks' copies list)."""

    count: int
    tree: Path
    changed: bool
    entries: list[Entry]


def _refresh_modules(site: Site, stacks: list[tuple[Stack, Resolved]]) -> Refreshed:
    """refresh_modules, the collector paused."""
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
    return Refreshed(len(entries) * len(site.modules.formats), tree, changed, entries)


def write_user_files(
    site: Site,
    stacks: list[tuple[Stack, Resolved]],
    home: Home,
    store: Store,
    say: Say,
    entries: list[Entry],
) -> None:
    """What users need to build on the site: ROOT/user-config.yaml (HIT_SITE_CONFIG), each
    stack's published copy and ROOT/stacks/<stack>.yaml to extend (publishedstacks: a stack
    site.yaml no longer has is retired; each copy lists the names of its artifacts' modules
    among the site's `entries`), and ROOT/gcroots/users/ where their builds record
    which site artifacts they use (group-writable with the sticky bit when the site names a
    group, so users can add, never remove, each other's records)."""
    from ..templating import render

    publishedstacks.publish(site, stacks, home, store, say, entries)
    user_config = site.root / siteroot.USER_CONFIG
    text = render("user-config.yaml.j2", site_file=site.file, path=user_config, root=str(site.root))
    write_atomic(user_config, text, mode=0o644)  # concurrent hdmod runs: one wins
    users = home.gc_roots / roots.USERS
    users.mkdir(parents=True, exist_ok=True)
    if site.group is not None:
        import grp

        os.chown(users, -1, grp.getgrnam(site.group).gr_gid)
        users.chmod(0o3770)  # setgid + sticky: the group adds records, nobody removes others'


def claim_root(site: Site, say: Say) -> None:
    """A site root's permissions come from site.yaml, whatever created the root first. A
    `hit` command run on it before any `hdmod build` (`HIT_HOME=ROOT hit fetch --from DIR`,
    seeding it offline) made it a user's home, `private: true` in its config.yaml: set it to
    `private: false`, saying so, so that `HIT_HOME=ROOT hit ...` treats it as a site too.
    (hdmod builds as site.yaml says whatever the file says: site_home; build_site opens the
    root's folders and gives the artifacts their modes.)"""
    config = site.root / "config.yaml"
    if not config.exists():
        return  # site_home creates it, for a site
    m = yamlfile.load_mapping(config, "hit config")
    if not yamlfile.get_bool(m, "private", True):
        return
    lines = config.read_text().splitlines(keepends=True)
    if "private" in m:
        lines[m.line_of("private") - 1] = "private: false\n"
    else:
        lines.append("\n# a site root: hdmod publishes as site.yaml's permissions say\n")
        lines.append("private: false\n")
    write_atomic(config, "".join(lines), mode=0o644)
    say(
        f"{config} said `private: true` (a hit command made this root before hdmod did): "
        f"now `private: false`; a site's permissions come from {site.file.name}"
    )


def open_folders(site: Site, home: Home, say: Say) -> None:
    """The folders of the site root that users read (the root, the store, the gc roots, the
    profile links, the module trees) that are their owner's only, when site.yaml's mode
    lets others in (a hit command made the root, private, or the admin's umask is 077), get
    site.yaml's mode and group, saying so."""
    want = folder_mode(site.mode)
    if not want & 0o077:
        return
    opened = []
    folders = [site.root, home.store, home.gc_roots, site.root / siteroot.PROFILES]
    for folder in [*folders, trees_folder(site.modules.path)]:
        mode = folder.stat().st_mode & 0o777 if folder.is_dir() else 0o777
        if not mode & 0o077:
            site_folder(site, folder)
            opened.append(f"{folder} ({mode:o})")
    if opened:
        say(f"opened to {want:o}, as {site.file.name} says: {', '.join(opened)}")


def build_site(
    site: Site,
    stacks: list[tuple[Stack, Resolved]],
    jobs: int,
    progress: Progress,
    say: Say,
    concurrent_packages: int | None = None,
) -> Published:
    """`hdmod build`: build the site's resolved `stacks` (`resolve_stacks(site)`) with a
    budget of `jobs` CPUs (at most `concurrent_packages` packages at once; None: the root's
    config.yaml's), link each stack's profile, make the artifacts read-only with the site's
    group and mode, write the module tree and the files users need (`say` tells what was
    retired or corrected). Raises HitError, scheduler.BuildsFailed."""
    home = with_package_cap(site_home(site), concurrent_packages)
    results = build_profiles([r for _s, r in stacks], home, jobs, progress)
    store = open_store(home)
    prefixes = {store.prefix(r.profile_ref) for _s, r in stacks}
    site_modes(site, prefixes | {store.prefix(n.ref) for _s, r in stacks for n in r.nodes.values()})
    refreshed = refresh_modules(site, stacks)
    write_user_files(site, stacks, home, store, say, refreshed.entries)
    open_folders(site, home, say)
    built = results[0].built if results else 0
    return Published(built, refreshed.count, refreshed.tree, refreshed.changed, stacks)


def site_modes(site: Site, prefixes: set[Path]) -> None:
    """Give each artifact (its prefix) site.yaml's group and mode, read-only. One whose top
    folder has them already was given them whole (permissions.apply does the top folder
    last) and is left alone, so a build that changed nothing reads no artifact's files."""
    gid = group_id(site.group)
    top = wanted(site.mode, True, True, True)  # what apply gives a folder
    for prefix in sorted(prefixes):
        st = prefix.stat()
        if st.st_mode & 0o7777 != top or gid not in (-1, st.st_gid):
            apply(prefix, site.group, site.mode, read_only=True)
