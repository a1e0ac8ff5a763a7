"""Resolution: a profile spec and its recipes become build specs, hashes and a DAG.

The build spec is everything that can change what a build makes: name, version, the content
hash of each source, the build script (the recipe's `build:`, or the phases of its
`build_system:` rendered with its arguments: buildsystems.body), parameters, the
dependencies' artifact ids, the pinned externals it is built with (compiler, MPI, ...), the
platform and the version of the build environment this tool sets up. What cannot change the
result (job count, description, homepage, log verbosity, which host libraries may be linked)
is left out.
Patches are hashed as sources are: by content, with their strip level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TypeVar

from ..errors import ConfigError, HitError
from . import buildsystems, pythonenv, resolvecache, variants
from .artifact import ArtifactRef
from .buildspec import BuildSpec, PatchInput, ProfileDoc, SourceInput
from .externals import ENV_OF_ROLE, ROLES, External, check_pins, implicit_compiler
from .profiles import ProfileSpec, load_profile
from .recipes import (
    Recipe,
    Source,
    env_name,
    patch_hash,
    with_version,
)
from .versions import check_offered
from .yamlfile import Scalar

# Bump when the environment builder.py gives build scripts changes what builds produce.
BUILD_ENV_VERSION = 2


Context = TypeVar("Context")


@dataclass(frozen=True)
class Node:
    """One artifact of a resolution: its recipe, id and build spec, and what it was made of."""

    recipe: Recipe
    ref: ArtifactRef
    spec: BuildSpec
    deps: tuple[str, ...]  # direct dependencies
    closure: tuple[str, ...]  # every dependency, dependencies first
    parameters: dict[str, Scalar]
    toolchain: dict[str, External]  # kind -> external: the compiler, and what it asks for

    @property
    def name(self) -> str:
        """The package name (the recipe's)."""
        return self.recipe.name


@dataclass(frozen=True)
class Resolved:
    """A profile resolved: every node in build order, and the profile artifact over them."""

    profile: ProfileSpec
    nodes: dict[str, Node]  # in build order: dependencies first
    packages: tuple[str, ...]  # the packages the profile lists (not gc roots)
    profile_ref: ArtifactRef
    profile_doc: ProfileDoc
    notes: tuple[str, ...] = ()  # what resolving did that users should hear (git refs)


@cache
def platform_doc() -> dict[str, str]:
    """The platform part of every build spec: system, machine and glibc version. (os.uname
    gives what the platform module reads from it, without its import: some 5 ms of each
    build, issue 18.)"""
    libc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else ""
    system = os.uname()
    return {"system": system.sysname.lower(), "machine": system.machine, "libc": libc or ""}


def _load_all(profile: ProfileSpec) -> dict[str, Recipe]:
    """Every recipe the profile needs, its dependencies included, by name."""
    recipes: dict[str, Recipe] = {}
    todo = [(name, (req.file, req.line)) for name, req in profile.packages.items()]
    while todo:
        name, asked_at = todo.pop()
        if name in recipes:
            continue
        if name == pythonenv.PYTHON and pythonenv.PYTHON in profile.toolchain:
            message = (
                f"the toolchain names the python external {profile.toolchain[name]}: the "
                "interpreter is that one, leave python out of packages (its Python packages "
                "bring it into the profile)"
            )
            raise ConfigError(*asked_at, message)
        # the first <dir>/<name>.yaml, loaded unless the file is unchanged
        recipe = resolvecache.recipe_named(name, profile.package_dirs)
        if recipe is None:
            dirs = ", ".join(str(d) for d in profile.package_dirs) or "(no package_dirs given)"
            raise ConfigError(*asked_at, f"unknown package {name!r}: no {name}.yaml in {dirs}")
        file = recipe.file
        if recipe.name != name:
            message = (
                f"recipe file {file.name} names the package {recipe.name!r}, but a package is "
                f"found by its file's name: write name: {name}, or leave name: out"
            )
            raise ConfigError(file, None, message)
        req = profile.packages.get(name)
        if req is not None and req.version is not None:
            offered = recipe.versions or {recipe.version: recipe.sources}
            check_offered(name, file, offered, req.version, (req.file, req.version_line))
            recipe = with_version(recipe, req.version)
        recipe = _variant(recipe, profile)
        if pythonenv.PYTHON in profile.toolchain:
            recipe = pythonenv.with_external_python(recipe)
        recipes[name] = recipe
        todo += [(d, (file, recipe.dependency_lines[d])) for d in recipe.dependencies]
    return recipes


def _variant(recipe: Recipe, profile: ProfileSpec) -> Recipe:
    """`recipe`, at the version chosen already (with_version), as the profile's parameters
    and toolchain choose it (variants.py): what its `when:` blocks that hold add (toolchain
    kinds, dependencies, host libraries, module variables, description; argument lists
    after the recipe's own, patches after its own)."""
    if not recipe.when:
        return recipe
    add = variants.effects(recipe.when, _parameters(recipe, profile), recipe.version)
    seen: set[tuple] = set()
    for patch in add.patches:  # two blocks that hold, one patch: it would apply twice
        if patch.origin in seen:
            message = f"patch {patch.short!r} is added by two when: blocks that hold for this build"
            raise ConfigError(recipe.file, patch.line, message)
        seen.add(patch.origin)
    lines = {**add.dependency_lines, **recipe.dependency_lines}
    steps = recipe.build_system
    if steps is not None and add.args:  # load_when allows only lists the system takes
        args = {key: words + add.args.get(key, ()) for key, words in steps.args.items()}
        steps = replace(steps, args=args)
    return replace(
        recipe,
        toolchain=recipe.toolchain + tuple(k for k in add.toolchain if k not in recipe.toolchain),
        dependencies=recipe.dependencies
        + tuple(d for d in add.dependencies if d not in recipe.dependencies),
        dependency_lines=lines,
        allow_host_libs=recipe.allow_host_libs + add.allow_host_libs,
        environment={**recipe.environment, **add.environment},
        description=recipe.description if add.description is None else add.description,
        build_system=steps,
        patches=recipe.patches + add.patches,
    )


def _build_order(recipes: dict[str, Recipe], roots: list[str]) -> list[str]:
    """Dependencies first; a cycle is an error that prints the cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:  # said at the dependency that closes it
            cycle = stack[stack.index(name) :] + [name]
            last = recipes[stack[-1]]
            line = last.dependency_lines.get(name)
            raise ConfigError(last.file, line, "dependency cycle: " + " -> ".join(cycle))
        state[name] = 1
        stack.append(name)
        for dep in recipes[name].dependencies:
            visit(dep)
        stack.pop()
        state[name] = 2
        order.append(name)

    for root in roots:
        visit(root)
    return order


def _parameters(recipe: Recipe, profile: ProfileSpec) -> dict[str, Scalar]:
    params = dict(recipe.parameters)
    for key, value in profile.parameters.items():
        if key in params:
            params[key] = value
    req = profile.packages.get(recipe.name)
    if req is not None:
        for key, value in req.parameters.items():
            if key not in params:
                known = ", ".join(sorted(params)) or "none"
                message = (
                    f"package {recipe.name} has no parameter {key!r} (its parameters: {known})"
                )
                raise ConfigError(req.file, req.parameter_lines.get(key, req.line), message)
            params[key] = value
    if recipe.when:  # `auto` variants follow the profile's toolchain; +x/~x need true/false
        params = variants.settle(recipe.when, params, {"compiler", *profile.toolchain})
        bad = variants.bad_value(recipe.when, params)
        if bad is not None:
            if req is not None and bad in req.parameters:
                file, line = req.file, req.parameter_lines.get(bad, req.line)
            else:
                file, line = profile.parameter_lines.get(bad, (profile.file, None))
            variants.variant_error(file, line, recipe.name, bad, params[bad])
    return params


def _toolchains(profile: ProfileSpec) -> dict[str, External]:
    """The profile's toolchain, kind -> external, checked against what is declared."""
    chosen: dict[str, External] = {}
    for kind, name in profile.toolchain.items():
        file, line = profile.toolchain_lines[kind]
        ext = profile.externals.get(name)
        if ext is None:
            known = ", ".join(profile.externals) or "none declared"
            raise ConfigError(file, line, f"toolchain {kind}: no external {name!r} ({known})")
        if ext.kind != kind:
            raise ConfigError(file, line, f"toolchain {kind}: {name} is a {ext.kind}, not a {kind}")
        chosen[kind] = ext
    if "compiler" not in chosen:
        chosen["compiler"] = implicit_compiler()
    return chosen


def _node_toolchain(
    recipe: Recipe, chosen: dict[str, External], profile: ProfileSpec
) -> dict[str, External]:
    tools = {"compiler": chosen["compiler"]}
    for kind in recipe.toolchain:
        if kind not in chosen:
            _missing_kind(recipe, kind, profile)
        tools[kind] = chosen[kind]
    return tools


def _unset_tools(tools: dict[str, External]) -> dict[str, str]:
    """The compiler variables (CC, MPIFC, ...) a node's toolchain kinds could set but its
    chosen externals do not, each -> why (externals.ROLES, ENV_OF_ROLE)."""
    unset = {}
    for kind, ext in tools.items():
        for role in ROLES.get(kind, ()):
            if role not in ext.commands:
                unset[ENV_OF_ROLE[role]] = f"the {kind} external {ext.name} has no {role} command"
    return unset


def _missing_kind(recipe: Recipe, kind: str, profile: ProfileSpec) -> None:
    """Raise ConfigError: `recipe` needs an external of `kind` that `profile` (a user's
    profile or a site stack) does not choose. When a variant asked for it (`when: +mpi`
    with mpi set true), the error is where the parameter was set, and says how to go
    without; when a version condition alone did (`when: "@2:"`), it names the version."""
    if profile.stack is not None:
        lacks = f"stack {profile.stack} in {profile.file.name} has no `{kind}: NAME`"
    else:
        lacks = f"the profile {profile.file.name} has no `toolchain: {{{kind}: NAME}}`"
    message = f"package {recipe.name} needs an external {kind}, but {lacks}"
    file, line = recipe.file, recipe.toolchain_line or None
    params = _parameters(recipe, profile) if recipe.when else {}
    blocks = [b for b in recipe.when if kind in b.toolchain and b.holds(params, recipe.version)]
    if blocks and not blocks[0].parameter_terms:
        message += f" (its `when: {blocks[0].condition}` asks for it at version {recipe.version})"
        line = blocks[0].line or line
    elif blocks:  # a variant asked for it: say which, where it was set, and how to go without
        term = blocks[0].parameter_terms[0]
        name = term.name
        req = profile.packages.get(recipe.name)
        if req is not None and name in req.parameters:
            file, line = req.file, req.parameter_lines.get(name, req.line)
        elif name in profile.parameters:
            file, line = profile.parameter_lines.get(name, (profile.file, None))
        value = params.get(name)
        shown = ("on" if value else "off") if isinstance(value, bool) else repr(value)
        other = "false" if term.value is True else "true" if term.value is False else "another"
        message += (
            f" (its `when: {blocks[0].condition}` asks for it, and {name} is {shown}: "
            f"set {name}: {other}, or auto to follow the "
            f"{'stack' if profile.stack else 'profile'})"
        )
    raise ConfigError(file, line, message)


def _git_override(recipe: Recipe, req, dirty: bool, notes: list[str]) -> Recipe:
    """A package the profile builds from a repository: its sources become that repository at
    one commit (a branch resolved now), or, for a dirty checkout with --dirty, its working tree
    hashed by content."""
    from dataclasses import replace as change

    from .gitrefs import is_local, resolve_ref, watched_files
    from .recipes import COMMIT_RE, Source

    if is_local(req.git):
        for path in watched_files(Path(req.git), req.branch):  # for the no-op memo: stamped
            resolvecache.note(path)  # before git reads them (a commit made meanwhile is seen)
        resolvecache.note_tree(req.git)
        try:
            commit, is_dirty = resolve_ref(Path(req.git), req.branch, req.commit, dirty)
        except HitError as e:  # git's own words, at the package's line
            raise ConfigError(req.file, req.line, f"package {recipe.name}: {e}") from None
        if is_dirty:
            notes.append(f"{recipe.name}: using the uncommitted working tree of {req.git}")
            return change(recipe, sources=(Source(path=Path(req.git), line=req.line),))
        what = f"branch {req.branch}" if req.branch else ("HEAD" if not req.commit else "commit")
        notes.append(f"{recipe.name}: {req.git} {what} is at {commit}")
    else:
        if not req.commit or not COMMIT_RE.match(req.commit):
            raise ConfigError(req.file, req.line, "a remote git source needs `commit:` (40 hex)")
        commit = req.commit
    source = Source(git=req.git, commit=commit, ref=req.branch, line=req.line)
    return change(recipe, sources=(source,))


def used_externals(profile: ProfileSpec) -> list[External]:
    """The declared externals the builds of `profile` use (the implicit host compiler, pinned
    on the fly, is not one): its compiler, and what any of its packages asks for (an mpi).
    Raises HitError as `resolve` does for an unknown package or a bad toolchain."""
    recipes = _load_all(profile)
    chosen = _toolchains(profile)
    used = {
        id(ext): ext
        for r in recipes.values()
        for ext in _node_toolchain(r, chosen, profile).values()
        if ext.file is not None
    }
    return list(used.values())


def repin_externals(profiles: Iterable[ProfileSpec]) -> tuple[str, ...]:
    """Re-pin every external the profiles' builds use whose host tool changed (rewriting its
    `pin:` line); returns a note for each. Run before `resolve`: when notes come back, the
    pins in memory are stale, so reload the YAML (a profile, or the site.yaml of stacks)."""
    return check_pins((e for p in profiles for e in used_externals(p)), repin=True)


def _check_parameters_used(profile: ProfileSpec, recipes: dict[str, Recipe]) -> None:
    unused = set(profile.parameters) - {p for r in recipes.values() for p in r.parameters}
    if unused:
        first = sorted(unused, key=lambda k: profile.parameter_lines.get(k, (profile.file, 0)))[0]
        file, line = profile.parameter_lines.get(first, (profile.file, None))
        names = ", ".join(sorted(unused))
        raise ConfigError(file, line, f"no package of this profile has the parameter(s) {names}")


def _check_dir_names(recipe: Recipe, closure: list[str]) -> None:
    """Each package of `closure` (what `recipe` builds on) is `<NAME>_DIR` in its build's
    environment (env_name): two whose names differ only in case or in `-`, `_` and `.` would
    be one variable, the other's prefix out of reach. ConfigError at the recipe's
    dependencies."""
    seen: dict[str, str] = {}
    for name in closure:
        other = seen.setdefault(env_name(name), name)
        if other != name:
            line = recipe.dependency_lines.get(name) or recipe.dependency_lines.get(other)
            raise ConfigError(
                recipe.file,
                line,
                f"{recipe.name} builds on {other} and {name}, which would both be "
                f"{env_name(name)}_DIR in its build's environment: rename one of them",
            )


def _source_hash(recipe: Recipe, source: Source) -> str:
    """resolvecache.source_hash of `source`, one of `recipe`'s; what stops it (a `path:`
    that does not exist, a file in it that cannot be read) is a ConfigError at the source's
    line of the recipe."""
    try:
        return resolvecache.source_hash(source)
    except ConfigError:
        raise
    except HitError as e:
        raise ConfigError(recipe.file, source.line or None, str(e)) from None


def _node(
    recipe: Recipe, nodes: dict[str, Node], profile: ProfileSpec, chosen: dict[str, External]
) -> Node:
    """The node of `recipe`, whose dependencies are all in `nodes` already."""
    closure: list[str] = []
    for dep in recipe.dependencies:
        closure += [d for d in (*nodes[dep].closure, dep) if d not in closure]
    _check_dir_names(recipe, closure)
    params = _parameters(recipe, profile)
    tools = _node_toolchain(recipe, chosen, profile)
    buildsystems.check_tools_given(recipe.build_system, _unset_tools(tools))
    spec = BuildSpec(
        name=recipe.name,
        version=recipe.version,
        sources=tuple(SourceInput(_source_hash(recipe, s), s.dest) for s in recipe.sources),
        build=resolvecache.body(recipe.build_system, recipe.build, tuple(profile.package_dirs)),
        parameters=params,
        dependencies={dep: nodes[dep].ref.id for dep in recipe.dependencies},
        toolchain={kind: ext.spec() for kind, ext in sorted(tools.items())},
        platform=platform_doc(),
        build_env=BUILD_ENV_VERSION,
        patches=tuple(PatchInput(patch_hash(p), p.strip) for p in recipe.patches),
    )
    ref = ArtifactRef(recipe.name, recipe.version, spec.hash())
    return Node(recipe, ref, spec, recipe.dependencies, tuple(closure), params, tools)


def resolve(profile: ProfileSpec, dirty: bool = False, cache: Path | None = None) -> Resolved:
    """Build specs and hashes for a profile. Every external a build uses is checked against
    its pin first, before anything is built: a drifted one raises HitError with the pinned
    and the found values (re-pinning is `repin`'s, run before this). `dirty` lets a git
    checkout with uncommitted changes be used, hashed by content. `cache` (a home's
    `.cache` folder) keeps loaded recipes, source hashes and build-system bodies for the
    next resolution (resolvecache.py: the result is the same with it or without)."""
    resolvecache.start(cache)
    for d in profile.package_dirs:  # for the no-op memo: their listings before a look-up
        resolvecache.note(str(d))
    recipes = _load_all(profile)
    git_notes: list[str] = []
    for name, req in profile.packages.items():
        if req.git is not None:
            recipes[name] = _git_override(recipes[name], req, dirty, git_notes)
    chosen = _toolchains(profile)
    packages = list(profile.packages)
    _check_parameters_used(profile, recipes)
    check_pins(e for r in recipes.values() for e in _node_toolchain(r, chosen, profile).values())
    nodes: dict[str, Node] = {}
    for name in _build_order(recipes, packages):
        nodes[name] = _node(recipes[name], nodes, profile, chosen)
    for p in profile.prefer:
        if p not in profile.packages:
            file, line = profile.prefer_lines.get(p, (profile.file, None))
            raise ConfigError(file, line, f"prefer names {p!r}, which is not in packages")
    held = pythonenv.profile_packages(packages, nodes)  # a Python package brings its python
    profile_doc = ProfileDoc({name: nodes[name].ref.id for name in held}, tuple(profile.prefer))
    profile_ref = ArtifactRef("profile", "", profile_doc.hash())
    resolvecache.save()  # what was parsed and hashed anew, for the next run
    return Resolved(profile, nodes, tuple(packages), profile_ref, profile_doc, tuple(git_notes))


def resolve_file(
    file: Path, repin: bool = False, dirty: bool = False, cache: Path | None = None
) -> Resolved:
    """Load the profile YAML `file` and resolve it. With `repin`, the externals that drifted
    are re-pinned first (`repin_externals`) and the YAML is loaded again if any pin was
    rewritten; the re-pin notes come first in `Resolved.notes`. `cache` as `resolve`'s.
    Raises HitError."""
    profile = load_profile(file)
    notes = repin_externals([profile]) if repin else ()
    if notes:  # the pins in `profile` are the old ones
        profile = load_profile(file)
    resolved = resolve(profile, dirty=dirty, cache=cache)
    return replace(resolved, notes=notes + resolved.notes)


def recipes_of(profile: ProfileSpec) -> list[Recipe]:
    """Every recipe `profile` uses (its packages and their dependencies), loaded and checked
    but not resolved: no external is fingerprinted and nothing hashed, so it works on a
    machine other than the one that builds (`hit fetch`, `hdmod fetch --to`). Raises
    HitError for an unknown package or a bad recipe."""
    return list(_load_all(profile).values())


def node_for(resolved: Resolved, name: str) -> Node:
    """A package of the profile by name (for `hit show`, `hit bdir`)."""
    try:
        return resolved.nodes[name]
    except KeyError:
        known = ", ".join(resolved.nodes) or "none"
        raise HitError(
            f"{resolved.profile.file}: no package {name!r} here (packages: {known})"
        ) from None


def to_build(
    stacks: Iterable[tuple[Context, Resolved]], installed: Callable[[ArtifactRef], bool]
) -> list[tuple[Context, Node]]:
    """The artifacts of `stacks` (pairs of a caller's context, e.g. a stack name, and a
    resolution) that are not `installed`, each once (with the first context naming it),
    dependencies first."""
    seen: set[str] = set()
    out = []
    for context, resolved in stacks:
        for node in resolved.nodes.values():
            if node.ref.id not in seen and not installed(node.ref):
                seen.add(node.ref.id)
                out.append((context, node))
    return out
