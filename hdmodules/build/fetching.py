"""Fetching first: every download a plan needs is in the source cache before anything builds.

A build that finds its source missing would otherwise fail after minutes of building others
(offline: after every build before it). So `hit build`, `hdmod build` (and their Slurm
submissions, on the submitting side) first list what the artifacts still to build need, look
each up in the cache, and fetch what is missing, several at once, with one progress line
each. The first failure stops everything at once (downloads under way are dropped) and says
where it looked and what to do. `hit fetch PROFILE.yaml` and `hdmod fetch SITE.yaml [--to
DIR]` run the same code over every recipe a profile or site uses.

What is fetched: URL sources and URL patches (into `sha256/<hex>`, trying each mirror first:
sources.candidates), and remote git repositories at a commit (a bare mirror in `git/`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..errors import HitError
from ..spec.recipes import Recipe
from ..store.home import Home
from ..urls import is_remote_git
from .sources import FetchFailed, Stopped, cache_file, fetch_from

Say = Callable[[str], None]  # one progress line for the user
WORKERS = 4  # downloads at once
GRACE = 0.2  # seconds to gather other failures after the first (offline: all fail at once)


@dataclass(frozen=True)
class Need:
    """One download a plan needs: a URL source or patch (`url` + `sha256`), or a remote git
    repository at a commit (`git` + `commit`). `where` is who needs it (`recipe.yaml:LINE`)."""

    url: str | None = None
    sha256: str | None = None
    git: str | None = None
    commit: str | None = None
    where: str = ""
    pypi: str | None = None  # `name==version` on the package index (build/pypi.py)

    @property
    def name(self) -> str:
        """Its file name (`pkg-1.0.tar.gz`), or `repository@commit12` for git."""
        if self.git is not None:
            return f"{self.git}@{(self.commit or '')[:12]}"
        if self.pypi is not None:
            return self.pypi
        assert self.url is not None
        return PurePosixPath(urlsplit(self.url).path).name or self.url

    @property
    def key(self) -> str:
        """What makes two needs the same download: the content hash, or repository+commit."""
        return self.sha256 or f"{self.git}@{self.commit}"


def needs_of(recipes: Iterable[Recipe]) -> list[Need]:
    """Every download the recipes' sources and patches need, each once, in recipe order.
    Folder and file sources, and local git repositories, need none."""
    out: dict[str, Need] = {}
    for recipe in recipes:
        for s in recipe.sources:
            where = f"{recipe.file}:{s.line}"
            if s.url is not None:
                need = Need(url=s.url, sha256=s.sha256, where=where)
            elif s.pypi is not None:
                need = Need(pypi=s.pypi, sha256=s.sha256, where=where)
            elif s.git is not None and s.commit is not None and is_remote_git(s.git):
                need = Need(git=s.git, commit=s.commit, where=where)
            else:
                continue
            out.setdefault(need.key, need)
        for p in recipe.patches:
            if p.url is not None:
                need = Need(url=p.url, sha256=p.sha256, where=f"{recipe.file}:{p.line}")
                out.setdefault(need.key, need)
    return list(out.values())


def is_cached(need: Need, cache: Path) -> bool:
    """Whether `cache` (a source cache, or a seed folder laid out like one) holds `need`."""
    if need.sha256 is not None:
        return cache_file(cache, need.sha256).is_file()
    from ..runner import query
    from .gitsources import mirror

    gitdir = mirror(cache, need.git or "")
    spec = f"{need.commit}^{{commit}}"
    return gitdir.is_dir() and query(["git", "-C", str(gitdir), "cat-file", "-e", spec]).code == 0


def _fetch_one(need: Need, cache: Path, mirrors: tuple[str, ...], stop: threading.Event) -> str:
    """Fetch one need into `cache`; returns where it came from. Raises FetchFailed, HitError
    (git), Stopped."""
    if need.git is not None:
        from .gitsources import ensure_commit

        assert need.commit is not None
        ensure_commit(cache, need.git, need.commit)
        return need.git
    if need.pypi is not None:
        from .pypi import fetch_pypi

        assert need.sha256 is not None
        return fetch_pypi(cache, need.pypi, need.sha256, mirrors, stop)[1]
    assert need.url is not None
    return fetch_from(cache, need.url, need.sha256, mirrors, stop)[1]


Done = tuple[Need, str, float, BaseException | None]  # need, came from, seconds, failure


def fetch_all(
    needs: list[Need],
    cache: Path,
    mirrors: tuple[str, ...],
    say: Say,
    config: str,
    building: bool = True,
    workers: int = WORKERS,
) -> int:
    """Fetch into `cache` every need it lacks, `workers` at once, saying one line per file
    fetched. Returns how many were fetched. On the first failure the others are dropped and
    HitError is raised with every mirror tried and what to do (`config` names the file
    whose `mirrors:` the user may edit; `building` adds that nothing was built)."""
    todo = [n for n in needs if not is_cached(n, cache)]
    if not todo:
        return 0
    count = min(workers, len(todo))
    when = " before anything builds" if building else ""
    say(f"fetching {len(todo)} source(s){when}, {count} at once")
    stop = threading.Event()
    pending: queue.SimpleQueue[Need] = queue.SimpleQueue()
    for need in todo:
        pending.put(need)
    done: queue.SimpleQueue[Done] = queue.SimpleQueue()
    # daemon threads: a download stuck connecting never keeps the command from exiting
    threads = [
        threading.Thread(target=_worker, args=(pending, done, cache, mirrors, stop), daemon=True)
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    failures: list[tuple[Need, BaseException]] = []
    for number in range(1, len(todo) + 1):
        need, origin, seconds, error = done.get()
        if error is not None and not isinstance(error, HitError | OSError):
            stop.set()
            raise error  # a bug, not a download that failed
        if error is not None:
            failures.append((need, error))
            break
        size = _size(cache, need)
        came = "" if origin in ("", need.url, need.git) else f" from {origin}"
        say(f"[{number}/{len(todo)}] {need.name}  fetched{size} in {seconds:.1f} s{came}")
    if not failures:
        return len(todo)
    stop.set()
    failures += _more_failures(done)
    raise HitError(_failure_text(failures, mirrors, config, building))


def _worker(
    pending: queue.SimpleQueue[Need],
    done: queue.SimpleQueue[Done],
    cache: Path,
    mirrors: tuple[str, ...],
    stop: threading.Event,
) -> None:
    """Take needs from `pending` until it is empty or `stop` is set; report each to `done`."""
    while not stop.is_set():
        try:
            need = pending.get_nowait()
        except queue.Empty:
            return
        start = time.monotonic()
        try:
            origin = _fetch_one(need, cache, mirrors, stop)
        except Stopped:
            return
        except Exception as e:  # noqa: BLE001 - handed to the waiting thread, never lost
            done.put((need, "", 0.0, e))
            continue
        done.put((need, origin, time.monotonic() - start, None))


def _more_failures(done: queue.SimpleQueue[Done]) -> list[tuple[Need, BaseException]]:
    """Failures reported within GRACE seconds of the first (offline, every URL fails)."""
    out = []
    deadline = time.monotonic() + GRACE
    while (left := deadline - time.monotonic()) > 0:
        try:
            need, _origin, _seconds, error = done.get(timeout=left)
        except queue.Empty:
            break
        if error is not None:
            out.append((need, error))
    return out


def _size(cache: Path, need: Need) -> str:
    """` (1.2 MB)`: the size of a fetched file in the cache, for its progress line."""
    if need.sha256 is None:
        return ""
    try:
        size = cache_file(cache, need.sha256).stat().st_size
    except OSError:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f" ({size:.0f} {unit})" if unit == "B" else f" ({size:.1f} {unit})"
        size /= 1024
    return ""


def _failure_text(
    failures: list[tuple[Need, BaseException]],
    mirrors: tuple[str, ...],
    config: str,
    building: bool,
) -> str:
    """The message of a failed fetch: the first failure with every place tried, the others by
    name, then what to do."""
    need, error = failures[0]
    lines = [f"cannot fetch {need.url or need.name} (needed by {need.where}):"]
    if isinstance(error, FetchFailed):
        lines += [f"  tried {where}: {what}" for where, what in error.attempts]
    else:
        lines += [f"  {error}"]
    if not mirrors:
        lines.append(f"  (no mirrors are configured: `mirrors:` in {config})")
    others = [n.name for n, _e in failures[1:]]
    if others:
        lines.append(f"  nor could {len(others)} more: {', '.join(others)}")
    first = "Nothing was built. " if building else ""
    lines.append(
        f"{first}Without internet here: fetch on a machine that has it (`hit fetch "
        f"PROFILE.yaml`, or `hdmod fetch SITE.yaml --to DIR` and carry DIR over), then `hit "
        f"fetch --from DIR` here (HIT_HOME=ROOT for a site); or list a folder or server that "
        f"holds the files (by name, or as sha256/<hex>) under `mirrors:` in {config} (or in "
        f"site.yaml, for a site)."
    )
    return "\n".join(lines)


def fetch_first(recipes: Iterable[Recipe], home: Home, say: Say) -> int:
    """Before anything builds: every download the `recipes` (those of the artifacts still to
    build) need into `home`'s source cache, through its mirrors. Returns how many were
    fetched. Raises HitError (see `fetch_all`) before any build has started."""
    needs = needs_of(recipes)
    config = str(home.root / "config.yaml")
    return fetch_all(needs, home.source_cache, home.mirrors, say, config)
