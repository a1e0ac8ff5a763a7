"""Published stacks: what `hdmod build` gives users to extend, whatever happens to the admin's
own recipe folders afterwards (edited, moved, unreadable).

For each stack, the recipes it resolves and every file whose bytes enter their build specs
(sources given by `path:`, of every version the recipe offers; patch files, of every `when:`
block; the phase template a package dir gives a build system) are copied into
`ROOT/recipes/<sha256>/files/`, laid out as they lie beside each other (so a recipe's
`path: ../src/app` finds its copy), next to `stack.yaml`: the stack as a profile over that copy
(package_dirs, parameters, pinned externals, toolchain, packages). A local git repository a
recipe names is linked, not copied: its commit is what is hashed. The folder is named by the
sha256 of its listing (each file's path, kind and content hash, as hashing.tree_entries walks a
folder), so an unchanged stack keeps its copy and nothing is copied again. A new copy is
written into a staging folder, checked (its content is what was listed, and the stack resolves
from it to exactly the ids the site built), made read-only with site.yaml's group and mode, and
renamed into place; it never changes after. `ROOT/stacks/<stack>.yaml`, what users extend, is a
small file that extends the copy's stack.yaml, replaced atomically at each build.

A stack that site.yaml no longer has is retired: its profile link, its gc root and its stack
file go (`HIT_HOME=ROOT hit gc` then frees what only it used, but what users' records name),
the day is recorded in `ROOT/stacks/.retired.json`, and a user extending it is told so at
their next build (spec/siteroot.py).

A copy that no stack file names any more is removed by the `hdmod build` after the one that
stopped naming it, so a user's `hit build` that read the stack file just before the switch
still finds the recipes it resolves. Built profiles never need it: an artifact's build.json
holds all its inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import ConfigError, HitError
from ..hashing import canonical_json, sha256_file, tree_entries
from ..spec import siteroot, yamlfile
from ..spec.buildsystems import template_files
from ..spec.gitrefs import is_local
from ..spec.modulenaming import GivenNames
from ..spec.profiles import PackageRequest, load_profile
from ..spec.recipes import Recipe
from ..spec.resolve import Node, Resolved, resolve
from ..spec.site import Site, Stack
from ..store import roots
from ..store.home import Home
from ..store.layout import Store, remove_tree
from .modulefiles import Entry
from .modulenames import given_names
from .permissions import apply

Say = Callable[[str], None]
Plan = dict[str, tuple[str, str]]  # path in the copy -> (kind F/X/L, source file or link target)


def publish(
    site: Site,
    stacks: list[tuple[Stack, Resolved]],
    home: Home,
    store: Store,
    say: Say,
    entries: list[Entry],
) -> None:
    """Retire the stacks site.yaml no longer has, publish each of `stacks` (its copy, listing
    the names of its artifacts' modules among `entries`, the site's; then its stack file),
    and remove the copies that no stack file named before this build nor names now. One
    `hdmod build` of the root at a time does this (a lock in ROOT/recipes)."""
    import filelock

    copies = site.root / siteroot.RECIPES
    folders = site_folder(site, copies), site_folder(site, site.root / siteroot.STACKS)
    with filelock.FileLock(copies / ".lock"):
        for debris in copies.glob(".staging-*"):  # a killed hdmod's
            remove_tree(debris)
        before = {_copy_named(f) for f in folders[1].glob("*.yaml")}
        _record_retired(site, retire(site, home, store, say))
        now = set()
        for stack, resolved in stacks:
            ids = {node.ref.id for node in resolved.nodes.values()}
            copy = freeze(site, stack, resolved, say, given_names(entries, ids))
            now.add(copy.name)
            _write_stack_file(site, stack, copy)
        for old in sorted(copies.iterdir()):
            if not old.name.startswith(".") and old.name not in before | now:
                remove_tree(old)
                say(f"removed {old}: no stack has been published from it since the last build")


def site_folder(site: Site, folder: Path) -> Path:
    """A folder of the site root that users read, made if missing, readable as site.yaml's
    mode says (whatever the admin's umask), in its group; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    want = folder_mode(site.mode)
    if folder.stat().st_mode & 0o777 != want:
        folder.chmod(want)
    if site.group is not None:
        import grp

        os.chown(folder, -1, grp.getgrnam(site.group).gr_gid)
    return folder


def folder_mode(mode: int) -> int:
    """The mode of a folder of the site root that users read, given site.yaml's `mode`: its
    owner's to write, the group and others' to read and enter as `mode` allows, never theirs
    to write."""
    return (mode | 0o700) & 0o755


def retire(site: Site, home: Home, store: Store, say: Say) -> list[str]:
    """Retire every stack the site root offers (a stack file or a profile link) that
    site.yaml no longer has: its profile link and gc root (as `hit rm` removes them) and its
    stack file go, saying so. Returns their names."""
    current = {s.name for s in site.stacks}
    profiles = site.root / siteroot.PROFILES
    links = {p.name for p in profiles.iterdir() if p.is_symlink()} if profiles.is_dir() else set()
    # a stack whose link was removed by hand is still a registered root: retire it too
    registered = {
        r.link.name
        for r in roots.list_roots(home.gc_roots, store.root)
        if r.own and r.link.parent == profiles
    }
    gone = sorted((set(siteroot.offered_stacks(site.root)) | links | registered) - current)
    for name in gone:
        link, file = profiles / name, siteroot.stack_file(site.root, name)
        removed = [str(p) for p in (link, file) if os.path.lexists(p)]
        if link.is_symlink():
            try:
                roots.remove_link(home.gc_roots, store.root, link)
            except HitError:  # its profile was collected already
                link.unlink()
                roots.deregister(home.gc_roots, link)
        else:  # removed by hand: forget its root all the same, or the gc keeps its profile
            roots.deregister(home.gc_roots, link)
            removed.append(f"the gc root of {link}")
        file.unlink(missing_ok=True)
        say(
            f"retired stack {name}: it is no longer in {site.file.name}; removed "
            f"{' and '.join(removed)} (`HIT_HOME={site.root} hit gc` frees what only it used)"
        )
    return gone


def _record_retired(site: Site, gone: list[str]) -> None:
    """ROOT/stacks/.retired.json: the stacks retired now (with today's date) and before,
    but those site.yaml has (again)."""
    had = siteroot.retired_stacks(site.root)
    day = time.strftime("%Y-%m-%d")
    retired = {**had, **{name: day for name in gone}}
    for stack in site.stacks:
        retired.pop(stack.name, None)
    if retired != had:
        text = json.dumps(retired, indent=1, sort_keys=True) + "\n"
        write_atomic(site.root / siteroot.STACKS / siteroot.RETIRED, text, mode=0o644)


def freeze(site: Site, stack: Stack, resolved: Resolved, say: Say, names: GivenNames) -> Path:
    """The published copy of `stack` (resolved as `resolved`): ROOT/recipes/<sha256>, made
    if it is not there yet (see the module's docstring); `names`: the names the site gave
    the modules of its artifacts (modulenames.given_names), which the copy lists. Raises
    HitError when the copy does not hold what was listed (a file changed while it was
    copied) or does not resolve to the ids the site built; nothing is published for the
    stack then."""
    dirs, found = inputs(resolved)
    anchors = [*dirs, *(p if kind == "tree" else p.parent for p, kind in found.items())]
    # a stack of no package copies nothing but its profile (placed as beside site.yaml)
    top = Path(os.path.commonpath([str(a) for a in anchors])) if anchors else site.file.parent
    plan = _plan(found, top)
    dirs_in_copy = [_in_copy(d, top) for d in dirs]
    text = _published_profile(site, stack, resolved, dirs_in_copy, names)
    listing = _listing(plan.items())
    listing[siteroot.PUBLISHED_PROFILE] = "F:" + _sha256(text)
    copy = site.root / siteroot.RECIPES / _sha256(canonical_json(listing))
    if copy.is_dir():
        return copy
    staging = copy.with_name(f".staging-{os.getpid()}")
    try:
        _write(plan, staging)
        write_atomic(staging / siteroot.PUBLISHED_PROFILE, text, mode=0o644)
        if _listing((rel, (k, v)) for rel, k, v in tree_entries(staging)) != listing:
            raise HitError(
                f"stack {stack.name}: a recipe or a file it names changed while it was being "
                f"published; nothing was published for it: run `hdmod build` again"
            )
        _check(stack, resolved, staging, say)
        apply(staging, site.group, site.mode, read_only=True)
        os.replace(staging, copy)
    except BaseException:
        remove_tree(staging)
        raise
    return copy


def check_frozen(stacks: Iterable[tuple[Stack, Resolved]]) -> None:
    """Before anything builds: no recipe of a stack names a source or patch file by its
    absolute path, which the published copy (a copy of the recipes and the files named
    relative to them) cannot hold, so users' builds would read the admin's live file. Raises
    ConfigError at that line of the recipe."""
    for stack, resolved in stacks:
        for node in resolved.nodes.values():
            r = node.recipe
            versions = (s for v in r.versions.values() for s in v)
            patches = (p for block in r.when for p in block.patches)
            for item in (*r.sources, *versions, *r.patches, *patches):
                if item.absolute:
                    raise ConfigError(
                        r.file,
                        item.line or None,
                        f"{item.path} is named by its absolute path, but stack {stack.name} "
                        "is published for users as a frozen copy of its recipes and the files "
                        "named relative to them (write it relative to the recipe, like "
                        "../shared/fix.patch, or give a url: with its sha256:)",
                    )


def inputs(resolved: Resolved) -> tuple[list[Path], dict[Path, str]]:
    """The package dirs the resolution's recipes and phase templates come from (in search
    order), and every path whose bytes enter its build specs: path -> "file", "tree" (a
    folder given as a source) or "repo" (a local git repository)."""
    dirs = resolved.profile.package_dirs
    found: dict[Path, str] = {}
    used = set()
    for node in resolved.nodes.values():
        found.update(recipe_inputs(node.recipe, dirs))
        used.add(node.recipe.file.parent)
        template = _template(node.recipe, dirs)
        if template is not None:
            used.add(template.parent.parent)
    return [d for d in dirs if d in used], found


def recipe_inputs(recipe: Recipe, package_dirs: list[Path]) -> dict[Path, str]:
    """What of one recipe is copied (see `inputs`): its file, its sources given by path (of
    every version it offers), local git repositories, patch files (of every `when:` block,
    whether it holds or not: loading the copy checks them all), and the phase template of
    its build system when a package dir gives one."""
    found = {recipe.file: "file"}
    for source in (*recipe.sources, *(s for v in recipe.versions.values() for s in v)):
        if source.path is not None:
            found[source.path] = "tree" if source.path.is_dir() else "file"
        elif source.git is not None and is_local(source.git):
            found[Path(source.git)] = "repo"
    patches = (*recipe.patches, *(p for block in recipe.when for p in block.patches))
    found.update({p.path: "file" for p in patches if p.path is not None})
    template = _template(recipe, package_dirs)
    if template is not None:
        found[template] = "file"
    return found


def _template(recipe: Recipe, package_dirs: list[Path]) -> Path | None:
    """The phase template a package dir gives the recipe's build system (the first found,
    as buildsystems.body renders it); None for a built-in one or no build system."""
    files = template_files(recipe.build_system, tuple(package_dirs))
    first = next((f for f in files if f.is_file()), None)
    return first if first is not None and first.parent.parent in package_dirs else None


def _in_copy(path: Path, top: Path) -> str:
    """Where `path` (under `top`) lies in a copy, relative to the copy's folder."""
    return os.path.normpath(Path(siteroot.PUBLISHED_FILES) / path.relative_to(top))


def _plan(found: dict[Path, str], top: Path) -> Plan:
    """What the copy holds: its path -> ("F" or "X", the file to copy) or ("L", the target of
    the link to make), each file of a folder source as hashing.tree_entries lists it."""
    plan: Plan = {}
    for path, kind in found.items():
        rel = _in_copy(path, top)
        if kind == "repo":
            plan[rel] = ("L", str(path))
        elif kind == "tree":
            plan.update({os.path.join(rel, r): (k, v) for r, k, v in tree_entries(path)})
        else:
            plan[rel] = ("X" if os.stat(path).st_mode & 0o100 else "F", str(path))
    return plan


def _listing(entries: Iterable[tuple[str, tuple[str, str]]]) -> dict[str, str]:
    """Path -> "F:<sha256>", "X:<sha256>" or "L:<target>": what names a copy."""
    return {rel: f"{k}:{v if k == 'L' else sha256_file(Path(v))}" for rel, (k, v) in entries}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write(plan: Plan, staging: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)  # a stack of no package: its profile only
    for rel, (kind, value) in plan.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "L":
            os.symlink(value, dest)
        else:
            shutil.copyfile(value, dest)
            dest.chmod(0o755 if kind == "X" else 0o644)


def _published_profile(
    site: Site, stack: Stack, resolved: Resolved, package_dirs: list[str], names: GivenNames
) -> str:
    """The copy's stack.yaml: the stack as a profile over `package_dirs` (in the copy), with
    the site's module naming and the `names` of its artifacts' modules
    (modulenaming.SiteNaming)."""
    from ..templating import render

    p = stack.profile
    used = set(p.toolchain.values())
    packages = [(n, _overrides(req, resolved.nodes[n])) for n, req in p.packages.items()]
    return render(
        "published-stack.yaml.j2",
        package_dirs=package_dirs,
        parameters=p.parameters,
        externals=[e for n, e in sorted(p.externals.items()) if n in used],
        toolchain=p.toolchain,
        packages=packages,
        prefer=p.prefer,
        core=stack.core,
        naming=site.modules.naming,
        naming_mpi=site.modules.naming_mpi,
        root_variable=site.modules.root_variable,
        stack=stack.name,
        names=_by_folder(names),
    )


def _by_folder(names: GivenNames) -> dict[str, dict[str, str]]:
    """`names` as the copy writes them: folder -> artifact id -> name, each sorted."""
    out: dict[str, dict[str, str]] = {}
    for (folder, artifact_id), name in sorted(names.items()):
        out.setdefault(folder, {})[artifact_id] = name
    return out


def _overrides(req: PackageRequest, node: Node) -> dict[str, Any]:
    """What a stack's package asks for beyond its name, as a profile writes it (so a user's
    profile extending the stack resolves to the stack's artifacts): parameters, version, and
    a repository it is built from, at the commit the site built."""
    out: dict[str, Any] = {"parameters": req.parameters} if req.parameters else {}
    if req.version is not None:
        out["version"] = req.version
    if req.git is not None:
        out.update(git=req.git, commit=node.recipe.sources[0].commit)
    return out


def _check(stack: Stack, resolved: Resolved, staging: Path, say: Say) -> None:
    """The copy in `staging` resolves to exactly the ids the site built (else HitError)."""
    try:
        frozen = resolve(load_profile(staging / siteroot.PUBLISHED_PROFILE))
    except HitError as e:
        raise HitError(f"stack {stack.name}: its published copy does not resolve: {e}") from None
    built = {name: node.ref.id for name, node in resolved.nodes.items()}
    differ = sorted(n for n, node in frozen.nodes.items() if built.get(n) != node.ref.id)
    if differ or frozen.nodes.keys() != built.keys():
        raise HitError(
            f"stack {stack.name}: its published copy resolves {', '.join(differ) or 'others'} "
            f"differently from the site's build; nothing was published for it"
        )


def _write_stack_file(site: Site, stack: Stack, copy: Path) -> None:
    """ROOT/stacks/<stack>.yaml: extends the copy's stack.yaml (relative, so the root can
    move), with comments for users; replaced atomically."""
    from ..templating import render

    file = siteroot.stack_file(site.root, stack.name)
    text = render(
        "stack-profile.yaml.j2",
        name=stack.name,
        site_file=site.file,
        path=file,
        packages=list(stack.profile.packages),
        published=os.path.relpath(copy / siteroot.PUBLISHED_PROFILE, file.parent),
    )
    write_atomic(file, text, mode=0o644)  # concurrent hdmod runs: one wins, none half-written


def leftover_copies(site: Site) -> list[str]:
    """The copies in ROOT/recipes that no stack file names now: the next `hdmod build`
    removes them (`publish` keeps a replaced copy for one build), so it is no no-op."""
    copies = site.root / siteroot.RECIPES
    named = {_copy_named(f) for f in (site.root / siteroot.STACKS).glob("*.yaml")}
    try:
        held = {p.name for p in copies.iterdir() if not p.name.startswith(".")}
    except OSError:
        return []
    return sorted(held - named)


def _copy_named(stack_file: Path) -> str | None:
    """The name of the copy a stack file extends (None for none, or a file written by an
    older hdmod, which named the admin's folders)."""
    try:
        extends = yamlfile.get_str_list(yamlfile.load_mapping(stack_file, "stack"), "extends")
    except (HitError, OSError):
        return None
    return Path(extends[0]).parent.name if extends else None
