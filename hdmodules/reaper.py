"""Run one build command so that none of its processes outlives it.

`python -I reaper.py COMMAND...` makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER,
Linux 3.4+), starts COMMAND and waits for it. Every process COMMAND leaves behind, however it
detached (`&`, `nohup`, `setsid`, a double fork, `env -i` to drop HIT_BUILD_ID), is re-parented
to the reaper instead of to init when its parent exits. When COMMAND exits, the reaper kills its
children with SIGKILL and reaps them, again and again (their children become its children in
turn) until it has none, then exits with COMMAND's exit status (128 + the signal if it was
killed). SIGTERM, SIGINT and SIGHUP to the reaper do the same at once. This is what a PID
namespace or a cgroup would give, without needing root.

It is a standalone file (stdlib only, no package imports) so it starts in a few milliseconds and
runs the same under any interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    """Processes whose parent is this process (read from /proc/PID/stat, field 4)."""
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and int(fields[1]) == me:
            out.append(int(entry))
    return out


def kill_all() -> None:
    """Kill and reap every child until there is none (grandchildren come up in turn)."""
    while True:
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            if not _children():
                return


def main(argv: list[str]) -> int:
    """Run `argv` as a child subreaper; returns its exit code (see the module docstring)."""
    if not argv:
        print("usage: reaper.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        print(f"reaper: cannot become a child subreaper: {os.strerror(err)}", file=sys.stderr)
        return 125
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def stop(signum, _frame):
        kill_all()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    while True:
        try:
            _pid, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    kill_all()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.exit(code if code >= 0 else 128 - code)
