"""Staging and group commit: `hit build` publishes its artifacts from one background thread,
several per flush, while the next builds run.

A build ends with its artifact sealed (layout.Store.seal: checked, every file and folder
read-only but its metadata folder) and handed to the run's `GroupCommit`; the scheduler may
then start what depends on it (its files are in place and can no longer change), and the
build's thread waits, holding the artifact's lock, until the committer has published it. The
committer writes each artifact's build.json, log and manifest (Store.describe: hashing every
file, off the path from one build to the next), then takes every artifact handed over meanwhile
as one group: it removes their build folders (before the flush: their files never reach the
disk), flushes once (one syncfs for the group: layout.sync_trees), then renames their manifests
in the order they were handed over, so a dependency counts as installed before what was built
on it. This takes the flush, the manifest and the removal of the build folder (3-15 ms an
artifact on a loaded machine, bench/bench_build_overhead.py) off that path.

Crash safety is the store's usual rule (layout.Store.publish): an artifact's files are on disk
before its manifest's rename can be. What a group commit changes is when a rename itself is on
disk: with the next group's flush, and at the latest with the flush `close` ends the run with
(the profile's own commit flushes too), not when the build's progress line says "built". A
crash before that loses the rename only: the artifact does not count as installed (its prefix
is debris the next build of it removes), and is built again.

A failed publish (a full disk, an I/O error) fails that artifact and every one handed over
after it, which are left uninstalled (they may have been built on it). An artifact that cannot
be described (its manifest cannot be written) fails alone, with those built on it.
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
    """One sealed artifact: its prefix, its build.json (`spec`: None when it is described
    already), its build log, its build folder (removed before the flush; None: none) and
    what its build's thread waits on."""

    prefix: Path
    spec: dict | None
    log: Path | None
    folder: Path | None
    done: Installed = field(default_factory=Installed)


class GroupCommit:
    """The publishing thread of one run over `store` (see the module's docstring). A context
    manager: leaving it publishes what is left, flushes the last renames and ends the thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Handed | None] = queue.SimpleQueue()
        self._failed: str | None = None  # why the first failed publish failed
        self._lost: set[str] = set()  # ids of artifacts that failed alone (not described)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self._thread.start()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def hand_over(
        self,
        prefix: Path,
        folder: Path | None,
        spec: dict | None = None,
        log: Path | None = None,
    ) -> Installed:
        """Publish the artifact at `prefix`, sealed (layout.Store.seal; described here first
        with `spec` and `log`, unless `spec` is None: staged already), its lock held by the
        caller until it is installed; its build folder `folder` is removed before the
        flush. Returns what the caller waits on (`Installed.result()`)."""
        if self._closed:
            raise HitError(f"{prefix}: handed over after the run's commits ended")
        handed = _Handed(prefix, spec, log, folder)
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
        """Describe each of `group` (layout.Store.describe), then publish those described
        (layout.Store.publish), unless an earlier publish failed; then settle each: None
        when its manifest is in place, else the HitError saying why. One that cannot be
        described (a file name its manifest cannot hold) fails alone, with what was built on
        it (its build.json names it as a dependency). Returns the prefixes installed."""
        ready: list[_Handed] = []
        why: dict[Path, str] = {}  # an artifact that fails alone -> why
        for h in group:
            if self._failed is not None:
                continue
            lost = next((d for d in _dependencies(h.spec) if d in self._lost), None)
            try:
                if lost is not None:
                    raise HitError(f"{h.prefix}: built on {lost}, which was not installed")
                if h.spec is not None:
                    self.store.describe(h.prefix, h.spec, h.log)
                ready.append(h)
            except BaseException as e:  # HitError; any other is a bug: fail it, never hang
                why[h.prefix] = str(e) if isinstance(e, HitError) else f"{type(e).__name__}: {e}"
                if h.spec is None or not isinstance(h.spec.get("id"), str):
                    self._failed = why[h.prefix]  # which one it was is unknown: all fail
                else:
                    self._lost.add(h.spec["id"])
        if ready:
            try:
                folders = [h.folder for h in ready if h.folder is not None]
                self.store.publish([h.prefix for h in ready], folders)
            except HitError as e:
                self._failed = self._failed or str(e)
            except BaseException as e:  # as above
                self._failed = self._failed or f"{type(e).__name__}: {e}"
        installed = [h.prefix for h in group if (h.prefix / META / MANIFEST).exists()]
        for h in group:
            if h.prefix in installed:
                h.done.settle(None)
            elif h.prefix in why:
                h.done.settle(HitError(f"not installed: {why[h.prefix]}"))
            elif str(h.prefix) in str(self._failed):
                h.done.settle(HitError(f"not installed: {self._failed}"))
            else:
                why_not = (
                    f"not installed, as an artifact published before it was not: {self._failed}"
                )
                h.done.settle(HitError(why_not))
        return installed


def _dependencies(spec: dict | None) -> list[str]:
    """The artifact ids a build.json document `spec` names as its dependencies."""
    deps = spec.get("dependencies") if isinstance(spec, dict) else None
    return [d for d in deps.values() if isinstance(d, str)] if isinstance(deps, dict) else []
