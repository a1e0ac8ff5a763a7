"""Artifact ids: `name/<hash>`, the hash being that of the artifact's build spec
(hashing.hash_doc), and how they are shown to people."""

from __future__ import annotations

from dataclasses import dataclass

from ..hashing import SHORT


@dataclass(frozen=True)
class ArtifactRef:
    """Enough to find an artifact: its id (`name/<hash>`) and version (for the readable path)."""

    name: str
    version: str
    hash: str

    @property
    def id(self) -> str:
        return f"{self.name}/{self.hash}"

    @property
    def short(self) -> str:
        return short_id(self.id)


def short_id(artifact_id: str) -> str:
    """`name/<hash>` -> `name/<first SHORT characters of the hash>`: how an artifact is shown
    to people (and named in store paths)."""
    name, _, h = artifact_id.partition("/")
    return f"{name}/{h[:SHORT]}"


def changed(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """`(kind, name, old id, new id)` for each name whose artifact differs between two maps of
    name -> artifact id, sorted by name; kind is `added`, `removed` or `updated` (an id is ""
    where its map lacks the name)."""
    out = []
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name, ""), new.get(name, "")
        if was != now:
            kind = "added" if not was else "removed" if not now else "updated"
            out.append((kind, name, was, now))
    return out
