"""Group and mode of what a site publishes: readable by the site's users, writable by none."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from ..errors import HitError


def apply(root: Path, group: str | None, mode: int, read_only: bool) -> None:
    """Give `root` and everything below it `group`, and at most `mode` (directories and
    executables) or `mode` without execute bits (other files); with `read_only`, nobody may
    write. Symlinks are left alone (their mode means nothing on Linux). Bottom up, `root`
    last: a root that has its group and mode has them whole, even after a killed run."""
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise HitError(f"permissions: there is no group {group!r} on this machine") from None
    write_mask = 0o222 if read_only else 0o022
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*dirnames, *filenames, None]:
            path = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            if gid != -1 and st.st_gid != gid:
                os.chown(path, -1, gid)
            executable = stat.S_ISDIR(st.st_mode) or st.st_mode & 0o100
            want = (mode if executable else mode & 0o666) & ~write_mask
            if stat.S_ISDIR(st.st_mode):
                want |= 0o700 if not read_only else 0o500  # the owner can always traverse
            if stat.S_IMODE(st.st_mode) != want:
                os.chmod(path, want)
