"""Module naming: the shape `modules: naming:` gives module names (`{name}/{version}`, or
one shape for all and one for what is built with an MPI), and `root_variable:`, the
variable each module sets to its prefix. A site's (site.py) and, in a stack's published
copy, the same settings for the profiles that extend it (profiles.py: a user's modules
are named, and name the site's modules they load, by the site's rule)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace

from ..names import name_problem, version_problem
from . import yamlfile
from .yamlfile import check_env_var

NAMING_FIELDS = tuple(
    ["name", "version", "hash", "compiler", "compiler_version", "mpi", "mpi_version", "stack"]
)
NAMING_TEXT = re.compile(r"[A-Za-z0-9._+~/-]*")


def namings(m: yamlfile.Mapping) -> tuple[str, str | None]:
    """`naming:`: one shape for every module, or `{all: ..., mpi: ...}`, a shape for all and
    one for the packages built with an MPI (Spack's module projections keyed `all` and
    `^mpi`), each checked by `naming_shape`. Returns (all, mpi or None)."""
    given = m.get("naming")
    if not isinstance(given, yamlfile.Mapping):
        return naming_shape(m, "naming"), None
    yamlfile.check_keys(given, {"all", "mpi"}, "modules naming", required=("all",))
    if "mpi" in given and given["mpi"] is None:
        yamlfile.fail(given, "mpi", "naming: mpi: is empty: give a shape, or leave mpi: out")
    return naming_shape(given, "all"), (naming_shape(given, "mpi") if "mpi" in given else None)


def naming_shape(m: yamlfile.Mapping, key: str) -> str:
    """A `naming:` shape becomes module names and folders of the tree: its fields are names
    and versions (checked where they are loaded), its own text may add only what a version
    may hold, and `/`. (modulefiles.plan checks each resulting name too.)"""
    naming = yamlfile.get_str(m, key, "{name}/{version}")
    label = "'naming'" if key == "naming" else f"'naming: {key}'"
    if "{name}" not in naming or "/" not in naming:
        yamlfile.fail(m, key, f"{label} needs {{name}} and a / (e.g. {{name}}/{{version}})")
    try:
        parts = list(string.Formatter().parse(naming))
    except ValueError as e:
        yamlfile.fail(m, key, f"{label} {naming!r}: {e}")
    for text, field_name, spec, conversion in parts:
        if field_name is not None and field_name not in NAMING_FIELDS:
            known = ", ".join(NAMING_FIELDS)
            problem = f"unknown field {{{field_name}}} (fields: {known})"
            yamlfile.fail(m, key, f"{label} {naming!r}: {problem}")
        if spec or conversion:
            problem = "fields take no !conversion nor :format"
            yamlfile.fail(m, key, f"{label} {naming!r}: {problem}")
        if not NAMING_TEXT.fullmatch(text):
            problem = "the text around the fields may hold only letters, digits, ._+~- and /"
            yamlfile.fail(m, key, f"{label} {naming!r}: {problem}")
    part = bad_part(naming.format(**dict.fromkeys(NAMING_FIELDS, "x1")))
    if part is not None:  # `..`, `//`, a leading `/` or `.`: the shape, whatever the fields hold
        shape = "an empty part" if not part else f"a part {part!r} (fields as x1)"
        yamlfile.fail(m, key, f"{label} {naming!r} makes {shape}: {MODULE_NAME_RULE}")
    return naming


MODULE_NAME_RULE = "each part between slashes is a name, the last a version, as a recipe's"


def bad_part(full: str) -> str | None:
    """The first part of the module name `full` (`name/version`, the name may hold `/`)
    that breaks MODULE_NAME_RULE (names.py's names and versions), the whole of a name
    without a `/` (no version: a modulefile would load `/name`); None when none does."""
    if "/" not in full:
        return full
    *folders, last = full.split("/")
    for part, problem in [(p, name_problem(p)) for p in folders] + [(last, version_problem(last))]:
        if problem:
            return part
    return None


def root_variable_of(m: yamlfile.Mapping) -> str:
    """`root_variable:` of `m` (default `{NAME}_ROOT`): it must hold `{NAME}` (one variable,
    set by every module in turn otherwise), and with `{NAME}` as a word, be a variable name."""
    root_variable = yamlfile.get_str(m, "root_variable", "{NAME}_ROOT")
    if "{NAME}" not in root_variable:
        yamlfile.fail(m, "root_variable", "'root_variable' must hold {NAME} (e.g. {NAME}_ROOT)")
    # `{NAME}` becomes the package name in capitals; the rest must keep it a variable name
    check_env_var(m, "root_variable", root_variable.replace("{NAME}", "NAME"), "root_variable")
    return root_variable


# a folder of a module tree ("Core", "Compiler/gcc/12.2.0", "" in a flat tree) and an
# artifact id -> the name of that artifact's module there (`name/version`)
GivenNames = dict[tuple[str, str], str]


@dataclass(frozen=True)
class SiteNaming:
    """How a site names its modules, as a stack's published copy says it (`modules:` in a
    profile): the naming, the one for MPI builds (None: the naming), the root variable,
    the stack's name (the `{stack}` field), and the names the site gave the modules of the
    stack's artifacts (`names`), which a user's modules load them by."""

    naming: str
    naming_mpi: str | None
    root_variable: str
    stack: str
    names: GivenNames = field(default_factory=dict)


SITE_NAMING_KEYS = {"naming", "root_variable", "stack", "names"}


def merged(earlier: SiteNaming | None, later: SiteNaming | None) -> SiteNaming | None:
    """The naming of a profile extending two stacks: the later one's rule (as for every
    setting, a later base wins) with the names the site gave both stacks' artifacts."""
    if earlier is None or later is None:
        return later or earlier
    return replace(later, names={**earlier.names, **later.names})


