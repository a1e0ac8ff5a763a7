"""Variants: what a recipe builds differently depending on a parameter, or on whether the
stack has an MPI (README "Variants").

A recipe's `when:` maps a condition, written as Spack writes one, to what holds under it:

    parameters:
      mpi: auto          # on when the stack has what `+mpi` asks for (an MPI), else off
    when:
      +mpi:              # the parameter mpi is true
        toolchain: [mpi]
        dependencies: [...]
      ~mpi: {...}        # it is false;  precision=single: it equals "single";
                         # "+mpi ~shared": both hold

A condition tests parameters only, so what a build gets is decided by the parameters' values
(the recipe's defaults, then the profile's), which are in the build spec and hashed; the
build script sees them as variables too (`MPI=1`). A parameter whose default is `auto` is
on exactly when the profile's toolchain has every kind of external its `+name` blocks ask
for (`toolchain: [mpi]`): one `fftw` recipe is serial in a stack without an MPI and built
with the MPI in a stack with one.

This module loads and checks `when:` (ConfigError with file:line), decides which blocks hold
for given parameter values, and says what they add. It does not import recipes.py (which
imports it); resolve.py applies what `effects` returns to a recipe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from . import yamlfile
from .yamlfile import Scalar, check_env_value, check_name, check_text

AUTO = "auto"
WHEN_KEYS = {"toolchain", "dependencies", "allow_host_libs", "environment", "description"}
_TERM = re.compile(
    r"\s*(?:([+~])([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z0-9._-]+))"
)


@dataclass(frozen=True)
class Term:
    """One test of a condition: the parameter `name` is `value` (True for `+name`, False
    for `~name`, the text of `name=value`)."""

    name: str
    value: Scalar

    def holds(self, params: AnyMapping[str, Scalar]) -> bool:
        """Whether the parameter has this value (`name=value` compares as text: `n=4` holds
        for the number 4)."""
        have = params.get(self.name)
        if isinstance(self.value, bool):
            return have is self.value
        return not isinstance(have, bool) and str(have) == self.value


@dataclass(frozen=True)
class When:
    """One `when:` block: its condition as written and as terms (all must hold), and what it
    adds: toolchain kinds, dependencies (with the line they are listed on), allowed host
    libraries, module variables, and a description that replaces the recipe's."""

    condition: str
    terms: tuple[Term, ...]
    toolchain: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    allow_host_libs: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    line: int = 0  # of the condition
    dependency_line: int = 0

    def holds(self, params: AnyMapping[str, Scalar]) -> bool:
        """Whether every term holds for the parameter values `params`."""
        return all(t.holds(params) for t in self.terms)


@dataclass(frozen=True)
class Effects:
    """What the blocks that hold add to a recipe (resolve.py applies it): toolchain kinds and
    dependencies to append (each once, in block order), host libraries, module variables
    (later blocks win), and the description, if a block gives one (the last that does)."""

    toolchain: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    dependency_lines: dict[str, int] = field(default_factory=dict)
    allow_host_libs: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    description: str | None = None


def parse_condition(text: str) -> tuple[Term, ...] | None:
    """`+mpi`, `~shared`, `precision=single`, or several (`+mpi ~shared`, `+mpi~shared`) ->
    their terms; None if `text` is not such a condition."""
    terms, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TERM.match(text, pos)
        if m is None:
            return None
        sign, flag, name, value = m.groups()
        terms.append(Term(flag, sign == "+") if sign else Term(name, value))
        pos = m.end()
    return tuple(terms) or None


def load_when(m: yamlfile.Mapping, parameters: dict[str, Scalar]) -> tuple[When, ...]:
    """A recipe's `when:` blocks, checked against its `parameters` (name -> default): each
    condition names declared parameters, `+name`/`~name` only those whose default is true,
    false or auto; each block holds only WHEN_KEYS; every `auto` parameter has a `+name`
    block asking for a toolchain. Raises ConfigError at the offending line."""
    blocks_m = yamlfile.get_mapping(m, "when")
    blocks = []
    for condition, block in blocks_m.items():
        where = f"when {condition}:"
        terms = parse_condition(str(condition))
        if terms is None:
            problem = "a condition is +name, ~name or name=value (several: '+mpi ~shared')"
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")
        for t in terms:
            _check_term(blocks_m, condition, t, parameters)
        if not isinstance(block, yamlfile.Mapping):
            yamlfile.fail(blocks_m, condition, f"{where} give a mapping (toolchain:, ...)")
        blocks.append(_block(str(condition), terms, block, blocks_m.line_of(condition)))
    found = tuple(blocks)
    params_m = yamlfile.get_mapping(m, "parameters")
    for name, default in parameters.items():
        if default == AUTO and not auto_kinds(found, name):
            yamlfile.fail(
                params_m,
                name,
                f"parameter {name!r} is auto (on when the stack has what +{name} needs), "
                f"but no `when: +{name}` block asks for a toolchain (toolchain: [mpi])",
            )
    return found


