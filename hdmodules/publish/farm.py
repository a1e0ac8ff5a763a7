"""A profile artifact is a symlink farm over the artifacts it lists: which links it holds
(`plan_farm`, where conflicts between packages are decided) and making them (`write_farm`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import HitError


def plan_farm(
    manifests: dict[str, tuple[Path, dict[str, str]]],
    prefer: list[str],
    fold: bool = True,
    open_dirs: frozenset[str] = frozenset(),
) -> dict[str, Path]:
    """Decide the profile's links: relative path -> target, from each package's
    (prefix, manifest).

    Folders are merged; a folder only one package contributes to becomes one link to that
    package's folder (as Nix's buildEnv and stow fold trees), which keeps profile switches
    fast; never the folders of `open_dirs` (the profile adds links of its own there). When
    two packages ship the same file, the one earlier in `prefer` wins; with neither
    preferred the profile cannot be assembled.
    """
    rank = {name: i for i, name in enumerate(prefer)}
    files: dict[str, str] = {}  # rel -> package
    dirs: dict[str, set[str]] = {}
    for pkg, (_prefix, manifest) in manifests.items():
        for rel in manifest:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                dirs.setdefault("/".join(parts[:i]), set()).add(pkg)
            if rel in files:
                winner = _conflict(rel, files[rel], pkg, rank, "both ship it")
                files[rel] = winner
            else:
                files[rel] = pkg
    for rel, pkg in files.items():
        if rel in dirs:
            other = next(iter(dirs[rel] - {pkg}), pkg)
            _conflict(rel, other, pkg, {}, "a folder in one, a file in the other")
    folded = {
        d: next(iter(owners))
        for d, owners in dirs.items()
        if fold
        and d not in open_dirs
        and len(owners) == 1
        and ("/" not in d or len(dirs[d.rsplit("/", 1)[0]]) > 1 or d.rsplit("/", 1)[0] in open_dirs)
    }
    links = {d: manifests[pkg][0] / d for d, pkg in folded.items()}
    for rel, pkg in files.items():
        parts = rel.split("/")
        if not any("/".join(parts[:i]) in folded for i in range(1, len(parts))):
            links[rel] = manifests[pkg][0] / rel
    return links


EXTERNAL = " (external)"  # the end of the name of links planned for an external, not a package


def _conflict(rel: str, a: str, b: str, rank: dict[str, int], why: str) -> str:
    if a in rank or b in rank:
        return min((a, b), key=lambda p: rank.get(p, len(rank)))
    fixed = next((n for n in (a, b) if n.endswith(EXTERNAL)), None)  # not a package
    if fixed is not None:
        pkg = b if fixed == a else a
        raise HitError(
            f"package {pkg} ships {rel}, which the profile's {fixed} gives too; list {pkg} "
            f"under `prefer:` to use its {rel}, or leave it out"
        )
    raise HitError(
        f"packages {a} and {b} conflict on {rel} ({why}); "
        f"list the one that should win under `prefer:` in the profile (for a site: in the "
        f"stack, beside its packages:)"
    )


def write_farm(prefix: Path, links: dict[str, Path]) -> dict[str, str]:
    """Create the links; returns the profile's manifest."""
    made: set[Path] = set()
    for rel, target in sorted(links.items()):
        link = prefix / rel
        if link.parent not in made:
            link.parent.mkdir(parents=True, exist_ok=True)
            made.add(link.parent)
        os.symlink(target, link)
    return {rel: f"l:{target}" for rel, target in links.items()}
