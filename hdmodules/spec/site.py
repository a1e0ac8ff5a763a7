"""The site config (`site.yaml`): where the shared store and module tree live, the stacks a
site offers, how its modules look, and who may read them.

Each stack becomes a profile spec, resolved exactly as a user's profile is (same recipes,
same pinned externals, same hashes), so a package in two stacks with identical inputs is one
artifact, and `HIT_HOME=<root> hit ...` works on the site store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, HitError
from ..names import site_path_problem
from . import resolvecache, siteroot, yamlfile
from .externals import External, load_externals
from .modulenaming import namings, root_variable_of
from .profiles import (
    PackageRequest,
    ProfileSpec,
    package_dirs,
    package_requests,
    parameter_lines,
)
from .slurmconfig import SlurmConfig
from .slurmconfig import load_config as load_slurm_config
from .yamlfile import check_name, check_version

SITE_KEYS = frozenset(
    [
        "root",
        "package_dirs",
        "externals",
        "externals_from",
        "stacks",
        "modules",
        "permissions",
        "slurm",
        "mirrors",
    ]
)
# `python:` names an interpreter external (kind: python) for its Python packages
STACK_KEYS = {"compiler", "mpi", "python", "core", "parameters", "packages", "prefer"}
MODULE_KEYS = frozenset(
    [
        "path",
        "formats",
        "layout",
        "naming",
        "templates",
        "externals",
        "defaults",
        "hide",
        "env",
        "depends_on",
        "root_variable",
        "ld_library_path",
        "keep_days",
        "spider_cache",
        "compile",
    ]
)
PERMISSION_KEYS = {"group", "mode"}


@dataclass(frozen=True)
class CompileConfig:
    """`modules: compile:`: what loaded modules give a scientist who compiles against them
    (README "Compiling against loaded modules"). Each part can be turned off; `off_for` lists
    packages whose modules add no compile variables (CPATH, LIBRARY_PATH, LD_RUN_PATH)."""

    cpath: bool = True  # package modules prepend <prefix>/include to CPATH
    library_path: bool = True  # ... and <prefix>/lib(64) to LIBRARY_PATH
    rpath: bool = True  # links get a RUNPATH for those folders: LD_RUN_PATH, and the wrappers
    wrappers: bool = True  # compiler and MPI modules put their commands first on PATH
    off_for: tuple[str, ...] = ()


COMPILE_KEYS = frozenset(["cpath", "library_path", "rpath", "wrappers", "off_for"])


def _compile(m: yamlfile.Mapping) -> CompileConfig:
    """`modules: compile:`; ConfigError (file:line) for unknown keys, non-booleans, bad names."""
    yamlfile.check_keys(m, COMPILE_KEYS, "modules compile")
    off_for = yamlfile.item_lines(m, "off_for", twice="modules compile off_for: package")
    for name, line in off_for.items():
        check_name(m, "off_for", name, "modules compile off_for: package name", line)
    flags = {k: yamlfile.get_bool(m, k, True) for k in ("cpath", "library_path", "rpath")}
    return CompileConfig(
        **flags, wrappers=yamlfile.get_bool(m, "wrappers", True), off_for=tuple(off_for)
    )


@dataclass(frozen=True)
class ModuleConfig:
    """The `modules:` section of site.yaml (paths, formats, layout, naming, defaults, hiding, extra
    variables)."""

    path: Path
    formats: tuple[str, ...] = ("lmod", "tcl")
    layout: str = "hierarchy"
    naming: str = "{name}/{version}"
    naming_line: int = 0  # where site.yaml sets it (for errors), 0 when it does not
    # the naming of packages built with an MPI (`naming: {all: ..., mpi: ...}`, as Spack's
    # `^mpi` projection beside `all`); None: `naming` names them too
    naming_mpi: str | None = None
    root_variable_line: int = 0  # the same for root_variable
    templates: Path | None = None
    externals: tuple[str, ...] = ()  # externals that get modules (opt-in)
    defaults: dict[str, str] = field(default_factory=dict)
    defaults_lines: dict[str, int] = field(default_factory=dict)  # where each is set
    hide: tuple[str, ...] = ()
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    # where `hide:` and `env:` name each package ("hide" or "env" -> name -> line), for
    # modulefiles.plan's error when one names no package that gets a module
    named_lines: dict[str, dict[str, int]] = field(default_factory=dict)
    depends_on: str = "direct"  # none | direct | all
    root_variable: str = "{NAME}_ROOT"
    ld_library_path: bool = False
    provided: bool = False  # compiler and MPI modules come from elsewhere (a user on a site)
    # a user's: the names the site gave its artifacts' modules (modulenaming.given_names)
    given_names: dict[tuple[str, str], str] = field(default_factory=dict)
    keep_days: int = 30  # replaced trees are kept this long (moduletree.write_tree)
    spider_cache: bool = False  # Lmod's spider cache inside the tree (publish/spidercache.py)
    compile: CompileConfig = field(default_factory=lambda: CompileConfig())


@dataclass(frozen=True)
class Stack:
    """One stack of a site: a profile spec whose link is ROOT/profiles/<name>."""

    name: str
    profile: ProfileSpec
    core: bool = False  # its modules go to Core/: compiler-independent tools


@dataclass(frozen=True)
class Site:
    """A loaded site.yaml: root, stacks, externals, module settings, permissions, Slurm."""

    file: Path
    root: Path
    stacks: tuple[Stack, ...]
    externals: dict[str, External]
    modules: ModuleConfig
    group: str | None = None
    mode: int = 0o755
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    mirrors: tuple[str, ...] = ()  # folders (absolute) or URLs tried before a source's URL


def _choice(m: yamlfile.Mapping, key: str, choices: tuple[str, ...], default: str) -> str:
    value = yamlfile.get_str(m, key, default)
    if value not in choices:
        yamlfile.fail(m, key, f"{key!r} must be one of {', '.join(choices)}, not {value!r}")
    return value


# Complexity (radon C): one check per key of `modules:`, in the order the README lists them.
def _modules(m: yamlfile.Mapping, base: Path, root: Path, override: Path | None) -> ModuleConfig:
    yamlfile.check_keys(m, MODULE_KEYS, "modules")
    format_lines = yamlfile.item_lines(m, "formats", twice="module format")
    for f, line in format_lines.items():
        if f not in ("lmod", "tcl"):
            raise ConfigError(m.file, line, f"module format {f!r}: use lmod and/or tcl")
    if "formats" in m and not format_lines:
        yamlfile.fail(m, "formats", "'formats' lists no format: give lmod, tcl or both")
    formats = tuple(format_lines or ("lmod", "tcl"))
    naming, naming_mpi = namings(m)
    env = yamlfile.get_mapping(m, "env")
    for pkg, variables in env.items():  # as a recipe's `environment:` (module_environment)
        check_name(env, pkg, pkg, "modules env: package name")
        if not isinstance(variables, yamlfile.Mapping):
            yamlfile.fail(env, pkg, f"env for {pkg!r} must map variable names to values")
        yamlfile.module_environment(env, pkg, f"modules env: {pkg}: variable")
    defaults = yamlfile.get_mapping(m, "defaults")
    for module, version in defaults.items():  # written into .modulerc, read by `module avail`
        for part in str(module).split("/"):
            check_name(defaults, module, part, "modules defaults: module name")
        if isinstance(version, float):  # 1.10 would silently become 1.1
            message = (
                f"modules defaults: {module}: write the version in quotes (YAML reads {version})"
            )
            yamlfile.fail(defaults, module, message)
        check_version(defaults, module, str(version), f"modules defaults: {module}: version")
    hide = yamlfile.item_lines(m, "hide", twice="modules hide: package")
    for name, line in hide.items():
        check_name(m, "hide", name, "modules hide: package name", line)
    externals = yamlfile.item_lines(m, "externals", twice="modules externals: external")
    for name, line in externals.items():
        check_name(m, "externals", name, "modules externals: external name", line)
    root_variable = root_variable_of(m)
    templates = yamlfile.get_str(m, "templates")
    given = yamlfile.get_str(m, "path", "modules")
    if not given:  # the tree would be written over the root itself
        yamlfile.fail(m, "path", "'path' is empty: give the module tree's folder (modules)")
    path = override or (root / given)
    return ModuleConfig(
        path=Path(os.path.abspath(path)),
        formats=formats,
        layout=_choice(m, "layout", ("hierarchy", "flat"), "hierarchy"),
        naming=naming,
        naming_line=m.line_of("naming") if "naming" in m else 0,
        naming_mpi=naming_mpi,
        root_variable_line=m.line_of("root_variable") if "root_variable" in m else 0,
        templates=Path(os.path.abspath(base / templates)) if templates else None,
        externals=tuple(externals),
        defaults={str(k): str(v) for k, v in defaults.items()},
        defaults_lines={str(k): defaults.line_of(k) for k in defaults},
        hide=tuple(hide),
        named_lines={"hide": dict(hide), "env": {str(k): env.line_of(k) for k in env}},
        env={k: {n: str(v) for n, v in vs.items()} for k, vs in env.items()},
        depends_on=_choice(m, "depends_on", ("none", "direct", "all"), "direct"),
        root_variable=root_variable,
        ld_library_path=yamlfile.get_bool(m, "ld_library_path", False),
        compile=_compile(yamlfile.get_mapping(m, "compile")),
        keep_days=yamlfile.get_int(m, "keep_days", 30, minimum=0),
        spider_cache=_spider_cache(m, formats),
    )


def _spider_cache(m: yamlfile.Mapping, formats: tuple[str, ...]) -> bool:
    """`spider_cache:` true or false (default false): whether the Lmod tree carries Lmod's
    spider cache (publish/spidercache.py). Lmod reads only the Lmod tree, so `true` needs the
    lmod format. ConfigError at the key otherwise."""
    value = yamlfile.get_bool(m, "spider_cache", False)
    if value and "lmod" not in formats:
        problem = "'spider_cache: true' is Lmod's cache of the lmod tree: add lmod to formats"
        yamlfile.fail(m, "spider_cache", problem)
    return value


def _check_stack_toolchain(
    stack: Stack, sm: yamlfile.Mapping, externals: dict[str, External], cfg: ModuleConfig
) -> None:
    """Before anything is built: each stack's `compiler:`, `mpi:` and `python:` name a
    declared external of that kind, and in a hierarchy (Lmod's Core -> Compiler -> MPI, and
    the Python level) each has a module of its own (`modules: externals:`), since the stack's
    modules are only reached through it (its Python packages through the python module, in a
    `core` stack too). Raises ConfigError at the stack's key, in site.yaml's own words."""
    for kind in ("compiler", "mpi", "python"):
        name = stack.profile.toolchain.get(kind)
        if name is None:
            continue
        where = f"stacks: {stack.name}: {kind}:"
        ext = externals.get(name)
        if ext is None:
            known = ", ".join(sorted(externals)) or "none declared"
            yamlfile.fail(sm, kind, f"{where} no external {name!r} (externals: {known})")
        if ext.kind != kind:
            yamlfile.fail(sm, kind, f"{where} {name} is a {ext.kind}, not a {kind}")
        reached = kind == "python" or not stack.core
        hierarchy = cfg.layout == "hierarchy" and reached and not cfg.provided
        if hierarchy and name not in cfg.externals:
            yamlfile.fail(
                sm,
                kind,
                f"{where} {name} has no module, but the module hierarchy reaches this stack "
                f"through it: list it under modules: externals: (or use layout: flat)",
            )


def load_site(
    file: Path, root: Path | None = None, modules: Path | None = None, on_site: bool = True
) -> Site:
    """Load site.yaml; `root` (--root) and `modules` (--modules) override its paths. With
    `on_site` False (`hdmod fetch --to` on a machine with internet, which reads recipes
    only), an `externals_from:` file that is not there (externals are detected on the
    site's own machine) is left out, and the stacks' compilers and MPIs are not checked
    against the externals. Raises ConfigError (file:line)."""
    file = Path(os.path.abspath(file))
    base = file.parent
    root_given = root
    resolvecache.note(str(file))  # for the no-op memo: its stamp before it is read
    m = yamlfile.load_mapping(file, "site config")
    yamlfile.check_keys(m, SITE_KEYS, "site config", required=("stacks",))
    if root is None:
        given = yamlfile.get_str(m, "root")
        if given is None:
            message = "say where the site store lives (`root: DIR`), or give --root"
            raise ConfigError(file, m.line, message)
        if not given:  # it was the folder of site.yaml itself
            yamlfile.fail(m, "root", "'root' is empty: give the folder of the site store")
        if given.startswith("~"):  # made a folder named `~` beside site.yaml
            yamlfile.fail(m, "root", f"root {given!r}: ~ is not expanded here, give the full path")
        root = base / given
    root = Path(os.path.abspath(root))
    pkg_dirs = package_dirs(m, base)
    externals: dict[str, External] = {}
    files = [file]
    for i, ext_file in enumerate(yamlfile.get_str_list(m, "externals_from")):
        path = Path(os.path.abspath(base / ext_file))
        if os.path.realpath(path) in map(os.path.realpath, files):  # in any spelling, by a link
            yamlfile.fail_item(
                m, "externals_from", i, f"externals_from: file {ext_file!r} is listed twice"
            )
        if not path.exists():
            if not on_site:
                continue
            yamlfile.fail_item(m, "externals_from", i, f"{ext_file} ({path}) does not exist")
        if not path.is_file():
            yamlfile.fail_item(m, "externals_from", i, f"{ext_file} ({path}) is not a file")
        resolvecache.note(str(path))
        doc = yamlfile.load_mapping(path, "externals file")
        yamlfile.check_keys(doc, {"externals"}, "externals file")
        externals.update(load_externals(yamlfile.get_mapping(doc, "externals")))
        files.append(path)
    externals.update(load_externals(yamlfile.get_mapping(m, "externals")))

    stacks_m = yamlfile.get_mapping(m, "stacks")
    if not stacks_m:
        yamlfile.fail(m, "stacks", "a site needs at least one stack")
    stacks = []
    stack_lines: dict[str, yamlfile.Mapping] = {}
    for name, sm in stacks_m.items():
        check_name(stacks_m, name, name, "stack name")  # ROOT/profiles/<name>
        if not isinstance(sm, yamlfile.Mapping):
            yamlfile.fail(
                stacks_m, name, f"stack {name!r} must be a mapping (compiler:, packages:)"
            )
        yamlfile.check_keys(sm, STACK_KEYS, f"stack {name!r}", required=("compiler", "packages"))
        toolchain = {"compiler": yamlfile.get_str(sm, "compiler")}
        for kind in ("mpi", "python"):
            if sm.get(kind) is not None:
                toolchain[kind] = yamlfile.get_str(sm, kind)
        packages: dict[str, PackageRequest] = {r.name: r for r in package_requests(sm)}
        first = yamlfile.item_lines(sm, "prefer")  # who wins a file two packages ship
        for winner, line in first.items():
            check_name(sm, "prefer", winner, "prefer: package name", line)
        profile = ProfileSpec(
            file=file,
            package_dirs=list(pkg_dirs),
            parameters=yamlfile.check_parameters(sm, "parameters"),
            parameter_lines=parameter_lines(sm),
            packages=packages,
            prefer=list(first),
            prefer_lines={winner: (file, line) for winner, line in first.items()},
            externals=dict(externals),
            toolchain=toolchain,
            toolchain_lines={k: (file, sm.line_of(k)) for k in toolchain},
            files=list(files),
            link=root / siteroot.PROFILES / name,
            stack=name,
        )
        profile.core = yamlfile.get_bool(sm, "core", False)
        stacks.append(Stack(name, profile, profile.core))
        stack_lines[name] = sm

    perms = yamlfile.get_mapping(m, "permissions")
    yamlfile.check_keys(perms, PERMISSION_KEYS, "permissions")
    if isinstance(perms.get("mode"), int) and not isinstance(perms.get("mode"), bool):
        message = f'write the mode in quotes, "0755" (YAML reads it as the number {perms["mode"]})'
        yamlfile.fail(perms, "mode", message)
    mode_text = yamlfile.get_str(perms, "mode", "0755")
    if not re.fullmatch(r"(0o?)?[0-7]{3}", mode_text):  # int() took "0755\n" and "+755"
        problem = "three octal digits for owner, group and others, like 0755 or 0750"
        yamlfile.fail(perms, "mode", f"mode {mode_text!r} must be {problem}")
    mode = int(mode_text[-3:], 8)
    if mode & 0o002 or mode & ~0o777:
        yamlfile.fail(perms, "mode", "the site store must never be world-writable")
    module_cfg = _modules(yamlfile.get_mapping(m, "modules"), base, root, modules)
    given_root, given_modules = root_given, modules
    for what, path, key, option in (
        ("root", root, "root", given_root),
        ("module path", module_cfg.path, "modules", given_modules),
    ):
        problem = site_path_problem(str(path))
        if problem and option is not None:  # from the command line: no line of site.yaml
            raise HitError(f"--{key} {path} {problem}")
        if problem:
            line = m.line_of(key) if key in m else None
            raise ConfigError(file, line, f"the site's {what} {path} {problem}")
    listed = {name for stack in stacks for name in stack.profile.packages}
    for i, name in enumerate(module_cfg.compile.off_for):  # each once (item_lines)
        if name not in listed:
            compile_m = yamlfile.get_mapping(yamlfile.get_mapping(m, "modules"), "compile")
            known = ", ".join(sorted(listed))
            message = f"off_for: {name} is in no stack (stacks list {known})"
            yamlfile.fail_item(compile_m, "off_for", i, message)
    if on_site:  # before anything is built
        modules_m = yamlfile.get_mapping(m, "modules")
        for i, name in enumerate(module_cfg.externals):
            if name not in externals:
                known = ", ".join(sorted(externals)) or "none declared"
                line = yamlfile.item_line(modules_m, "externals", i)
                message = f"modules: externals: no external {name!r} (externals: {known})"
                raise ConfigError(file, line, message)
        for stack in stacks:
            _check_stack_toolchain(stack, stack_lines[stack.name], externals, module_cfg)
    return Site(
        file=file,
        root=root,
        stacks=tuple(stacks),
        externals=externals,
        modules=module_cfg,
        group=_group(perms, on_site),
        mode=mode,
        slurm=load_slurm_config(yamlfile.get_mapping(m, "slurm"), base),
        mirrors=_mirrors(m, base),
    )


def _group(perms: yamlfile.Mapping, on_site: bool) -> str | None:
    """`permissions: group:`, a group of this machine (chgrp needs one) when `on_site`;
    ConfigError at its line otherwise (it failed when the store was made, with no place)."""
    import grp

    group = yamlfile.get_str(perms, "group")
    if group is not None and on_site:
        try:
            grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
        except KeyError:
            yamlfile.fail(perms, "group", f"group {group!r} is no group of this machine")
    return group


def _mirrors(m: yamlfile.Mapping, base: Path) -> tuple[str, ...]:
    """`mirrors:` of site.yaml: URLs as given, folders relative to site.yaml made absolute."""
    from ..urls import is_url

    given = yamlfile.mirror_list(m)
    return tuple(u if is_url(u) else os.path.abspath(base / u) for u in given)
