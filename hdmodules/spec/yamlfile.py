"""The one YAML loader: every mapping remembers the line of each key, so that every later
check (unknown key, wrong type, missing recipe) can name `file:line`, not just the file."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ConfigError
from ..names import (
    env_value_problem,
    env_var_problem,
    name_problem,
    one_word,
    package_name_problem,
    text_problem,
    version_problem,
)
from ..urls import git_url_problem

if TYPE_CHECKING:
    import yaml


class Mapping(dict):
    """A dict from YAML that knows where it and each of its keys stand in the file."""

    file: Path
    line: int
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of `key` in the file (the mapping's own line if the key is absent)."""
        return self.key_lines.get(key, self.line)


class Sequence(list):
    """A list from YAML that knows the line of each item (`lines`, 1-based)."""

    lines: list[int]


def item_line(m: Mapping, key: Any, index: int) -> int:
    """The line of item `index` of the list `m[key]` (a block list spreads over lines), else
    that of `key`."""
    value = m.get(key)
    if isinstance(value, Sequence) and 0 <= index < len(value.lines):
        return value.lines[index]
    return m.line_of(key)


@cache
def _loader() -> type:
    """The loader class: PyYAML's safe loader (its C one when built), with this module's
    constructors. Made on the first load, not at import: importing PyYAML costs some 20 ms
    (its reader and resolver compile their patterns), which a profile switch read from the
    memo, and config.yaml read from its cache (store/home.py), do without (issue 18)."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        scalar_node = yaml.ScalarNode

    Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    return Loader


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    m = Mapping()
    m.file = loader.hd_file
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = _construct(loader, key_node)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise ConfigError(
                loader.hd_file, line, f"a key must be a plain value, not {shown(key)}"
            )
        if key in m:
            raise ConfigError(loader.hd_file, line, f"duplicate key {key!r}")
        m[key] = _construct(loader, value_node)
        m.key_lines[key] = line
    return m


def _construct(loader: Any, node: yaml.Node) -> Any:
    """`loader.construct_object(node, deep=True)`; a scalar with a tag of the loader's own
    (null, bool, int, float, str, timestamp...) straight from that tag's constructor, as
    construct_object calls it, without its bookkeeping for nodes that may recurse or be
    aliased (a scalar's value is immutable): a 5,000-package profile is 10,000 scalars, and
    that bookkeeping was a third of its loading (issue 18)."""
    if type(node) is loader.scalar_node:
        constructor = loader.yaml_constructors.get(node.tag)
        if constructor is not None:
            return constructor(loader, node)
    return loader.construct_object(node, deep=True)


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> Sequence:
    seq = Sequence(_construct(loader, item) for item in node.value)
    seq.lines = [item.start_mark.line + 1 for item in node.value]
    return seq


def _construct_str(loader: Any, node: yaml.ScalarNode) -> str:
    """A string, refused (ConfigError at its line) when it holds a NUL (`"a\\0b"`, the only
    way YAML gives one): no file name, command argument or environment variable can carry
    it, so the value hashed and the one used would differ, or Python refuse it mid-build.
    The one check for every string of every file this loader reads."""
    value = loader.construct_scalar(node)
    if "\0" in value:
        line = node.start_mark.line + 1
        message = (
            f"{value!r} holds a NUL character, which no file name, argument or variable can carry"
        )
        raise ConfigError(loader.hd_file, line, message)
    return value


def load_text(text: str, file: Path) -> Any:
    """Parse YAML text; any syntax problem becomes a ConfigError naming file:line."""
    import yaml

    loader = _loader()(text)
    loader.hd_file = file
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = e.problem or e.context
        if mark is not None and text[mark.index : mark.index + 1] == "@":  # a version condition
            problem = f'{problem}: YAML reserves @, so quote a key that starts with it ("@1.10":)'
        if mark is not None and _ends_long_key(text, mark.index):
            problem = f"a key longer than {MAX_KEY:,} characters (YAML's limit for a key)"
        raise ConfigError(file, line, f"malformed YAML: {problem}") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        message = f"malformed YAML: character {chr(e.character)!r} is not allowed"
        raise ConfigError(file, line, message) from None
    except yaml.YAMLError as e:
        raise ConfigError(file, None, f"malformed YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise ConfigError(file, None, "malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()


MAX_KEY = 1024  # characters of a key on one line (the YAML spec's limit for an implicit key)


def _ends_long_key(text: str, index: int) -> bool:
    """Whether the `:` at `index`, which the parser refused, ends a key of more than MAX_KEY
    characters: PyYAML and libyaml stop looking for the `:` of a key after that many, then
    report "mapping values are not allowed" (a block) or "expected ',' or '}'" (a flow
    mapping) at it. The key is what stands between the line's indentation, `- `, `{`, `[`
    or `,` and the `:`; one holding `: ` is another problem (a value that needs quotes)."""
    if text[index : index + 1] != ":":
        return False
    line = text[text.rfind("\n", 0, index) + 1 : index]
    key = re.split(r"[{\[,]", line)[-1].lstrip(" \t-")
    return len(key) > MAX_KEY and ": " not in key


def load(path: Path) -> Any:
    """Read and parse one YAML file."""
    return load_text(read(path), path)


def read(path: Path) -> str:
    """The text of one YAML file; ConfigError (no such file, not UTF-8, unreadable)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "no such file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None


def load_mapping(path: Path, what: str, text: str | None = None) -> Mapping:
    """Load a file that must hold a mapping at the top (every format here does); `text`:
    its text, read already (`read`)."""
    data = load(path) if text is None else load_text(text, path)
    if data is None:
        data = Mapping()
        data.file, data.line, data.key_lines = path, 1, {}
    if not isinstance(data, Mapping):
        article = "an" if what[:1] in "aeiou" else "a"
        raise ConfigError(path, 1, f"{article} {what} must be a YAML mapping (key: value lines)")
    return data


# --- checking a mapping against a schema ---------------------------------------------------


def fail(m: Mapping, key: Any, message: str) -> NoReturn:
    """Raise ConfigError(m.file, the line of `key` in `m` (of `m` itself when absent),
    message)."""
    raise ConfigError(m.file, m.line_of(key), message)


def fail_item(m: Mapping, key: Any, index: int, message: str) -> NoReturn:
    """Raise ConfigError(m.file, the line of item `index` of the list `m[key]` (item_line),
    message): a bad item of a block list is said where it stands, not at the list's key."""
    raise ConfigError(m.file, item_line(m, key, index), message)


def check_keys(m: Mapping, allowed: set[str], what: str, required: tuple[str, ...] = ()) -> None:
    """Unknown keys are errors: a typo must not be silently ignored."""
    for key in m:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            fail(m, key, f"unknown key {shown(key)} in {what} (known keys: {known})")
    for key in required:
        if m.get(key) is None:
            raise ConfigError(m.file, m.line, f"{what} needs the key {key!r}")


def get_str(m: Mapping, key: str, default: str | None = None) -> str | None:
    """`m[key]` as a string (numbers too), `default` if absent; ConfigError for anything else."""
    value = m.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        fail(m, key, f"{key!r} must be a string")
    return str(value)


def get_str_list(m: Mapping, key: str) -> list[str]:
    """`m[key]` as a list of strings (one string is a list of one); ConfigError otherwise."""
    value = m.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        fail(m, key, f"{key!r} must be a list of strings")
    for i, v in enumerate(value):
        if not isinstance(v, str):
            fail_item(m, key, i, f"{key!r} must be a list of strings")
    return list(value)


def get_mapping(m: Mapping, key: str) -> Mapping:
    """`m[key]` as a Mapping (an empty one, with the key's line, if absent); or ConfigError."""
    value = m.get(key)
    if value is None:
        empty = Mapping()
        empty.file, empty.line, empty.key_lines = m.file, m.line_of(key), {}
        return empty
    if not isinstance(value, Mapping):
        fail(m, key, f"{key!r} must be a mapping")
    return value


def get_bool(m: Mapping, key: str, default: bool) -> bool:
    """`m[key]` as true or false, `default` if absent; ConfigError for anything else (YAML's
    `yes`/`no` are read as strings by PyYAML's safe loader, and refused too)."""
    value = m.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        fail(m, key, f"{key!r} must be true or false, not {value!r}")
    return value


def get_int(
    m: Mapping, key: str, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    """`m[key]` as a whole number from `minimum` to `maximum` (None: no limit), `default`
    if absent; ConfigError otherwise."""
    value = m.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number, at least {minimum}"
        fail(m, key, f"{key!r} must be {what}")
    if maximum is not None and value > maximum:
        fail(m, key, f"{key!r} must be at most {maximum:,}")
    return value


Scalar = str | int | float | bool
MAX_ENV_STRING = 131_071  # bytes of NAME=VALUE execve passes (MAX_ARG_STRLEN, 32 pages, less 1)


def check_parameters(m: Mapping, key: str, what: str = "parameter") -> dict[str, Scalar]:
    """Flat name -> scalar (parameters, a recipe's `environment:`): each name becomes an
    environment variable, so it must be a shell variable name (check_env_var, raising
    ConfigError with file:line), each value a string, number or true/false that execve
    passes (MAX_ENV_STRING; a NUL the loader refuses: the build would see less than the
    build spec hashed)."""
    params = get_mapping(m, key)
    for name, value in params.items():
        check_env_var(params, name, name, f"{what} name")
        if not isinstance(value, str | int | float | bool):
            fail(params, name, f"{what} {name!r} must be a string, number or true/false")
        if isinstance(value, str) and len(value.encode()) + len(name) + 1 > MAX_ENV_STRING:
            problem = f"is longer than Linux takes for one variable ({MAX_ENV_STRING:,} bytes)"
            fail(params, name, f"the value of {what} {name!r} {problem}")
    return dict(params)


# --- words that become paths, module names or variable names (rules: names.py) ----------


def shown(value: object) -> str:
    """A value as a message names it: repr for text; what YAML made of an unquoted null, ~,
    empty key, yes/no/on/off, number (`0x1F:` is 31) or date, for those (a message saying
    `None`, `True`, `31` or `datetime.date(2024, 1, 1)` left the reader guessing where it
    came from); a mapping or a list by its kind."""
    if value is None:
        return "null (YAML reads null, ~ or nothing there so: quote a name)"
    if isinstance(value, bool):
        return f"{value} (YAML reads yes/no/on/off/true/false so: quote a name)"
    if isinstance(value, int | float):  # `0x1F` is 31, `12:30` 750, `.inf` inf
        return f"{value} (YAML reads the text there as a number: quote a name)"
    if hasattr(value, "isoformat"):  # a date or datetime (not imported: a switch needs neither)
        return f"{value.isoformat()} (YAML reads the text there as a date: quote a name)"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def refused(what: str, value: object, problem: str) -> str:
    """The message refusing `value` as `what`: `<what> 'x' <problem>`; for a value YAML
    made something other than text of (null, a bool, a number, a date), what it made and
    why (`shown`) without the rule, which the text as written may well follow (`0x1F:` is
    the number 31: "package name 31 may hold letters, digits ..." contradicted itself)."""
    return f"{what} {shown(value)}" + (f" {problem}" if isinstance(value, str) else "")


def check_name(m: Mapping, key: Any, value: object, what: str, line: int | None = None) -> str:
    """`value` if it is a valid name; else ConfigError `file:line: <what> 'x' may hold ...`,
    at `line` (an item's: item_lines), else at that of `key` in the yamlfile.Mapping `m`."""
    problem = name_problem(value)
    if problem:
        raise ConfigError(m.file, line or m.line_of(key), refused(what, value, problem))
    return value  # type: ignore[return-value]


def check_package_name(
    m: Mapping, key: Any, value: object, what: str, line: int | None = None
) -> str:
    """check_name for a package's name: names.package_name_problem (a name the store keeps
    for itself is refused too); the ConfigError at `line` (an item's: item_lines), else at
    `key`'s."""
    problem = package_name_problem(value)
    if problem:
        raise ConfigError(m.file, line or m.line_of(key), refused(what, value, problem))
    return value  # type: ignore[return-value]


def item_lines(m: Mapping, key: str, twice: str | None = None) -> dict[str, int]:
    """Each string of the list `m[key]` (get_str_list) once, in its order, with the line of
    the item where it first stands (item_line). With `twice` (what an item is, e.g.
    "package"), one given twice is a ConfigError at its second item: `<twice> 'x' is listed
    twice`, as a mapping's duplicate key is."""
    first: dict[str, int] = {}
    for i, value in enumerate(get_str_list(m, key)):
        if value in first and twice is not None:
            raise ConfigError(m.file, item_line(m, key, i), f"{twice} {value!r} is listed twice")
        first.setdefault(value, item_line(m, key, i))
    return first


def check_version(m: Mapping, key: Any, value: object, what: str) -> str:
    """`value` if it is a valid version; else ConfigError with `file:line` and the rule."""
    problem = version_problem(value)
    if problem:
        fail(m, key, f"{what} {value!r} {problem}")
    return value  # type: ignore[return-value]


def check_env_var(m: Mapping, key: Any, value: object, what: str) -> str:
    """`value` if it is a shell variable name; else ConfigError with `file:line` and the rule.
    Used for every variable name a YAML file gives: recipe parameters and `environment:`,
    site `modules: env:`, `root_variable`."""
    problem = env_var_problem(value)
    if problem:
        fail(m, key, refused(what, value, problem))
    return value  # type: ignore[return-value]


def check_env_value(m: Mapping, key: Any, value: str) -> str:
    """`value` if a module may export it (see env_value_problem); else ConfigError with
    `file:line: the value of KEY holds a line break ...`."""
    problem = env_value_problem(value)
    if problem:
        fail(m, key, f"the value of {key} {problem}")
    return value


# what the module tools and the generated modules manage themselves: a package's module
# setting one (setenv) would replace the user's value, not add to it
MODULE_MANAGED_VARS = frozenset(
    {
        "PATH", "MANPATH", "INFOPATH", "LD_LIBRARY_PATH", "LD_RUN_PATH", "LD_PRELOAD",
        "LD_AUDIT", "LIBRARY_PATH", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH",
        "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH", "MODULEPATH", "LOADEDMODULES",
        "_LMFILES_", "MODULESHOME", "HOME", "SHELL", "USER", "IFS",
    }
)  # fmt: skip


def module_environment(
    m: Mapping, key: str = "environment", what: str = "module variable"
) -> dict[str, str]:
    """A recipe's (or a `when:` block's) `environment:`: module variable -> value, each a
    shell variable name (check_env_var), not one the module tools or the generated module
    manage (MODULE_MANAGED_VARS: `PATH: /x` would replace the user's PATH, where Lmod's
    prepend_path adds to it), and a value a module may export (check_env_value). Raises
    ConfigError at the offending line."""
    variables = check_parameters(m, key, what)
    env_m = get_mapping(m, key)
    for name, value in variables.items():
        if name in MODULE_MANAGED_VARS:
            fail(
                env_m,
                name,
                f"{what} {name} is the module tools' own: a module setting it would "
                "replace the user's value (the module adds the artifact's folders to PATH, "
                "MANPATH, ... itself)",
            )
        check_env_value(env_m, name, str(value))
    return {k: str(v) for k, v in variables.items()}


def check_git(m: Mapping, key: Any, value: str) -> str:
    """`value` if it may name a git repository (urls.git_url_problem); else ConfigError with
    `file:line`."""
    problem = git_url_problem(value)
    if problem:
        fail(m, key, f"git repository {value!r} {problem}")
    return value


def host_libs(m: Mapping) -> tuple[str, ...]:
    """`allow_host_libs:` (a recipe's or a `when:` block's), each once: a library's name
    (`libz.so.1`, `libz`: no `/`) or an absolute folder other than `/` (which would allow
    every folder) without `..`; ConfigError at the item's line otherwise (`-lz`, `../x`, a
    line break were accepted: linkmeta.py reads them)."""
    libs = item_lines(m, "allow_host_libs", twice="host library")
    for lib, line in libs.items():
        folder = lib.startswith("/")
        bad = not lib or lib.startswith("-") or not lib.isprintable()
        if (
            bad
            or (not folder and " " in lib)
            or (folder and (lib.rstrip("/") == "" or ".." in lib.split("/")))
        ):
            problem = "a library's name (libz.so.1) or an absolute folder other than /"
            raise ConfigError(m.file, line, f"allow_host_libs: {lib!r} is not {problem}")
        if not folder and "/" in lib:
            problem = "a library's name (libz.so.1) or an absolute folder"
            raise ConfigError(m.file, line, f"allow_host_libs: {lib!r} is not {problem}")
    return tuple(libs)


def mirror_list(m: Mapping) -> list[str]:
    """`mirrors:` (config.yaml, site.yaml): URLs (one word, as a recipe's: a line break or
    space in one named another place) or folders (a space allowed: `/media/user/USB DISK`),
    never empty nor holding a control character; else ConfigError at its item's line."""
    from ..urls import is_url

    given = get_str_list(m, "mirrors")
    for i, mirror in enumerate(given):
        if not mirror or not mirror.isprintable() or (is_url(mirror) and not one_word(mirror)):
            problem = "is empty, a URL with whitespace, or holds a control character"
            fail_item(m, "mirrors", i, f"mirror {mirror!r} {problem}")
    return given


def check_line(m: Mapping, key: Any, value: str | None, what: str) -> str | None:
    """`value` if it holds no control character (line breaks first); else ConfigError with
    `file:line`. For words written into a line of a generated script that is not quoted as
    a whole, such as a Slurm `#SBATCH --partition=...` line, where a line break would start
    a shell command."""
    if value is not None and any(not c.isprintable() for c in value):
        fail(m, key, f"{what} {value!r} holds a line break or another control character")
    return value


def check_text(m: Mapping, key: Any, value: str) -> str:
    """`value` if it may be help or whatis text of a module (names.text_problem); else
    ConfigError with `file:line`."""
    problem = text_problem(value)
    if problem:
        fail(m, key, f"the {key} {problem}")
    return value
