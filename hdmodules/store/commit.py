"""Group commit: `hit build` publishes its artifacts from one background thread, several per
flush, while the next builds run.

A build ends with its artifact staged (layout.Store.stage: build.json, log, manifest beside
its final name, everything read-only) and handed to the run's `GroupCommit`; the scheduler may
then start what depends on it (its files are in place), and the build's thread waits, holding
the artifact's lock, until the committer has published it. The committer takes every artifact
handed to it meanwhile as one group: it removes their build folders (before the flush: their
files never reach the disk), flushes once (one syncfs for the group: layout.sync_trees), then
renames their manifests in the order they were handed over, so a dependency counts as
installed before what was built on it. That takes the flush and the removal of the build
folder (3-15 ms an artifact on a loaded machine, bench/bench_build_overhead.py) off the path
from one build to the next.

Crash safety is the store's usual rule (layout.Store.publish): an artifact's files are on disk
before its manifest's rename can be. What a group commit changes is when a rename itself is
on disk: with the next group's flush, and at the latest with the flush `close` ends the run
with (the profile's own commit flushes too), not when the build's progress line says
"built". A crash before that loses the rename only: the artifact does not count as installed
(its prefix is debris the next build of it removes), and is built again.

A failed publish (a flush or a rename failing: an I/O error) fails that artifact and every
one handed over after it, which are left uninstalled (they may have been built on it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HitError
from .layout import MANIFEST, META, Store, sync_trees


@dataclass(frozen=True)
class _Handed:
    """One staged artifact: its prefix, its build folder (removed before the flush; None:
    none) and the future its build's thread waits on."""

    prefix: Path
    folder: Path | None
    done: Future = field(default_factory=Future)


class GroupCommit:
    """The publishing thread of one run over `store` (see the module's docstring). A context
    manager: leaving it publishes what is left, flushes the last renames and ends the thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Handed | None] = queue.SimpleQueue()
        self._failed: str | None = None  # why the first failed publish failed
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self._thread.start()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def hand_over(self, prefix: Path, folder: Path | None) -> Future:
        """Publish the staged artifact at `prefix` (its lock held by the caller until the
        returned future is done), removing its build folder `folder` first. The future's
        result is None once it is installed, or the HitError that left it uninstalled."""
        if self._closed:
            raise HitError(f"{prefix}: handed over after the run's commits ended")
        handed = _Handed(prefix, folder)
        self._queue.put(handed)
        return handed.done

    def close(self) -> None:
        """Publish what was handed over, then flush once (the last group's renames reach
        the disk), and end the thread. Raises nothing: each future holds its outcome."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        published: list[Path] = []  # every prefix this run handed over
        end = False
        while not end:
            group = [self._queue.get()]
            while True:  # everything handed over meanwhile joins the group
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            end = group[-1] is None
            handed = [h for h in group if h is not None]
            if handed:
                self._publish(handed)
                published += [h.prefix for h in handed]
        # the last renames reach the disk before the run reports success (one syncfs); if
        # that fails, each still counts as installed and the next flush writes its rename
        with contextlib.suppress(OSError):
            sync_trees([p for p in published if (p / META / MANIFEST).exists()])

    def _publish(self, group: list[_Handed]) -> None:
        """Publish `group` (layout.Store.publish) unless an earlier group failed, then settle
        each future: None when its manifest is in place, else the HitError saying why."""
        if self._failed is None:
            try:
                folders = [h.folder for h in group if h.folder is not None]
                self.store.publish([h.prefix for h in group], folders)
            except HitError as e:
                self._failed = str(e)
            except BaseException as e:  # a bug: fail the group rather than hang its builds
                self._failed = f"{type(e).__name__}: {e}"
        for h in group:
            if (h.prefix / META / MANIFEST).exists():
                h.done.set_result(None)
            elif str(h.prefix) in str(self._failed):
                h.done.set_exception(HitError(f"not installed: {self._failed}"))
            else:
                why = f"not installed, as an artifact published before it was not: {self._failed}"
                h.done.set_exception(HitError(why))
