"""The rules for every word a YAML file gives that becomes part of a path, a module name or a
shell variable name, checked at load time so that a mistake (or an attack) stops with
`file:line` before anything is built or written.

Why these rules, and not escaping alone: package names and versions become folders of the
store (`bld/<name>/<version>-<hash>`) and of the module trees (`<name>/<version>.lua`), which
`hdmod` writes as root; `..` or `/` there would write outside them. They also become module
names that Lmod and Environment Modules put into `.modulerc` files, which both tools evaluate
as Tcl on a plain `module avail`; every string is escaped there too (templating.tcl_quote,
templating.lua_quote), but a module name that needs escaping would be one no user can type.
Variable names cannot be escaped at all: both tools write `export NAME=...` into the shell
code that `module load` evaluates, so a name is either a shell identifier or refused.

- a name (package, external, stack): `[A-Za-z0-9][A-Za-z0-9_.+-]*`, without `..`
- a version: `[A-Za-z0-9][A-Za-z0-9._+~-]*`, without `..`
- a variable name: `[A-Za-z_][A-Za-z0-9_]*` (a shell identifier)
- a name or a version: at most MAX_WORD (100) characters, so that every file name made of
  them stays within NAME_MAX (255 bytes a path component on Linux filesystems; the rules
  allow ASCII only, a byte a character). The longest such file names: a lock
  `.locks/<name>-<hash32>.lock` (name + 38), a prefix `<version>-<hash12>` (version + 13),
  and the one made of both, a prefix the gc moves to `.trash/<name>-<version>-<hash12>-<pid>`
  (name + version + 22, a pid of up to 7 digits): 222 at most. Without the cap a name of 250
  characters passed the check and failed late, at its lock file ("File name too long").

So none of them can hold `/`, whitespace, a line break or another control character, nor
start with `.` or `-` (a hidden file, a command-line option). Module names and versions are
names and versions with `+` and `~` mapped (module_word: Environment Modules 5 reads them as
variants).

This module holds only the rules (plain functions returning why a word breaks one, or
None); `yamlfile.check_name` and its siblings apply them to YAML values with `file:line`,
and the module renderer applies them once more to what it is about to write.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import HitError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")
ENV_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_WORD = 100  # characters of a name or a version (the module's docstring says why)

NAME_RULE = "letters, digits and _.+- only, starting with a letter or digit, without '..'"
VERSION_RULE = "letters, digits and ._+~- only, starting with a letter or digit, without '..'"
ENV_VAR_RULE = (
    "a shell variable name (letters, digits and _ only, not starting with a digit): "
    "it is exported as NAME=value"
)


def name_problem(value: object) -> str | None:
    """Why `value` is not a valid name (package, external, stack), or None: its characters
    (NAME_RULE), then its length (length_problem)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or ".." in value:
        return f"may hold {NAME_RULE}"
    return length_problem(value)


# Package names the store keeps for its own artifacts: profiles are `profile/<hash>` in
# `bld/profile/`, and a package of that name would sit among them (`hit status`, `hit purge`).
RESERVED_PACKAGES = frozenset({"profile"})


def package_name_problem(value: object) -> str | None:
    """Why `value` is not a valid package name, or None: name_problem, then the names the
    store keeps (RESERVED_PACKAGES)."""
    if value in RESERVED_PACKAGES:
        return "is kept for profiles (bld/profile/ holds them): name the package otherwise"
    return name_problem(value)


def version_problem(value: object) -> str | None:
    """Why `value` is not a valid version, or None: its characters (VERSION_RULE), then its
    length (length_problem)."""
    if not isinstance(value, str) or not VERSION_RE.fullmatch(value) or ".." in value:
        return f"may hold {VERSION_RULE}"
    return length_problem(value)


def length_problem(value: str) -> str | None:
    """Why `value` (a name or a version) is too long to be part of a file name (at most
    MAX_WORD characters), or None."""
    if len(value) > MAX_WORD:
        return (
            f"is {len(value)} characters long (at most {MAX_WORD}: it becomes part of "
            f"file names in the store, which may not exceed 255 bytes)"
        )
    return None


