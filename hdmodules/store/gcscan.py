"""The collector's view of a store (gc.py): every artifact folder with its id, what it keeps
alive and whether it is complete, read from each artifact's build.json once and kept in a
cache beside the artifacts (a site's store holds tens of thousands)."""

from __future__ import annotations

import contextlib
import marshal
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..spec.buildspec import record_id, references
from .layout import MANIFEST, META, Store, read_spec


@dataclass
class Artifact:
    """One folder of the store as the collector sees it: its id, what it keeps alive, whether it is
    complete."""

    prefix: Path
    id: str
    refs: list[str]  # ids it keeps alive: dependencies, or a profile's artifacts
    complete: bool


SCAN_CACHE = ".gc-scan"  # in the store: the id and references scan read of each artifact


def scan(store: Store) -> dict[Path, Artifact]:
    """Every artifact folder of this store (complete or not), by prefix, with its id and the
    ids it keeps alive (`buildspec.references`: a build's dependencies, a profile's
    artifacts). A folder without a readable build.json has the id "" and keeps nothing
    alive.

    A complete artifact never changes, so what its build.json says is kept in the store's
    SCAN_CACHE under the (inode, mtime) of its manifest, and read again only for an artifact
    whose manifest is not the one cached (new, or removed and built again): a site's tens of
    thousands of build.json files are read once, not at every collection."""
    cache = _load_scan_cache(store.root)
    seen: dict[str, tuple] = {}
    out = {}
    for prefix in store.prefixes():
        key = str(prefix)
        try:
            st = os.stat(os.path.join(key, META, MANIFEST))
            stamp: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        known = cache.get(key)
        if stamp is not None and known is not None and known[0] == stamp:
            artifact_id, refs = known[1], known[2]
        else:
            record = read_spec(prefix)
            artifact_id, refs = record_id(record), list(references(record))
        if stamp is not None:
            seen[key] = (stamp, artifact_id, refs)
        out[prefix] = Artifact(prefix, artifact_id, list(refs), stamp is not None)
    if seen != cache:
        with contextlib.suppress(OSError):  # only a cache: the next scan reads in full
            write_atomic(store.root / SCAN_CACHE, marshal.dumps(seen))
    return out


def _load_scan_cache(root: Path) -> dict[str, tuple]:
    """The store's SCAN_CACHE: prefix -> ((inode, mtime_ns) of its manifest, id, refs); {}
    when missing or unreadable (another Python's marshal format, a damaged file)."""
    try:
        with open(root / SCAN_CACHE, "rb") as f:
            cache = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return cache if isinstance(cache, dict) else {}
