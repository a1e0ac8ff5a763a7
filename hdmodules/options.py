"""The options of `hit build` and `hdmod build` as one value each, handed from the commands
to publish.builds.

Click hands a command its options as keyword arguments; these commands take them as
`**options` and read them through one of these (a typo in a name fails at once). (The no-op
`hit build`, answered before click is imported, takes only `-q` and `-j`: cli/entry.py.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HitBuild:
    """`hit build`'s options: `jobs` builds at once (None: config.yaml's), `quiet`, `repin`,
    `slurm` with `pack` (None: the settings') and `wait`, `dirty`, `explain`."""

    jobs: int | None
    quiet: bool
    repin: bool
    slurm: bool
    pack: int | None
    wait: bool
    dirty: bool
    explain: bool


@dataclass(frozen=True)
class SiteBuild:
    """`hdmod build`'s options: `jobs` builds at once (None: the root's config.yaml's),
    `repin`, `slurm` with `pack` (None: site.yaml's) and `wait`."""

    jobs: int | None
    repin: bool
    slurm: bool
    pack: int | None
    wait: bool
