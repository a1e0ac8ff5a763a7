"""Build systems: `build_system: autotools | cmake | meson | make | python` in a recipe.

A recipe that names a build system gets the usual phases from a Jinja2 template,
`templates/build_systems/<system>.sh.j2`, rendered with the recipe's argument lists
(`configure_args`, `cmake_args`, ...), between its optional `pre_configure:` steps and its
optional `build:` steps (which then run after the install). The rendered text, the **build
body**, is what the build spec hashes (`BuildSpec.build`) and what build.sh runs after setting
the environment: changing a phase template changes the hash of exactly the recipes that use
that system. A recipe without a build system has its `build:` script as body, unchanged.

Arguments are data, never shell: each becomes one shell word, byte-exact, except for
`{NAME}` placeholders naming a build variable (`{ARTIFACT}`, `{ZLIB_DIR}`, `{CC}`, ...),
which expand to that variable's value inside the word (templating.shell_arg); `{{` and `}}`
are literal braces.

A package dir may hold `build_systems/<system>.sh.j2`: the first one found in the profile's
package_dirs order replaces the built-in template, as the first recipe found wins.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from ..errors import ConfigError
from ..names import ENV_VAR_RE
from . import yamlfile


@dataclass(frozen=True)
class System:
    """A build system: its name, the argument lists a recipe may give it (in the order its
    phases use them) and the host tools it runs, each a tuple of alternatives (any one of
    them will do, e.g. ninja or make)."""

    name: str
    args: tuple[str, ...]
    tools: tuple[tuple[str, ...], ...] = ()

    @property
    def template(self) -> str:
        """The phase template's name under templates/ (or a package dir)."""
        return f"build_systems/{self.name}.sh.j2"


_MAKE = (("make",),)
_BUILD_INSTALL = ("build_args", "install_args")
SYSTEMS = {
    s.name: s
    for s in (
        System("autotools", ("configure_args", "make_args", "install_args"), _MAKE),
        System("cmake", ("cmake_args", *_BUILD_INSTALL), (("cmake",), ("ninja", "make"))),
        System("meson", ("meson_args", *_BUILD_INSTALL), (("meson",), ("ninja",))),
        System("make", ("make_args", "install_args"), _MAKE),
        System("python", ("install_args",)),  # pip of the `python` dependency
    )
}
ARGS_KEYS = tuple(dict.fromkeys(a for s in SYSTEMS.values() for a in s.args))
KEYS = frozenset(("build_system", "pre_configure", *ARGS_KEYS))  # recipe keys of this module
PYTHON_DEPENDENCY = "python"  # the recipe whose bin/python3 the python build system uses
DEBIAN_PACKAGE = {"ninja": "ninja-build"}  # for the hint of a missing tool

# build variables an argument may name as {NAME}, besides <DEP>_DIR and the parameters
ARG_VARIABLES = ("ARTIFACT", "CC", "CXX", "FC", "CPPFLAGS", "LDFLAGS")
MPI_VARIABLES = ("MPICC", "MPICXX", "MPIFC", "MPI_DIR")  # with `toolchain: [mpi]`


@dataclass(frozen=True)
class BuildSteps:
    """A recipe's build system: `system` (a key of SYSTEMS), `args` (each argument list the
    system takes -> its words, () when the recipe gives none), `pre_configure` (shell run
    before the first phase, "" for none), and where `build_system:` is (`file`, `line`)."""

    system: str
    file: Path
    line: int
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pre_configure: str = ""

    @property
    def where(self) -> str:
        """`file:line` of the recipe's `build_system:`."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ToolNeed:
    """A host tool a build runs: any one of `alternatives`, for `system`, asked for at
    `where` (`file:line` of `build_system:`)."""

    alternatives: tuple[str, ...]
    system: str
    where: str

    def message(self) -> str:
        """The error when none of the alternatives is on the build's PATH."""
        tools = " or ".join(self.alternatives)
        packages = " ".join(DEBIAN_PACKAGE.get(t, t) for t in self.alternatives[:1])
        return (
            f"{self.where}: build_system: {self.system} needs {tools}, which is not on the "
            f"build's PATH (dependencies' bin/, then /usr/bin:/bin): install it on this "
            f"host (Debian: apt-get install {packages}) or add a recipe that provides it "
            f"to dependencies:"
        )


