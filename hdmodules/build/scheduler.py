"""Running build jobs in dependency order, up to N at once, over an executor.

The order comes from the stdlib's `graphlib.TopologicalSorter` over the jobs' `dependencies`
(artifact ids; a dependency that is not among the jobs counts as built). An executor is
anything with `start`, `next_done` and `interrupt` (the `Executor` protocol); `LocalPool`
runs builds in threads of this process, each calling `builder.build`.

Failure semantics: after a failure nothing new starts, the builds under way finish, then the
first failure is raised (`BuildsFailed`, itself the first BuildFailed) with every other
failure and the artifacts that were not built because of it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from graphlib import TopologicalSorter
from typing import Protocol

from ..errors import BuildFailed, HitError
from ..progress import Progress
from ..store.layout import Store
from .builder import Outcome, build, kill_running
from .buildjob import BuildJob

Finished = tuple[BuildJob, Outcome | BaseException]  # a job and how it ended


class Executor(Protocol):
    """Where builds run. `slots` is how many may run at once."""

    slots: int

    def start(self, job: BuildJob) -> None:
        """Begin building `job`; returns at once."""

    def next_done(self) -> Finished:
        """Block until a started build ends: its job and its Outcome, or the exception it
        failed with (a HitError such as BuildFailed; anything else is a bug, re-raised)."""

    def interrupt(self) -> None:
        """On Ctrl-C: stop every build under way and wait until they have cleaned up."""


class BuildsFailed(BuildFailed):
    """The first failure of a run (its fields are the first BuildFailed's), with `failures`
    (every BuildFailed, in the order they happened) and `skipped` (short ids of the artifacts
    not built because of them, sorted). `str()`: each failure, then the skipped ones."""

    def __init__(self, failures: Sequence[BuildFailed], skipped: Sequence[str]) -> None:
        first = failures[0]
        super().__init__(first.artifact, first.what, first.folder, first.log, first.tail)
        self.args = (tuple(failures), tuple(skipped))
        self.failures = tuple(failures)
        self.skipped = tuple(skipped)

    def __str__(self) -> str:
        text = "\n".join(BuildFailed.__str__(e) for e in self.failures)
        if self.skipped:
            text += f"\n  not built because of the failure: {', '.join(self.skipped)}"
        return text


class LocalPool:
    """Builds in threads of this process, `slots` at a time, each `builder.build(job, store)`;
    `progress` hears when one waits for another process's lock."""

    def __init__(self, store: Store, slots: int, progress: Progress) -> None:
        self.store = store
        self.slots = max(1, slots)
        self.progress = progress
        self._done: queue.Queue[Finished] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def start(self, job: BuildJob) -> None:
        """Start building `job` (or hand it to a free worker)."""
        thread = threading.Thread(target=self._one, args=(job,), name=job.ref.short)
        self._threads.append(thread)
        thread.start()

    def _one(self, job: BuildJob) -> None:
        try:
            outcome: Outcome | BaseException = build(
                job, self.store, on_wait=lambda: self.progress.waiting(job.ref.short)
            )
        except BaseException as e:  # handed to the scheduler's thread
            outcome = e
        self._done.put((job, outcome))

    def next_done(self) -> Finished:
        """Wait for one started build to end: (its job, its Outcome or the exception it raised)."""
        return self._done.get()

    def interrupt(self) -> None:
        """Ctrl-C: stop every build under way (builder.kill_running)."""
        kill_running()
        for thread in self._threads:
            thread.join()


# Complexity (radon C): the loop of a scheduler: start what is ready, wait for one to finish,
# record its outcome, stop starting after a failure; each branch is one of those states.
def run(jobs: Sequence[BuildJob], executor: Executor, progress: Progress) -> int:
    """Build `jobs` (artifacts missing from the store, each once) dependencies first, up to
    `executor.slots` at once. Returns how many were built (a job another process built
    meanwhile counts as present). Raises BuildsFailed (see the module's docstring);
    KeyboardInterrupt after `executor.interrupt()`."""
    by_id = {job.ref.id: job for job in jobs}
    graph = TopologicalSorter(
        {i: [d for d in j.dependencies if d in by_id] for i, j in by_id.items()}
    )
    graph.prepare()
    ready: list[str] = []
    running = 0
    built = 0
    failures: list[BuildFailed] = []
    started: set[str] = set()
    try:
        while True:
            ready += graph.get_ready()
            while ready and not failures and running < executor.slots:
                job = by_id[ready.pop(0)]
                progress.started(job.ref.short)
                executor.start(job)
                started.add(job.ref.id)
                running += 1
            if not running:
                break
            job, outcome = executor.next_done()
            running -= 1
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
    if failures:
        skipped = sorted(by_id[i].ref.short for i in by_id if i not in started)
        raise BuildsFailed(failures, skipped)
    return built