def module_word(word: str) -> str:
    """The word (a part of a module name, or a module version) the module trees use for a
    package's or external's name or version `word`: `~` and every `+` but a run at the end
    become `_` (`17.0.2+8` -> `17.0.2_8`, `1.0~rc1` -> `1.0_rc1`, `g++` stays `g++`).

    Environment Modules 5 reads `+name` and `~name` inside a module specification as boolean
    variants (modulefile(4), "Advanced module version specifiers", on by default in 5.x; a
    run of `+` at the end of a name is its one exception), so `module load hello/17.0.2+8`
    and `prereq hello/17.0.2+8` fail there ("Unable to locate a modulefile"); Lmod loads
    them, but ignores a module file whose name ends in `~` (DirTree.lua). The other
    characters it reads specially (`@` a version, `,` `:` lists and ranges, `=` a variant
    value, spaces) are refused by the name and version rules above, never mapped. The recipe
    keeps its version (build spec, store path); only the module's name changes. Two words
    that map alike in one folder are two names for one module: they get hash suffixes like
    any two artifacts with one module name (modulenames.settle_names)."""
    head = word.rstrip("+")
    return head.replace("+", "_").replace("~", "_") + word[len(head) :]


def module_word_problem(word: str) -> str | None:
    """Why `word` cannot be part of a module name or version as written into a module tree
    (a `+` or `~` that module_word would map: Environment Modules 5 cannot load it), or None."""
    if module_word(word) != word:
        return (
            f"holds + or ~, which Environment Modules 5 reads as a variant; "
            f"use {module_word(word)!r}"
        )
    return None


def env_var_problem(value: object) -> str | None:
    """Why `value` is not a valid environment variable name, or None."""
    if not isinstance(value, str) or not ENV_VAR_RE.fullmatch(value):
        return f"must be {ENV_VAR_RULE}"
    return None


LONG_BRACKET_CLOSE = re.compile(r"\]=*\]")


# what a site's MPI module sets to point the MPI's wrappers at the compiler module's
# wrappers (publish/compiling.py): a build sets them itself (recipes.RESERVED_ENV), and an
# MPI wrapper asked what it is is asked without them (spec/externals.mpi_info)
WRAPPER_VARIABLES = ("OMPI_CC", "OMPI_CXX", "OMPI_FC", "MPICH_CC", "MPICH_CXX", "MPICH_FC")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be help or whatis text of a module, or None. Both formats quote it
    (lua_quote, tcl_quote), but Lmod copies such text into Lua long brackets where we do
    not quote it: its tcl2lua.tcl wraps a Tcl module's whatis and help text in `[===[...]===]`
    without escaping, and its spider cache (serializeTbl.lua) wraps text holding a line
    break in the first long bracket level it does not contain, falling back to `[[...]]`.
    A `]]` or `]=...=]` in the text would end the bracket and run the rest as Lua for every
    user whose Lmod reads the module or the cache. A NUL cuts the text in both tools. Any
    other control character but a line break or a tab (C0, DEL, C1) is refused: the
    modulefile escapes it, but `module help` and `module whatis` print the text back raw,
    so an ESC or BEL reached the user's terminal (retitle it, clear it, hide text)."""
    if LONG_BRACKET_CLOSE.search(value):
        return (
            f"holds {LONG_BRACKET_CLOSE.search(value).group()!r}, which would end a Lua long "
            f"bracket in Lmod's translation of the module or its spider cache; write it "
            f"differently (e.g. with a space between the brackets)"
        )
    if "\0" in value:
        return "holds a NUL character"
    control = next((c for c in value if _control(c) and c not in "\n\t"), None)
    if control is not None:
        return (
            f"holds the control character {control!r}, which `module help` and `module "
            "whatis` print raw to the user's terminal; remove it"
        )
    return None


def _control(c: str) -> bool:
    """Whether `c` is a C0 or C1 control character or DEL (Unicode category Cc)."""
    return c < " " or "\x7f" <= c <= "\x9f"


def env_value_problem(value: str) -> str | None:
    """Why `value` cannot be exported by a module, or None. Lmod 8.6 and Environment Modules
    5.2 both write values into the shell code `module load` evaluates without quoting line
    breaks, so whatever follows one would run as a command (seen with both)."""
    if "\0" in value:
        return "holds a NUL character, which both module tools cut the value at"
    if "\n" in value or "\r" in value:
        return (
            "holds a line break; Lmod and Environment Modules export it unquoted, so the shell "
            "would run the rest as a command; remove the line break"
        )
    return None