def arg_variables(
    dependencies: list[str],
    parameters: list[str],
    toolchain: list[str],
    env_name: Callable[[str], str],
) -> frozenset[str]:
    """The `{NAME}`s a recipe's arguments may use: ARG_VARIABLES, `<DEP>_DIR` of each direct
    dependency and each parameter (`env_name` maps a name to its variable), and the MPI's
    variables when the recipe asks for `toolchain: [mpi]`."""
    names = set(ARG_VARIABLES) | {f"{env_name(d)}_DIR" for d in dependencies}
    names |= {env_name(p) for p in parameters}
    if "mpi" in toolchain:
        names |= set(MPI_VARIABLES)
    return frozenset(names)


def load(
    m: yamlfile.Mapping, variables: frozenset[str], dependencies: list[str]
) -> BuildSteps | None:
    """The build system of the recipe mapping `m`, or None when it names none (then no
    argument list nor `pre_configure:` may be given). `variables` are the `{NAME}`s its
    arguments may use (arg_variables). Raises ConfigError (file:line) for an unknown system,
    an argument list the system does not take, an argument that is not a string, a bad
    placeholder, or the python system without a `python` dependency."""
    name = yamlfile.get_str(m, "build_system")
    if name is None:
        for key in (k for k in KEYS if k in m):
            _without_system(m, key)
        return None
    system = SYSTEMS.get(name)
    if system is None:
        yamlfile.fail(m, "build_system", f"build_system {name!r}: use one of {', '.join(SYSTEMS)}")
    given = load_args(m, name, variables)
    pre = m.get("pre_configure", "")
    if not isinstance(pre, str):
        yamlfile.fail(m, "pre_configure", "'pre_configure' must be a script (`pre_configure: |`)")
    if name == "python" and PYTHON_DEPENDENCY not in dependencies:
        problem = (
            "build_system python installs with the pip of a `python` dependency "
            "(its bin/python3, whose version the hash pins; the host's python3 is not pinned): "
            "add python to dependencies:"
        )
        yamlfile.fail(m, "build_system", problem)
    args = {key: given.get(key, ()) for key in system.args}
    return BuildSteps(name, m.file, m.line_of("build_system"), args, pre)


def load_args(
    m: yamlfile.Mapping, system: str | None, variables: frozenset[str], scope: str = ""
) -> dict[str, tuple[str, ...]]:
    """The argument lists (ARGS_KEYS) the mapping `m` gives, key -> its words, for a recipe
    whose build system is `system` (None: it has none): a recipe's own lists, or those of a
    `when:` block (variants.py), whose placeholders are checked against the `variables`
    under that block, named `scope` in the message (`under when +mpi`). Raises ConfigError
    at the list's line for a list without a build system or one the system does not take,
    at the item's for an item that is not a string or has a bad placeholder."""
    out = {}
    for key in ARGS_KEYS:
        if key not in m:
            continue
        if system is None:
            _without_system(m, key)
        _check_taken(m, key, system)
        out[key] = _words(m, key, variables, scope)
    return out


def _without_system(m: yamlfile.Mapping, key: str) -> NoReturn:
    yamlfile.fail(m, key, f"'{key}' goes with 'build_system:' ({', '.join(SYSTEMS)})")


def _check_taken(m: yamlfile.Mapping, key: str, system: str) -> None:
    if key not in SYSTEMS[system].args:
        takes = ", ".join(SYSTEMS[system].args)
        yamlfile.fail(m, key, f"build_system {system} takes no {key} (it takes {takes})")


def _words(m: yamlfile.Mapping, key: str, variables: frozenset[str], scope: str) -> tuple[str, ...]:
    value = m.get(key)
    if value is None:
        return ()
    problem = f"'{key}' must be a list of strings, one item per argument (- --enable-foo)"
    if not isinstance(value, list):
        yamlfile.fail(m, key, problem)
    for i, word in enumerate(value):  # each said at its item's line
        if not isinstance(word, str):
            yamlfile.fail_item(m, key, i, problem)
        word_problem = placeholder_problem(word, variables, scope)
        if word_problem:
            yamlfile.fail_item(m, key, i, f"{key}: argument {word!r}: {word_problem}")
    return tuple(value)


