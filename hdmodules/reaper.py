"""Run build commands so that none of their processes outlives them.

Each build runs under its own reaper: a process that makes itself a child subreaper (prctl
PR_SET_CHILD_SUBREAPER, Linux 3.4+), starts the command and waits for it. Every process the
command leaves behind, however it detached (`&`, `nohup`, `setsid`, a double fork, `env -i` to
drop HIT_BUILD_ID), is re-parented to the reaper instead of to init when its parent exits.
When the command exits, the reaper kills its children with SIGKILL and reaps them, again and
again (their children become its children in turn) until it has none, then exits with the
command's exit status (128 + the signal if it was killed). SIGTERM, SIGINT and SIGHUP to the
reaper do the same at once. This is what a PID namespace or a cgroup would give, without root.

Two ways to run it, the same reaper either way:
- `python -I -S reaper.py COMMAND...`: one reaper, for one command (by hand, tests).
- `Reaper().spawn(...)`, what `hit build` uses: the first spawn starts one server per `hit`
  process (`reaper.py --serve`, single-threaded, a few milliseconds once), whose reapers are
  forks of it, made before the requests come, each serving one build at a time and then
  the next (`serve`: one always on standby), which they start with posix_spawn. For
  /bin/true, from request to exit code, at load 6: 3.8 ms, against 8.2 ms with a reaper
  forked for each build and 1.0 ms for a plain subprocess (a fork of a Python process
  costs 2-5 ms of CPU on this machine; a new interpreter 20 ms or more). The request goes
  over a Unix socket with the build's file descriptors (SCM_RIGHTS); the reaper tells its
  pid and, at the end, the exit status over a socket of that build. `hit` itself cannot
  fork a reaper: it runs builds in threads, and a fork of a threaded process may inherit
  locks held by other threads. A `hit` that is killed (SIGKILL) takes its builds with it:
  the server ends when hit's end of the socket closes, and every reaper with the server.

A reaper knows when its build left nothing: once the command is reaped, waitpid(-1) fails
with ECHILD exactly when no descendant is alive (a live one would be its child or have a
live parent below it). Only then does it scan /proc for its children, to kill them.

It is a standalone file (stdlib only, no package imports) so the server starts in a few
milliseconds and runs the same under any interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import gc
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
IOPRIO_GET = {"x86_64": 252, "aarch64": 31, "riscv64": 31, "ppc64le": 274, "s390x": 283}
CHANGED = "its server was changed by another process (its limits, nice or I/O priority)"
STALE = "this reaper was changed by another process while it waited (its limits, nice ...)"
MAX_REQUEST = 1 << 20  # bytes of one request (argv, cwd, env as JSON)
MAX_FDS = 64  # file descriptors one request may pass
MAX_STALE = 64  # reapers changed while they waited one request is offered to, at most


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


def _no_children() -> bool:
    """Reap exited children; True when none is left at all (ECHILD), without reading /proc."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False


def kill_all() -> None:
    """Kill and reap every child until there is none (grandchildren come up in turn)."""
    while not _no_children():
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, 0)


def _become_subreaper() -> str | None:
    """Make this process a child subreaper; the reason if it cannot."""
    libc = _libc()
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def _report(status: int | None, code: int) -> int:
    """Write "exit CODE" to the descriptor `status` (a served build's; None: nothing to
    tell) and return `code`."""
    if status is not None:
        with contextlib.suppress(OSError):
            os.write(status, f"exit {code}\n".encode())
    return code


def _stop_on_signals(status: int | None) -> None:
    """From now on SIGTERM, SIGINT and SIGHUP kill every process of the build, report
    128 + the signal (`_report`) and end this process: set before the command starts, so
    that no signal finds a build without its reaper's handler."""

    def stop(signum, _frame):
        kill_all()
        os._exit(_report(status, 128 + signum))

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)


def _reap(child: int | None, status: int | None = None) -> int:
    """Wait for `child`, then kill every process left; its exit code (128 + signal), also
    written as "exit CODE" to the descriptor `status` if given (a served build's). A
    `child` of None could not be started: 127, as a shell says. (Signals: _stop_on_signals,
    before the child started.)"""
    if child is None:
        return _report(status, 127)
    while True:
        try:
            _pid, exit_status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    kill_all()
    code = os.waitstatus_to_exitcode(exit_status)
    return _report(status, code if code >= 0 else 128 - code)


