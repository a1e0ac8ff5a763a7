"""What loaded modules give a scientist who compiles against them (README "Compiling against
loaded modules"), planned here and rendered with the module tree:

- a library package's module prepends its `include/` to CPATH, its `lib/` (`lib64/`) to
  LIBRARY_PATH and LD_RUN_PATH, so `cc prog.c -lfoo` finds header and library;
- a compiler module puts wrappers of its commands first on PATH (`gcc`, `cc`, `g++`, `c++`,
  `gfortran` run this compiler's `gcc-11`, ...); a link through them gets a RUNPATH entry for
  each LIBRARY_PATH folder, so the program runs with no environment (after `module purge`, in
  a batch job), and gfortran also searches CPATH for Fortran modules;
- an MPI module puts its own `mpicc`, `mpicxx`, `mpifort`, `mpirun` first on PATH and tells
  them which compiler to call (Open MPI's OMPI_CC..., MPICH's MPICH_CC...): the wrappers of
  the compiler whose level it sits at, so swapping the compiler swaps what `mpicc` calls.

Each part can be turned off in site.yaml (`modules: compile:`, spec/site.CompileConfig).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..spec.externals import ENV_OF_ROLE, External
from ..spec.site import CompileConfig

TREE_FOLDER = "wrappers"  # beside lmod/ and tcl/ in a module tree
# role -> the generic names a compiler's wrappers add to the command's own (gcc-11 -> gcc)
COMPILER_NAMES = {"cc": ("cc",), "cxx": ("c++",), "fc": ()}
# role -> the names an MPI's wrappers have (the first is what MPICC & co. name)
MPI_NAMES = {
    "mpicc": ("mpicc",),
    "mpicxx": ("mpicxx", "mpic++"),
    "mpifc": ("mpifort", "mpif90", "mpif77"),
    "mpirun": ("mpirun", "mpiexec"),
}
# MPI flavour -> compiler role -> the variable its wrappers read the compiler from
MPI_COMPILER_VARIABLES = {
    "openmpi": {"cc": "OMPI_CC", "cxx": "OMPI_CXX", "fc": "OMPI_FC"},
    "mpich": {"cc": "MPICH_CC", "cxx": "MPICH_CXX", "fc": "MPICH_FC"},
}


# what `-l` can name: libNAME.so or libNAME.a, NAME a plain word (it is shown in help text)
LIBRARY_FILE = re.compile(r"lib([A-Za-z0-9_+-][A-Za-z0-9_.+-]*?)\.(?:so|a)")


@dataclass(frozen=True)
class Wrapper:
    """One command a compiler or MPI module puts first on PATH: `name` runs `real`, through
    `template` (templates/wrappers/compiler.sh: RUNPATH and Fortran modules; command.sh: a
    plain exec)."""

    name: str  # gcc, cc, g++, mpicc, ...
    real: str  # the external's command, an absolute path
    template: str
    fortran: bool = False


def wrapper_folder(name: str, version: str) -> tuple[str, ...]:
    """The folder of an external's wrappers inside a module tree: `wrappers/<name>/<version>/bin`
    (`name`, `version` as the module's)."""
    return (TREE_FOLDER, name, version, "bin")


def wrappers(ext: External) -> list[Wrapper]:
    """The wrappers of a compiler (each command under its own name without the version suffix,
    `gcc-11` -> `gcc`, and `cc`, `c++`) or an MPI (MPI_NAMES); none for other kinds."""
    out: dict[str, Wrapper] = {}
    if ext.kind == "compiler":
        for role, generic in COMPILER_NAMES.items():
            real = ext.commands.get(role)
            if real:
                for name in (_plain(real), *generic):
                    out.setdefault(
                        name, Wrapper(name, real, "wrappers/compiler.sh", fortran=role == "fc")
                    )
        for name, real in companions(ext.commands.get("cc", "")):
            out.setdefault(name, Wrapper(name, real, "wrappers/command.sh"))
    elif ext.kind == "mpi":
        for role, names in MPI_NAMES.items():
            real = ext.commands.get(role)
            if real:
                for name in names:
                    out.setdefault(name, Wrapper(name, real, "wrappers/command.sh"))
    return list(out.values())


def companions(cc: str) -> list[tuple[str, str]]:
    """The tools that must match a versioned gcc (`/usr/bin/gcc-11`): cpp, gcov, gcc-ar & co.
    of the same version beside it, as (name, command), those that exist; none for other cc."""
    found = re.fullmatch(r"(.*/)gcc(-[0-9][0-9.]*)", cc)
    if not found:
        return []
    where, suffix = found[1], found[2]
    tools = ("cpp", "gcov", "gcov-dump", "gcov-tool", "gcc-ar", "gcc-nm", "gcc-ranlib", "lto-dump")
    return [(t, f"{where}{t}{suffix}") for t in tools if Path(f"{where}{t}{suffix}").is_file()]


def _plain(command: str) -> str:
    """`/usr/bin/gcc-11` -> `gcc`, `/opt/x/bin/gfortran` -> `gfortran`."""
    base = Path(command).name
    return re.sub(r"-[0-9][0-9.]*$", "", base) or base


def mpi_flavour(ext: External) -> str | None:
    """`openmpi` or `mpich` (whose wrappers read OMPI_CC or MPICH_CC), from the external's
    name or the version its mpicc reported (the pin); None when neither."""
    words = f"{ext.name} {(ext.pin or {}).get('version', '')}".lower().replace(" ", "")
    if "openmpi" in words:
        return "openmpi"
    if "mpich" in words or "mvapich" in words:
        return "mpich"
    return None


def external_env(
    ext: External, folder: Path
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(setenv, prepend) of a compiler or MPI module whose wrappers are in `folder` (absolute,
    through the tree's link): PATH gets the folder; CC/CXX/FC (MPICC/...) name the wrappers."""
    made = {w.real: w.name for w in reversed(wrappers(ext))}  # a command's first name
    setenv = []
    for role, real in sorted(ext.commands.items()):
        if role in ENV_OF_ROLE and real in made:
            setenv.append((ENV_OF_ROLE[role], str(folder / made[real])))
    return setenv, [("PATH", str(folder))]


def mpi_compiler_env(
    mpi: External, compiler: External, folder: Path | None
) -> list[tuple[str, str]]:
    """What an MPI module at `compiler`'s level sets so that its wrappers (mpicc, ...) run that
    compiler: OMPI_CC/OMPI_CXX/OMPI_FC (Open MPI) or MPICH_CC/... (MPICH), naming the
    compiler's wrappers in `folder`, or its own commands when there are no wrappers (None).
    Nothing for an MPI of another flavour."""
    flavour = mpi_flavour(mpi)
    if flavour is None:
        return []
    names = {w.real: w.name for w in reversed(wrappers(compiler))}
    setenv = []
    for role, variable in MPI_COMPILER_VARIABLES[flavour].items():
        real = compiler.commands.get(role)
        if real:
            setenv.append((variable, str(folder / names[real]) if folder else real))
    return setenv


@dataclass(frozen=True)
class Folders:
    """An artifact's prefix as planning its module looks at it, from one listing of the
    prefix (`scan`): the folders right in it (`top`; a link to a folder counts) and the `-l`
    names of the libraries in its `lib/` and `lib64/` (`libs`, as `libraries` gives them).
    A site plans tens of thousands of modules: a stat per folder asked about adds up."""

    prefix: Path
    top: frozenset[str]
    libs: tuple[tuple[str, tuple[str, ...]], ...]  # ("lib", names), ("lib64", names)

    def has(self, rel: str) -> bool:
        """Whether the folder `rel` (`bin`, `share/man`) exists in the prefix: deeper ones
        are stat'ed only when their top folder exists."""
        head, _sep, rest = rel.partition("/")
        return head in self.top and (not rest or os.path.isdir(f"{self.prefix}/{rel}"))


def scan(prefix: Path) -> Folders:
    """`prefix` listed once (a missing or unreadable prefix has no folders)."""
    try:
        with os.scandir(prefix) as it:
            top = frozenset(e.name for e in it if _is_dir(e))
    except OSError:
        top = frozenset()
    libs = tuple((d, tuple(libraries(prefix / d)) if d in top else ()) for d in ("lib", "lib64"))
    return Folders(prefix, top, libs)


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether `entry` is a folder or a link to one (as Path.is_dir: False when unreadable)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def package_env(name: str, found: Folders, cfg: CompileConfig) -> list[tuple[str, str]]:
    """What a package module prepends for compiling against it: CPATH (`include/`),
    LIBRARY_PATH and LD_RUN_PATH (`lib/`, `lib64/` when they hold libraries), as `cfg` and its
    `off_for` allow; `found` is the artifact's prefix (scan). LD_RUN_PATH gives a RUNPATH to
    links that name no -rpath themselves, whatever compiler runs them; the compiler wrappers
    add one to every link."""
    if name in cfg.off_for:
        return []
    prefix = found.prefix
    prepend = []
    if cfg.cpath and found.has("include"):
        prepend.append(("CPATH", str(prefix / "include")))
    for lib, names in found.libs:
        if cfg.library_path and names:
            prepend.append(("LIBRARY_PATH", str(prefix / lib)))
            if cfg.rpath:
                prepend.append(("LD_RUN_PATH", str(prefix / lib)))
    return prepend


def libraries(folder: Path) -> list[str]:
    """The names `-l` takes for the libraries in `folder` (`libnetcdf.so` -> `netcdf`), sorted;
    static-only libraries too."""
    if not folder.is_dir():
        return []
    names = {m[1] for p in folder.iterdir() if (m := LIBRARY_FILE.fullmatch(p.name))}
    return sorted(names)


def compile_hint(name: str, found: Folders, with_mpi: bool, cfg: CompileConfig) -> str:
    """One line for help: how to compile a program against the package `name` whose prefix
    is `found` (scan) (`mpicc prog.c -lnetcdf`; `mpifort prog.f90 ...` for Fortran modules,
    first when it has no C headers), "" when it has no library or `cfg` does not make the
    plain command work (no CPATH or LIBRARY_PATH for it; Fortran modules need the
    wrappers)."""
    libs = [f"-l{n}" for _d, names in found.libs for n in names]
    if not libs or name in cfg.off_for or not (cfg.cpath and cfg.library_path):
        return ""
    cc, fc = ("mpicc", "mpifort") if with_mpi else ("cc", "gfortran")
    include = found.prefix / "include"
    c_headers = found.has("include") and any(include.rglob("*.h"))
    fortran = cfg.wrappers and found.has("include") and any(include.rglob("*.mod"))
    hints = [f"{cc} prog.c {' '.join(libs)}"] if c_headers or not fortran else []
    hints += [f"{fc} prog.f90 {' '.join(libs)}"] if fortran else []
    return ", or ".join(hints)
