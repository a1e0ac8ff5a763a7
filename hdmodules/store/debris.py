"""Debris the builds leave, which `hit gc` tidies: build folders in the home's `tmp/` whose
build no longer runs, and package folders of the store left empty.

A build works in `tmp/<name>-<hash12>` (buildjob.build_folder) and removes it when it
succeeds; a failed build keeps it (its log and sources, for debugging), and so does one that
was interrupted. A build is running while its artifact's lock is held (layout.Store.lock) or
while any process carries its folder as HIT_BUILD_ID (every process of the build script
does, builder.kill_build_processes): its folder is never touched. The others are removed,
except a failure younger than `keep_failed_days` (config.yaml), kept for debugging; a folder
whose artifact got built since is removed whatever its age. Only folders that look like
build folders are considered (`<name>-<12 base32 characters>` holding `src/` or
`build.sh`, owned by this user), so a `build_temp` pointing at a shared folder loses nothing
else. The gc does this under its exclusive lock, when no build of this store runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..hashing import SHORT
from .files import remove_trees
from .layout import MANIFEST, META, Store

FOLDER = re.compile(rf"^(.+)-([a-z2-7]{{{SHORT}}})$")
BUILD_ID = b"HIT_BUILD_ID="


@dataclass(frozen=True)
class Tidy:
    """Where the build folders are, and how long a failed build's folder is kept (seconds;
    `why` says so in the config's words)."""

    build_temp: Path
    keep_failed: float
    why: str


@dataclass
class Debris:
    """What tidying did (or would do): build folders removed, kept (with why), empty
    package folders removed, bytes freed."""

    removed: list[tuple[Path, str]] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)
    empty: list[Path] = field(default_factory=list)
    bytes_freed: int = 0


def running_build_ids() -> set[str]:
    """The HIT_BUILD_ID of every live process that carries one and that this user may read:
    the build folders of builds still running."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        for var in env.split(b"\0"):
            if var.startswith(BUILD_ID):
                found.add(os.fsdecode(var[len(BUILD_ID) :]))
    return found


def _lock_held(store: Store, name: str, short: str) -> bool:
    """Whether a process holds the lock of an artifact `name` whose hash starts `short`."""
    from .flocks import held_elsewhere

    locks = store.root / ".locks"
    for lock in locks.glob(f"{glob_escape(name)}-{short}*.lock"):
        try:
            if held_elsewhere(lock):
                return True
        except OSError:
            continue
    return False


def glob_escape(text: str) -> str:
    """`text` with glob's special characters matched literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _built(store: Store, name: str, short: str) -> bool:
    folder = store.root / name
    return any((p / META / MANIFEST).exists() for p in folder.glob(f"*-{short}"))


def _last_written(folder: Path) -> float:
    times = [folder.lstat().st_mtime]
    with contextlib.suppress(OSError):
        times.append((folder / "build.log").lstat().st_mtime)
    return max(times)


def _build_folders(build_temp: Path) -> list[tuple[Path, str, str]]:
    """(folder, package name, short hash) of what looks like a build folder of this user."""
    out = []
    try:
        entries = sorted(os.scandir(build_temp), key=lambda e: e.name)
    except OSError:
        return out
    me = os.geteuid()
    for e in entries:
        m = FOLDER.match(e.name)
        if not m or not e.is_dir(follow_symlinks=False) or e.stat().st_uid != me:
            continue
        path = Path(e.path)
        if (path / "src").is_dir() or (path / "build.sh").is_file():
            out.append((path, m.group(1), m.group(2)))
    return out


def _age(seconds: float) -> str:
    """An age as people say it: `2.5 days`, `1 hour`, `1 minute`, `under a minute`."""
    for unit, size, digits in (("day", 86400, 1), ("hour", 3600, 1), ("minute", 60, 0)):
        if seconds >= size:
            count = f"{seconds / size:.{digits}f}".removesuffix(".0")
            return f"{count} {unit}" + ("" if count == "1" else "s")
    return "under a minute"


def tidy(
    store: Store,
    policy: Tidy,
    dry_run: bool,
    gone: set[Path],
    size: Callable[[Path], int],
    holding: frozenset[str] = frozenset(),
) -> Debris:
    """Remove (unless `dry_run`) the build folders of builds no longer running, but failures
    younger than `policy.keep_failed`, then the package folders of `store` that hold nothing
    but what is `gone` (the artifacts the gc removed, or would; `holding`: package folders
    known to hold an artifact that stays, as empty_package_folders takes them). `size`
    counts the bytes freed. Hold the store's GC lock exclusive."""
    out = Debris()
    now = time.time()
    running = running_build_ids()
    for path, name, short in _build_folders(policy.build_temp):
        if str(path) in running or _lock_held(store, name, short):
            out.kept.append((path, "its build is running"))
            continue
        age = now - _last_written(path)
        if _built(store, name, short):
            why = "its artifact is built now"
        elif age < policy.keep_failed:
            failed = f"a failed or interrupted build, last written {_age(age)} ago"
            out.kept.append((path, f"{failed}, kept for debugging ({policy.why})"))
            continue
        else:
            why = f"a failed or interrupted build, last written {_age(age)} ago ({policy.why})"
        out.removed.append((path, why))
        out.bytes_freed += size(path)
    if not dry_run:  # several at once (files.remove_trees); no build starts meanwhile
        remove_trees(p for p, _why in out.removed)
    out.empty = empty_package_folders(store, dry_run, gone, holding)
    return out


def empty_package_folders(
    store: Store, dry_run: bool, gone: set[Path], holding: frozenset[str] = frozenset()
) -> list[Path]:
    """The package folders of `store` (`<name>/`, not the store's own dot folders) that hold
    nothing but what is in `gone`, removed unless `dry_run` (rmdir: a folder something was
    put in meanwhile stays). Those in `holding` (paths, as strings) are known to hold
    something that stays (the collector's scan, under the GC lock: nothing is built
    meanwhile) and are not listed again: a site's store has tens of thousands."""
    out = []
    try:
        entries = list(os.scandir(store.root))
    except OSError:
        return out
    gone_paths = {str(p) for p in gone}  # strings: one look-up per artifact of the store
    for e in sorted(entries, key=lambda e: e.name):
        if e.name.startswith(".") or e.path in holding or not e.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError), os.scandir(e.path) as inside:
            if all(x.path in gone_paths for x in inside):  # stops at the first one kept
                if not dry_run:
                    os.rmdir(e.path)
                out.append(Path(e.path))
    return out