def given_names(m: yamlfile.Mapping) -> GivenNames:
    """`names:` of `modules:` in a stack's published copy (hdmod writes it): for each folder
    of the site's module tree, each of the stack's artifacts there -> the name of its module.
    With `{stack}` in the naming, an artifact two stacks share has one module, named after
    the first, and a name the site settled (a hash suffix) no rule gives: a user's modules
    load the site's by these names, as Lmod looks them up. ConfigError at the line of a
    name that is not a module name (they end up in the user's modulefiles)."""
    given = yamlfile.get_mapping(m, "names")
    out: GivenNames = {}
    for folder, ids in given.items():
        if not isinstance(folder, str) or not isinstance(ids, yamlfile.Mapping):
            yamlfile.fail(given, folder, "modules names: each folder maps artifact ids to names")
        for artifact_id, name in ids.items():
            if not isinstance(artifact_id, str) or not isinstance(name, str):
                yamlfile.fail(ids, artifact_id, "modules names: an artifact id maps to a name")
            if bad_part(name) is not None:
                rule = f"a name and a version (name/version): {MODULE_NAME_RULE}"
                yamlfile.fail(ids, artifact_id, f"module name {name!r}: {rule}")
            out[(folder, artifact_id)] = name
    return out


def site_naming(m: yamlfile.Mapping, extended: SiteNaming | None) -> SiteNaming | None:
    """A profile's `modules:` (`extended`: what the profiles it extends say; None: nothing):
    `naming:` (as site.yaml's), `root_variable:`, `stack:` (a name), `names:`
    (`given_names`, added to the extended's), each other key not given
    taken from `extended` (a user's `modules: {stack: x}` kept the site's naming otherwise
    replaced by the default, and the site's modules were named wrongly). ConfigError at the
    line of what is wrong."""
    given = m.get("modules")
    if given is None:
        return extended
    if not isinstance(given, yamlfile.Mapping):
        yamlfile.fail(m, "modules", "'modules' must be a mapping (naming:, root_variable:, stack:)")
    required = () if extended else ("stack",)
    yamlfile.check_keys(given, SITE_NAMING_KEYS, "modules", required=required)
    if extended is not None and "naming" not in given:
        naming, naming_mpi = extended.naming, extended.naming_mpi
    else:
        naming, naming_mpi = namings(given)
    if extended is not None and "root_variable" not in given:
        root_variable = extended.root_variable
    else:
        root_variable = root_variable_of(given)
    if extended is not None and "stack" not in given:
        stack = extended.stack
    else:
        stack = yamlfile.check_name(given, "stack", yamlfile.get_str(given, "stack"), "stack")
    names = {**extended.names, **given_names(given)} if extended else given_names(given)
    return SiteNaming(naming, naming_mpi, root_variable, stack, names)
