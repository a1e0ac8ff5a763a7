"""`hit verify`: re-hash artifacts' files against the manifest written when each was built."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HitError
from .layout import MANIFEST, META, Store, entries, make_manifest, read_manifest

KINDS = ("modified", "added", "removed", "unsafe", "dangling")


@dataclass
class Damage:
    """How an artifact's files differ from its manifest: paths relative to `prefix`."""

    prefix: Path
    modified: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)  # "path (mode 4777)": see unsafe_modes
    dangling: list[str] = field(default_factory=list)  # "path -> target": see dangling_links

    @property
    def ok(self) -> bool:
        return not any(getattr(self, kind) for kind in KINDS)


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


def dangling_links(prefix: Path, stores: tuple[Path, ...]) -> list[str]:
    """The symlinks of an artifact that point into a store (`stores`: this one and its
    upstreams) at something that is not there: a profile's link to an artifact removed
    since (by hand, or by an upstream's gc). A relative link inside an artifact is the
    package's own business (its manifest records it)."""
    out = []
    for rel, st in entries(prefix):
        if not stat.S_ISLNK(st.st_mode):
            continue
        target = os.readlink(prefix / rel)
        inside = any(Path(target).is_relative_to(s) for s in stores)
        if os.path.isabs(target) and inside and not os.path.lexists(target):
            out.append(f"{rel} -> {target}")
    return sorted(out)


def check(prefix: Path, stores: tuple[Path, ...] = ()) -> Damage:
    """Compare one artifact's files with its manifest, and its links into `stores` with
    what is there. Raises HitError when the manifest is missing or damaged."""
    recorded = read_manifest(prefix)
    now = make_manifest(prefix)
    return Damage(
        prefix,
        modified=sorted(p for p in recorded.keys() & now.keys() if recorded[p] != now[p]),
        added=sorted(now.keys() - recorded.keys()),
        removed=sorted(recorded.keys() - now.keys()),
        unsafe=unsafe_modes(prefix),
        dangling=dangling_links(prefix, stores),
    )


def verify(store: Store, artifacts: list[str]) -> list[Damage]:
    """Check the given artifacts (paths, or what Store.pick takes: ids, unique starts of
    them, package names with one artifact), or every complete artifact of this store, its
    profiles included, when none is given. Raises HitError for an artifact that is not
    there, or a name that matches several (listed)."""
    stores = (store.root, *(up.root for up in store.upstreams))
    if not artifacts:
        installed = [p for p in store.prefixes() if (p / META / MANIFEST).exists()]
        return [check(p, stores) for p in installed]
    prefixes = [Path(a).absolute() if Path(a).exists() else store.pick(a) for a in artifacts]
    for given, prefix in zip(artifacts, prefixes, strict=True):  # not "try `hit verify`"
        real = Path(os.path.realpath(prefix))  # a profile's link names its artifact too
        if not any(real.is_relative_to(os.path.realpath(root)) for root in stores):
            raise HitError(f"{given}: not in the store ({', '.join(map(str, stores))})")
    return [check(p, stores) for p in prefixes]


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
