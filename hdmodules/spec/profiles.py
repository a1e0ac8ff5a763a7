"""Profile specs: a user's YAML (`extends`, package dirs, parameters, packages, prefer,
externals, toolchain), loaded with everything it extends. farm.py assembles the profile."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import HitError
from ..hashing import canonical_json
from ..names import profile_link
from ..urls import git_location
from . import resolvecache, yamlfile
from .externals import External, load_externals
from .modulenaming import SiteNaming, merged, site_naming
from .siteroot import missing_stack
from .yamlfile import Scalar, check_version

PROFILE_KEYS = frozenset(
    ["extends", "package_dirs", "parameters", "packages", "prefer", "externals", "toolchain"]
    + ["core", "modules"]
)
PACKAGE_KEYS = {"parameters", "version", "git", "branch", "commit"}


@dataclass
class PackageRequest:
    """A package as a profile asks for it: parameter overrides, a version (one its recipe
    offers), a git checkout to build it from, and where it was asked for."""

    name: str
    parameters: dict[str, Scalar] = field(default_factory=dict)
    file: Path | None = None  # where it was asked for, for error messages
    line: int = 0
    git: str | None = None  # build from this repository (a checkout or URL) instead
    branch: str | None = None
    commit: str | None = None
    version: str | None = None  # None: the recipe's default
    version_line: int = 0
    parameter_lines: dict[str, int] = field(default_factory=dict)  # each override's line


@dataclass
class ProfileSpec:
    """A profile YAML with everything it extends merged: package dirs, parameters, packages,
    externals, toolchain, and where each came from."""

    file: Path
    package_dirs: list[Path] = field(default_factory=list)
    parameters: dict[str, Scalar] = field(default_factory=dict)
    packages: dict[str, PackageRequest] = field(default_factory=dict)
    prefer: list[str] = field(default_factory=list)
    prefer_lines: dict[str, tuple[Path, int]] = field(default_factory=dict)  # name -> where
    externals: dict[str, External] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)  # kind -> external name
    toolchain_lines: dict[str, tuple[Path, int]] = field(default_factory=dict)
    parameter_lines: dict[str, tuple[Path, int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every YAML read, this one last
    link: Path | None = None  # where its link goes; None: next to the YAML file
    stack: str | None = None  # the site stack it is made from (site.yaml), for messages
    text: str = ""  # the YAML text of `file` as loaded (its layout: profiledelta.py)
    core: bool = False  # its modules go where a `core: true` site stack's go (site.Stack)
    site_naming: SiteNaming | None = None  # how the site it builds on names modules

    @property
    def link_path(self) -> Path:
        return self.link or profile_link(self.file)


def package_dirs(m: yamlfile.Mapping, base: Path) -> list[Path]:
    """The `package_dirs:` of a profile or site.yaml `m`, relative to `base` (its folder),
    as absolute paths. ConfigError at its item's line for one that is not a folder (named
    by repr: a name with a line break stays one line of message)."""
    out, real = [], []
    for i, d in enumerate(yamlfile.get_str_list(m, "package_dirs")):
        path = Path(os.path.abspath(base / d))
        if not os.path.isdir(path):  # False, not OSError, for a name too long
            problem = f"package dir {d!r} ({str(path)!r}) is not a folder"
            yamlfile.fail_item(m, "package_dirs", i, problem)
        where = os.path.realpath(path)
        if where in real:  # in any spelling (`pkgs`, `./pkgs/`) or by a link
            yamlfile.fail_item(m, "package_dirs", i, f"package dir {d!r} is listed twice ({where})")
        out.append(path)
        real.append(where)
    return out


def package_requests(m: yamlfile.Mapping) -> list[PackageRequest]:
    """The `packages:` of a profile or a site stack. Each name is looked up as
    `<package_dir>/<name>.yaml`, so it follows names.py's rule (HitError with file:line)."""
    value = m.get("packages")
    if value is None:
        return []
    if isinstance(value, list):  # a plain list of names is accepted too
        for i, v in enumerate(value):
            if not isinstance(v, str):
                problem = f"'packages' must list package names, not {yamlfile.shown(v)}"
                yamlfile.fail_item(m, "packages", i, problem)
        lines = yamlfile.item_lines(m, "packages", twice="package")
        for v, line in lines.items():
            yamlfile.check_package_name(m, "packages", v, "package name", line)
        return [PackageRequest(v, file=m.file, line=line) for v, line in lines.items()]
    if not isinstance(value, yamlfile.Mapping):
        yamlfile.fail(m, "packages", "'packages' must be a mapping or a list of package names")
    packages = yamlfile.get_mapping(m, "packages")
    out = []
    for name, over in packages.items():
        yamlfile.check_package_name(packages, name, name, "package name")
        if over is None:  # no overrides (most of a long profile): nothing else to check
            line = packages.line_of(name)
            out.append(PackageRequest(name, file=m.file, line=line, version_line=line))
            continue
        if not isinstance(over, yamlfile.Mapping):
            yamlfile.fail(
                packages, name, f"package {name!r}: give nothing, or a mapping of overrides"
            )
        yamlfile.check_keys(over, PACKAGE_KEYS, f"package {name!r}")
        req = PackageRequest(name, yamlfile.check_parameters(over, "parameters"))
        req.file, req.line = m.file, packages.line_of(name)
        over_params = yamlfile.get_mapping(over, "parameters")
        req.parameter_lines = {str(k): over_params.line_of(k) for k in over_params}
        req.version = _version(over, name)
        req.version_line = over.line_of("version")
        git = yamlfile.get_str(over, "git")
        if git is None and (over.get("branch") or over.get("commit")):
            yamlfile.fail(over, "branch" if over.get("branch") else "commit", "give `git:` too")
        if over.get("branch") is not None and over.get("commit") is not None:
            yamlfile.fail(over, "commit", "give `branch:` or `commit:`, not both")
        if git is not None:
            req.git = git_location(yamlfile.check_git(over, "git", git), m.file.parent)
            req.branch = _git_ref(over, "branch")
            req.commit = _git_ref(over, "commit")
        out.append(req)
    return out


