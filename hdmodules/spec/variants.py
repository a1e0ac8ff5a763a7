"""Variants: what a recipe builds differently depending on a parameter, on whether the
stack has an MPI, or on the version it builds (README "Variants").

A recipe's `when:` maps a condition, written as Spack writes one, to what holds under it:

    parameters:
      mpi: auto          # on when the stack has what `+mpi` asks for (an MPI), else off
    when:
      +mpi:              # the parameter mpi is true
        toolchain: [mpi]
        dependencies: [...]
        configure_args: ["CC={MPICC}", --enable-mpi]
      ~mpi: {...}        # it is false;  precision=single: it equals "single";
                         # "+mpi ~shared": both hold
      "@1.10":           # the version built is 1.10 or 1.10.x (versions.Range); quoted,
        patches: [...]   # since YAML reserves @; "+mpi @1.14:": both hold

A condition tests parameters and the version, so what a build gets is decided by the
parameters' values (the recipe's defaults, then the profile's) and the version chosen, all
in the build spec and hashed; the build script sees them as variables too (`MPI=1`). A
parameter whose default is `auto` is on exactly when the profile's toolchain has every kind
of external its `+name` blocks ask for (`toolchain: [mpi]`): one `fftw` recipe is serial in
a stack without an MPI and built with the MPI in a stack with one.

A block adds (WHEN_KEYS) toolchain kinds, dependencies, allowed host libraries, module
variables, a description, the build system's argument lists (appended to the recipe's, as
Spack's `configure_args` test `"+mpi" in spec`) and patches (applied after the recipe's, as
Spack's `patch("x.patch", when="@1.10")`).

This module loads and checks `when:` (ConfigError with file:line), decides which blocks hold
for given parameter values and version, and says what they add. It does not import
recipes.py (which imports it): what checking a block needs of the recipe comes in a
`BlockContext`; resolve.py applies what `effects` returns to a recipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import buildsystems, yamlfile
from .versions import Range, by_newest
from .yamlfile import Scalar, check_text

AUTO = "auto"
WHEN_KEYS = {"toolchain", "dependencies", "allow_host_libs", "environment", "description"}
WHEN_KEYS |= {"patches", *buildsystems.ARGS_KEYS}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VERSION = r"(?:[A-Za-z0-9][A-Za-z0-9._-]*)?"  # `+` and `~` start the next term
_TERM = re.compile(
    rf"\s*(?:([+~])({_NAME})|({_NAME})=([A-Za-z0-9._-]+)|@({_VERSION})(:?)({_VERSION}))"
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

    def __str__(self) -> str:
        """As written: `+mpi`, `~mpi`, `precision=single`."""
        if isinstance(self.value, bool):
            return f"{'+' if self.value else '~'}{self.name}"
        return f"{self.name}={self.value}"


Condition = tuple[Term | Range, ...]  # every term must hold; at most one Range (the version)


@dataclass(frozen=True)
class When:
    """One `when:` block: its condition as written and as terms (all must hold), and what it
    adds: toolchain kinds, dependencies (with the line they are listed on), allowed host
    libraries, module variables, a description that replaces the recipe's, argument lists
    (key of buildsystems.ARGS_KEYS -> words) and patches (recipes.Patch)."""

    condition: str
    terms: Condition
    toolchain: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    allow_host_libs: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    line: int = 0  # of the condition
    dependency_line: int = 0
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patches: tuple[Any, ...] = ()

    @property
    def parameter_terms(self) -> tuple[Term, ...]:
        """The terms that test parameters (not the version)."""
        return tuple(t for t in self.terms if isinstance(t, Term))

    def holds(self, params: AnyMapping[str, Scalar], version: str) -> bool:
        """Whether every term holds for the parameter values `params` and `version`."""
        return all(version in t if isinstance(t, Range) else t.holds(params) for t in self.terms)


@dataclass(frozen=True)
class BlockContext:
    """What checking a recipe's `when:` blocks needs of the rest of the recipe (recipes.py
    gives it): its `parameters` (name -> default), the `versions` it offers, its
    `build_system` (a key of buildsystems.SYSTEMS, None without one), the `{NAME}`s its
    arguments may use given the dependencies and toolchain kinds a block adds besides the
    recipe's own (`variables`), and the loader of a block's `patches:` list
    (`load_patches`: recipes' own, files beside the recipe)."""

    parameters: dict[str, Scalar]
    versions: tuple[str, ...]
    build_system: str | None
    variables: Callable[[list[str], list[str]], frozenset[str]]
    load_patches: Callable[[yamlfile.Mapping], tuple[Any, ...]]


@dataclass(frozen=True)
class Effects:
    """What the blocks that hold add to a recipe (resolve.py applies it): toolchain kinds and
    dependencies to append (each once, in block order), host libraries, module variables
    (later blocks win), the description, if a block gives one (the last that does), the
    words to append to each argument list and the patches to apply after the recipe's (both
    in block order)."""

    toolchain: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    dependency_lines: dict[str, int] = field(default_factory=dict)
    allow_host_libs: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    patches: tuple[Any, ...] = ()


def parse_condition(text: str) -> Condition | None:
    """`+mpi`, `~shared`, `precision=single`, a version range (`@1.10`, `@1.10:1.12`,
    `@1.12:`, `@:1.10`: versions.Range), or several (`+mpi ~shared`, `+mpi~shared`,
    `+mpi @1.14:`) -> their terms; None if `text` is not such a condition (`@` and `@:`
    alone are not: they would hold for every version)."""
    terms: list[Term | Range] = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _TERM.match(text, pos)
        if m is None:
            return None
        sign, flag, name, value, low, colon, high = m.groups()
        if sign:
            terms.append(Term(flag, sign == "+"))
        elif name:
            terms.append(Term(name, value))
        elif low or high:
            terms.append(Range(low or None, (high or None) if colon else low))
        else:
            return None
        pos = m.end()
    return tuple(terms) or None


def load_when(m: yamlfile.Mapping, ctx: BlockContext) -> tuple[When, ...]:
    """A recipe's `when:` blocks, checked against the rest of the recipe (`ctx`): each
    condition names declared parameters, `+name`/`~name` only those whose default is true,
    false or auto, a version range some offered version is in; no condition contradicts or
    repeats itself; each block holds only WHEN_KEYS, its argument lists those the build
    system takes, with placeholders of the variables under it (the recipe's, and what this
    block and the blocks its condition implies add: `{MPICC}` under a block that gives
    `toolchain: [mpi]`); every `auto` parameter has a `+name` block asking for a toolchain.
    Raises ConfigError at the offending line."""
    blocks_m = yamlfile.get_mapping(m, "when")
    blocks: list[tuple[When, yamlfile.Mapping]] = []
    for condition, block in blocks_m.items():
        where = f"when {condition}:"
        terms = parse_condition(str(condition))
        if terms is None:
            problem = (
                "a condition is +name, ~name, name=value or @version "
                "(several: '+mpi ~shared', '+mpi @1.14:')"
            )
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")
        _check_condition(blocks_m, condition, terms, ctx)
        if not isinstance(block, yamlfile.Mapping):
            yamlfile.fail(blocks_m, condition, f"{where} give a mapping (toolchain:, ...)")
        when = _block(str(condition), terms, block, blocks_m.line_of(condition), ctx)
        blocks.append((when, block))
    found = tuple(_with_args(b, block, blocks, ctx) for b, block in blocks)
    params_m = yamlfile.get_mapping(m, "parameters")
    for name, default in ctx.parameters.items():
        if default == AUTO and not auto_kinds(found, name):
            yamlfile.fail(
                params_m,
                name,
                f"parameter {name!r} is auto (on when the stack has what +{name} needs), "
                f"but no `when: +{name}` block asks for a toolchain (toolchain: [mpi])",
            )
        needed = set(auto_kinds(found, name)) if default == AUTO else set()
        for b in found:  # auto is off exactly when the stack lacks these: ~name cannot ask
            if Term(name, False) in b.terms and needed & set(b.toolchain):
                kinds = ", ".join(sorted(needed & set(b.toolchain)))
                yamlfile.fail(
                    blocks_m,
                    b.condition,
                    f"when {b.condition}: asks for toolchain {kinds}, but {name} is auto, "
                    f"which is off exactly when the stack has no {kinds}: the block never "
                    f"gets it (move it under +{name})",
                )
    return found


def _check_condition(
    blocks_m: yamlfile.Mapping, condition: object, terms: Condition, ctx: BlockContext
) -> None:
    """Each term of `condition` is one that can hold, and they can hold together: a parameter
    or the version tested once (Spack refuses `+mpi~mpi` too), a version range that is not
    empty and holds for an offered version."""
    where = f"when {condition}:"
    seen: dict[str, Term | Range] = {}  # parameter name, or "@" -> its term
    for t in terms:
        before = seen.setdefault(t.name if isinstance(t, Term) else "@", t)
        if before is t:
            _check_term(blocks_m, condition, t, ctx)
        elif before == t:
            yamlfile.fail(blocks_m, condition, f"{where} {t} repeats (write it once)")
        elif isinstance(t, Term):
            problem = f"never holds ({before} and {t}: {t.name} has one value)"
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")
        else:
            problem = f"gives two version ranges ({before} and {t}): write one, @LOW:HIGH"
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")


def _check_term(
    blocks_m: yamlfile.Mapping, condition: object, t: Term | Range, ctx: BlockContext
) -> None:
    where = f"when {condition}:"
    if isinstance(t, Range):
        if t.empty:
            problem = f"never holds ({t}: {t.low} comes after {t.high})"
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")
        if not any(v in t for v in ctx.versions):
            offered = ", ".join(by_newest(ctx.versions))
            problem = f"no version this recipe offers is in {t} (it offers {offered})"
            yamlfile.fail(blocks_m, condition, f"{where} {problem}")
        return
    params = ctx.parameters
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


def toolchain_kinds(m: yamlfile.Mapping) -> tuple[str, ...]:
    """A recipe's (or a `when:` block's) `toolchain:`: the kinds of external it builds with
    (mpi, python, or any other word an external's `kind:` may be: a vendor BLAS), each a
    name (names.py), once. ConfigError at the item's line otherwise."""
    kinds = yamlfile.item_lines(m, "toolchain", twice="toolchain kind")
    for kind, line in kinds.items():
        yamlfile.check_name(m, "toolchain", kind, "toolchain kind", line)
    return tuple(kinds)


def _block(
    condition: str, terms: Condition, b: yamlfile.Mapping, line: int, ctx: BlockContext
) -> When:
    """The block `b`, but its argument lists (_with_args adds them)."""
    what = f"when {condition}"
    yamlfile.check_keys(b, WHEN_KEYS, what)
    deps = yamlfile.item_lines(b, "dependencies", twice="dependency")
    for d, d_line in deps.items():
        yamlfile.check_package_name(b, "dependencies", d, "dependency", d_line)
    environment = yamlfile.module_environment(b)
    description = yamlfile.get_str(b, "description")
    if description is not None:
        check_text(b, "description", description)
    return When(
        condition=condition,
        terms=terms,
        toolchain=toolchain_kinds(b),
        dependencies=tuple(deps),
        allow_host_libs=yamlfile.host_libs(b),
        environment=environment,
        description=description,
        line=line,
        dependency_line=b.line_of("dependencies"),
        patches=ctx.load_patches(b),
    )


def _with_args(
    block: When, b: yamlfile.Mapping, blocks: list[tuple[When, yamlfile.Mapping]], ctx: BlockContext
) -> When:
    """`block` with its argument lists, checked against the variables under it: the
    recipe's, and the dependencies and toolchain kinds of every block that holds whenever it
    does (whose terms are among its own: `+mpi` for `+mpi ~shared`, and itself)."""
    if not any(key in b for key in buildsystems.ARGS_KEYS):
        return block
    under = [w for w, _ in blocks if set(w.terms) <= set(block.terms)]
    deps = [d for w in under for d in w.dependencies]
    variables = ctx.variables(deps, [k for w in under for k in w.toolchain])
    scope = f"under when {block.condition}"
    return replace(block, args=buildsystems.load_args(b, ctx.build_system, variables, scope))


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
        for t in b.parameter_terms:
            if isinstance(t.value, bool) and not isinstance(params.get(t.name), bool):
                return t.name
    return None


def effects(blocks: tuple[When, ...], params: dict[str, Scalar], version: str) -> Effects:
    """What the blocks that hold for `params` and `version` add (see Effects)."""
    toolchain: list[str] = []
    deps: dict[str, int] = {}
    libs: list[str] = []
    environment: dict[str, str] = {}
    description = None
    args: dict[str, tuple[str, ...]] = {}
    patches: tuple[Any, ...] = ()
    for b in blocks:
        if not b.holds(params, version):
            continue
        toolchain += [k for k in b.toolchain if k not in toolchain]
        for d in b.dependencies:
            deps.setdefault(d, b.dependency_line)
        libs += [lib for lib in b.allow_host_libs if lib not in libs]
        environment.update(b.environment)
        description = b.description if b.description is not None else description
        for key, words in b.args.items():
            args[key] = args.get(key, ()) + words
        patches += b.patches
    return Effects(
        tuple(toolchain), tuple(deps), deps, tuple(libs), environment, description, args, patches
    )


def describe(blocks: tuple[When, ...], params: AnyMapping[str, Scalar]) -> str:
    """The chosen variant as modules show it (`Variant: mpi=on`): each parameter a condition
    tests, by name, `on`/`off` for true/false, else its value; "" for a recipe without
    `when:`. A version term is not shown: the module's version is the version."""
    names = sorted({t.name for b in blocks for t in b.parameter_terms})
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
