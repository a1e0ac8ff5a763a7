"""The one way to hold an flock(2) lock on a file (shared or exclusive, waiting when another
process holds it), and to ask whether another process holds one. flock rather than
filelock where a lock must be shared (the store's GC lock) or cheap to import (the lock of
the profile links, taken on every switch)."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def flocked(
    path: Path, exclusive: bool = True, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold an flock on `path` (made, mode 0644, if missing; its folder must exist; opened
    read-only when it may not be written) for the block: exclusive, or shared with other
    shared holders. `on_wait()` is called once when another process holds it and we wait.
    The lock goes with the file descriptor, so a killed process leaves none behind. Raises
    OSError when the file cannot be opened; a signal while waiting raises as its handler
    does (Ctrl-C: KeyboardInterrupt)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:  # another user's lock file, a read-only folder: flock needs no write
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def held_elsewhere(path: Path | str) -> bool:
    """Whether another process holds an flock on the file `path` now (the lock taken to look
    is dropped at once). Raises OSError when it cannot be opened (FileNotFoundError: none)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