def _version(m: yamlfile.Mapping, package: str) -> str | None:
    """A package's `version:` (quoted: YAML reads 1.10 as 1.1), checked by names.py's rule."""
    value = m.get("version")
    if isinstance(value, float):
        yamlfile.fail(m, "version", f"write the version in quotes (YAML reads {value} as a number)")
    version = yamlfile.get_str(m, "version")
    return None if version is None else check_version(m, "version", version, f"{package}: version")


def _git_ref(m: yamlfile.Mapping, key: str) -> str | None:
    """A branch or commit (a hex id, whole or its start, or a tag), passed to git as an
    argument: never an option, never two words, never a revision expression (`main..main`,
    `HEAD~0`, `@{-1}`): git-check-ref-format(1)'s rules for a ref's name, which any branch
    or tag git makes follows (`user@fix`, `issue#12`, `fix-ü` pass). An unquoted number is
    refused (YAML reads `1.10` as 1.1)."""
    if isinstance(m.get(key), float | int) and not isinstance(m.get(key), bool):
        yamlfile.fail(m, key, f"write the {key} in quotes (YAML reads it as the number {m[key]})")
    ref = yamlfile.get_str(m, key)
    if ref is None:
        return None
    problem = _ref_problem(ref)
    if problem:
        shape = "a commit id or a tag" if key == "commit" else "a branch name"
        yamlfile.fail(m, key, f"{key} {ref!r} is not {shape} ({problem})")
    return ref


def _ref_problem(ref: str) -> str | None:
    """Why git would not take `ref` as a ref's name (git-check-ref-format(1)), or None."""
    if not ref or ref.startswith(("-", "/")) or ref.endswith(("/", ".", ".lock")):
        return "an empty name, or one starting with - or / or ending in /, . or .lock"
    if any(c.isspace() or not c.isprintable() or c in "~^:?*[\\" for c in ref):
        return "whitespace, a control character or one of ~ ^ : ? * [ \\"
    if ".." in ref or "@{" in ref or "//" in ref or ref == "@":
        return ".., @{ or //"
    if any(part.startswith(".") for part in ref.split("/")):
        return "a part starting with ."
    return None


