"""Running one build job: its folder, a clean environment, the artifact's prefix, a log, the ELF
check, and the commit into the store under the artifact's lock.

Everything a build needs comes in one value, a `buildjob.BuildJob`; the builder knows nothing
of recipes, profiles, externals or configuration.

What a build costs beyond its script (issue 18: at most 5 ms an artifact;
bench/bench_build_overhead.py measures it): a reaper forked ahead of the request and reused
build after build, which posix_spawns the script, not a new interpreter (reaper.py); no /proc
scan when the reaper saw every process of the build end; no process to lay out the
toolchain, and one toolchain folder for the builds that share their tools
(lay_out_toolchain); the log moved into the artifact, not copied (Store.describe); link
checks that open only files that can be ELF or metadata; and, under `hit build`, no flush and
no removal of the build folder between one build and the next: the run's group commit does both
in the background, several artifacts per flush (store/commit.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import elf, linkmeta
from ..errors import BuildFailed, HitError
from ..reaper import Build as ReapedBuild
from ..reaper import Reaper
from ..store.commit import GroupCommit
from ..store.files import open_plain_file
from ..store.layout import Store, abandon, remove_tree
from .buildjob import STUB, BuildJob, build_id, missing_tools
from .patching import apply_patches
from .sources import fetch, materialize

LOG_TAIL = 20  # lines of the build log a failure shows
TAIL_BYTES = 1 << 16  # read from the end of a build log for them
_REAPER = Reaper()  # one reaper server per process, started by the first build

_running: set[ReapedBuild] = set()  # killed on Ctrl-C (not by pid: a reaper serves many)
_running_lock = threading.Lock()
_toolchain_parents: set[Path] = set()  # folders of shared toolchains checked (_own_folder)
_leases: dict[Path, int] = {}  # build folder -> the lock of the toolchain slot it uses
_toolchains_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """What became of one build job: `status` "present" (installed already, here or by another
    process while this one waited) or "built"; `seconds` the build took (wall clock)."""

    status: str
    seconds: float = 0.0


def start_reaper() -> None:
    """Start this process's reaper server (reaper.py) ahead of the first build, which would
    otherwise wait for its start-up (20-30 ms); a server that cannot start is left to the
    first build to report."""
    with contextlib.suppress(OSError):
        _REAPER.start()


def prepare(job: BuildJob) -> Path:
    """Make the job's build folder: `src/` with every source in place (fetched into the source
    cache first, if fetching first missed it) and the patches applied in order, and
    `build.sh`. Removes an earlier folder of the same job. Returns the script's path. Raises
    HitError for a source that cannot be fetched or unpacked or a patch that does not apply,
    OSError for a folder that cannot be written."""
    folder = job.folder
    if folder.exists():
        remove_tree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)  # its owner's only: a build log may hold a token
    (folder / "src").mkdir()
    for source in job.sources:
        if source.url:
            fetch(job.source_cache, source.url, source.sha256, job.mirrors)
        materialize(source, job.source_cache, folder / "src")
    for patch in job.patches:
        if patch.url:
            fetch(job.source_cache, patch.url, patch.sha256, job.mirrors)
    apply_patches(job.patches, job.source_cache, folder / "src", folder)
    lay_out_toolchain(job)
    script = folder / "build.sh"
    script.write_text(job.script)
    script.chmod(0o755)
    return script


@contextlib.contextmanager
def _folder_kept(job: BuildJob, log: Path | None = None) -> Iterator[None]:
    """Around a step of a build that refuses what it was given (prepare: a source or patch;
    Store.seal: what an artifact may not hold, a FIFO or a device): its HitError becomes a
    BuildFailed naming the build folder kept (and `log`), as a failed script's is."""
    try:
        yield
    except BuildFailed:
        raise
    except HitError as e:
        raise BuildFailed(job.ref.id, str(e), job.folder, log) from None


