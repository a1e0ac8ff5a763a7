"""Naming modules: the short name of an external (`gcc-12` -> `gcc`), the name and version
`modules: naming:` gives a package, the hash suffix two artifacts under one name get, the
refusal of names nesting inside others, and the names a site gave its artifacts' modules (as
a stack's published copy lists them for its users). modulefiles.plan calls them."""

from __future__ import annotations

import re
from typing import Protocol

from ..errors import ConfigError, HitError
from ..names import module_word, name_problem, version_problem
from ..spec.externals import External
from ..spec.resolve import Node
from ..spec.site import Site, Stack


class Entry(Protocol):  # modulefiles.Entry, without importing it (modulefiles imports this)
    name: str
    version: str
    level: tuple[str, ...]
    description: str
    artifact_id: str
    alias: str

    @property
    def full(self) -> str: ...


def short_name(ext: External) -> str:
    """`gcc-12` -> `gcc`, `openmpi-4.1.4` -> `openmpi`: what users type before the version."""
    return re.sub(r"-[0-9][0-9.]*$", "", ext.name) or ext.name


def module_name(name: str, version: str) -> str:
    """`name/version` as the module trees spell it (names.module_word)."""
    return f"{module_word(name)}/{module_word(version)}"


def project(
    site: Site, node: Node, comp: External | None, mpi: External | None, stack: Stack
) -> tuple[str, str]:
    """The module `modules: naming:` gives the node, as (name, version): the version is the
    last part, the name everything before it (`{name}/{compiler}{compiler_version}/{version}`
    gives `hello/gcc12.2.0` and `1.0`, as Lmod and Environment Modules read a module path).
    Each folder of it must be a name and the last part a version (names.py): ConfigError
    at `modules: naming:` if not (a field empty for the node, e.g. `{compiler}` in Core).
    Each part is then spelt as the module trees spell it (names.module_word: `+` and `~`
    become `_`, since Environment Modules 5 reads them as variants)."""
    cfg = site.modules
    naming = cfg.naming_mpi if mpi is not None and cfg.naming_mpi is not None else cfg.naming
    fields = {
        "name": node.name,
        "version": node.recipe.version,
        "hash": node.ref.hash[:7],
        "compiler": short_name(comp) if comp else "",
        "compiler_version": comp.version if comp else "",
        "mpi": short_name(mpi) if mpi else "",
        "mpi_version": mpi.version if mpi else "",
        "stack": stack.name,
    }
    try:
        full = naming.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise HitError(f"modules naming {naming!r}: unknown field {e}") from None
    *folders, last = full.split("/")
    checks = [(p, name_problem(p)) for p in folders] + [(last, version_problem(last))]
    shape = naming.format(**dict.fromkeys(fields, "x1")).split("/")
    for (part, problem), model in zip(checks, shape, strict=True):
        if not problem and _dangling(part) and not _dangling(model):  # `app/1.0-`
            problem = f"{part!r} ends, starts or doubles a separator: {_empty(fields, naming)}"
        elif problem and not part:  # site.py checked the shape: a field is empty for it
            problem = f"an empty part: {_empty(fields, naming)}"
        elif problem:
            problem = f"{part!r} {problem}"
        if problem:
            message = f"modules naming {naming!r} makes {full!r} for {node.name}: {problem}"
            raise ConfigError(site.file, site.modules.naming_line or None, message)
    full = "/".join(module_word(part) for part in full.split("/"))
    name, _, version = full.rpartition("/")
    return name, version


def _dangling(part: str) -> bool:
    """Whether a part of a module name starts or ends with a separator (`-`, `_`, `.`) or
    holds two in a row: what a naming's text next to a field empty for a package leaves."""
    return bool(re.search(r"^[-_.]|[-_.]$|[-_.]{2}", part))


def _empty(fields: dict[str, str], naming: str) -> str:
    """What to say of the fields `naming` uses that are empty for a package, and the way
    out: a naming of its own for what is built with an MPI (Spack's `^mpi` projection)."""
    empty = [f"{{{k}}}" for k, v in fields.items() if not v and f"{{{k}}}" in naming]
    said = f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty for it"
    if any(k.startswith("{mpi") for k in empty):
        return (
            f"{said} (built without an MPI); give packages built with one a naming of "
            'their own: naming: {all: "{name}/{version}", mpi: "...{mpi}..."}'
        )
    return f"{said} (a core stack's packages have no compiler)"