def text_path(path: Path) -> Path:
    """`path`, once its absolute form (made from the working folder, `..` kept, as the
    records name it) is known to be UTF-8 text; else HitError. A name holding bytes that
    are not UTF-8 (Python keeps them as surrogates) cannot be written into the UTF-8
    records that name a profile link (its gc root, the no-op memo, the link lock's key):
    `hit build` there failed with a traceback once its profile was assembled, before
    linking it; `hit rm` after removing the link. Called before anything changes."""
    full = str(Path(path).absolute())  # as the records name it (roots.entry_for)
    try:
        full.encode()
    except UnicodeEncodeError:
        raise HitError(
            f"{full}: this path is not UTF-8 text, and hit names a profile's link in UTF-8 "
            "records: rename the folder or file whose name holds the byte"
        ) from None
    return path


def profile_link(profile_file: Path) -> Path:
    """`dir/release.yaml` -> `dir/release`: the link made next to a profile's YAML file.
    Raises HitError for a file named `.yaml` or `.yml` alone, `..yaml` or `...yaml` (no
    name for its link: `.` and `..` are the folder and its parent), or not ending in
    `.yaml` or `.yml` (its link would be the file itself: a symlink to the YAML was
    replaced by the profile's link), or beside its twin (`p.yaml` and `p.yml`: one link),
    or whose path is not UTF-8 text (`text_path`)."""
    text_path(profile_file)
    if not profile_file.name.endswith((".yaml", ".yml")):
        raise HitError(
            f"{profile_file}: a profile's file name ends in .yaml or .yml: its link is named "
            "after it without that (default.yaml links ./default)"
        )
    name = profile_file.name.removesuffix(".yaml").removesuffix(".yml")
    if name in ("", ".", ".."):
        raise HitError(
            f"{profile_file}: a profile's file needs a name before .yaml: its link is named "
            "after it (default.yaml links ./default)"
        )
    twin = ".yml" if profile_file.name.endswith(".yaml") else ".yaml"
    other = profile_file.with_name(name + twin)
    if profile_file.exists() and other.exists():  # each build would turn the link over
        raise HitError(f"{profile_file} and {other.name} would both link ./{name}: rename one")
    return profile_file.with_name(name)


def one_word(text: str) -> bool:
    """Whether `text` holds no whitespace and no control character: a URL, or a command run
    as one argument (a line break or a space there named something else than it said)."""
    return not any(c.isspace() or not c.isprintable() for c in text)


def given_link(given: Path) -> Path:
    """What `hit history` and `hit rollback` act on: the link of the profile file `given`
    (profile_link), or `given` itself when it names the link (`hit rollback default`)."""
    if given.name.endswith((".yaml", ".yml")):
        return profile_link(given)
    return text_path(given)


def site_path_problem(path: str) -> str | None:
    """Why `path` cannot be a site's root or module path, or None. Whitespace: Open MPI's and
    MPICH's compiler wrappers split OMPI_CC/MPICH_CC (which name the compiler module's
    wrappers under the module path) at it, and recipes' unquoted $LDFLAGS too. `$`:
    Environment Modules expands variables in MODULEPATH entries. Tcl's `[ ] { } ; " \\`:
    Lmod reads a Tcl modulefile's `module use DIR` through its tcl2lua.tcl, which evaluates
    the quoted DIR once more (`eval usecmd $args`), so `[cmd]` in a root ran as a command at
    every `module load` and `;` or `"` broke the tree."""
    if any(c.isspace() for c in path):
        return "holds whitespace, which MPI compiler wrappers split OMPI_CC/MPICH_CC at"
    if not path.isprintable():
        return "holds a control character"
    if ":" in path:
        return "holds `:`, which PATH, LD_RUN_PATH and MODULEPATH split their folders at"
    if "$" in path:
        return "holds `$`, which Environment Modules expands in MODULEPATH"
    bad = sorted({c for c in path if c in TCL_SPECIAL})
    if bad:
        shown = " ".join(bad)
        return f"holds {shown}, which Lmod evaluates again in a Tcl module's `module use`"
    return None


TCL_SPECIAL = '[]{};"\\'  # what Tcl evaluates in a string evaluated again (site_path_problem)
