"""The collector's view of a store (gc.py): every artifact folder with its id, what it keeps
alive and whether it is complete, read from each artifact's build.json once and kept in a
cache beside the artifacts (a site's store holds tens of thousands)."""

from __future__ import annotations

import contextlib
import marshal
import os
from array import array
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
FORMAT = 2  # the cache file's layout (Cache): a cache of another layout is not used
SEP, REF_SEP = "\0", "\x1f"  # between the cache's entries; between one entry's references


@dataclass(frozen=True)
class Cache:
    """The store's SCAN_CACHE, as a few flat objects that marshal loads in milliseconds
    (as build/memo.py keeps its memo), entry i being: the prefix `prefixes[i]`, complete with
    the manifest whose (inode, mtime_ns) are `stamps[2i:2i+2]`, its id `ids[i]`, and the ids
    it keeps alive `refs[i]` (joined by REF_SEP). Saved as (FORMAT, the prefixes, ids and
    refs each joined by SEP, the stamps' bytes)."""

    prefixes: list[str]
    stamps: array  # of 64-bit integers: inode, mtime_ns of each entry
    ids: list[str]
    refs: list[str]

    def stamp(self, i: int) -> tuple[int, int]:
        """(inode, mtime_ns) of entry `i`'s manifest."""
        return self.stamps[2 * i], self.stamps[2 * i + 1]

    def dump(self) -> bytes:
        """The cache file's content."""
        s = SEP
        doc = (FORMAT, s.join(self.prefixes), s.join(self.ids), s.join(self.refs))
        return marshal.dumps((*doc, self.stamps.tobytes()))


def scan(store: Store) -> dict[Path, Artifact]:
    """Every artifact folder of this store (complete or not), by prefix, with its id and the
    ids it keeps alive (`buildspec.references`: a build's dependencies, a profile's
    artifacts). A folder without a readable build.json has the id "" and keeps nothing
    alive.

    A complete artifact never changes, so what its build.json says is kept in the store's
    SCAN_CACHE under the (inode, mtime) of its manifest, and read again only for an artifact
    whose manifest is not the one cached (new, or removed and built again): a site's tens of
    thousands of build.json files are read once, not at every collection."""
    cache = load_cache(store.root)
    at = {p: i for i, p in enumerate(cache.prefixes)}
    seen = Cache([], array("q"), [], [])
    out = {}
    for key in store.prefix_paths():
        try:
            st = os.stat(f"{key}/{META}/{MANIFEST}")
            stamp: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except OSError:
            stamp = None
        i = at.get(key)
        if stamp is not None and i is not None and cache.stamp(i) == stamp:
            artifact_id, joined = cache.ids[i], cache.refs[i]
            refs = joined.split(REF_SEP) if joined else []
        else:
            record = read_spec(Path(key))
            artifact_id, refs = record_id(record), list(references(record))
            joined = REF_SEP.join(refs)
        if stamp is not None:
            seen.prefixes.append(key)
            seen.stamps.extend(stamp)
            seen.ids.append(artifact_id)
            seen.refs.append(joined)
        prefix = Path(key)
        out[prefix] = Artifact(prefix, artifact_id, refs, stamp is not None)
    if seen != cache:
        with contextlib.suppress(OSError):  # only a cache: the next scan reads in full
            write_atomic(store.root / SCAN_CACHE, seen.dump())
    return out


def load_cache(root: Path) -> Cache:
    """The SCAN_CACHE of the store at `root`; an empty one when it is missing, unreadable or
    damaged, or of another layout or Python's marshal format."""
    empty = Cache([], array("q"), [], [])
    try:
        with open(root / SCAN_CACHE, "rb") as f:
            version, prefixes, ids, refs, stamps = marshal.load(f)
        if version != FORMAT:
            return empty
        cache = Cache(_split(prefixes), array("q", stamps), _split(ids), _split(refs))
    except (OSError, EOFError, ValueError, TypeError, AttributeError, OverflowError):
        return empty
    n = len(cache.prefixes)
    ok = len(cache.ids) == len(cache.refs) == n and len(cache.stamps) == 2 * n
    return cache if ok else empty


def _split(joined: str) -> list[str]:
    """The entries `SEP.join` joined (none for "")."""
    return joined.split(SEP) if joined else []