def settle_names(site: Site, entries: list[Entry]) -> None:
    """Two different artifacts under the same name in one folder: both get a short hash
    suffix and remember the plain version as their `alias`; the folder's rc file then names
    one default and points the alias at it (_folder_rcs). Two externals (which have no
    artifact hash) under one name and version are an error naming both: neither may
    silently replace the other's module."""
    groups: dict[tuple, list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.level, e.name, e.version), []).append(e)
    for group in groups.values():
        if len(group) < 2:
            continue
        externals = [e.description.split(";")[0] for e in group if not e.artifact_id]
        if externals:
            raise ConfigError(
                site.file,
                None,
                f"{' and '.join(externals)} would both be the module {group[0].full}; "
                f"rename one external (module names drop a trailing -<version>)",
            )
        plain = group[0].version
        for e in group:
            e.version = f"{plain}-{e.artifact_id.partition('/')[2][:7]}"
            e.alias = plain


def refuse_shared_folders(site: Site, entries: list[Entry]) -> None:
    """A package's module and an external's in one folder (a package `gcc` beside the
    compiler `gcc/12.2.0` in Core): `module load gcc` loads the folder's default, the newest
    version, which may be the package, and the compiler's modules are not opened. Refused,
    naming both, unless `modules: defaults:` names that folder's default (the admin chose).
    Raises ConfigError at `modules: naming:` (the names come from it)."""
    by_folder: dict[tuple, list[Entry]] = {}
    for e in entries:
        by_folder.setdefault((e.level, e.name), []).append(e)
    for (_level, name), group in by_folder.items():
        externals = [e for e in group if not e.artifact_id]
        packages = [e for e in group if e.artifact_id]
        if externals and packages and name not in site.modules.defaults:
            ext = externals[0].description.split(" (")[0]  # `compiler gcc-12 12.2.0`
            raise ConfigError(
                site.file,
                site.modules.naming_line or None,
                f"the package module {packages[0].full} and the module {externals[0].full} "
                f"of {ext} would share the folder {name}: `module load {name}` would load "
                f"the newest of them; rename the package, or give modules: defaults: {name}",
            )


def refuse_nested_names(site: Site, entries: list[Entry]) -> None:
    """No module name may be a folder of another in the same tree folder: `gcc` (the
    compiler, `gcc/12.2.0`) beside `gcc/hello` (a projection `{compiler}/{name}/{version}` in a
    flat tree) makes `module load gcc` ambiguous in Lmod and loads hello in Environment
    Modules, and `gcc/12.2.0/hello` would need a folder where `gcc/12.2.0` is a file.
    Raises ConfigError at `modules: naming:`."""
    by_level: dict[tuple[str, ...], set[str]] = {}
    for e in entries:
        by_level.setdefault(e.level, set()).add(e.name)
    files = {(e.level, e.full) for e in entries}
    for e in entries:
        parts = e.name.split("/")
        for k in range(1, len(parts)):
            inner = "/".join(parts[:k])
            if inner in by_level[e.level] or (e.level, inner) in files:
                where = "/".join((*e.level, inner)) or inner
                raise ConfigError(
                    site.file,
                    site.modules.naming_line or None,
                    f"modules naming {site.modules.naming!r} puts {e.full} inside the module "
                    f"{where}: module names may not nest; put the name first ({{name}}/...)",
                )


def as_given(site: Site, e: Entry) -> None:
    """Name `e` as the site named its artifact's module there, when `site` is a user's on a
    site stack whose copy lists it (ModuleConfig.given_names): the user's modules load the
    site's by the name the site gave (with `{stack}` in its naming, a module two stacks
    share is named after the first), not by the name the user's plan would give."""
    given = site.modules.given_names.get(("/".join(e.level), e.artifact_id))
    if given is not None:
        e.name, _, e.version = given.rpartition("/")
        e.alias = ""


def given_names(entries: list[Entry], ids: set[str]) -> dict[tuple[str, str], str]:
    """The names of the modules of the artifacts `ids` among the site's `entries` (as plan
    settled them), by folder and artifact id: what a stack's published copy lists
    (modulenaming.given_names)."""
    return {("/".join(e.level), e.artifact_id): e.full for e in entries if e.artifact_id in ids}