def _go_on_unless(stop: threading.Event | None) -> None:
    """Between the steps that check a build whose script ended (each may take seconds for
    an artifact of thousands of files): once the run is interrupted (`stop` set), the rest
    is not done and nothing is installed. Raises KeyboardInterrupt."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


def lay_out_toolchain(job: BuildJob) -> None:
    """The job's toolchain: `bin/` with the job's tool links, and its stubs as links to
    `mpi-stub` (what build.sh would make with a process each; it skips that when `bin/`
    exists). Without a shared folder (BuildJob.toolchain None) laid out afresh in
    `folder/toolchain`. Else `folder/toolchain` is made a link to a slot of the shared
    folder that no other build uses while this one runs (_lease; end_lease once it ended;
    the folder of one that failed, kept, loses the link: _unshare_toolchain),
    checked first (a listing and a readlink a link: tens of microseconds), so that what
    one build wrote into it reaches no other build, neither a later one nor one running at
    the same time: kept when it holds exactly what it should, else laid out beside it and
    renamed into place. The slots' folder is checked once a process (_own_folder). Raises
    OSError."""
    if job.toolchain is None:
        _lay_out(job.folder / "toolchain", job)
        return
    with _toolchains_lock:
        if job.toolchain.parent not in _toolchain_parents:
            _own_folder(job.toolchain.parent)
            _toolchain_parents.add(job.toolchain.parent)
    slot, lock = _lease(job.toolchain)
    try:
        with _toolchains_lock:
            if not _holds_toolchain(slot, job):
                pid = os.getpid()
                new, aside = (slot.with_name(f"{slot.name}.{pid}.{x}") for x in ("new", "old"))
                for path in (new, aside):
                    if os.path.lexists(path):
                        remove_tree(path)
                _lay_out(new, job)
                _put_in_place(new, slot, aside, job)
        os.symlink(slot, job.folder / "toolchain")
    except BaseException:
        os.close(lock)
        raise
    with _toolchains_lock:
        _leases[job.folder] = lock


def _lease(base: Path) -> tuple[Path, int]:
    """The first slot of the shared toolchain folder `base` (`base`, then `base.1`,
    `base.2` ...) that no build uses now, in this process or another, and its lock: an
    exclusive flock of `<slot>.lock`, held until end_lease (or this process ends). So
    there are as many slots as builds with these tools ever ran at once. Raises
    OSError."""
    for k in itertools.count():
        slot = base if k == 0 else base.with_name(f"{base.name}.{k}")
        lock = os.open(f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        return slot, lock
    raise AssertionError("unreachable")


def end_lease(job: BuildJob) -> None:
    """The build of `job` ended (nothing of it runs): its toolchain slot may serve another
    (lay_out_toolchain)."""
    with _toolchains_lock:
        lock = _leases.pop(job.folder, None)
    if lock is not None:
        os.close(lock)


def _unshare_toolchain(job: BuildJob) -> None:
    """The folder of a build that failed (kept for debugging) no longer links to the
    toolchain slot it leased (lay_out_toolchain): `bash build.sh` run there by hand, as its
    header offers, lays out a toolchain of its own, instead of running on a slot that hit's
    builds lease meanwhile (what it writes first on its PATH would reach them, and their
    re-layout would remove its tools under it). Raises nothing."""
    if job.toolchain is None:
        return
    link = job.folder / "toolchain"
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.lstat(link).st_mode):
            os.unlink(link)


def _put_in_place(new: Path, folder: Path, aside: Path, job: BuildJob) -> None:
    """Rename the toolchain folder `new` to `folder`, unless a right one is there by then
    (another process laid out its own at the same time: it stays, builds may be using it;
    `new` is removed). A wrong one (changed by hand, or by a build) is first renamed to
    `aside` and removed, never removed in place: a folder is never missing while it is
    right. Raises OSError."""
    for _attempt in range(3):
        try:
            os.rename(new, folder)  # none there (or an empty folder)
            break
        except OSError:
            if _holds_toolchain(folder, job):
                remove_tree(new)
                break
            with contextlib.suppress(FileNotFoundError):  # gone meanwhile: try again
                os.rename(folder, aside)
                remove_tree(aside)
    else:
        os.rename(new, folder)  # its error, if it still fails


def _own_folder(folder: Path) -> None:
    """Make `folder` (the shared toolchains' folder: build_temp may be a folder others can
    write to) ours only (0700), or check that it is: a folder, this user's, nobody else's
    to write to. Raises OSError naming it otherwise."""
    with contextlib.suppress(FileExistsError):
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        why = "not a folder of this user's that only this user can write to"
        raise OSError(errno.EPERM, why, str(folder))


def _lay_out(folder: Path, job: BuildJob) -> None:
    """`folder/bin` (the job's tool links and stubs) and `folder/mpi-stub`. Raises OSError."""
    toolbin = folder / "bin"
    toolbin.mkdir(parents=True)
    for name, target in job.tool_links:
        os.symlink(target, toolbin / name)
    if job.tool_stubs:
        (folder / "mpi-stub").write_text(STUB)
        (folder / "mpi-stub").chmod(0o755)
    for name in job.tool_stubs:
        os.symlink("../mpi-stub", toolbin / name)


def _holds_toolchain(folder: Path, job: BuildJob) -> bool:
    """Whether `folder` holds exactly the job's toolchain (as _lay_out makes it): `folder`
    and its `bin/` folders, not symlinks (a build may have put a link to a folder elsewhere,
    which others could write to, holding the same links), `mpi-stub` a plain file."""
    want = dict(job.tool_links) | {name: "../mpi-stub" for name in job.tool_stubs}
    try:
        if not all(stat.S_ISDIR(os.lstat(f).st_mode) for f in (folder, folder / "bin")):
            return False
        names = os.listdir(folder / "bin")
        if sorted(names) != sorted(want) or any(
            os.readlink(folder / "bin" / n) != want[n] for n in names
        ):
            return False
        if not job.tool_stubs:
            return not os.path.lexists(folder / "mpi-stub")
        stub = folder / "mpi-stub"
        st = os.lstat(stub)
        return stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o755 and stub.read_text() == STUB
    except OSError:
        return False


def _build_processes(build_id: str, pgid: int | None) -> list[int]:
    """Processes of one build: those in its process group `pgid` (the group of the build
    script we started, which no unrelated process can join while it exists) and those
    whose environment carries its HIT_BUILD_ID (every child of build.sh inherits it, even
    one that left the group with setsid)."""
    tag = f"HIT_BUILD_ID={build_id}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            in_group = pgid is not None and os.getpgid(pid) == pgid
            if in_group or tag in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    """Running or stopped, not a zombie (a zombie runs no code and writes nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_build_processes(build_id: str, pgid: int | None, wait: float = 10.0) -> int:
    """Kill every process of a build (see `_build_processes`) and wait, up to `wait`
    seconds, until none runs; returns how many were killed. Reads all of /proc, so it runs
    only when the build's reaper could not vouch that nothing is left: when the reaper
    itself was killed (before the artifact is committed: a background process must not
    write into an installed artifact), and for leftovers of a killed `hit` when its build
    folder exists (then `pgid` is None: a recorded group id may have been reused, the
    build id may not)."""
    killed: set[int] = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pids = [p for p in _build_processes(build_id, pgid) if _alive(p)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed |= set(pids)
        time.sleep(0.02)
    return len(killed)


def build(
    job: BuildJob,
    store: Store,
    on_wait: Callable[[], None] | None = None,
    committer: GroupCommit | None = None,
    on_built: Callable[[Outcome], None] | None = None,
    on_running: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    on_ended: Callable[[], None] | None = None,
) -> Outcome:
    """Build `job` into `store` unless it is installed there (or upstream); safe against
    concurrent `hit` processes (the artifact's lock; `on_wait()` is called once if another
    process holds it). The prefix is committed only when the script succeeded and the link
    check passed; on failure it is removed and the build folder kept. With a `committer`
    (the run's group commit), the artifact is sealed and handed to it and `on_built(outcome)`
    called at once (what depends on it may start building: its files are in place), then
    this waits, holding the lock, until it is installed. `on_running()` is called once its
    script runs, `on_ended()` once it has ended well (the CPU it held is free: the link check,
    sealing and describing follow, then `on_built`). `stop` (set when the run is interrupted)
    ends a wait for another process's lock (Store.lock). Raises BuildFailed (a host tool its
    build system runs is missing, script, link check, OSError such as a full disk) or
    HitError (a source, what an artifact may not hold, a failed publish: after `on_built`)."""
    ref = job.ref
    if job.prefix != store.local_prefix(ref):  # e.g. a `hit bdir` job: it installs elsewhere
        where = f"installs into {job.prefix}, not into {store.root}"
        raise HitError(f"{ref.id}: this build job {where}")
    if store.is_installed(ref):
        return Outcome("present")
    with store.lock(ref, on_wait=on_wait, stop=stop):
        if store.is_installed(ref):  # another process built it while we waited
            return Outcome("present")
        missing = missing_tools(job)  # its dependencies are built now: look on its PATH
        if missing:
            raise BuildFailed(ref.id, "\n  ".join(missing))
        if job.folder.exists():  # a killed earlier attempt's processes run in its folder
            kill_build_processes(build_id(job.folder), None)
        prefix = store.begin(ref)
        start = time.monotonic()
        try:
            try:
                with _folder_kept(job):
                    script = prepare(job)
                _run(script, job, on_running)
            finally:  # nothing of it runs now
                end_lease(job)
            if on_ended is not None:
                on_ended()
            _go_on_unless(stop)
            _check_links(job, prefix)
            _go_on_unless(stop)
            seconds = time.monotonic() - start
            log = job.folder / "build.log"
            if committer is None:  # the build folder goes before the flush (Store.commit)
                store.commit(ref, job.record, log, discard=job.folder)
            else:  # sealed and hashed now, before anything built on it runs (a build as root
                # ignores read-only bits: what it changes in a dependency `hit verify` reports);
                # the flush, the rename and the build folder's removal in the background
                with _folder_kept(job, log):
                    store.seal(ref)
                _go_on_unless(stop)
                store.describe(prefix, job.record, log)
                _go_on_unless(stop)
                installed = committer.hand_over(prefix, job.folder)
                if on_built is not None:
                    on_built(Outcome("built", seconds))
                installed.result()
        except OSError as e:  # a full disk, an unwritable folder: name what and where
            abandon(prefix)
            _unshare_toolchain(job)
            where = e.filename or job.folder
            kept = job.folder if job.folder.is_dir() else None
            log = job.folder / "build.log"
            raise BuildFailed(
                ref.id, f"{e.strerror or e}: {where}", kept, log if kept and log.exists() else None
            ) from None
        except BaseException:
            abandon(prefix)  # not once installed: a Ctrl-C in the commit's last flush
            _unshare_toolchain(job)
            raise
        store.record_duration(ref.name, seconds)
        return Outcome("built", seconds)


def _run(script: Path, job: BuildJob, on_running: Callable[[], None] | None = None) -> None:
    """Run build.sh under a reaper of its own (reaper.py: every process the script leaves is
    killed when it exits, however it detached), its output to build.log. The environment is
    HIT_BUILD_ID, JOBS, PATH and the jobserver's MAKEFLAGS only (build.sh exports the rest),
    with the jobserver's descriptors (job.inherit_fds) at their numbers. The reaper reports that
    nothing is left; only when it died before it could (killed) are the build's processes
    looked for by id and group (kill_build_processes). `on_running()` is called once the
    script runs. Raises BuildFailed."""
    marker = build_id(job.folder)
    env = {**job.launch_env, "HIT_BUILD_ID": marker}
    fds = {fd: fd for fd in job.inherit_fds}  # the jobserver's, for make 4.3's pipe form
    with open(job.folder / "build.log", "wb") as log:
        proc = _REAPER.spawn(
            ["/bin/bash", "-e", str(script)], str(job.folder / "src"), env, log.fileno(), fds
        )
    with _running_lock:
        _running.add(proc)
    code = None
    try:
        if on_running is not None:
            on_running()
        code = proc.wait()
    finally:
        with _running_lock:
            _running.discard(proc)
        if code is None or code < 0:  # nothing outlives its build, even when its reaper died
            kill_build_processes(marker, proc.pid)
    if code is None or code < 0:
        raise _failure(job, "the build's reaper was killed")
    if code != 0:
        raise _failure(job, f"the build script failed (exit {code})")


def _failure(job: BuildJob, what: str, with_tail: bool = True) -> BuildFailed:
    """The failure of a build: what failed, the kept folder, the log and its tail."""
    log = job.folder / "build.log"
    return BuildFailed(job.ref.id, what, job.folder, log, _log_tail(log) if with_tail else ())


def _log_tail(log: Path) -> tuple[str, ...]:
    """The last LOG_TAIL lines of the build log `log`, read from its last TAIL_BYTES; none
    when it is no plain file (the build replaced it: files.open_plain_file)."""
    fd = open_plain_file(log)
    if fd is None:
        return ()
    try:
        with open(fd, "rb") as f:
            f.seek(max(0, os.fstat(fd).st_size - TAIL_BYTES))
            text = f.read(TAIL_BYTES).decode(errors="replace")
    except OSError:
        return ()
    return tuple(text.splitlines()[-LOG_TAIL:])


def _check_links(job: BuildJob, prefix: Path) -> None:
    """Every ELF file's libraries must come from the artifact, its dependencies or the
    allowed host libraries (elf.check_artifact), and so must every library and folder its
    link metadata names (linkmeta.check_metadata: .pc, .la, *-config, CMake package
    files). Raises BuildFailed listing the first 20."""
    deps, allowed = list(job.dependency_prefixes), job.allowed_host_libs
    problems = [p.message(prefix) for p in elf.check_artifact(prefix, deps, allowed)]
    problems += [
        p.message(prefix)
        for p in linkmeta.check_metadata(prefix, deps, allowed, build_dir=job.folder)
    ]
    if problems:
        lines = "\n".join("    " + p for p in problems[:20])
        fd = open_plain_file(job.folder / "build.log", os.O_WRONLY | os.O_APPEND)
        if fd is not None:  # not through a link, nor into a FIFO the build left there
            with open(fd, "a") as log:
                log.write("\nhdmodules link check failed:\n" + lines + "\n")
        raise _failure(job, f"library check failed:\n{lines}", with_tail=False)


def kill_running(grace: float = 2.0) -> None:
    """On Ctrl-C: stop every build this process started. Each build's reaper is asked first
    (SIGTERM: it kills every process of its build, detached ones included); after `grace`
    seconds whatever is left of each process group is killed (SIGKILL)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def bdir(job: BuildJob) -> Path:
    """`hit bdir`: the job's sources and build script in its folder (a folder of the user's,
    `buildjob.build_job(..., folder=...)`), installing into `folder/artifact` instead of the
    store when run by hand. Returns the script. Raises HitError if the folder holds anything."""
    folder = job.folder
    if folder.exists() and any(folder.iterdir()):
        raise HitError(f"{folder} exists and is not empty; give a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    return prepare(job)