def load_profile(file: Path, _seen: tuple[Path, ...] = ()) -> ProfileSpec:
    """Load a profile and everything it `extends`: later bases and this file win."""
    file = Path(os.path.abspath(file))
    if file in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, file))
        raise HitError(f"profiles extend each other in a cycle: {chain}")
    resolvecache.note(str(file))  # for the no-op memo: its stamp before it is read
    text = yamlfile.read(file)
    m = yamlfile.load_mapping(file, "profile", text)
    yamlfile.check_keys(m, PROFILE_KEYS, "profile")
    spec = ProfileSpec(file=file, text=text)
    extended: list[str] = []
    for i, base in enumerate(yamlfile.get_str_list(m, "extends")):
        base_file = Path(os.path.abspath(file.parent / base))
        if os.path.realpath(base_file) in extended:  # twice, in any spelling or by a link
            yamlfile.fail_item(m, "extends", i, f"extends: profile {base!r} is listed twice")
        extended.append(os.path.realpath(base_file))
        if base_file in (*_seen, file):  # said at the extends: that closes the cycle
            chain = " -> ".join(str(p) for p in (*_seen, file, base_file))
            yamlfile.fail_item(m, "extends", i, f"profiles extend each other in a cycle: {chain}")
        if not base_file.exists():
            problem = missing_stack(base_file) or f"extends {base}, but {base_file} does not exist"
            yamlfile.fail_item(m, "extends", i, problem)
        if not base_file.is_file():
            problem = f"extends {base}, but {base_file} is not a YAML file"
            yamlfile.fail_item(m, "extends", i, problem)
        _merge(spec, load_profile(base_file, (*_seen, file)))
    own_dirs = package_dirs(m, file.parent)
    spec.package_dirs = own_dirs + [d for d in spec.package_dirs if d not in own_dirs]
    spec.parameters.update(yamlfile.check_parameters(m, "parameters"))
    spec.parameter_lines.update(parameter_lines(m))
    for req in package_requests(m):
        _add_package(spec, req)
    own = yamlfile.item_lines(m, "prefer")  # a name twice counts once, where it first stands
    spec.prefer = list(own) + [p for p in spec.prefer if p not in own]
    spec.prefer_lines.update((p, (file, line)) for p, line in own.items())
    spec.externals.update(load_externals(yamlfile.get_mapping(m, "externals")))
    toolchain = yamlfile.get_mapping(m, "toolchain")
    for kind, name in toolchain.items():
        yamlfile.check_name(toolchain, kind, kind, "toolchain kind")  # not null, not a bool
        if not isinstance(name, str):
            yamlfile.fail(toolchain, kind, f"toolchain {kind!r} must name an external")
        spec.toolchain[kind] = name
        spec.toolchain_lines[kind] = (file, toolchain.line_of(kind))
    spec.core = yamlfile.get_bool(m, "core", spec.core)  # else as a profile it extends
    spec.site_naming = site_naming(m, spec.site_naming)
    spec.files.append(file)
    return spec


def parameter_lines(m: yamlfile.Mapping) -> dict[str, tuple[Path, int]]:
    """Where each profile-wide parameter was set (for `file:line` in later errors)."""
    params = yamlfile.get_mapping(m, "parameters")
    return {str(k): (m.file, params.line_of(k)) for k in params}


def _add_package(spec: ProfileSpec, req: PackageRequest) -> None:
    have = spec.packages.get(req.name)
    if have is None:
        spec.packages[req.name] = req
    else:
        have.parameters.update(req.parameters)
        have.file, have.line = req.file, req.line
        if req.version is not None:
            have.version, have.version_line = req.version, req.version_line
        if req.git is not None:
            have.git, have.branch, have.commit = req.git, req.branch, req.commit


def _merge(spec: ProfileSpec, base: ProfileSpec) -> None:
    spec.package_dirs += [d for d in base.package_dirs if d not in spec.package_dirs]
    spec.parameters.update(base.parameters)
    for req in base.packages.values():
        _add_package(spec, replace(req, parameters=dict(req.parameters)))
    spec.prefer += [p for p in base.prefer if p not in spec.prefer]
    spec.prefer_lines = {**base.prefer_lines, **spec.prefer_lines}
    spec.externals.update(base.externals)
    spec.toolchain.update(base.toolchain)
    spec.toolchain_lines.update(base.toolchain_lines)
    spec.parameter_lines.update(base.parameter_lines)
    spec.files += [f for f in base.files if f not in spec.files]
    spec.core = spec.core or base.core
    spec.site_naming = merged(spec.site_naming, base.site_naming)  # a later base wins


def switch_key(spec: ProfileSpec) -> str | None:
    """What `spec` resolves from besides which plain packages it lists (a name with nothing
    under it, which resolves as it does when only a dependency), as one string: its files,
    package dirs, externals, toolchain and each package asked for with a version or
    parameters. Two profiles with the same key whose plain packages all appear in one
    resolution resolve to that resolution's artifacts (publish/quickswitch.py). None for a
    profile whose list cannot change without resolving in full: one with parameters of its
    own (each must stay used: resolve's check), a package from git (its ref is resolved each
    time), a link set elsewhere or a site stack."""
    if spec.parameters or spec.link is not None or spec.stack is not None:
        return None
    asked = {}
    for name, req in spec.packages.items():
        if req.git is not None:
            return None
        if req.parameters or req.version is not None:
            asked[name] = [req.parameters, req.version]
    externals = {
        name: [e.kind, e.version, e.commands, e.prefix, e.module, list(e.libs), e.pin, str(e.file)]
        for name, e in spec.externals.items()
    }
    doc = {
        "files": [str(f) for f in spec.files],
        "package_dirs": [str(d) for d in spec.package_dirs],
        "externals": externals,
        "toolchain": spec.toolchain,
        "asked": asked,
    }
    return canonical_json(doc)
