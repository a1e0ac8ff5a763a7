"""One GNU make jobserver per build run: `-j N` is a budget of N CPUs for all its builds.

The pool is a FIFO in a private temporary folder (0700, the FIFO 0600) holding N - 1 tokens
(one byte each); the Nth is the implicit token of whoever runs first. The scheduler holds
one CPU per package build it runs (the first build the implicit one, each further
concurrent build a token it takes from the FIFO and gives back when the build ends), and a
`make` inside a build takes its extra jobs' tokens from the same FIFO, through MAKEFLAGS
(`-jN --jobserver-auth=...`). So at most N jobs run at once across every build of the run.

How a build is told where the pool is depends on its make (the GNU make manual, "POSIX
Jobserver Interaction"): make 4.4 and later (and ninja 1.13+, cargo) take
`--jobserver-auth=fifo:PATH`; make 4.0 to 4.3 (Debian bookworm's) only the pipe form
`--jobserver-auth=R,W`, file descriptors it inherits, and stops on the fifo form ("invalid
--jobserver-auth string"). Both name the same FIFO: the pipe form's descriptors are ours,
opened on it and passed to the build process (see `for_make`). The descriptors sit at 10
and above, clear of the 3..9 that shell scripts (autoconf's configure: 5, 6, 7) use.

Tokens a build's make takes it gives back when its jobs end; a make killed while holding
some (SIGKILL, the OOM killer) cannot. So whenever no build is running, the scheduler counts
the FIFO and tops it up to N - 1 (`refill`): nothing of a finished build runs any more (the
builder kills its leftovers before it returns), so every token is then in the FIFO. (GNU
make's own top-level make counts the same way when it exits.)

A run holds an flock on a file in its folder (`HELD`) for as long as it lives; the kernel
lets it go when the run ends, however it ends. A run killed with SIGKILL cannot remove its
folder, so every run that opens a jobserver first removes the folders whose lock it can take
(`remove_left_behind`): never one of a run still alive, whatever machine, container or pid
namespace it runs in (flock is the kernel's, and NFS's lock manager's across machines).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import HitError
from ..options import MAX_CPUS
from ..runner import query
from ..store.flocks import held_elsewhere

PREFIX = "hit-jobserver-"  # its folder in TMPDIR: PREFIX and random letters (mkdtemp)
HELD = "held"  # in that folder: the file its run holds an flock on while it lives
LEFT_AFTER = 60.0  # seconds: a folder without HELD this old was left (made before HELD was)
TOKEN = b"+"  # what GNU make writes; any byte does
FIRST_FD = 10  # the descriptors builds inherit sit at or above this
FIFO_SINCE = (4, 4)  # the first GNU make that takes --jobserver-auth=fifo:PATH


@dataclass(frozen=True)
class MakeFlags:
    """What one build gets: `makeflags`, its MAKEFLAGS, and `fds`, the descriptors it must
    inherit (empty for the fifo form)."""

    makeflags: str
    fds: tuple[int, ...] = ()


def make_version(make: str) -> tuple[int, ...] | None:
    """The version of the GNU make at path `make` (`make --version`'s first line, e.g. "GNU
    Make 4.3" -> (4, 3)); None when it is not GNU make or does not answer."""
    try:
        out = query([make, "--version"], env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}).out
    except (HitError, OSError):  # not a make we can ask
        return None
    m = re.match(r"GNU Make (\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else None


def auth_form(version: tuple[int, ...] | None) -> str:
    """`fifo` when a make of `version` takes --jobserver-auth=fifo:PATH (4.4 and later),
    else `pipe` (make 4.0-4.3; an unknown make too: every GNU make from 4.0 takes R,W)."""
    return "fifo" if version is not None and version >= FIFO_SINCE else "pipe"


class Jobserver:
    """The run's pool of `cpus` CPUs (see the module docstring). Thread-safe. Use `open`
    and `close` (or `with`)."""

    def __init__(self, cpus: int) -> None:
        self.cpus = cpus
        remove_left_behind(Path(tempfile.gettempdir()))
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX))  # 0700
        new = self.folder / f".{HELD}"  # locked before it is HELD: no sweep takes it between
        self._held = os.open(new, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._held, fcntl.LOCK_EX)
        os.rename(new, self.folder / HELD)
        self.fifo = self.folder / "fifo"
        os.mkfifo(self.fifo, 0o600)
        read = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)  # before the writer: no wait
        write = os.open(self.fifo, os.O_WRONLY)
        self.read_fd = _high(read)  # non-blocking: make sets its own so too
        self.write_fd = _high(write)
        self._forms: dict[str, str] = {}  # make's real path -> its form, asked once a run
        self._lock = threading.Lock()
        os.write(self.write_fd, TOKEN * (cpus - 1))

    def __enter__(self) -> Jobserver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        """The FIFO's read end (for select: readable when a token may be taken)."""
        return self.read_fd

    def try_acquire(self) -> bool:
        """Take one token if the FIFO holds one, at once; False if not."""
        try:
            return len(os.read(self.read_fd, 1)) == 1
        except BlockingIOError:
            return False

    def release(self) -> None:
        """Give one token back."""
        os.write(self.write_fd, TOKEN)

    def refill(self) -> int:
        """When no build of the run is running (so every token should be in the FIFO): count
        the tokens, put back those a killed make kept, and return how many were missing."""
        have = 0
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.read_fd, 4096):
                have += len(chunk)
        os.write(self.write_fd, TOKEN * (self.cpus - 1))
        return max(0, self.cpus - 1 - have)

    def for_make(self, path: str) -> MakeFlags:
        """MAKEFLAGS (and descriptors) for a build whose PATH is `path` (colon-separated):
        the form its first `make` understands (asked once per make a run)."""
        make = shutil.which("make", path=path) or shutil.which("gmake", path=path)
        real = os.path.realpath(make) if make else ""
        with self._lock:
            form = self._forms.get(real)
            if form is None:
                form = self._forms[real] = auth_form(make_version(real) if real else None)
        if form == "fifo":
            return MakeFlags(f" -j{self.cpus} --jobserver-auth=fifo:{self.fifo}")
        auth = f"{self.read_fd},{self.write_fd}"
        return MakeFlags(f" -j{self.cpus} --jobserver-auth={auth}", (self.read_fd, self.write_fd))

    def close(self) -> None:
        """Close the descriptors and remove the FIFO and its folder."""
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(self._held)


