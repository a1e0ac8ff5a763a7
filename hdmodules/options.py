"""The options of `hit build` and `hdmod build` as one value each, handed from the commands
to publish.builds.

Click hands a command its options as keyword arguments; these commands take them as
`**options` and read them through one of these (a typo in a name fails at once). This module
imports nothing, so the no-op `hit build` can ask it whether the memo may answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HitBuild:
    """`hit build`'s options: `jobs` the CPUs all builds share (None: config.yaml's),
    `concurrent_packages` the packages built at once (None: config.yaml's, else `jobs`),
    `quiet`, `repin`, `slurm` with `pack` (None: the settings') and `wait`, `dirty`,
    `explain`."""

    jobs: int | None
    concurrent_packages: int | None
    quiet: bool
    repin: bool
    slurm: bool
    pack: int | None
    wait: bool
    dirty: bool
    explain: bool

    @property
    def reads_the_yaml(self) -> bool:
        """Whether these options need the YAML resolved in full: the no-op memo (which skips
        reading it when nothing changed) is not enough for them."""
        return self.repin or self.slurm or self.dirty or self.explain


@dataclass(frozen=True)
class SiteBuild:
    """`hdmod build`'s options: `jobs` the CPUs all builds share (None: the root's
    config.yaml's), `concurrent_packages` the packages built at once (None: the root's, else
    `jobs`), `repin`, `slurm` with `pack` (None: site.yaml's) and `wait`."""

    jobs: int | None
    concurrent_packages: int | None
    repin: bool
    slurm: bool
    pack: int | None
    wait: bool