def main(argv: list[str]) -> int:
    """Run `argv` as a child subreaper; returns its exit code (see the module docstring)."""
    if not argv:
        print("usage: reaper.py COMMAND [ARG...] | reaper.py --serve FD", file=sys.stderr)
        return 2
    if argv[0] == "--serve" and len(argv) == 2:
        serve(int(argv[1]))
        return 0
    why = _become_subreaper()
    if why:
        print(f"reaper: cannot become a child subreaper: {why}", file=sys.stderr)
        return 125
    _stop_on_signals(None)
    pid = os.fork()
    if pid == 0:
        try:
            _default_signals()
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    return _reap(pid)


def _default_signals() -> None:
    """Before exec: the signals Python ignores (SIGPIPE, SIGXFSZ) back to their defaults, as
    subprocess does, so `yes | head` in a build ends as in a shell; and the reaper's own
    (_stop_on_signals), which the command must not run."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


# ---- the server: one per `hit` process, a forked reaper per build at once ----


def serve(fd: int) -> None:
    """Serve requests on the SOCK_SEQPACKET socket `fd` until its other end closes (`hit`
    ended, or was killed). A request is JSON {"argv", "cwd", "env", "fds"} with file
    descriptors: the first is the build's status socket, then one for each number in "fds"
    (0, 1, 2 and any extra ones the build gets under the same numbers).

    The server itself never reads the socket: its forked reapers do (_reaper), each one
    build at a time, and each goes back to the socket for the next once nothing of its build
    is left. Each is ready before a request comes (dying with the server, a session leader,
    a child subreaper), and the server keeps one of them idle: when the last idle one takes
    a request, it forks another, beside the build that reaper starts. A request thus finds
    its reaper waiting, which starts the build with posix_spawn (no copy of a Python
    process on the way: _build); a run of builds one at a time forks two reapers in all
    (a fork of this server costs 2-5 ms of CPU on a loaded machine). The reapers tell the
    server on a pipe: ".PID" took a request, "+PID" idle again, "ePID" the socket's end;
    a reaper that died (killed) is seen on its pidfd.

    Every reaper dies with the server (PR_SET_PDEATHSIG: SIGTERM, which kills its whole
    build), and the server ends when `hit` does: a `hit` killed with SIGKILL leaves no build
    running. A reaper whose build changed it from the outside (its limits, nice value:
    _inherited) serves no more, one changed while it waited serves none (STALE: hit asks
    another), and one forked after a build changed the server serves none (CHANGED: hit
    then starts another server; _reaper). The server holds no descriptor of
    `hit`'s but `fd` (subprocess closes the others: no artifact lock), and a build only
    what its request passed."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked reapers reap themselves
    gc.disable()  # a few objects at most: no collection touching (copying) a fork's pages
    os.set_inheritable(fd, False)  # no build gets the requests' socket
    server = os.getpid()
    inherited = _inherited()  # as hit started it: what every reaper must be (_reaper)
    told, tell = os.pipe()
    idle: set[int] = set()
    reapers: dict[int, int] = {}  # pid -> its pidfd
    pending = b""
    while True:
        if not idle:
            pid = os.fork()
            if pid == 0:
                code = 125
                try:
                    os.close(told)
                    for pidfd in reapers.values():
                        os.close(pidfd)
                    code = _reaper(fd, tell, server, inherited)
                finally:  # never back into this loop, whatever happened
                    os._exit(code)
            idle.add(pid)
            reapers[pid] = os.pidfd_open(pid)
        ready = select.select([told, *reapers.values()], [], [])[0]
        for pid, pidfd in list(reapers.items()):
            if pidfd in ready:  # it ended (killed, or it could not serve)
                os.close(reapers.pop(pid))
                idle.discard(pid)
        if told in ready:
            pending += os.read(told, 4096)
            *lines, pending = pending.split(b"\n")
            for line in lines:
                word, pid = line[:1], int(line[1:])
                if word == b"e":  # the other end closed: hit is done
                    return
                if pid in reapers:
                    (idle.add if word == b"+" else idle.discard)(pid)


