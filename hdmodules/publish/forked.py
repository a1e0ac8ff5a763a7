"""Half of a module tree's work in a forked child, on the second core (issue 18: a site's
two trees are 40,000 files): `start(fn, *args)` forks a child that runs `fn(*args)` and
sends back what it returns (marshal: bytes, strings, numbers, None and containers of them),
while this process does the other half; `Child.result()` waits for it.

The child shares what this process had built before the fork (copy on write): nothing is
sent to it. It never returns into this process's code: it leaves with os._exit (no atexit
functions, no buffers flushed twice). A HitError in the child comes back as a HitError with
its message, an OSError as the same OSError (errno, reason, file name); anything else (a bug:
its traceback goes to stderr) or a child that is killed is a HitError naming how it ended,
never silently a success. When no child can be forked (no memory, too many processes),
`fn` runs here.
No fork while another thread runs (`hdmod build` may still have its build threads and
committer: a fork copies only the forking thread, and locks the others hold stay locked in
the child): then `fn` runs here, before `start` returns.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import HitError

CHUNK = 1 << 20  # bytes read from the child's pipe at once


class Child:
    """A forked child running a function (`start`), or the function's result when it ran in
    this process."""

    def __init__(self, pid: int | None, fd: int | None, value: Any = None) -> None:
        self._pid, self._fd, self._value = pid, fd, value
        self.pid = pid  # the child's process id; None when the function ran here

    def result(self) -> Any:
        """What the function returned. Raises what the child raised (HitError with its
        message, OSError), or HitError naming its exit status or signal."""
        if self._pid is None:
            return self._value
        pid, fd = self._pid, self._fd
        self._pid = self._fd = None
        chunks, whole = [], False
        try:
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
            whole = True
        finally:  # (interrupted: the child is stopped, not waited for)
            os.close(fd)
            if not whole:
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        data = b"".join(chunks)
        code = os.waitstatus_to_exitcode(status)
        if code == 0 and data[:1] == b"R":
            return marshal.loads(data[1:])
        if code == 1 and data[:1] == b"E":
            raise HitError(data[1:].decode(errors="replace"))
        if code == 1 and data[:1] == b"O":
            raise OSError(*marshal.loads(data[1:]))
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        raise HitError(f"a forked helper of hdmod ended with {how} without an answer")

    def cancel(self) -> None:
        """Stop the child (if any) and reap it; its result is lost. For a caller leaving on
        an error of its own."""
        if self._pid is not None:
            os.kill(self._pid, signal.SIGKILL)
            os.close(self._fd)
            os.waitpid(self._pid, 0)
            self._pid = self._fd = None


def start(fn: Callable[..., Any], *args: Any) -> Child:
    """`fn(*args)` in a forked child (or here: see the module's docstring); its result with
    `.result()`. Call `.result()` or `.cancel()` on every path, or the child stays a zombie
    until this process ends."""
    if threading.active_count() > 1:
        return Child(None, None, fn(*args))
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return Child(None, None, fn(*args))
    if pid != 0:
        os.close(write)
        return Child(pid, read)
    code = 2  # the child: never returns (a traceback, if any, printed before it leaves)
    try:
        os.close(read)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by hdmod: here too
                signal.signal(signum, signal.SIG_DFL)  # stopped with hdmod, without a word
        try:
            answer, status = b"R" + marshal.dumps(fn(*args)), 0
        except HitError as e:
            answer, status = b"E" + str(e).encode(errors="replace"), 1
        except OSError as e:
            answer, status = b"O" + marshal.dumps((e.errno, e.strerror, e.filename)), 1
        with open(write, "wb") as out:
            out.write(answer)
        code = status  # (only once the whole answer is sent)
    except BrokenPipeError:
        pass  # this process is gone: nobody waits for the answer
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)
