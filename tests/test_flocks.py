"""The store's one flock helper (store/flocks.py): every artifact's lock, the GC lock and the
profile links' lock go through it."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import pytest

from hdmodules.store import flocks
from hdmodules.store.flocks import Stopped, flocked, held_elsewhere


def _holder(path) -> subprocess.Popen:
    """Another process holding an exclusive flock on `path` until its stdin closes."""
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_lock_file_planted_as_a_symlink_is_refused_and_its_target_never_made(tmp_path):
    """A symlink in a shared lock folder would make the caller (root, for a site) create or
    lock any file it names: refused as filelock refuses it (ELOOP), nothing made."""
    (tmp_path / "locks").mkdir()
    victim = tmp_path / "victim" / "created"
    victim.parent.mkdir()
    (tmp_path / "locks" / "a.lock").symlink_to(victim)
    lock = tmp_path / "locks" / "a.lock"
    with pytest.raises(OSError, match="a symlink, where a plain lock") as caught, flocked(lock):
        pass
    assert caught.value.errno == errno.ELOOP
    assert not victim.exists()


def test_a_lock_that_may_not_be_made_says_why(tmp_path, monkeypatch):
    """No lock file, and a folder that may not be written (faked: the test runs as root):
    the error is the folder's refusal, not the missing file of the read-only retry."""
    real = os.open
    (tmp_path / "there.lock").touch()

    def refuse_creating(path, flags, *rest):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *rest)

    monkeypatch.setattr(flocks.os, "open", refuse_creating)
    with pytest.raises(PermissionError), flocked(tmp_path / "missing.lock"):
        pass
    with flocked(tmp_path / "there.lock"):  # another user's lock file: locked read-only
        monkeypatch.setattr(flocks.os, "open", real)
        assert held_elsewhere(tmp_path / "there.lock")


def test_a_wait_ends_once_its_stop_is_set_and_the_lock_is_then_free(tmp_path):
    lock = tmp_path / "a.lock"
    holder = _holder(lock)
    try:
        stop, waited, outcome = threading.Event(), threading.Event(), []

        def wait() -> None:
            try:
                with flocked(lock, on_wait=waited.set, stop=stop):
                    outcome.append("held")
            except Stopped:
                outcome.append("stopped")

        thread = threading.Thread(target=wait)
        thread.start()
        assert waited.wait(10)
        time.sleep(0.3)  # it waits for as long as the other holds it
        assert not outcome
        start = time.monotonic()
        stop.set()
        thread.join(10)
        assert outcome == ["stopped"] and time.monotonic() - start < 2 * flocks.POLL + 0.5
    finally:
        holder.stdin.close()
        holder.wait()
    assert not held_elsewhere(lock)  # the stopped wait's descriptor was closed


def test_a_fifo_planted_as_a_lock_file_is_refused_at_once_not_waited_on(tmp_path):
    """Opening a FIFO blocks until a writer comes: `hit gc` asked whether a build held such
    a "lock" while it held the store's lock, and hung, every build waiting behind it."""
    fifo = tmp_path / "a.lock"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(OSError, match="not a plain file"), flocked(fifo):
        pass
    with pytest.raises(OSError, match="not a plain file"):
        held_elsewhere(fifo)
    assert time.monotonic() - start < 5
