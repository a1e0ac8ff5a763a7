"""`hit verify`: re-hash artifacts' files against the manifest written when each was built."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HitError
from .layout import MANIFEST, META, Store, entries, make_manifest, read_manifest

KINDS = ("modified", "added", "removed", "unsafe")


@dataclass
class Damage:
    """How an artifact's files differ from its manifest: paths relative to `prefix`."""

    prefix: Path
    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # "path (mode 4777)": see unsafe_modes

    @property
    def ok(self) -> bool:
        return not (self.modified or self.added or self.removed or self.unsafe)


def unsafe_modes(prefix: Path) -> list[str]:
    """What in an installed artifact is writable, setuid/setgid/sticky, or neither a file,
    a folder nor a symlink: none of it can be there after a commit (Store.commit), so each
    is a change made since (by a process that outlived its build, or by hand)."""
    out = []
    for rel, st in entries(prefix):
        if stat.S_ISLNK(st.st_mode):
            continue
        odd = not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))
        if odd or st.st_mode & (0o7000 | 0o222):
            out.append(f"{rel} (mode {oct(stat.S_IMODE(st.st_mode))[2:]})")
    return sorted(out)


def check(prefix: Path) -> Damage:
    """Compare one artifact's files with its manifest. Raises HitError when the manifest is
    missing or damaged."""
    recorded = read_manifest(prefix)
    now = make_manifest(prefix)
    return Damage(
        prefix,
        modified=sorted(p for p in recorded.keys() & now.keys() if recorded[p] != now[p]),
        added=sorted(now.keys() - recorded.keys()),
        removed=sorted(recorded.keys() - now.keys()),
        unsafe=unsafe_modes(prefix),
    )


def verify(store: Store, artifacts: list[str]) -> list[Damage]:
    """Check the given artifacts (ids, `name/<hash>` or a unique start of it, or paths), or
    every complete artifact of this store when none is given. Raises HitError for an
    artifact that is not there."""
    if not artifacts:
        return [check(p) for p in store.prefixes() if (p / META / MANIFEST).exists()]
    prefixes = []
    for a in artifacts:
        p = Path(a).absolute() if Path(a).exists() else store.find(a)
        if p is None:
            raise HitError(f"no artifact {a} in {store.root}")
        prefixes.append(p)
    return [check(p) for p in prefixes]


def describe(damages: list[Damage], store: Store) -> list[str]:
    """`ok        name/<version>-<hash>` for an intact artifact, else one line a changed
    file: `modified  name/<version>-<hash>/bin/tool` (or added, removed)."""
    lines = []
    for damage in damages:
        name = store.label(damage.prefix)
        if damage.ok:
            lines.append(f"ok        {name}")
        for kind in KINDS:
            lines += [f"{kind:<9} {name}/{f}" for f in getattr(damage, kind)]
    return lines