def _reaper(fd: int, tell: int, server: int, inherited: tuple) -> int:
    """In a forked reaper of the server `server` (pid): get ready (dying with the server; a
    session of its own, so that killpg of its pid reaches the build; a child subreaper),
    then take requests from the socket `fd`, one at a time, each run to its end (_build),
    telling the server on the pipe `tell` (serve). `inherited` is what the server was
    when hit started it (_inherited): a reaper that is not so (a build changed the server,
    its reaper's parent, which every later reaper would inherit) serves no build: it
    answers CHANGED, and hit starts another server. Nor does one that is no longer so when
    a request comes (changed while it waited, by a build running beside it: each build
    sees its reaper's siblings): it answers STALE and ends, and hit asks another of the
    same server. Returns the exit code of this process: 0 at the socket's end."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    why = _die_with(server)
    if why is None and (cannot := _become_subreaper()):
        why = f"cannot become a child subreaper: {cannot}"
    os.setsid()
    if why is None and _inherited() != inherited:
        why = CHANGED  # the client starts another server (Reaper.spawn)
    me = os.getpid()
    sock = socket.socket(fileno=fd)
    while True:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, MAX_FDS)
        if not data:
            os.write(tell, f"e{me}\n".encode())
            return 0
        if why is None and _inherited() != inherited:  # changed while idle (a build beside
            why = STALE  # it, a daemon renicing): serves none, the client asks another
        if not _build(json.loads(data), fds, why, lambda: os.write(tell, f".{me}\n".encode())):
            return 125
        os.write(tell, f"+{me}\n".encode())  # first: its client may send the next already
        if _inherited() != inherited:  # a build changed it: ends before taking another
            return 0


def _inherited() -> tuple:
    """What of this reaper a build inherits and one of its processes could change from the
    outside, as any process of the same user may change another's (`prlimit --pid $PPID`,
    `renice -p $PPID`, `ionice -p $PPID`, `taskset -p`, `chrt -p`, /proc/PID/oom_score_adj,
    coredump_filter and autogroup): its resource limits, nice value, I/O priority, CPU
    affinity, scheduling policy, OOM score adjustment, core dump filter and the nice value
    of its session's autogroup (which its builds share). A reaper whose build changed any
    of these serves no more (the server forks a fresh one), so that one build never runs
    under limits another set. (Its umask, working folder, signals and descriptors no other
    process can change but through ptrace; _build restores what it changes itself.)"""
    limits = tuple(
        resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")
    )
    proc = []
    for name in ("oom_score_adj", "coredump_filter", "autogroup"):
        try:
            f = os.open(f"/proc/self/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            proc.append(b"")
            continue
        try:
            text = os.read(f, 256)
        finally:
            os.close(f)
        proc.append(text.partition(b" ")[2] if name == "autogroup" else text)  # not its id
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
    return limits, nice, _io_priority(), affinity, policy, *proc


def _io_priority() -> int | None:
    """This process's I/O priority (ioprio_get; None on a machine whose call number is not
    in IOPRIO_GET)."""
    number = IOPRIO_GET.get(os.uname().machine)
    if number is None:
        return None
    return _libc().syscall(number, 1, 0)  # IOPRIO_WHO_PROCESS, this process


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library (prctl, syscall), loaded once a process."""
    return ctypes.CDLL(None, use_errno=True)


def _die_with(server: int) -> str | None:
    """Have SIGTERM sent to this process when its parent, the server `server`, ends
    (PR_SET_PDEATHSIG); what went wrong if it cannot. A server already gone: SIGTERM now."""
    libc = _libc()
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return f"cannot be told of its server's end: {os.strerror(ctypes.get_errno())}"
    if os.getppid() != server:  # it ended before the prctl
        os.kill(os.getpid(), signal.SIGTERM)
    return None


def _build(request: dict, fds: list[int], why: str | None, took: Callable[[], object]) -> bool:
    """In the reaper taking `request`: run one build to its end and report on its status
    socket (`fds[0]`): "pid N" once it runs, then "exit CODE" (127: it could not be
    started, as a shell says); "error ..." instead when this reaper could not get ready
    (`why`: then False, this reaper serves no more). `took()` is called once the build
    started (or could not). The build gets exactly its descriptors, at their numbers
    (posix_spawn's file actions: everything of this reaper's is close-on-exec), and this
    reaper keeps none of them. Once every process of the build is gone, the reaper is as
    it was before (signals, working folder, descriptors): True."""
    status, passed = fds[0], dict(zip(request["fds"], fds[1:], strict=True))
    if why:
        took()
        os.write(status, f"error {why}\n".encode())
        return False
    os.write(status, f"pid {os.getpid()}\n".encode())
    floor = max([*passed, *passed.values(), status], default=2) + 1
    moved = {target: _move_up(f, floor) for target, f in passed.items()}  # above the targets
    status = _move_up(status, floor)
    _stop_on_signals(status)
    try:
        os.chdir(request["cwd"])
        argv = request["argv"]
        child = os.posix_spawn(
            argv[0],
            argv,
            request["env"],
            file_actions=[(os.POSIX_SPAWN_DUP2, f, target) for target, f in moved.items()],
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError:
        child = None
    took()
    for f in moved.values():
        os.close(f)
    os.chdir("/")  # the build folder is not kept in use
    _reap(child, status)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)  # idle: a SIGTERM (the server's end) just ends it
    os.close(status)
    return True


