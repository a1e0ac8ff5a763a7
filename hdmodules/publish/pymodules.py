"""Python in the module trees: the interpreter a stack's Python packages were built for is a
level of the hierarchy, as a compiler and an MPI are (modulefiles.py plans the rest).

- The **python module** is the `python` package (the store's CPython) or the stack's python
  external (`python: NAME` in site.yaml, `kind: python`), always named `python/<version>`.
  It goes where the stack's other packages go (`Core/` in a `core` stack, else
  `Compiler/<c>/<cv>/`), sets family("python") and opens the **Python level**:
  `Python/python/<version>` below Core, `Python/<c>/<cv>/python/<version>` below a compiler
  (the level it is in, then the interpreter, as `MPI/<c>/<cv>/<m>/<mv>` is).
- A **Python package** (`build_system: python`) not built with MPI goes to that level, so
  `module load python` makes `py-jinja2/3.1.4` visible; its module prepends PYTHONPATH with
  its artifact's lib/pythonX.Y/site-packages (and PATH with bin/, as any package's). Its
  Python dependencies get modules too (a profile holds them: pythonenv.profile_packages)
  and are loaded as any dependency (`modules: depends_on:`). In a flat tree they load their
  store python as a dependency; an external python is their parent, as a compiler is.
- The python module of an **external** puts on PATH a folder of the tree holding `python3`,
  `python` and `python3.X`, each running the external's command (templates/wrappers): what
  an Lmod or Spack user expects from `module load python; python3`, whatever version the
  host's own `python3` is. Never the external's bin folder: for /usr/bin/python3.11 that
  would put /usr/bin before what modules loaded earlier put first on PATH.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..names import module_word
from ..spec.externals import External
from ..spec.pythonenv import PYTHON, is_python_package
from ..spec.recipes import Recipe
from .compiling import Wrapper

LEVEL = "Python"


def python_level(level: tuple[str, ...], version: str) -> tuple[str, ...]:
    """The Python level a python module at `level` (`("Core",)`, `("Compiler", c, cv)`, or
    `()` in a flat tree) of `version` opens."""
    return (LEVEL, *level[1:], PYTHON, module_word(version))


def levels_seen_from(level: tuple[str, ...]) -> list[tuple[str, ...]] | None:
    """The levels on MODULEPATH whenever the Python level `level` is: itself, the compiler's
    (below a compiler) and Core; None for a level that is not a Python one."""
    if level[:1] != (LEVEL,):
        return None
    below = [("Compiler", *level[1:3])] if len(level) > 3 else []
    return [level, *below, ("Core",)]


def goes_to_python_level(recipe: Recipe, uses_mpi: bool) -> bool:
    """Whether a package's module belongs at its python's level: a Python package that was
    not built with MPI (mpi4py & co. stay at the MPI's level, reached through the MPI)."""
    return is_python_package(recipe) and not uses_mpi


def python_path(recipe: Recipe, prefix: Path) -> list[tuple[str, str]]:
    """PYTHONPATH entries of a Python package's module: its lib/pythonX.Y/site-packages
    (none for other packages)."""
    if not is_python_package(recipe):
        return []
    found = sorted((prefix / "lib").glob("python3*/site-packages"))
    return [("PYTHONPATH", str(p)) for p in found if p.is_dir()]


def interpreter_wrappers(ext: External) -> list[Wrapper]:
    """The commands of a python external's module: `python3`, `python` and `python3.X` (of
    its version), each running its `python` command; none without one."""
    real = ext.commands.get("python")
    if not real:
        return []
    names = ["python3", "python"]
    minor = re.match(r"3\.[0-9]+", ext.version or "")
    if minor:
        names.append(f"python{minor.group(0)}")
    return [Wrapper(name, real, "wrappers/command.sh") for name in names]
