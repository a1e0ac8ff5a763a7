"""Python stacks, as resolving sees them: which packages are Python packages, the
interpreter a site pins as an external, and what a profile holds so that it is a working
Python environment.

- A **Python package** is a recipe with `build_system: python`; it depends on `python`,
  the interpreter whose pip installs it (its hash pins that interpreter).
- A profile (or site stack) may name an external interpreter, `toolchain: {python: NAME}`
  with `kind: python` (the host's python3, pinned like a compiler): then every Python
  package's `python` dependency is that external, and the `python` recipe is not built.
- A profile listing Python packages holds their interpreter and every Python package they
  depend on (as Nix's `python.withPackages` does): `import jinja2` needs markupsafe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from .buildsystems import PYTHON_DEPENDENCY
from .recipes import Recipe

PYTHON = PYTHON_DEPENDENCY  # the interpreter's package name, and the external's kind


class _Node(Protocol):  # resolve.Node, without importing it (resolve imports this module)
    recipe: Recipe
    closure: tuple[str, ...]


def project_name(name: str) -> str:
    """A Python project's name as the package index spells its page (PEP 503): lowercase,
    runs of `-_.` as one `-` (`Flit_Core` -> `flit-core`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_python_package(recipe: Recipe) -> bool:
    """Whether `recipe` installs a Python package (`build_system: python`)."""
    return recipe.build_system is not None and recipe.build_system.system == "python"


def with_external_python(recipe: Recipe) -> Recipe:
    """`recipe` under a profile whose toolchain names a python external: a `python`
    dependency becomes the toolchain kind `python` (its pin enters the hash)."""
    if PYTHON not in recipe.dependencies:
        return recipe
    return replace(
        recipe,
        dependencies=tuple(d for d in recipe.dependencies if d != PYTHON),
        toolchain=(*recipe.toolchain, PYTHON)
        if PYTHON not in recipe.toolchain
        else recipe.toolchain,
    )


def profile_packages(listed: Sequence[str], nodes: Mapping[str, _Node]) -> list[str]:
    """What a profile holds, in order: the `listed` packages, then, for the Python packages
    among them, the interpreter (the `python` recipe) and the Python packages they depend
    on, each once."""
    out = list(listed)
    for name in listed:
        if not is_python_package(nodes[name].recipe):
            continue
        for dep in nodes[name].closure:
            if dep not in out and (dep == PYTHON or is_python_package(nodes[dep].recipe)):
                out.append(dep)
    return out