def _move_up(fd: int, floor: int) -> int:
    """`fd` moved to the lowest free number from `floor` up (close-on-exec); the new one."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return moved


class Build:
    """A build started by `Reaper.spawn`: `pid` is its reaper's (also its process group's)."""

    def __init__(self, pid: int, status: socket.socket) -> None:
        self.pid = pid
        self._status = status
        self._lock = threading.Lock()  # one reader of the status socket at a time
        self._code: int | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code (128 + signal if killed); None if `timeout` seconds passed first.
        -1 if the reaper itself died before it could tell (SIGKILL): the build's processes
        may still run, the caller must look for them (builder.kill_build_processes)."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return None
        try:
            if self._code is None:
                self._status.settimeout(timeout)
                self._code = _read_exit(self._status)
                if self._code is not None:
                    self._status.close()
            return self._code
        finally:
            self._lock.release()


def _read_exit(status: socket.socket) -> int | None:
    """The code of an "exit CODE" line on a reaper's status socket (after its "pid" line);
    -1 at its end without one, None when the socket's timeout passes first."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = status.recv(64)
        except TimeoutError:
            return None
        if not chunk:
            return -1
        data += chunk
    return int(data.split()[1])


class Reaper:
    """The client of one reaper server, shared by the threads of a `hit` process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._server: subprocess.Popen | None = None
        self._left: list[socket.socket] = []  # of servers a build changed, until hit ends

    def start(self) -> None:
        """Start the server now, without waiting for it (spawn would start it otherwise)."""
        with self._lock:
            self._connect()

    def _connect(self) -> socket.socket:
        """The server's socket, starting the server when there is none (or it died)."""
        if self._sock is None or self._server is None or self._server.poll() is not None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._server = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, "--serve", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C at the terminal reaches hit, not the server
            )
            theirs.close()
            self._sock = ours
        return self._sock

    def spawn(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        stdout: int,
        pass_fds: dict[int, int] | None = None,
    ) -> Build:
        """Start `argv` (an absolute path first) in `cwd` with exactly `env`, under a reaper of
        its own in a new session: stdin /dev/null, stdout and stderr to the descriptor
        `stdout`, and each descriptor of `pass_fds` (number in the build -> descriptor here)
        at its number. Returns once it runs. A server a build changed (CHANGED) is left to
        the builds it runs and another started, once; a reaper changed while it waited
        (STALE) ends, and another of the same server is asked. Raises OSError if it cannot
        be started."""
        extra = dict(pass_fds or {})
        request = json.dumps({"argv": argv, "cwd": cwd, "env": env, "fds": [0, 1, 2, *extra]})
        restarted = False
        for _attempt in range(MAX_STALE + 2):  # each stale reaper ends: the next is fresh
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with open(os.devnull, "rb") as devnull:
                fds = [theirs.fileno(), devnull.fileno(), stdout, stdout, *extra.values()]
                with self._lock:
                    try:
                        sock = self._connect()
                        socket.send_fds(sock, [request.encode()], fds)
                    except OSError:  # the server died (killed): start another once
                        self._sock = None
                        sock = self._connect()
                        socket.send_fds(sock, [request.encode()], fds)
            theirs.close()
            word, rest = _read_start(ours, argv[0])
            if word == "pid":
                return Build(int(rest), ours)
            ours.close()
            if rest == STALE:
                continue
            if rest != CHANGED or restarted:
                break
            restarted = True
            with self._lock:
                if self._sock is sock:  # not another thread's new one
                    self._left.append(sock)  # open: its end would end the builds it runs
                    self._sock = None
        raise OSError(f"the build reaper: {rest}")


def _read_start(status: socket.socket, program: str) -> tuple[str, str]:
    """The first line a reaper writes on a build's status socket, as (word, rest): ("pid",
    "N") or ("error", why). Raises OSError if the socket ends first."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = status.recv(1)
        if not chunk:
            status.close()
            raise OSError(f"the build reaper stopped before {program} started")
        line += chunk
    word, _, rest = line.decode().partition(" ")
    return word, rest.strip()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
