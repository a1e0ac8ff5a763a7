"""Running build jobs in dependency order, within a CPU budget, over an executor.

The order comes from the stdlib's `graphlib.TopologicalSorter` over the jobs' `dependencies`
(artifact ids; a dependency that is not among the jobs counts as built). An executor is
anything with `slots`, `cpus`, `start`, `next_done` and `interrupt` (the `Executor`
protocol); `LocalPool` runs builds in threads of this process, each calling `builder.build`.

The budget: with `cpus` (a jobserver.Jobserver of N CPUs) the scheduler holds one CPU per
build it runs, the first build the implicit one and each further build a token taken from
the jobserver (given back when it ends), while `make` inside the builds takes the tokens of
its extra jobs from the same pool: N jobs at once in all. `slots` caps the packages built at
once besides (`--concurrent-packages`, default N). Whenever no build runs, the pool is
counted and topped up (Jobserver.refill), so a make killed holding tokens shrinks nothing.

A build holds its CPU while its script runs. Once the script has ended well, the executor
says so (ENDED) and the scheduler may start another build in its place, which does not
depend on it, while the ended one is checked, sealed and described (builder.build) before
what depends on it may start: with `-j 1`, hit's own work on one artifact overlaps the next
one's script, as the group commit's publishing does (issue 18, goal 2).

Failure semantics: after a failure nothing new starts, the builds under way finish, then the
first failure is raised (`BuildsFailed`, itself the first BuildFailed) with every other
failure and the artifacts that were not built because of it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
from collections.abc import Callable, Sequence
from graphlib import TopologicalSorter
from typing import Any, Protocol

from ..errors import BuildFailed, HitError
from ..progress import Progress
from ..spec.artifact import ArtifactRef
from ..store.commit import GroupCommit
from ..store.layout import Store
from .builder import Outcome, build, kill_running
from .buildjob import BuildJob
from .jobserver import Jobserver, open_jobserver


class _Ended:
    """The mark `next_done` gives with a job whose build script has ended well, before its
    Outcome: the CPU it held is free, what depends on it must still wait for that Outcome."""

    def __repr__(self) -> str:
        return "ENDED"


ENDED = _Ended()
Finished = tuple[BuildJob, Outcome | BaseException | _Ended]  # a job and how it ended
LOOKAHEAD_WAIT = 1.0  # seconds next_done waits for the started builds to run, at most


class Planned(Protocol):
    """What the scheduler orders: an artifact and the ids of its direct dependencies (a
    BuildJob is one, and so is a buildjob.PendingJob, made into one when it starts)."""

    @property
    def ref(self) -> ArtifactRef: ...

    @property
    def dependencies(self) -> tuple[str, ...]: ...


class Executor(Protocol):
    """Where builds run. `slots` is how many may run at once; `cpus` the jobserver whose
    tokens a second, third ... concurrent build needs (None: no budget beyond `slots`)."""

    slots: int
    cpus: Jobserver | None

    def start(self, job: BuildJob) -> None:
        """Begin building `job`; returns at once."""

    def next_done(
        self, or_token: bool = False, meanwhile: Callable[[], None] | None = None
    ) -> Finished | None:
        """Block until a started build ends: its job and its Outcome, or the exception it
        failed with (a HitError such as BuildFailed; anything else is a bug, re-raised); or
        (its job, ENDED) once its script has ended well, before that (optional: an executor
        that never says ENDED holds the CPU until the Outcome).
        With `or_token`, return None instead as soon as `cpus` may hold a token. Call
        `meanwhile()` once, in this thread, while the builds run (once their scripts
        started, so that it takes no time from their start), unless one ended first."""

    def interrupt(self) -> None:
        """On Ctrl-C: stop every build under way and wait until they have cleaned up."""


# The longest the scheduler's thread waits without running Python (seconds): a Ctrl-C the
# kernel hands to another thread of the process (a build thread) is only a flag until this
# thread runs Python again, and an untimed wait for a build lost it (a `hit` waiting for
# another process's lock went on waiting after the Ctrl-C that should have ended it).
SIGNAL_LOOK = 0.5

SHOWN_SKIPPED = 10  # skipped artifacts a failure's message names; the rest are counted


class BuildsFailed(BuildFailed):
    """The first failure of a run (its fields are the first BuildFailed's), with `failures`
    (every BuildFailed, in the order they happened) and `skipped` (short ids of the artifacts
    not built because of them, sorted: all of them). `str()`: each failure, then the first
    SHOWN_SKIPPED skipped ones and how many more (a failure low in a stack of 3,000 packages
    skips nearly all of them: their ids made one line of 60 KB)."""

    def __init__(self, failures: Sequence[BuildFailed], skipped: Sequence[str]) -> None:
        first = failures[0]
        super().__init__(first.artifact, first.what, first.folder, first.log, first.tail)
        self.args = (tuple(failures), tuple(skipped))
        self.failures = tuple(failures)
        self.skipped = tuple(skipped)

    def __str__(self) -> str:
        text = "\n".join(BuildFailed.__str__(e) for e in self.failures)
        if self.skipped:
            shown = ", ".join(self.skipped[:SHOWN_SKIPPED])
            more = len(self.skipped) - SHOWN_SKIPPED
            if more > 0:
                shown += f" and {more} more"
            text += f"\n  not built because of the failure: {shown}"
        return text


class LocalPool:
    """Builds in threads of this process within a budget of `cpus` CPUs (one jobserver for
    all of them), at most `packages` at once (default: `cpus`), each
    `builder.build(job, store)` with MAKEFLAGS naming the jobserver; `progress` hears when
    one waits for another process's lock. A build counts as done once its artifact is
    sealed, and the pool's group commit (store/commit.py) publishes it in the background.
    A context manager: leaving it waits until every artifact is installed and removes the
    jobserver."""

    def __init__(
        self, store: Store, cpus: int, progress: Progress, packages: int | None = None
    ) -> None:
        self.store = store
        self.slots = max(1, packages or cpus)
        self.cpus = open_jobserver(max(1, cpus))
        self.progress = progress
        self._done: queue.Queue[Finished] = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()  # a byte per finished build, for select
        os.set_blocking(self._wake_r, False)
        self._threads: list[threading.Thread] = []
        self._jobs: queue.SimpleQueue[BuildJob | None] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a job
        self._idle_lock = threading.Lock()
        self._commit = GroupCommit(store)
        self._late: list[BuildFailed] = []  # publishes that failed after "built" was reported
        self._starting: set[str] = set()  # builds started whose script does not run yet
        self._started = threading.Condition()  # notified when one runs or ends
        self._stop = threading.Event()  # set by interrupt: a wait for a lock ends
        self._behind: list[threading.Event] = []  # set to let an ended build's checks go on
        self._checking: dict[str, str] = {}  # builds whose script ended, not yet told: short ids

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        """Wait for every build's thread (each ends once its artifact is installed), flush
        the last commits, remove the jobserver. Raises BuildsFailed when an artifact reported
        built could not be installed (an I/O error) and nothing else is being raised."""
        self._stop_threads()
        self._commit.close()
        if self.cpus is not None:
            self.cpus.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._late and exc_type is None:
            raise BuildsFailed(self._late, ())

    def start(self, job: BuildJob) -> None:
        """Start building `job` in a thread of the pool: one waiting for a job, else a new
        one (a thread whose build is done may still wait for its artifact's publish)."""
        with self._started:
            self._starting.add(job.ref.id)
        with self._idle_lock:
            if self._idle:
                self._idle -= 1
            else:
                name = f"build-{len(self._threads)}"
                # daemon: a thread whose start a Ctrl-C cut short, never joined (_stop_threads),
                # holds no job and must not keep the process alive
                thread = threading.Thread(target=self._serve, name=name, daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._one(job)
            with self._idle_lock:
                self._idle += 1

    def _stop_threads(self) -> None:
        """Let every thread finish its build (its artifact installed), then end them all:
        those started (a Ctrl-C may come between a thread's listing and its start: joining
        that one raised RuntimeError, a traceback instead of `hit: interrupted`)."""
        self._go_on()
        started = [thread for thread in self._threads if thread.ident is not None]
        for _thread in started:
            self._jobs.put(None)
        for thread in started:
            thread.join()
        self._threads.clear()

    def _runs(self, artifact_id: str) -> None:
        """The build of `artifact_id` runs (its script started), waits for another process's
        lock or ended: not starting any more."""
        with self._started:
            self._starting.discard(artifact_id)
            self._started.notify_all()

    def _tell(self, finished: Finished) -> None:
        """Hand `finished` to the scheduler's thread (next_done)."""
        self._done.put(finished)
        self._runs(finished[0].ref.id)  # after the put: a `meanwhile` waiter sees it ended
        os.write(self._wake_w, b".")

    def _waits(self, artifact_id: str, short: str) -> None:
        """The build of `artifact_id` waits for another process's lock: said, and no longer
        counted as starting (next_done waits for what starts, not for another process)."""
        self.progress.waiting(short)
        self._runs(artifact_id)

    def _ended(self, job: BuildJob) -> None:
        """In `job`'s thread, its script ended well: tell the scheduler (ENDED), which may
        start another build, and wait until that build's script runs (`_go_on`, at most
        LOOKAHEAD_WAIT seconds) before checking this one: both are Python, one at a time
        (the GIL), and the start is what the next script waits for."""
        go = threading.Event()
        with self._started:
            self._behind.append(go)
            self._checking[job.ref.id] = job.ref.short
        self._tell((job, ENDED))
        go.wait(LOOKAHEAD_WAIT)

    def _go_on(self) -> None:
        """Let every ended build's thread waiting in `_ended` go on."""
        with self._started:
            behind, self._behind = self._behind, []
        for go in behind:
            go.set()

    def _one(self, job: BuildJob) -> None:
        reported = False

        def hand(outcome: Outcome | BaseException) -> None:  # to the scheduler's thread
            nonlocal reported
            reported = True
            with self._started:
                self._checking.pop(job.ref.id, None)
            self._tell((job, outcome))

        try:
            if self.cpus is not None:  # its dependencies are built: their bin/ is on PATH
                flags = self.cpus.for_make(dict(job.env).get("PATH", ""))
                job = job.with_jobserver(flags.makeflags, flags.fds)
            short = job.ref.short
            outcome: Outcome | BaseException = build(
                job,
                self.store,
                lambda: self._waits(job.ref.id, short),
                self._commit,
                hand,
                lambda: self._runs(job.ref.id),
                self._stop,
                lambda: self._ended(job),
            )
        except BaseException as e:
            outcome = e
        if not reported:
            hand(outcome)
        elif isinstance(outcome, BaseException):  # reported built, then not installed
            self._late.append(BuildFailed(job.ref.id, str(outcome)))

    def next_done(
        self, or_token: bool = False, meanwhile: Callable[[], None] | None = None
    ) -> Finished | None:
        """Wait for one started build to end: (its job, its Outcome or the exception it
        raised); with `or_token`, None as soon as the jobserver may hold a token.
        `meanwhile()` is called once the scripts of the builds started run (or after
        LOOKAHEAD_WAIT seconds: one waits for another process's lock), unless one ended
        first (Executor.next_done)."""
        if meanwhile is not None or self._behind:
            with self._started:
                self._started.wait_for(
                    lambda: not self._starting or not self._done.empty(), LOOKAHEAD_WAIT
                )
            self._go_on()  # the builds started run: an ended one's checks may go on
            if meanwhile is not None and self._done.empty():
                meanwhile()
        while True:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)  # drained before looking: no wake-up is lost
            with contextlib.suppress(queue.Empty):
                return self._done.get_nowait()
            if not or_token or self.cpus is None:
                with contextlib.suppress(queue.Empty):
                    return self._done.get(timeout=SIGNAL_LOOK)
                continue
            ready, _w, _x = select.select([self._wake_r, self.cpus], [], [], SIGNAL_LOOK)
            if self.cpus in ready:
                return None

    def interrupt(self) -> None:
        """Ctrl-C: stop every build under way (builder.kill_running) and every wait for
        another process's lock (Store.lock's `stop`)."""
        self._stop.set()
        self._go_on()
        kill_running()
        with self._started:
            checking = sorted(self._checking.values())
        if checking:  # a step of a check under way ends before its thread sees `_stop`
            self.progress.note(
                f"stopping: waiting for the step under way of checking {', '.join(checking)} "
                f"(Ctrl-C again to leave at once)"
            )
        self._stop_threads()


# Complexity (radon C): the loop of a scheduler: start what is ready, wait for one to finish,
# record its outcome, stop starting after a failure; each branch is one of those states.
def run(
    jobs: Sequence[Planned],
    executor: Executor,
    progress: Progress,
    make: Callable[[Any], BuildJob] | None = None,
) -> int:
    """Build `jobs` (artifacts missing from the store, each once) dependencies first, up to
    `executor.slots` at once and, with `executor.cpus`, one more only with a token of it
    (see the module's docstring). A job that is no BuildJob yet (a Planned one) is made
    into one by `make(job)`: with every slot taken, the next ready one is made while the
    builds under way run (the executor's `meanwhile`: nothing else could start before one
    ends). Returns how many were built (a job another process built meanwhile counts as
    present); a job `make` cannot make (a HitError) fails as its build would. Raises
    BuildsFailed (see the module's docstring); KeyboardInterrupt after
    `executor.interrupt()`. Every token it took is given back, however it ends."""
    made: dict[str, BuildJob] = {}  # made ahead (`make`), not started yet

    def build_job(planned: Planned) -> BuildJob:
        if isinstance(planned, BuildJob):
            return planned
        assert make is not None, f"{planned.ref.id}: no BuildJob, and nothing to make one"
        return made.pop(planned.ref.id, None) or make(planned)

    def make_ahead(artifact_id: str) -> None:
        with contextlib.suppress(HitError):  # made again when it is to start: it fails there
            made[artifact_id] = build_job(by_id[artifact_id])

    by_id = {job.ref.id: job for job in jobs}
    graph = TopologicalSorter(
        {i: [d for d in j.dependencies if d in by_id] for i, j in by_id.items()}
    )
    graph.prepare()
    ready: list[str] = []
    running = 0  # builds started whose script has not ended
    ended: set[str] = set()  # builds whose script has ended well, their Outcome to come
    built = 0
    failures: list[BuildFailed] = []
    started: set[str] = set()
    cpus = executor.cpus
    held = 0  # tokens taken from `cpus`: one per running build but the first
    try:
        while True:
            ready += graph.get_ready()
            while ready and not failures and running < executor.slots:
                if running and cpus is not None:  # the first build has the implicit CPU
                    if not cpus.try_acquire():
                        break
                    held += 1
                planned = by_id[ready.pop(0)]
                started.add(planned.ref.id)
                try:
                    job = build_job(planned)
                except HitError as e:  # a job that cannot be made fails as its build would
                    if running and cpus is not None:
                        cpus.release()
                        held -= 1
                    progress.failed(planned.ref.short)
                    why = e if isinstance(e, BuildFailed) else BuildFailed(planned.ref.id, str(e))
                    failures.append(why)
                    continue
                progress.started(planned.ref.short)
                executor.start(job)
                running += 1
            if not running and not ended:
                break
            waiting = bool(ready) and not failures and running < executor.slots
            ahead = None  # made meanwhile only when nothing could start before a build ends
            if make is not None and not failures and running >= executor.slots:
                ahead = next((i for i in ready if i not in made), None)
            finished = executor.next_done(
                or_token=waiting,
                meanwhile=None if ahead is None else lambda i=ahead: make_ahead(i),
            )
            if finished is None:  # a token may be free: try to start another
                continue
            job, outcome = finished
            if job.ref.id in ended:  # its CPU was given back when its script ended
                ended.discard(job.ref.id)
            else:
                running -= 1
                if held > max(0, running - 1):
                    cpus.release()  # type: ignore[union-attr]  # held > 0: cpus is set
                    held -= 1
                if cpus is not None and not running:
                    lost = cpus.refill()
                    if lost:
                        progress.note(f"{lost} jobserver token(s) a killed make kept: put back")
                if outcome is ENDED:
                    ended.add(job.ref.id)
                    progress.ended(job.ref.short)
                    continue
            if isinstance(outcome, BaseException) and not isinstance(outcome, HitError):
                raise outcome
            if isinstance(outcome, HitError):
                progress.failed(job.ref.short)
                failed = outcome
                if not isinstance(failed, BuildFailed):
                    failed = BuildFailed(job.ref.id, str(outcome))
                failures.append(failed)
                continue
            graph.done(job.ref.id)
            if outcome.status == "built":
                built += 1
                progress.built(job.ref.short, outcome.seconds)
            else:
                progress.present(job.ref.short)
    except KeyboardInterrupt:
        executor.interrupt()
        raise
    finally:
        for _ in range(held):  # the builds are over (or interrupted): their CPUs come back
            cpus.release()  # type: ignore[union-attr]
    if failures:
        skipped = sorted(by_id[i].ref.short for i in by_id if i not in started)
        raise BuildsFailed(failures, skipped)
    return built
