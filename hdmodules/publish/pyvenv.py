"""A profile holding Python packages is a Python environment: `pyvenv.cfg` at its top names
the interpreter's folder (`home`), so `PROFILE/bin/python3` (a link to the interpreter)
starts with `sys.prefix` the profile and finds the packages in the profile's
`lib/pythonX.Y/site-packages`, and nothing of the host's (the venv rule of PEP 405, which
CPython applies to the path it was started by, before following links)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..hashing import sha256_file
from ..spec.externals import resolve_command
from ..store.layout import Store

if TYPE_CHECKING:
    from ..spec.resolve import Resolved

CONFIG = "pyvenv.cfg"


@dataclass(frozen=True)
class ProfilePython:
    """The interpreter of a profile: its folder (`home`) and the links the profile needs
    besides its packages' (the bin/python3 of an external interpreter)."""

    home: Path
    links: dict[str, Path] = field(default_factory=dict)


def profile_python(resolved: Resolved, store: Store) -> ProfilePython | None:
    """The interpreter of the profile `resolved`: the `python` package it holds, else the
    python external its Python packages were built with; None for a profile without one."""
    from ..spec.pythonenv import PYTHON  # not on a quick switch's path: it loads recipes

    held = resolved.profile_doc.artifacts
    if PYTHON in held:
        return ProfilePython(store.prefix(resolved.nodes[PYTHON].ref) / "bin")
    for name in held:
        ext = resolved.nodes[name].toolchain.get(PYTHON)
        command = resolve_command(ext.commands.get("python", "")) if ext else None
        if command:
            real = Path(os.path.realpath(command))
            return ProfilePython(real.parent, {"bin/python3": real, "bin/python": real})
    return None


def write_config(folder: Path, home: Path) -> dict[str, str]:
    """`folder/pyvenv.cfg` naming `home`, host packages left out; returns its manifest
    entry (path -> `f:<sha256>`)."""
    path = folder / CONFIG
    path.write_text(f"home = {home}\ninclude-system-site-packages = false\n")
    return {CONFIG: f"f:{sha256_file(path)}"}


def config_home(folder: Path) -> Path | None:
    """The `home` that `folder/pyvenv.cfg` names (None without one): the interpreter's
    folder of a profile."""
    try:
        lines = (folder / CONFIG).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            return Path(value.strip())
    return None
