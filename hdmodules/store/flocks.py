"""The one way to hold an flock(2) lock on a file (shared or exclusive, waiting when another
process holds it), and to ask whether another process holds one: the store's locks (its GC
lock, each artifact's, the profile links'). flock rather than filelock there, as a lock must
be shared (the GC lock) or cheap to import: every profile switch takes the profile
artifact's lock and the links' lock, and filelock's import cost 24 ms of a 5,000-package
switch (issue 18; it takes the same flock on the same file, so a hit that still locks with
filelock waits for this one and the other way round)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threading import Event


class Stopped(Exception):
    """A wait for a lock that ended because its `stop` event was set."""


POLL = 0.1  # seconds between tries of a lock while a `stop` event may end the wait


@contextmanager
def flocked(
    path: Path | str,
    exclusive: bool = True,
    on_wait: Callable[[], None] | None = None,
    stop: Event | None = None,
    wait: bool = True,
) -> Iterator[None]:
    """Hold an flock on `path` (made, mode 0644, if missing; its folder must exist; opened
    read-only when it may not be written; never through a symlink, as filelock opens it:
    one planted in a shared lock folder would make or lock any file the caller may; never
    anything but a plain file: `_open`) for the block: exclusive, or shared with other
    shared holders. `on_wait()` is called once when another process holds it and we wait.
    `stop` (a threading.Event) ends a wait within POLL seconds of being set, raising
    Stopped: a Ctrl-C reaches the main thread only, and a thread waiting must end too.
    Without `wait`, another holder raises BlockingIOError at once (for work that may as
    well be done later, under the lock: assemble.write_ahead). The
    lock goes with the file descriptor, so a killed process leaves none behind. Raises
    OSError when the file cannot be opened; a signal while waiting raises as its handler
    does (Ctrl-C: KeyboardInterrupt)."""
    try:
        fd = _open(path, os.O_RDWR | os.O_CREAT)
    except OSError as e:  # another user's lock file, a read-only folder: flock needs no write
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            fd = _open(path, os.O_RDONLY)
        except FileNotFoundError:  # none to lock, and none may be made: say why
            raise e from None
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise
            if on_wait:
                on_wait()
            if stop is None:
                fcntl.flock(fd, mode)
            else:
                _poll(fd, mode, stop)
        yield
    finally:
        os.close(fd)


def _open(path: Path | str, flags: int) -> int:
    """A descriptor of the lock file `path` (`flags`: O_RDWR | O_CREAT, or O_RDONLY; made
    with mode 0644), never through a symlink (OSError ELOOP) and never of anything but a
    plain file: opened without waiting (a FIFO planted in a lock folder would block the
    open for ever: `hit gc` held the store's lock meanwhile), then refused (OSError)."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        why = "a symlink, where a plain lock file should be"
        raise OSError(errno.ELOOP, why, str(path)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a plain file, as a lock file should be", str(path))
    return fd


def _poll(fd: int, mode: int, stop: Event) -> None:
    """Take the flock `mode` on `fd`, trying every POLL seconds until `stop` is set (then
    raise Stopped)."""
    while True:
        if stop.wait(POLL):
            raise Stopped
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            continue


def held_elsewhere(path: Path | str) -> bool:
    """Whether another process holds an flock on the file `path` now (the lock taken to look
    is dropped at once). Raises OSError when it cannot be opened (FileNotFoundError: none)."""
    fd = _open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