def remove_left_behind(temp: Path, now: float | None = None) -> list[Path]:
    """Remove the jobserver folders in `temp` (names starting with PREFIX, folders of the
    caller's user) that runs killed with SIGKILL left: those whose `HELD` file's lock can be
    taken at once (its run has ended), and those without one LEFT_AFTER seconds after they
    were made (`now`: seconds since the epoch, time.time() if None). Returns them. A folder
    of a run still alive is never removed."""
    import time

    now = time.time() if now is None else now
    gone = []
    try:
        found = [e for e in os.scandir(temp) if e.name.startswith(PREFIX)]
    except OSError:
        return gone
    uid = os.getuid()
    for entry in found:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:  # removed meanwhile
            continue
        if not entry.is_dir(follow_symlinks=False) or info.st_uid != uid:
            continue
        try:
            left = not held_elsewhere(f"{entry.path}/{HELD}")  # its run holds it while alive
        except FileNotFoundError:  # no HELD: being made right now, or left by older code
            left = now - info.st_mtime > LEFT_AFTER
        except OSError:
            continue
        if left:
            shutil.rmtree(entry.path, ignore_errors=True)
            gone.append(Path(entry.path))
    return gone


def _high(fd: int) -> int:
    """`fd` moved to FIRST_FD or above (close-on-exec: only builds given it inherit it)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FIRST_FD)
    os.close(fd)
    return high


def open_jobserver(cpus: int) -> Jobserver | None:
    """The run's jobserver for a budget of `cpus` CPUs; None for one CPU (every build one
    at a time, each with MAKEFLAGS -j1: nothing to share). Raises HitError for more than
    MAX_CPUS (from `-j` or a config's `jobs:`, before anything builds)."""
    if cpus > MAX_CPUS:
        raise HitError(f"-j {cpus}: a build run's CPU budget is at most {MAX_CPUS:,} CPUs")
    return Jobserver(cpus) if cpus > 1 else None
