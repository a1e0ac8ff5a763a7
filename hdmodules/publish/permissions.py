"""Group and mode of what a site publishes: readable by the site's users, writable by none."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from ..errors import HitError


def group_id(group: str | None) -> int:
    """The id of the group named `group`; -1 (leave the group alone) for None. Raises
    HitError when there is no such group."""
    if group is None:
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise HitError(f"permissions: there is no group {group!r} on this machine") from None


def wanted(mode: int, folder: bool, executable: bool, read_only: bool) -> int:
    """The permission bits `apply` gives a folder (`folder`), an executable file or another
    file under the site's `mode`: `mode` for folders and executables, without its execute
    bits for other files; with `read_only`, nobody may write; the owner can always traverse
    a folder (and, not `read_only`, write it)."""
    write_mask = 0o222 if read_only else 0o022
    bits = (mode if folder or executable else mode & 0o666) & ~write_mask
    if folder:
        bits |= 0o700 if not read_only else 0o500
    return bits


def apply(root: Path, group: str | None, mode: int, read_only: bool) -> None:
    """Give `root` and everything below it `group`, and at most `mode` (directories and
    executables) or `mode` without execute bits (other files); with `read_only`, nobody may
    write (`wanted`). Symlinks are left alone (their mode means nothing on Linux). Bottom up,
    `root` last: a root that has its group and mode has them whole, even after a killed run."""
    gid = group_id(group)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*dirnames, *filenames, None]:
            path = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            if gid != -1 and st.st_gid != gid:
                os.chown(path, -1, gid)
            folder = stat.S_ISDIR(st.st_mode)
            want = wanted(mode, folder, bool(st.st_mode & 0o100), read_only)
            if stat.S_IMODE(st.st_mode) != want:
                os.chmod(path, want)
