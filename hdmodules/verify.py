"""`hit verify`: re-hash an artifact's files against the manifest written when it was built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .store import make_manifest, read_manifest


@dataclass
class Damage:
    prefix: Path
    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.modified or self.added or self.removed)


def verify(prefix: Path) -> Damage:
    recorded = read_manifest(prefix)
    now = make_manifest(prefix)
    return Damage(
        prefix,
        modified=sorted(p for p in recorded.keys() & now.keys() if recorded[p] != now[p]),
        added=sorted(now.keys() - recorded.keys()),
        removed=sorted(recorded.keys() - now.keys()),
    )
