"""Planning module trees for Lmod (Lua) and Environment Modules (Tcl) from the site's stacks:
which module each artifact and external gets, at which level, under which name. Rendering and
writing the planned entries is moduletree's job.

Hierarchy layout (the default): `Core/` holds compilers and the stacks marked `core`; a
compiler module sets family("compiler") and adds `Compiler/<compiler>/<version>/`; an MPI
module sets family("mpi") and adds `MPI/<compiler>/<cv>/<mpi>/<mv>/`; a python module sets
family("python") and adds the Python level its Python packages are in (pymodules.py). Flat
layout: one folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from ..errors import ConfigError, HitError
from ..names import (
    module_word,
)
from ..spec.externals import ENV_OF_ROLE, External
from ..spec.pythonenv import PYTHON, profile_packages
from ..spec.recipes import env_name
from ..spec.resolve import Node, Resolved
from ..spec.site import ModuleConfig, Site, Stack
from ..spec.variants import describe
from ..spec.yamlfile import MODULE_MANAGED_VARS
from ..store.layout import Store
from .compiling import (
    Folders,
    Wrapper,
    compile_hint,
    external_env,
    mpi_compiler_env,
    package_env,
    scan,
    wrapper_folder,
    wrappers,
)
from .modulenames import (
    as_given,
    module_name,
    project,
    refuse_nested_names,
    refuse_shared_folders,
    settle_names,
    short_name,
)
from .pymodules import (
    goes_to_python_level,
    interpreter_wrappers,
    levels_seen_from,
    python_level,
    python_path,
)


@dataclass
class Entry:
    """One module, in either format."""

    kind: str  # package | compiler | mpi | python (an external interpreter) | ghost
    name: str
    version: str
    level: tuple[str, ...]  # folder below the format's root: ("Core",), ("Compiler", ...), ()
    description: str = ""
    homepage: str = ""
    artifact_id: str = ""
    prefix: str = ""
    family: str | None = None
    modulepath: tuple[str, ...] | None = None  # the level a compiler or MPI module opens
    load: str | None = None  # a site module loaded instead of setting paths
    setenv: list[tuple[str, str]] = field(default_factory=list)
    prepend: list[tuple[str, str]] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)  # run dependencies, full names
    parents: list[str] = field(default_factory=list)  # compiler (MPI, python) modules, full names
    hidden: bool = False  # hidden from avail (in the folder's rc file), still loadable
    stack: str = ""
    alias: str = ""  # the plain version a hash-suffixed one stands for (`1.0` of `1.0-abc1234`)
    built_with: str = ""  # the toolchain of a package: `gcc 12.2.0, openmpi 4.1.4`
    variant: str = ""  # the variant it was built as (variants.describe): `mpi=on`
    compile_hint: str = ""  # help: how to compile against it (compiling.compile_hint)
    wrappers: list[Wrapper] = field(default_factory=list)  # a compiler's or MPI's commands
    wrapper_dir: tuple[str, ...] = ()  # their folder in the tree (compiling.wrapper_folder)

    @property
    def full(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def prereqs(self) -> list[list[str]]:
        """The Tcl template's `prereq` of each parent: in a hierarchy (`level` set) the
        alternatives `gcc/12.2.0 gcc compiler` (the exact module, any of its name, any of its
        family; templates/tcl/module.tcl says why), in a flat tree the exact module. The
        parents are the compiler then the MPI, or the compiler then the python, or the python
        alone (a core stack's Python packages)."""
        out = []
        for i, parent in enumerate(self.parents):
            name = parent.rpartition("/")[0]
            family = PYTHON if name == PYTHON else ("compiler", "mpi")[i]
            out.append(list(dict.fromkeys([parent, name, family])) if self.level else [parent])
        return out

    @property
    def help_text(self) -> str:
        """What `module help` prints (both templates): name and version, description,
        homepage, artifact, toolchain, how to compile against it, what loading it changes."""
        lines = [f"{self.name} {self.version}"]
        lines += [self.description] if self.description else []
        lines += [f"Homepage: {self.homepage}"] if self.homepage else []
        lines += [f"Artifact: {self.artifact_id} in {self.prefix}"] if self.artifact_id else []
        lines += [f"Built with: {self.built_with}"] if self.built_with else []
        lines += [f"Variant: {self.variant}"] if self.variant else []
        if self.compile_hint:
            lines.append(
                f"Compile against it: {self.compile_hint} (no -I, -L or rpath flags: the "
                "compiler modules' commands find what loaded modules provide, and the "
                "program finds the libraries at run time by its RUNPATH)"
            )
        if self.wrappers:
            names = " ".join(w.name for w in self.wrappers)
            lines.append(f"Puts first on PATH: {names}")
        sets = sorted({k for k, _v in self.setenv})
        paths = list(dict.fromkeys(k for k, _v in self.prepend))
        lines += [f"Sets: {', '.join(sets)}"] if sets else []
        lines += [f"Prepends to: {', '.join(paths)}"] if paths else []
        return "\n".join(lines)


def _external_entry(
    ext: External,
    level: tuple[str, ...],
    opens: tuple[str, ...] | None,
    cfg: ModuleConfig | None = None,
    compiler: External | None = None,
) -> Entry:
    """The module of a compiler, MPI or python external at `level`, opening `opens`. With
    `cfg`'s compile wrappers on, a compiler or MPI puts its wrappers first on PATH
    (compiling.py); an MPI at a compiler's level (`compiler`) points its wrappers at that
    compiler's. A python external is `python/<version>` with its interpreter's commands
    first on PATH, never its bin folder (pymodules.py)."""
    kind = ext.kind if ext.kind in ("compiler", "mpi", PYTHON) else "package"
    e = Entry(
        kind=kind,
        name=PYTHON if kind == PYTHON else module_word(short_name(ext)),
        version=module_word(ext.version or "default"),
        level=level,
        description=_describe_external(ext),
        family=kind if kind in ("compiler", "mpi", PYTHON) else None,
        modulepath=opens,
        load=ext.module,
        prefix=ext.prefix or "",
    )
    if ext.module is None:
        e.setenv = [
            (ENV_OF_ROLE[r], c) for r, c in sorted(ext.commands.items()) if r in ENV_OF_ROLE
        ]
        if kind == PYTHON and cfg is not None:
            _add_interpreter(e, ext, cfg)
        elif ext.prefix:
            e.setenv.append(
                ("MPI_DIR" if kind == "mpi" else f"{env_name(e.name)}_ROOT", ext.prefix)
            )
            if os.path.isdir(os.path.join(ext.prefix, "bin")):
                e.prepend.append(("PATH", os.path.join(ext.prefix, "bin")))
        if cfg is not None and kind in ("compiler", "mpi"):
            _add_wrappers(e, ext, cfg, compiler)
    return e


def _add_interpreter(e: Entry, ext: External, cfg: ModuleConfig) -> None:
    """Give the python module `e` of `ext` its commands (python3, python, python3.X) in a
    folder of the tree, first on PATH, and PYTHON naming the first of them."""
    e.wrappers = interpreter_wrappers(ext)
    if e.wrappers:
        e.wrapper_dir = wrapper_folder(e.name, e.version)
        folder = cfg.path.joinpath(*e.wrapper_dir)
        e.setenv = [(k, v) for k, v in e.setenv if k != "PYTHON"]
        e.setenv.append(("PYTHON", str(folder / e.wrappers[0].name)))
        e.prepend.append(("PATH", str(folder)))


def _add_wrappers(e: Entry, ext: External, cfg: ModuleConfig, compiler: External | None) -> None:
    """Give the compiler or MPI module `e` of `ext` what compiling needs (compiling.py): with
    wrappers on, its wrappers, named by the variables that named its commands and first on
    PATH; an MPI at a compiler's level (`compiler`) runs that compiler, through the
    compiler's wrappers or, without, its own commands."""
    setenv: list[tuple[str, str]] = []
    if cfg.compile.wrappers:
        e.wrappers = wrappers(ext)
        e.wrapper_dir = wrapper_folder(e.name, e.version)
        setenv, prepend = external_env(ext, cfg.path.joinpath(*e.wrapper_dir))
        e.prepend += prepend  # last: first on PATH
    if compiler is not None and ext.kind == "mpi":
        folder = None
        if cfg.compile.wrappers:
            comp = wrapper_folder(module_word(short_name(compiler)), module_word(compiler.version))
            folder = cfg.path.joinpath(*comp)
        setenv += mpi_compiler_env(ext, compiler, folder)
    named = {key for key, _v in setenv}
    e.setenv = [(k, v) for k, v in e.setenv if k not in named] + setenv


def _describe_external(ext: External) -> str:
    """What a compiler or MPI module says of itself in whatis and help (and so in `module
    spider`): the tool, its version as the tool reports it (the pin), its commands, and what
    loading it opens."""
    reported = (ext.pin or {}).get("version", "")
    commands = ", ".join(f"{role} {path}" for role, path in sorted(ext.commands.items()))
    opens = {"compiler": "the packages built with it", "mpi": "the packages built with it"}
    opens[PYTHON] = "the Python packages built for it"
    lines = [f"{ext.kind} {ext.name} {ext.version} (an external of the site, pinned)"]
    lines += [f"reports: {reported}"] if reported else []
    lines += [f"commands: {commands}"] if commands else []
    if ext.kind in opens:
        lines.append(f"loading it makes {opens[ext.kind]} visible (module avail)")
    return "; ".join(lines)


def _package_env(node: Node, found: Folders, cfg: ModuleConfig) -> tuple[list, list]:
    """What the module of `node`, built at `found` (compiling.scan of its prefix), sets and
    prepends: <NAME>_ROOT, the prefix's bin, man, pkgconfig and library folders that exist,
    CMAKE_PREFIX_PATH, what compiling and Python need, the recipe's and site's environment."""
    prefix = found.prefix
    setenv = [(cfg.root_variable.replace("{NAME}", env_name(node.name)), str(prefix))]
    prepend = []
    if found.has("bin"):
        prepend.append(("PATH", f"{prefix}/bin"))
    for man in ("share/man", "man"):
        if found.has(man):
            prepend.append(("MANPATH", f"{prefix}/{man}"))
            break
    for pc in ("lib/pkgconfig", "lib64/pkgconfig", "share/pkgconfig"):
        if found.has(pc):
            prepend.append(("PKG_CONFIG_PATH", f"{prefix}/{pc}"))
    prepend.append(("CMAKE_PREFIX_PATH", str(prefix)))
    prepend += package_env(node.name, found, cfg.compile)
    prepend += python_path(node.recipe, prefix)
    if cfg.ld_library_path:
        for lib in ("lib", "lib64"):
            if found.has(lib):
                prepend.append(("LD_LIBRARY_PATH", f"{prefix}/{lib}"))
    extra = {**node.recipe.environment, **cfg.env.get(node.name, {})}
    setenv += [(k, v.replace("{prefix}", str(prefix))) for k, v in sorted(extra.items())]
    return setenv, prepend


def _refuse_managed_roots(site: Site, names: set[str]) -> None:
    """A `root_variable` that makes a variable the module tools manage for one of `names`
    (`{NAME}` and a package `path`: its module would set PATH to its prefix). Raises
    ConfigError at `root_variable:`, before anything is built."""
    cfg = site.modules
    for name in sorted(names):
        root = cfg.root_variable.replace("{NAME}", env_name(name))
        if root in MODULE_MANAGED_VARS:
            raise ConfigError(
                site.file,
                cfg.root_variable_line or None,
                f"modules root_variable {cfg.root_variable!r} makes {root} for {name}, which "
                "the module tools manage: a module setting it would replace the user's value",
            )


def _refuse_unknown_names(site: Site, names: set[str]) -> None:
    """`modules: hide:` or `env:` naming a package no stack gives a module (a typo: it was
    ignored, as `off_for:` is not). Raises ConfigError at its line."""
    for key, named in site.modules.named_lines.items():
        for name, line in named.items():
            if name not in names:
                shown = sorted(names)[:12]
                known = ", ".join(shown) + (", ..." if len(names) > 12 else "") or "none"
                message = f"modules {key}: {name} is no package with a module (they are {known})"
                raise ConfigError(site.file, line, message)


@dataclass(frozen=True)
class _StackLevels:
    """Where a stack's modules go: its compiler and MPI externals, the levels they open in a
    hierarchy (`Compiler/<c>/<cv>`, `MPI/<c>/<cv>/<m>/<mv>`), and the modules a package
    built with the compiler (or also the MPI) needs loaded first; for its Python packages,
    the level its python module opens, that module (a parent where it must be loaded
    first) and its version (pymodules.py)."""

    compiler: External | None
    mpi: External | None
    c_level: tuple[str, ...]
    m_level: tuple[str, ...]
    parents: tuple[str, ...] = ()
    mpi_parents: tuple[str, ...] = ()
    p_level: tuple[str, ...] = ()
    python_parent: str = ""
    python_version: str = ""


def _with_python(site: Site, levels: _StackLevels, e: Entry, version: str) -> _StackLevels:
    """`levels` with the stack's python module `e` (of the store's python, or an external):
    in a hierarchy it opens the Python level and is its packages' parent; in a flat tree
    only an external is a parent (the store's python is a dependency, as any package)."""
    e.family = PYTHON
    if site.modules.layout != "hierarchy":
        parent = e.full if e.kind == PYTHON else ""
        return replace(levels, python_parent=parent, python_version=version)
    e.modulepath = python_level(e.level, e.version)
    return replace(levels, p_level=e.modulepath, python_parent=e.full, python_version=version)


def plan(site: Site, stacks: list[tuple[Stack, Resolved]], store: Store) -> list[Entry]:
    """Every module of the site, names settled (collisions get a hash suffix): the compiler
    and MPI modules each stack needs (`_toolchain_entries`), one per listed package and level
    (`_package_entry`), then each package's run dependencies (`_add_dependencies`)."""
    entries: dict[tuple, Entry] = {}  # (level, artifact id or external name) -> entry
    packages: list[tuple[Entry, Node, Resolved]] = []
    for stack, resolved in stacks:
        levels = _toolchain_entries(site, stack, entries)
        held = profile_packages(resolved.packages, resolved.nodes)  # and Python dependencies
        for name in sorted(held, key=lambda n: n != PYTHON):  # python opens their level
            node = resolved.nodes[name]
            key, e = _package_entry(site, stack, resolved, node, store, levels)
            as_given(site, e)
            if key not in entries:
                entries[key] = e
                packages.append((e, node, resolved))
            if name == PYTHON:
                levels = _with_python(site, levels, entries[key], node.recipe.version)
    with_modules = {node.name for _e, node, _r in packages}
    _refuse_unknown_names(site, with_modules)
    _refuse_managed_roots(site, with_modules)
    settle_names(site, list(entries.values()))
    for e in entries.values():  # a site's module, not to be renamed beside a user's own
        as_given(site, e)
    refuse_shared_folders(site, list(entries.values()))
    refuse_nested_names(site, list(entries.values()))
    _add_dependencies(packages, site.modules.depends_on)
    return list(entries.values())


def check_toolchain_versions(profile) -> None:
    """Refuse a compiler or MPI external of `profile`'s toolchain (a spec.profiles
    ProfileSpec) that has no `version:` where module names need it: a hierarchy puts the
    packages built with it under Compiler/<name>/<version> (MPI/.../<name>/<version>), as
    Lmod's hierarchy names them, and a module the site provides is loaded as <name>/<version>.
    Raises ConfigError naming the external's file (HitError for one without a file)."""
    for kind in ("compiler", "mpi"):
        ext = profile.externals.get(profile.toolchain.get(kind, ""))
        if ext is None or ext.version:
            continue
        message = (
            f"external {ext.name} ({kind}) has no `version:`, which its modules need: the "
            f"packages built with it go under {'Compiler' if kind == 'compiler' else 'MPI'}/"
            f"{short_name(ext)}/<version> in the module hierarchy (give it, e.g. "
            f'version: "12.2.0")'
        )
        if ext.file is None:
            raise HitError(message)
        raise ConfigError(ext.file, None, message)


# Complexity (radon D): the compiler and the MPI each have the same three cases (a module of
# ours, a module the site provides, none while the hierarchy needs one), in one place so that
# the rule of where a stack's modules go reads top to bottom.
def _toolchain_entries(site: Site, stack: Stack, entries: dict[tuple, Entry]) -> _StackLevels:
    """Add the stack's compiler and MPI modules (externals the site lists under
    `modules: externals:`) to `entries`; return where the stack's packages go. Raises
    HitError when a hierarchy needs a compiler or MPI module the site does not list."""
    cfg = site.modules
    hierarchy = cfg.layout == "hierarchy"
    if hierarchy or cfg.provided:
        check_toolchain_versions(stack.profile)
    comp = stack.profile.externals.get(stack.profile.toolchain["compiler"])
    mpi = stack.profile.externals.get(stack.profile.toolchain.get("mpi", ""))
    c_level = ("Compiler", short_name(comp), comp.version) if comp else ()
    m_level = ("MPI", *c_level[1:], short_name(mpi), mpi.version) if mpi else ()
    parents: list[str] = []
    if comp and comp.name in cfg.externals:
        core = ("Core",) if hierarchy else ()
        e = _external_entry(comp, core, c_level if hierarchy else None, cfg)
        parents = [entries.setdefault(((), "ext", comp.name), e).full]
    elif cfg.provided and comp:
        parents = [module_name(short_name(comp), comp.version)]
    elif hierarchy and not stack.core:
        raise_missing(site, comp.name if comp else "the host gcc", "compiler")
    mpi_parents = parents
    if mpi and mpi.name in cfg.externals:
        in_level = comp if hierarchy and comp and comp.name in cfg.externals else None
        e = _external_entry(
            mpi, c_level if hierarchy else (), m_level if hierarchy else None, cfg, in_level
        )
        e.parents = list(parents)
        mpi_parents = parents + [entries.setdefault((c_level, "ext", mpi.name), e).full]
    elif cfg.provided and mpi:
        mpi_parents = parents + [module_name(short_name(mpi), mpi.version)]
    elif hierarchy and mpi and not stack.core:
        raise_missing(site, mpi.name, "mpi")
    levels = _StackLevels(comp, mpi, c_level, m_level, tuple(parents), tuple(mpi_parents))
    return _python_external(site, stack, entries, levels)


def _python_external(
    site: Site, stack: Stack, entries: dict[tuple, Entry], levels: _StackLevels
) -> _StackLevels:
    """`levels` with the stack's python external (`python:`), when it has one: its module
    where the stack's packages go (Core in a core stack), the compiler its parent, added to
    `entries`; a module the site provides is named; none in a hierarchy is an error."""
    cfg = site.modules
    ext = stack.profile.externals.get(stack.profile.toolchain.get(PYTHON, ""))
    if ext is None:
        return levels
    if ext.name in cfg.externals:
        hierarchy = cfg.layout == "hierarchy"
        level = (("Core",) if stack.core else levels.c_level) if hierarchy else ()
        key = (level, "ext", ext.name)
        if key not in entries:  # the first stack's (a flat tree has one for all stacks)
            entries[key] = _external_entry(ext, level, None, cfg)
            entries[key].parents = [] if stack.core else list(levels.parents)
        e = entries[key]
        return _with_python(site, levels, e, ext.version)
    if cfg.provided:  # the site's module, where the site's stack has it, opens its level
        opened = ()
        if cfg.layout == "hierarchy":
            opened = python_level(("Core",) if stack.core else levels.c_level, ext.version)
        parent = module_name(PYTHON, ext.version)
        return replace(levels, p_level=opened, python_parent=parent, python_version=ext.version)
    if cfg.layout == "hierarchy":
        raise_missing(site, ext.name, PYTHON)
    return levels


def built_with_mpi(resolved: Resolved, node: Node) -> bool:
    """Whether the artifact was built against the MPI: itself (`toolchain: [mpi]`) or any
    artifact in its closure. Such a module belongs at the MPI's level of the hierarchy (as
    Lmod's Core -> Compiler -> MPI levels mean: what you can load once that MPI is loaded),
    even when the package itself never calls mpicc."""
    return any("mpi" in n.toolchain for n in (node, *(resolved.nodes[d] for d in node.closure)))


def _package_entry(
    site: Site, stack: Stack, resolved: Resolved, node: Node, store: Store, levels: _StackLevels
) -> tuple[tuple, Entry]:
    """The module of one listed package: `((level, "pkg", artifact id), entry)`."""
    cfg = site.modules
    uses_mpi = built_with_mpi(resolved, node)
    python = levels.python_version and goes_to_python_level(node.recipe, uses_mpi)
    # a user's package (cfg.provided) on a core stack goes below the compiler all the same
    # (nothing opens a user's Core), but for a Python package: below the stack's python
    core = stack.core and (python or not cfg.provided)
    if cfg.layout != "hierarchy":
        level: tuple[str, ...] = ()
    elif python and levels.p_level:
        level = levels.p_level
    elif core:
        level = ("Core",)
    else:
        level = levels.m_level if uses_mpi else levels.c_level
    prefix = store.prefix(node.ref)
    found = scan(prefix)  # one listing of the prefix, for every folder asked about
    setenv, prepend = _package_env(node, found, cfg)
    parents = [] if core else list(levels.mpi_parents if uses_mpi else levels.parents)
    parents += [levels.python_parent] if python and levels.python_parent else []
    mpi = levels.mpi if uses_mpi else None
    built_with = [f"{short_name(x)} {x.version}" for x in (levels.compiler, mpi) if x]
    built_with += [f"python {levels.python_version}"] if python else []
    name, version = project(site, node, levels.compiler, mpi, stack)
    e = Entry(
        kind="package",
        name=name,
        version=version,
        level=level,
        description=node.recipe.description,
        homepage=node.recipe.homepage,
        artifact_id=node.ref.id,
        prefix=str(prefix),
        setenv=setenv,
        prepend=prepend,
        parents=parents,
        hidden=node.name in cfg.hide,
        stack=stack.name,
        built_with=", ".join(built_with),
        variant=describe(node.recipe.when, node.parameters),
        compile_hint=compile_hint(node.name, found, uses_mpi, cfg.compile),
    )
    return (level, "pkg", node.ref.id), e


def _add_dependencies(packages: list[tuple[Entry, Node, Resolved]], depends_on: str) -> None:
    """Each package module loads its run dependencies' modules: none, the direct ones, or all
    (`modules: depends_on:`), found at its own level or a level above it that is on MODULEPATH
    whenever it is (an MPI-level netcdf-c loads a compiler-level library it links; Core).
    A dependency that is a parent (the python of the Python level) is loaded as a parent."""
    by_id = {(e.level, e.artifact_id): e for e, _n, _r in packages}
    for e, node, resolved in packages:
        names = {"none": (), "direct": node.deps, "all": node.closure}[depends_on]
        for dep in names:
            ref = resolved.nodes[dep].ref.id
            for level in _levels_seen_from(e.level):
                d = by_id.get((level, ref))
                if d is not None:
                    if d.full not in e.parents:
                        e.depends.append(d.full)
                    break


def _levels_seen_from(level: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The levels on MODULEPATH whenever `level` is: itself, then for `MPI/c/cv/m/mv` the
    compiler's `Compiler/c/cv`, then `Core` (a flat tree's one level is `()`); for a Python
    level, pymodules.levels_seen_from."""
    python = levels_seen_from(level)
    if python is not None:
        return python
    if level[:1] == ("MPI",):
        return [level, ("Compiler", *level[1:3]), ("Core",)]
    if level[:1] == ("Compiler",):
        return [level, ("Core",)]
    return [level]


def raise_missing(site: Site, name: str, kind: str) -> None:
    """HitError: the hierarchy needs a module for `name` (a compiler or MPI) the site lacks."""
    raise HitError(
        f"{site.file}: the module hierarchy starts at the {kind} module, but {name} has none: "
        f"list it under modules: externals: [...] (or use layout: flat)"
    )
