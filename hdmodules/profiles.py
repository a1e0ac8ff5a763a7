"""Profile specs (a user's YAML: `extends`, package dirs, parameters, packages) and the
assembly of a profile artifact: a symlink farm over the artifacts it lists."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from . import yamlfile
from .errors import HitError
from .yamlfile import Scalar

PROFILE_KEYS = {"extends", "package_dirs", "parameters", "packages", "prefer"}
PACKAGE_KEYS = {"parameters"}


@dataclass
class PackageRequest:
    name: str
    parameters: dict[str, Scalar] = field(default_factory=dict)
    file: Path | None = None  # where it was asked for, for error messages
    line: int = 0


@dataclass
class ProfileSpec:
    file: Path
    package_dirs: list[Path] = field(default_factory=list)
    parameters: dict[str, Scalar] = field(default_factory=dict)
    packages: dict[str, PackageRequest] = field(default_factory=dict)
    prefer: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every YAML read, this one last

    @property
    def link_name(self) -> str:
        """`default.yaml` -> `default`: the profile link made next to the YAML file."""
        return self.file.name.removesuffix(".yaml").removesuffix(".yml")


def _packages(m: yamlfile.Mapping) -> list[PackageRequest]:
    value = m.get("packages")
    if value is None:
        return []
    if isinstance(value, list):  # a plain list of names is accepted too
        if not all(isinstance(v, str) for v in value):
            yamlfile.fail(m, "packages", "'packages' must list package names")
        return [PackageRequest(v, file=m.file, line=m.line_of("packages")) for v in value]
    packages = yamlfile.get_mapping(m, "packages")
    out = []
    for name, over in packages.items():
        if not isinstance(name, str):
            yamlfile.fail(packages, name, f"package name {name!r} must be a string")
        if over is None:
            over = yamlfile.Mapping()
            over.file, over.line, over.key_lines = m.file, packages.line_of(name), {}
        if not isinstance(over, yamlfile.Mapping):
            yamlfile.fail(
                packages, name, f"package {name!r}: give nothing, or a mapping of overrides"
            )
        yamlfile.check_keys(over, PACKAGE_KEYS, f"package {name!r}")
        req = PackageRequest(name, yamlfile.check_parameters(over, "parameters"))
        req.file, req.line = m.file, packages.line_of(name)
        out.append(req)
    return out


def load_profile(file: Path, _seen: tuple[Path, ...] = ()) -> ProfileSpec:
    """Load a profile and everything it `extends`: later bases and this file win."""
    file = Path(os.path.abspath(file))
    if file in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, file))
        raise HitError(f"profiles extend each other in a cycle: {chain}")
    m = yamlfile.load_mapping(file, "profile")
    yamlfile.check_keys(m, PROFILE_KEYS, "profile")
    spec = ProfileSpec(file=file)
    for base in yamlfile.get_str_list(m, "extends"):
        base_file = Path(os.path.abspath(file.parent / base))
        if not base_file.exists():
            yamlfile.fail(m, "extends", f"extends {base}, but {base_file} does not exist")
        _merge(spec, load_profile(base_file, (*_seen, file)))
    own_dirs = []
    for d in yamlfile.get_str_list(m, "package_dirs"):
        path = Path(os.path.abspath(file.parent / d))
        if not path.is_dir():
            yamlfile.fail(m, "package_dirs", f"package dir {d} ({path}) is not a folder")
        own_dirs.append(path)
    spec.package_dirs = own_dirs + [d for d in spec.package_dirs if d not in own_dirs]
    spec.parameters.update(yamlfile.check_parameters(m, "parameters"))
    for req in _packages(m):
        _add_package(spec, req)
    own = yamlfile.get_str_list(m, "prefer")
    spec.prefer = own + [p for p in spec.prefer if p not in own]
    spec.files.append(file)
    return spec


def _add_package(spec: ProfileSpec, req: PackageRequest) -> None:
    have = spec.packages.get(req.name)
    if have is None:
        spec.packages[req.name] = req
    else:
        have.parameters.update(req.parameters)
        have.file, have.line = req.file, req.line


def _merge(spec: ProfileSpec, base: ProfileSpec) -> None:
    spec.package_dirs += [d for d in base.package_dirs if d not in spec.package_dirs]
    spec.parameters.update(base.parameters)
    for req in base.packages.values():
        _add_package(spec, PackageRequest(req.name, dict(req.parameters), req.file, req.line))
    spec.prefer += [p for p in base.prefer if p not in spec.prefer]
    spec.files += [f for f in base.files if f not in spec.files]


# --- assembling a profile: a symlink farm ----------------------------------------------------


def plan_farm(artifacts: dict[str, Path], prefer: list[str]) -> dict[str, tuple[str, Path]]:
    """Map each relative file path of the profile to (package, target), deciding conflicts.

    Folders are merged; when two packages ship the same file, the one earlier in `prefer` wins,
    and with neither preferred the profile cannot be assembled.
    """
    rank = {name: i for i, name in enumerate(prefer)}
    files: dict[str, tuple[str, Path]] = {}
    dirs: dict[str, str] = {}
    for pkg, prefix in artifacts.items():
        for dirpath, dirnames, filenames in os.walk(prefix):
            rel_dir = os.path.relpath(dirpath, prefix)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != ".hit"]
            entries = list(filenames)
            for d in list(dirnames):  # a symlink to a folder is linked, not walked
                if os.path.islink(os.path.join(dirpath, d)):
                    dirnames.remove(d)
                    entries.append(d)
            for d in dirnames:
                rel = os.path.normpath(os.path.join(rel_dir, d))
                if rel in files:
                    _conflict(rel, files[rel][0], pkg, {}, "a folder in one, a file in the other")
                dirs.setdefault(rel, pkg)
            for name in entries:
                rel = os.path.normpath(os.path.join(rel_dir, name))
                target = Path(dirpath, name)
                if rel in dirs:
                    _conflict(rel, dirs[rel], pkg, {}, "a folder in one, a file in the other")
                if rel in files:
                    other = files[rel][0]
                    winner = _conflict(rel, other, pkg, rank, "both ship it")
                    if winner == other:
                        continue
                files[rel] = (pkg, target)
    return files


def _conflict(rel: str, a: str, b: str, rank: dict[str, int], why: str) -> str:
    if a in rank or b in rank:
        return min((a, b), key=lambda p: rank.get(p, len(rank)))
    raise HitError(
        f"packages {a} and {b} conflict on {rel} ({why}); "
        f"list the one that should win under `prefer:` in the profile"
    )


def write_farm(prefix: Path, files: dict[str, tuple[str, Path]]) -> None:
    for rel, (_pkg, target) in sorted(files.items()):
        link = prefix / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
