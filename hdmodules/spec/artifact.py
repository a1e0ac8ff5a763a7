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