def placeholder_problem(word: str, variables: frozenset[str], scope: str = "") -> str | None:
    """Why `word` is not a valid argument, or None: its `{...}` fields must each name one of
    `variables` (the recipe's, or those `scope` names: `under when +mpi`), without format
    spec or conversion; a literal brace is `{{` or `}}`; NUL cannot be passed to a
    program."""
    if "\0" in word:
        return "holds a NUL character"
    try:
        fields = [(f, s, c) for _, f, s, c in string.Formatter().parse(word) if f is not None]
    except ValueError as e:
        return f"{e} (write a literal brace as {{{{ or }}}})"
    for name, spec, conversion in fields:
        if not ENV_VAR_RE.fullmatch(name) or name not in variables:
            known = ", ".join("{" + v + "}" for v in sorted(variables))
            hint = "; the MPI's come with `toolchain: [mpi]`" if name in MPI_VARIABLES else ""
            whose = scope or "this recipe's"
            return f"unknown placeholder {{{name}}} ({whose}: {known}{hint})"
        if spec or conversion:
            return f"the placeholder {{{name}}} takes no !conversion nor :format"
    return None


def check_tools_given(steps: BuildSteps | None, unset: dict[str, str]) -> None:
    """Raise ConfigError at `build_system:` when an argument names a compiler variable the
    chosen externals do not set: `unset` maps such a variable (`MPIFC`) to why (`the mpi
    external openmpi-4.1.4 has no mpifc command`). Otherwise the word would reach the
    build as `FC=` and configure would guess a compiler on its own."""
    if steps is None:
        return
    for key, words in steps.args.items():
        for word in words:
            for _, name, _, _ in string.Formatter().parse(word):
                if name in unset:
                    raise ConfigError(
                        steps.file,
                        steps.line,
                        f"{key}: argument {word!r} names {{{name}}}, but {unset[name]} "
                        "(add the command to the external, or leave the argument out)",
                    )


def body(steps: BuildSteps | None, build: str, package_dirs: tuple[Path, ...] = ()) -> str:
    """The build body of a recipe: its `build:` script alone (`steps` None), else its
    `pre_configure:` steps, the system's phases rendered from the first
    `build_systems/<system>.sh.j2` in `package_dirs`, else the built-in one, and its `build:`
    steps after the install. What the build spec hashes and build.sh runs. Raises
    ConfigError (the template, with its line when Jinja2 knows it) for a template that does
    not render: a syntax error, a name it does not get."""
    if steps is None:
        return build
    from jinja2 import TemplateError

    from ..templating import render_file

    system = SYSTEMS[steps.system]
    template = next(f for f in template_files(steps, package_dirs) if f.is_file())
    try:
        phases = render_file(template, **steps.args).rstrip("\n")
    except (TemplateError, ValueError, OSError) as e:  # a site's template is code: say where
        line = getattr(e, "lineno", None)
        what = f"the phase template of build_system {system.name} (for {steps.where})"
        raise ConfigError(template, line, f"{what}: {getattr(e, 'message', None) or e}") from None
    parts = []
    if steps.pre_configure.strip():
        parts.append("# ---- pre_configure: (the recipe's) ----\n" + steps.pre_configure.rstrip())
    parts.append(f"# ---- build_system: {system.name} ({system.template}) ----\n{phases}")
    if build.strip():
        parts.append("# ---- build: (the recipe's), after the install ----\n" + build.rstrip())
    return "\n".join(parts) + "\n"


def template_files(steps: BuildSteps | None, package_dirs: tuple[Path, ...]) -> list[Path]:
    """Every file that can be the phase template of `steps` (present or not), in lookup
    order: what the no-op memo stamps, so a template added, edited or removed is seen."""
    if steps is None:
        return []
    from ..templating import builtin_dirs

    name = SYSTEMS[steps.system].template
    return [Path(d) / name for d in (*package_dirs, *builtin_dirs())]


def tool_needs(steps: BuildSteps | None) -> tuple[ToolNeed, ...]:
    """The host tools the phases of `steps` run (none without a build system)."""
    if steps is None:
        return ()
    return tuple(ToolNeed(alts, steps.system, steps.where) for alts in SYSTEMS[steps.system].tools)
