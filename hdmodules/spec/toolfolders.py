"""The folders a toolchain external owns: where its own headers and libraries live.

The link-metadata check (linkmeta.py) refuses `-L`/`-I` folders outside the store, except
these: a build with `CC=mpicc` may write Open MPI's `-I/usr/lib/x86_64-linux-gnu/openmpi/include`
into its `*-config` script, and a Fortran library's libtool archive names gcc's own
`-L/usr/lib/gcc/x86_64-linux-gnu/12`. A folder the host's libraries or headers live in
(`/usr/lib/x86_64-linux-gnu`, `/usr/include`), or one above them (`/usr`), is never an
external's own, even when its wrapper names it (MPICH's `-L/usr/lib/x86_64-linux-gnu`):
that would let every host library through.
"""

from __future__ import annotations

import os
from functools import cache

from ..elf import host_search_dirs, inside
from ..errors import HitError
from ..runner import query
from .externals import External, mpi_info, resolve_command

HOST_INCLUDE_DIRS = ("/usr/include", "/usr/local/include", "/usr/include/x86_64-linux-gnu")


def own_folders(ext: External) -> tuple[str, ...]:
    """The folders `ext` owns (absolute, normalised): its declared `prefix`; for an MPI the
    include and library folders its C wrapper names; for a compiler its private install
    folder (`CC -print-search-dirs`: gcc's `install:`, else the first `libraries:` entry).
    Host folders and folders above them are left out. A tool that cannot be run gives
    what its declaration says. Raises nothing."""
    found = [ext.prefix] if ext.prefix else []
    commands = ext.commands
    try:
        if ext.kind == "mpi" and "mpicc" in commands:
            found += _mpi_folders(resolve_command(commands["mpicc"]) or commands["mpicc"])
        elif "cc" in commands:
            found += _compiler_folders(resolve_command(commands["cc"]) or commands["cc"])
    except HitError:  # not runnable: the build itself will say so
        pass
    return tuple(d for d in dict.fromkeys(map(os.path.normpath, found)) if _not_host(d))


def _not_host(folder: str) -> bool:
    """Whether `folder` is absolute and neither a host library or include folder nor above
    one (its real path too)."""
    if not os.path.isabs(folder):
        return False
    host = (*host_search_dirs(), *HOST_INCLUDE_DIRS)
    return not any(inside(h, d) for d in {folder, os.path.realpath(folder)} for h in host)


@cache
def _mpi_folders(mpicc: str) -> tuple[str, ...]:
    info = mpi_info(mpicc)
    if info is None:
        return ()
    if info.flavor == "Open MPI":
        incdirs = query([mpicc, "--showme:incdirs"]).out.split()
    else:
        incdirs = [w[2:] for w in query([mpicc, "-show"]).out.split() if w.startswith("-I")]
    return (*incdirs, *info.libdirs)


@cache
def _compiler_folders(cc: str) -> tuple[str, ...]:
    out = query([cc, "-print-search-dirs"])
    if out.code != 0:
        return ()
    for line in out.out.splitlines():
        if line.startswith("install:"):
            return (line.split(":", 1)[1].strip(),)
    for line in out.out.splitlines():
        if line.startswith("libraries:"):
            first = line.split(":", 1)[1].strip().lstrip("=").split(":")[0]
            return (first,) if first else ()
    return ()