def _check_term(blocks_m: yamlfile.Mapping, condition: object, t: Term, params: dict) -> None:
    where = f"when {condition}:"
    if t.name not in params:
        known = ", ".join(sorted(params)) or "none"
        yamlfile.fail(blocks_m, condition, f"{where} no parameter {t.name!r} (parameters: {known})")
    default = params[t.name]
    if isinstance(t.value, bool) and not (isinstance(default, bool) or default == AUTO):
        yamlfile.fail(
            blocks_m,
            condition,
            f"{where} +{t.name}/~{t.name} test true or false, but {t.name}'s default is "
            f"{default!r} (use {t.name}={default})",
        )
    if not isinstance(t.value, bool) and isinstance(default, bool):
        yamlfile.fail(
            blocks_m,
            condition,
            f"{where} {t.name} is true or false: test it with +{t.name} or ~{t.name}",
        )


def _block(condition: str, terms: tuple[Term, ...], b: yamlfile.Mapping, line: int) -> When:
    what = f"when {condition}"
    yamlfile.check_keys(b, WHEN_KEYS, what)
    deps = yamlfile.get_str_list(b, "dependencies")
    for d in deps:
        check_name(b, "dependencies", d, "dependency")
    environment = yamlfile.check_parameters(b, "environment", "module variable")
    env_m = yamlfile.get_mapping(b, "environment")
    for k, v in environment.items():
        check_env_value(env_m, k, str(v))
    description = yamlfile.get_str(b, "description")
    if description is not None:
        check_text(b, "description", description)
    return When(
        condition=condition,
        terms=terms,
        toolchain=tuple(yamlfile.get_str_list(b, "toolchain")),
        dependencies=tuple(dict.fromkeys(deps)),
        allow_host_libs=tuple(yamlfile.get_str_list(b, "allow_host_libs")),
        environment={k: str(v) for k, v in environment.items()},
        description=description,
        line=line,
        dependency_line=b.line_of("dependencies"),
    )


def auto_kinds(blocks: tuple[When, ...], name: str) -> tuple[str, ...]:
    """The toolchain kinds the blocks whose whole condition is `+name` ask for: what the
    stack must have for an `auto` parameter `name` to be on."""
    kinds = [k for b in blocks if b.terms == (Term(name, True),) for k in b.toolchain]
    return tuple(dict.fromkeys(kinds))


def settle(
    blocks: tuple[When, ...], params: dict[str, Scalar], kinds: set[str]
) -> dict[str, Scalar]:
    """`params` with each `auto` value decided: true when the profile's toolchain has (in
    `kinds`) every kind the `+name` blocks ask for, else false. A parameter with no such block
    keeps the text `auto` (it is not a variant)."""
    out = dict(params)
    for name, value in params.items():
        needed = auto_kinds(blocks, name) if value == AUTO else ()
        if needed:
            out[name] = all(k in kinds for k in needed)
    return out


def bad_value(blocks: tuple[When, ...], params: dict[str, Scalar]) -> str | None:
    """The name of a parameter some `+name`/`~name` tests whose value is not true or false
    (a profile set it to text), or None."""
    for b in blocks:
        for t in b.terms:
            if isinstance(t.value, bool) and not isinstance(params.get(t.name), bool):
                return t.name
    return None


def effects(blocks: tuple[When, ...], params: dict[str, Scalar]) -> Effects:
    """What the blocks that hold for `params` add (see Effects)."""
    toolchain: list[str] = []
    deps: dict[str, int] = {}
    libs: list[str] = []
    environment: dict[str, str] = {}
    description = None
    for b in blocks:
        if not b.holds(params):
            continue
        toolchain += [k for k in b.toolchain if k not in toolchain]
        for d in b.dependencies:
            deps.setdefault(d, b.dependency_line)
        libs += [lib for lib in b.allow_host_libs if lib not in libs]
        environment.update(b.environment)
        description = b.description if b.description is not None else description
    return Effects(tuple(toolchain), tuple(deps), deps, tuple(libs), environment, description)


def describe(blocks: tuple[When, ...], params: AnyMapping[str, Scalar]) -> str:
    """The chosen variant as modules show it (`Variant: mpi=on`): each parameter a condition
    tests, by name, `on`/`off` for true/false, else its value; "" for a recipe without
    `when:`."""
    names = sorted({t.name for b in blocks for t in b.terms})
    shown = []
    for name in names:
        value = params.get(name)
        shown.append(f"{name}={('on' if value else 'off') if isinstance(value, bool) else value}")
    return " ".join(shown)


def variant_error(file: Path, line: int | None, package: str, name: str, value: Scalar) -> None:
    """Raise ConfigError at `file:line`: `package`'s `+name`/`~name` test true or false, and
    the profile set `name` to `value`."""
    raise ConfigError(
        file,
        line,
        f"package {package}: parameter {name!r} is a variant (+{name}/~{name}): "
        f"set it to true or false, not {value!r}",
    )
