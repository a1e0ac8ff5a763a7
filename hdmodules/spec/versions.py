"""Versions side by side: which versions a recipe offers, choosing one for a profile's request,
and which of several is the newest.

A recipe offers its `version:` (the default) and, with a `versions:` map, others: each with
its own sources (recipes.py loads them). A profile or site stack asks for one with
`packages: {hdf5: {version: "1.14.3"}}`; the chosen version's sources replace the default's
before anything is hashed, so the build spec holds exactly the chosen version and the bytes
of its sources, never the versions not chosen.

A recipe's `when:` may test the version it builds, as Spack writes it after `@` (Range):
`@1.10` (1.10 and every 1.10.x), `@1.10:1.12`, `@1.12:`, `@:1.10`.

This module holds the rules only; it does not import recipes.py (which imports nothing of
it), so it takes what a recipe offers as plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

_PART = re.compile(r"[0-9]+|[A-Za-z]+")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key ordering versions part by part, as people read release numbers: numbers
    numerically (`1.10.8` after `1.9.2`), words alphabetically, a number after a word in the
    same place; separators (`.`, `-`, `_`, `+`, `~`) only split parts. A version that extends
    another sorts after it (`1.0.1` after `1.0`, and so `1.0rc1` after `1.0` too: name a
    pre-release's successor with the site's `modules: defaults:`)."""
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in _PART.findall(version))


@dataclass(frozen=True)
class Range:
    """The versions from `low` to `high`, both included, None for no bound: Spack's `@low:high`
    (`@1.10:1.12`, `@1.12:`, `@:1.10`), and `@v` is `@v:v`. Compared by version_key, with
    Spack's rule for the upper bound: a version that extends it is in (`@:1.12` holds for
    1.12.3, `@1.10` for 1.10 and 1.10.8, never for 1.100, whose second part is 100)."""

    low: str | None
    high: str | None

    def __contains__(self, version: str) -> bool:
        key = version_key(version)
        if self.low is not None and key < version_key(self.low):
            return False
        if self.high is None:
            return True
        high = version_key(self.high)
        return key <= high or key[: len(high)] == high

    @property
    def empty(self) -> bool:
        """Whether no version is in it: `low` is after `high` and does not extend it (`@2:1`;
        `@1.10.2:1.10` holds 1.10.2 and later 1.10.x). Versions that extend `high` follow it
        in key order, so the range is empty exactly when `low` itself is not in it."""
        return self.low is not None and self.low not in self

    def __str__(self) -> str:
        """As Spack writes it: `@1.10`, `@1.10:1.12`, `@1.12:`, `@:1.10`."""
        if self.low is not None and self.low == self.high:
            return f"@{self.low}"
        return f"@{self.low or ''}:{self.high or ''}"


def newest(versions: Iterable[str]) -> str:
    """The newest of `versions` by version_key (ties: the first given). ValueError if empty."""
    best: str | None = None
    for v in versions:
        if best is None or version_key(v) > version_key(best):
            best = v
    if best is None:
        raise ValueError("no versions")
    return best


def by_newest(versions: Iterable[str]) -> list[str]:
    """`versions` newest first (as error messages list what a recipe offers)."""
    return sorted(versions, key=version_key, reverse=True)


def check_offered(
    name: str, recipe_file: Path, offered: Iterable[str], wanted: str, asked_at: tuple[Path, int]
) -> None:
    """Whether the recipe of `name` (file `recipe_file`) offers the version `wanted` that a
    profile asked for at `asked_at` (file, line). Raises ConfigError there, naming every
    version the recipe offers, newest first, when it does not."""
    offered = list(offered)
    if wanted in offered:
        return
    have = ", ".join(by_newest(offered))
    raise ConfigError(
        asked_at[0],
        asked_at[1] or None,
        f"package {name} has no version {wanted!r}: {recipe_file} offers {have} "
        f"(add it under `versions:` there)",
    )
