"""Staging and group commit: `hit build` publishes its artifacts from one background thread,
several per flush, while the next builds run.

A build ends with its artifact staged in its own thread (layout.Store.seal: checked, every
file and folder read-only but its metadata folder; Store.describe: build.json, log and the
manifest, every file hashed before anything built on it runs, so that what a later build
changes in it `hit verify` reports) and handed to the run's `GroupCommit`; the scheduler may
then start what depends on it, and the build's thread waits, holding the artifact's lock,
until the committer has published it. The committer takes every artifact handed over meanwhile
as one group: it removes their build folders (before the flush: their files never reach the
disk), flushes once (one syncfs for the group: layout.sync_trees), then renames their manifests
in the order they were handed over, so a dependency counts as installed before what was built
on it. This takes the flush and the removal of the build folder (3-15 ms an artifact on a
loaded machine, bench/bench_build_overhead.py) off the path from one build to the next.

Crash safety is the store's usual rule (layout.Store.publish): an artifact's files are on disk
before its manifest's rename can be. What a group commit changes is when a rename itself is on
disk: with the next group's flush, and at the latest with the flush `close` ends the run with
(the profile's own commit flushes too), not when the build's progress line says "built". A
crash before that loses the rename only: the artifact does not count as installed (its prefix
is debris the next build of it removes), and is built again.

A failed publish (a full disk, an I/O error) fails that artifact and every one handed over
after it, which are left uninstalled (they may have been built on it). (An artifact whose
manifest cannot be written fails in its build's thread, alone, before it is handed over.)
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HitError
from .layout import MANIFEST, META, Store, sync_trees


class Installed:
    """What a build's thread waits on: `result()` returns once its artifact is installed, or
    raises the HitError that left it uninstalled. (Not concurrent.futures: 5 ms to import.)"""

    def __init__(self) -> None:
        self._settled = threading.Event()
        self._error: HitError | None = None

    def settle(self, error: HitError | None) -> None:
        self._error = error
        self._settled.set()

    def result(self, timeout: float | None = None) -> None:
        """None once installed; raises its HitError, or TimeoutError after `timeout` s."""
        if not self._settled.wait(timeout):
            raise TimeoutError("not settled yet")
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class _Handed:
    """One staged artifact: its prefix, its build folder (removed before the flush; None:
    none) and what its build's thread waits on."""

    prefix: Path
    folder: Path | None
    done: Installed = field(default_factory=Installed)


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

    def hand_over(self, prefix: Path, folder: Path | None) -> Installed:
        """Publish the artifact at `prefix`, staged (layout.Store.seal and describe), its
        lock held by the caller until it is installed; its build folder `folder` is removed
        before the flush. Returns what the caller waits on (`Installed.result()`)."""
        if self._closed:
            raise HitError(f"{prefix}: handed over after the run's commits ended")
        handed = _Handed(prefix, folder)
        self._queue.put(handed)
        return handed.done

    def close(self) -> None:
        """Publish what was handed over, then flush once (the last group's renames reach
        the disk), and end the thread. Raises nothing: each `Installed` holds its outcome."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        published: list[Path] = []  # every artifact this run installed
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
                published += self._publish(handed)
        # the last renames reach the disk before the run reports success (one syncfs); if
        # that fails, each still counts as installed and the next flush writes its rename
        with contextlib.suppress(OSError):
            sync_trees(published)

    def _publish(self, group: list[_Handed]) -> list[Path]:
        """Publish `group` (layout.Store.publish) unless an earlier publish failed; then
        settle each: None when its manifest is in place, else the HitError saying why.
        Returns the prefixes installed."""
        if self._failed is None:
            try:
                folders = [h.folder for h in group if h.folder is not None]
                self.store.publish([h.prefix for h in group], folders)
            except HitError as e:
                self._failed = str(e)
            except BaseException as e:  # any other is a bug: fail them, never hang
                self._failed = f"{type(e).__name__}: {e}"
        installed = [h.prefix for h in group if (h.prefix / META / MANIFEST).exists()]
        for h in group:
            if h.prefix in installed:
                h.done.settle(None)
            elif str(h.prefix) in str(self._failed):
                h.done.settle(HitError(f"not installed: {self._failed}"))
            else:
                why_not = (
                    f"not installed, as an artifact published before it was not: {self._failed}"
                )
                h.done.settle(HitError(why_not))
        return installed
