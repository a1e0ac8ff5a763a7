"""The one way to replace a file or a link so that a reader sees the old one or the new one,
never a half-written one: write a temporary file (or make a temporary link) beside the target,
then rename it over the target (rename(2) is atomic within a filesystem).

Temporary names carry the process and thread id, so two processes (or two threads) writing the
same target never write into each other's temporary file; the last rename wins.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_atomic(target: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace `target` by a file holding `data` (text is written as UTF-8); `mode` (e.g.
    0o644) is set before the rename, so the file never appears with another mode, and the
    temporary file is created with no more than it (a private cache is never readable by
    others, not even while it is written). Raises OSError; the temporary file is removed on
    failure, and an error about it names `target` (`nodir/x.yaml`, not its temporary name)."""
    tmp = _temporary(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
        with open(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename == str(tmp):
            raise OSError(e.errno, e.strerror, str(target)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_link(link: Path, target: Path | str) -> None:
    """Point the symlink `link` at `target` atomically (a new link renamed over the old).
    Raises OSError."""
    tmp = _temporary(link)
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
