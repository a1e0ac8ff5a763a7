"""The store: the one place that knows where artifacts live and when one counts as installed.

An artifact is built directly at its final prefix (absolute paths get baked into `.pc` files,
`*-config` scripts and RUNPATHs, so a staging folder that is renamed would break them), under
a per-artifact lock. It counts as installed only once `.hit/manifest.json` exists; that file is
written last, atomically. A prefix without it is debris of a failed or killed build: the next
builder that takes the lock removes it and starts again.

Layout, below the store folder:
    <name>/<version>-<hash12>/   the prefix; `.hit/` holds build.json, build.log, manifest.json
    profile/<hash12>/             profiles are artifacts too (symlink farms)
    .locks/<name>-<hash>.lock     per-artifact locks
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import HitError
from ..hashing import SHORT, canonical_json, sha256_file
from ..spec.artifact import ArtifactRef
from .files import (
    entries,
    make_entries_read_only,
    make_read_only,
    open_plain_file,
    refuse_foreign_files,
    remove_tree,
    remove_trees,
)
from .flocks import Stopped, flocked

META = ".hit"
MANIFEST = "manifest.json"
MANIFEST_TAIL = f"/{META}/{MANIFEST}"  # a prefix's manifest: the prefix, then this


@dataclass(frozen=True)
class Store:
    """A store, and the read-only upstream stores (e.g. the site's) whose artifacts it reuses.

    Lookups go by id: this store first, then each upstream, one stat each (no index to
    rebuild). Everything that writes, locks or enumerates (building, GC) is this store's only.
    """

    root: Path
    upstreams: tuple[Store, ...] = ()
    private: bool = False  # new artifacts readable by their owner only

    def local_prefix(self, ref: ArtifactRef) -> Path:
        """Where `ref` lives (or would be built) in this store."""
        return Path(self._local(ref))

    def _local(self, ref: ArtifactRef) -> str:
        leaf = f"{ref.version}-{ref.hash[:SHORT]}" if ref.version else ref.hash[:SHORT]
        return f"{self.root}/{ref.name}/{leaf}"  # strings: asked for every artifact of a run

    def _installed_at(self, ref: ArtifactRef) -> str | None:
        """The prefix where `ref` is installed (here first, then each upstream), or None."""
        found = self.manifest_stat(ref)
        return found[0][: -len(MANIFEST_TAIL)] if found is not None else None

    def manifest_stat(self, ref: ArtifactRef) -> tuple[str, os.stat_result] | None:
        """The manifest of `ref` where it is installed (here first, then each upstream) and
        its stat (os.stat), or None when it is not installed."""
        for store in (self, *self.upstreams):
            manifest = f"{store._local(ref)}{MANIFEST_TAIL}"
            try:
                return manifest, os.stat(manifest)
            except OSError:
                continue
        return None

    def prefix(self, ref: ArtifactRef) -> Path:
        """Where `ref` is installed: here, else in the first upstream that has it, else here
        (where it would be built)."""
        if not self.upstreams:
            return self.local_prefix(ref)
        return Path(self._installed_at(ref) or self._local(ref))

    def label(self, path: Path | None) -> str:
        """How a path in this store is shown: relative to the store (`name/<version>-<hash>`);
        a path elsewhere (an upstream's) in full; `?` for None."""
        if path is None:
            return "?"
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def is_installed(self, ref: ArtifactRef) -> bool:
        """Whether `ref` is installed here or in an upstream (its manifest exists)."""
        return self._installed_at(ref) is not None

    def find(self, artifact_id: str) -> Path | None:
        """An installed artifact by id (`name/<hash>`, or a unique prefix of the hash)."""
        here = self._find_here(artifact_id)
        if here is not None:
            return here
        return next((p for up in self.upstreams if (p := up.find(artifact_id))), None)

    def pick(self, arg: str, local: bool = False) -> Path:
        """The installed artifact `arg` names, as a person types it: an id (`name/<hash>`),
        a unique start of one (`app/3kx`), or a package name with one artifact. Looked up
        here, then (unless `local`) in each upstream. Raises HitError: nothing matches, or
        `arg` matches several (each listed, with its folder)."""
        for store in [self] if local else [self, *self.upstreams]:
            found = store._matches(arg)
            if len(found) == 1:
                return found[0]
            if found:
                ids = [f"{read_spec(p).get('id', '?')} ({store.label(p)})" for p in found]
                raise HitError(
                    f"{arg} matches {len(found)} artifacts in {store.root}: "
                    + ", ".join(ids)
                    + "; give one of these ids (or a start of one no other shares)"
                )
        what = "" if "/" in arg else " (give a package name, an id NAME/HASH or its start)"
        raise HitError(f"no artifact {arg} in {self.root}{what}")

    def _matches(self, arg: str) -> list[Path]:
        """The installed artifacts of this store that `arg` (`name`, `name/<hash start>`)
        names, sorted."""
        name, _, h = arg.partition("/")
        folder = self.root / name
        if not name or name.startswith(".") or not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if (p / META / MANIFEST).exists()
            and (
                not h
                or p.name.rpartition("-")[2].startswith(h[:SHORT])
                and read_spec(p).get("id", "").startswith(arg)
            )
        )

    def _find_here(self, artifact_id: str) -> Path | None:
        name, _, h = artifact_id.partition("/")
        folder = self.root / name
        if not h or not folder.is_dir():
            return None
        hits = [
            p
            for p in folder.iterdir()
            if p.name.rpartition("-")[2].startswith(h[:SHORT])
            and (p / META / MANIFEST).exists()
            and read_spec(p).get("id", "").startswith(artifact_id)
        ]
        return hits[0] if len(hits) == 1 else None

    @contextmanager
    def lock(self, ref: ArtifactRef, on_wait=None, stop=None, wait=True) -> Iterator[None]:
        """Hold the artifact's lock (an flock on `.locks/<name>-<hash>.lock`: flocks.py);
        `on_wait()` is called once if another process holds it. `stop` (a threading.Event;
        None: wait for as long as it takes) ends a wait within flocks.POLL seconds once set,
        raising HitError: a Ctrl-C reaches the main thread only, and the build threads of a
        run being stopped must end (scheduler.LocalPool.interrupt). Without `wait`, a lock
        another process holds raises BlockingIOError at once."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        try:
            with flocked(locks / f"{ref.name}-{ref.hash}.lock", True, on_wait, stop, wait):
                yield
        except Stopped:
            raise HitError(f"{ref.id}: stopped while waiting for its lock") from None

    @contextmanager
    def gc_lock(self, exclusive: bool, on_wait=None) -> Iterator[None]:
        """The store-wide lock: builders hold it shared for their whole run, the garbage
        collector exclusive, so a GC never runs while a build uses the store. (filelock has
        no shared mode, hence flock.) `on_wait()` is called once if we have to wait."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with flocked(locks / "gc.lock", exclusive, on_wait):
            yield

    @property
    def trash(self) -> Path:
        """Where deleted artifacts go first: out of the store's namespace in one rename."""
        return self.root / ".trash"

    def _used(self, name: str, hash_: str) -> str:
        """The artifact's `.used` stamp: a file whose mtime is when a build last used it."""
        return f"{self.root}/.used/{name}-{hash_}"

    def mark_used(self, refs) -> None:
        """Stamp artifacts a build used (gc --older-than keeps recently used ones): each one's
        file in `.used` made or its times set to now, as Path.touch does, on strings (a
        build of 5,000 packages stamps 5,001). Raises OSError."""
        os.makedirs(f"{self.root}/.used", exist_ok=True)
        for ref in refs:
            self._touch_used(self._used(ref.name, ref.hash))

    @staticmethod
    def _touch_used(path: str, when: float | None = None) -> None:
        """Set the times of the stamp `path` to `when` (None: now), made if missing."""
        try:
            os.utime(path, None if when is None else (when, when))
        except OSError:  # as Path.touch: made (or the error of making it raised), then set
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
            if when is not None:
                os.utime(path, (when, when))

    def stamp_used(self, name: str, hash_: str, when: float) -> None:
        """Set the artifact's `.used` stamp to `when` (seconds since the epoch), made if
        missing (gc.hand_down). Raises OSError."""
        os.makedirs(f"{self.root}/.used", exist_ok=True)
        self._touch_used(self._used(name, hash_), when)

    def forget_used(self, name: str, hash_: str) -> None:
        """Remove the artifact's `.used` stamp (gone with it: gc); never raises (a stamp
        left behind only takes an inode)."""
        with contextlib.suppress(OSError):
            os.unlink(self._used(name, hash_))

    def last_used(self, name: str, hash_: str) -> float | None:
        """When a build last used the artifact (seconds since the epoch), or None."""
        try:
            return os.stat(self._used(name, hash_)).st_mtime
        except OSError:
            return None

    def record_duration(self, name: str, seconds: float) -> None:
        """Remember how long a package took to build (Slurm walltimes are learned from it)."""
        folder = self.root / ".durations"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / name, "a") as f:
            f.write(f"{seconds:.1f}\n")

    def durations(self, name: str) -> list[float]:
        """The last five recorded build times of package `name`, in seconds."""
        try:
            text = (self.root / ".durations" / name).read_text()
        except OSError:
            return []
        return [float(x) for x in text.split()[-5:]]

    def prefixes(self) -> Iterator[Path]:
        """Every artifact folder in the store, complete or not (names with a dot are the
        store's own)."""
        return map(Path, self.prefix_paths())

    def prefix_paths(self) -> Iterator[str]:
        """`prefixes`, as strings (no Path made: the collector lists a site's tens of
        thousands)."""
        for name_dir in os.scandir(self.root):
            if name_dir.name.startswith(".") or not name_dir.is_dir(follow_symlinks=False):
                continue
            for leaf in os.scandir(name_dir.path):
                if not leaf.name.startswith("."):
                    yield leaf.path

    def begin(self, ref: ArtifactRef) -> Path:
        """Clear debris of an earlier attempt and create the empty prefix. Hold the lock.

        The prefix is its owner's only (0700) until `commit`: nobody else sees, runs or
        reads a half-built artifact (a setuid file a build installs, a private build's
        files)."""
        prefix = self.local_prefix(ref)
        if prefix.exists() or prefix.is_symlink():
            remove_tree(prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        prefix.mkdir(mode=0o700)
        (prefix / META).mkdir()
        return prefix

    def commit(
        self,
        ref: ArtifactRef,
        spec: dict,
        log: Path | None,
        manifest: dict | None = None,
        discard: Path | None = None,
    ) -> Path:
        """Record spec, log and manifest, make everything read-only: now it is installed, and
        durably so (`stage`, `publish`, then the folder holding the manifest flushed).
        `discard` (a build folder, its log moved into the artifact) goes just before the
        flush: its files never reach the disk (unlinking files a syncfs just flushed costs
        about 2 ms each on ext4). Raises HitError as those do. (`hit build` commits in
        groups: commit.py.)"""
        prefix = self.stage(ref, spec, log, manifest)
        self.publish([prefix], [discard] if discard is not None else [])
        try:
            sync_path(prefix / META)
        except OSError as e:
            raise HitError(f"cannot install into {prefix}: {e.strerror or e}") from None
        return prefix

    def stage(
        self, ref: ArtifactRef, spec: dict, log: Path | None, manifest: dict | None = None
    ) -> Path:
        """The first half of a commit, everything but the flush: `seal`, then `describe`.
        Returns the prefix, which `publish` then makes count as installed."""
        prefix = self.seal(ref, manifest)
        self.describe(prefix, spec, log, manifest)
        return prefix

    def seal(self, ref: ArtifactRef, made: dict | None = None) -> Path:
        """Staging, first step (hold the artifact's lock): refuse what an artifact may not
        hold (`refuse_foreign_files`), then make every file and folder of it read-only,
        setuid, setgid and sticky bits stripped, but its metadata folder (which takes
        build.json, the log and the manifest next: `describe`). From then on a build that
        depends on it cannot change it. `made`: the manifest of an artifact hit made itself,
        entry by entry, in its private prefix (a profile's farm: no build script ran there):
        its folders and files are made read-only from it, without walking the 10,000 links
        of a 5,000-package profile twice (issue 18). Returns the prefix. Raises HitError
        naming the path."""
        prefix = self.local_prefix(ref)
        hide = 0o077 if self.private else 0
        try:
            if made is None:
                refuse_foreign_files(prefix)
                make_read_only(prefix, hide, keep_writable=prefix / META)
            else:
                make_entries_read_only(prefix, made, hide, meta=META)
            os.chmod(prefix, 0o500 if self.private else 0o555)
        except OSError as e:
            raise HitError(
                f"cannot install into {e.filename or prefix}: {e.strerror or e}"
            ) from None
        return prefix

    def describe(
        self, prefix: Path, spec: dict, log: Path | None, manifest: dict | None = None
    ) -> None:
        """Staging, second step, on a `seal`ed prefix: build.json (`spec`), the manifest
        (computed unless given: every file's hash) beside its final name, and the build log
        `log` (if it exists: moved, as its build folder is removed next; `_take`), read-only
        in its metadata folder. Raises HitError naming the path (a full disk)."""
        meta = prefix / META
        mode = 0o400 if self.private else 0o444
        try:
            _write(meta / "build.json", spec_text(spec).encode(), mode)
            if manifest is None:
                manifest = make_manifest(prefix)
            _write(meta / f".{MANIFEST}.tmp", canonical_json(manifest).encode(), mode)
            if log is not None and log.exists():  # last: a failure above keeps it where it is
                _take(log, meta / "build.log", mode)
        except OSError as e:
            raise HitError(f"cannot install into {e.filename or meta}: {e.strerror or e}") from None
        except UnicodeError:  # a manifest is JSON text: it cannot name such a file
            raise HitError(f"{prefix}: holds a file whose name is not UTF-8") from None

    def publish(self, prefixes: list[Path], discard: Sequence[Path] = ()) -> None:
        """The second half of a commit, for artifacts `stage`d (their locks held): remove
        the folders `discard` (build folders: before the flush, so that their files never
        reach the disk), flush everything staged (`sync_trees`), then rename each manifest
        into place in the order given, and make its folder read-only.

        The rule, as in Nix's registration of a valid path: an artifact's files must be on
        disk before its manifest's rename can be, so that after a power cut an artifact
        either counts as installed with all its bytes or does not count at all. The renames
        themselves need no flush for that: one lost to a crash leaves an artifact that does
        not count (debris, rebuilt by the next build); they reach the disk with the next
        flush (of the next group, or the one that ends the run: commit.GroupCommit.close).
        A dependency is published before what was built on it (the order given). Raises
        HitError naming the path (nothing after a failed rename is renamed)."""
        try:
            remove_trees(discard)  # several at once: each unlink may wait for a trim
            sync_trees(prefixes)
        except OSError as e:
            where = e.filename or prefixes[0]
            raise HitError(f"cannot install into {where}: {e.strerror or e}") from None
        for prefix in prefixes:
            meta = prefix / META
            try:
                os.replace(meta / f".{MANIFEST}.tmp", meta / MANIFEST)
                os.chmod(meta, 0o500 if self.private else 0o555)
            except OSError as e:
                raise HitError(f"cannot install into {prefix}: {e.strerror or e}") from None


def abandon(prefix: Path) -> None:
    """Remove the prefix of an artifact being made (its lock held) after a failure, unless
    its manifest was renamed into place (`Store.publish`): then it is installed, and another
    process may link to it already. A Ctrl-C while the commit's last flush ran came after
    that rename, and removing the prefix left another `hit build`'s link pointing at
    nothing (issue 18's attack trial)."""
    if not (prefix / META / MANIFEST).is_file():
        remove_tree(prefix)


def read_manifest(prefix: Path) -> dict[str, str]:
    """An installed artifact's manifest (path -> `f:`/`x:`<sha256> or `l:`<target>); HitError if
    missing or damaged."""
    try:
        return json.loads((prefix / META / MANIFEST).read_text())
    except (OSError, ValueError):
        raise HitError(f"{prefix}: its manifest is missing or damaged (try `hit verify`)") from None


def read_spec(prefix: Path) -> dict:
    """An artifact's build.json as a dict ({} if missing or damaged)."""
    try:
        return json.loads((prefix / META / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def make_manifest(prefix: Path) -> dict[str, str]:
    """Every file below the prefix (but `.hit`): `f:<sha256>`, `x:<sha256>` or `l:<target>`."""
    out: dict[str, str] = {}
    base, skip = str(prefix), f"{META}/"
    for rel, st in entries(prefix):
        if rel == META or rel.startswith(skip):
            continue
        if stat.S_ISLNK(st.st_mode):
            out[rel] = "l:" + os.readlink(f"{base}/{rel}")
        elif stat.S_ISREG(st.st_mode):
            out[rel] = ("x:" if st.st_mode & 0o111 else "f:") + sha256_file(Path(base, rel))
    return out


# build.json past this many characters (a profile's record, past some 500 packages) is one
# line: json's indenting encoder is pure Python, 10-16 ms for a 5,000-package profile on
# every switch, against 3 ms without (issue 18); people read the smaller ones.
INDENTED_UP_TO = 64 * 1024


def spec_text(spec: dict) -> str:
    """build.json's text for `spec`: sorted keys, indented by 2, or on one line past
    INDENTED_UP_TO characters; ends with a line break."""
    text = json.dumps(spec, sort_keys=True)
    if len(text) <= INDENTED_UP_TO:
        text = json.dumps(spec, indent=2, sort_keys=True)
    return text + "\n"


def _write(path: Path, content: bytes | BinaryIO, mode: int) -> None:
    """Write `content` (bytes, or what is left of an open file) to `path`, whose mode is
    `mode` (read-only)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with open(fd, "wb") as out:
        os.fchmod(fd, mode)  # if it was there already
        if isinstance(content, bytes):
            out.write(content)
        else:
            shutil.copyfileobj(content, out)


def _take(source: Path, target: Path, mode: int) -> None:
    """Move the file `source` (a build log in a build folder about to be removed) to
    `target`, whose mode is `mode`: one rename instead of a file made, copied and removed.
    Copied instead when it is a plain file of more than one link (a build may have linked
    it) or cannot be renamed (on another filesystem); not kept at all when it is no plain
    file (the build replaced it by a FIFO, which would block hit forever, a device such as
    /dev/zero, which never ends, or a symlink: files.open_plain_file). Raises OSError."""
    st = os.lstat(source)
    if not stat.S_ISREG(st.st_mode):
        return
    if st.st_nlink == 1:
        try:
            os.rename(source, target)
        except OSError:
            pass
        else:
            os.chmod(target, mode)
            return
    fd = open_plain_file(source)
    if fd is None:
        return
    with open(fd, "rb") as log:
        _write(target, log, mode)


def sync_path(path: Path | str) -> None:
    """Flush one file or folder (its entries) to disk. A file its owner made unreadable
    (mode 0o000 after a build's chmod) cannot be opened by a non-root owner: skipped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_trees(roots: list[Path]) -> None:
    """Flush every file and folder below each of `roots` (and the roots) to disk.

    One syncfs(2) of each filesystem holding them when the C library has it (Linux): it
    flushes every dirty page of that filesystem, 20-30x faster than an fsync per file for
    an artifact of thousands of files (see bench/bench_commit.py), and faster even for a
    trivial artifact of six files and four folders (8 ms against 35 ms on ext4, where each
    fsync waits for a journal commit of its own); a group of artifacts costs one. It is
    also the one flush that reaches a symlink's own inode (and the data block of a target
    longer than 59 bytes on ext4), which no fsync can open: so a profile's farm of links is
    flushed this way too, although it waits for every other writer's dirty pages (an fsync
    of its few folders alone leaves new links' inodes unwritten on ext4 without a journal).
    Otherwise (no syncfs in the C library) an fsync of every regular file and folder;
    links are skipped (they cannot be opened), and so are FIFOs and devices (opening one
    could block). Raises OSError."""
    flushed: set[int] = set()  # the filesystems one syncfs flushed
    for root in roots:
        device = os.stat(root).st_dev
        if device in flushed:
            continue
        if _syncfs(root):
            flushed.add(device)
            continue
        for rel, st in entries(root, links=False):
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                sync_path(root / rel)
        sync_path(root)


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem of `path`; False when the C library lacks it."""
    import ctypes  # only a commit pays for it

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True
