"""The options of `hit build` and `hdmod build` as one value each, handed from the commands
to publish.builds.

Click hands a command its options as keyword arguments; these commands take them as
`**options` and read them through one of these (a typo in a name fails at once). (The no-op
`hit build`, answered before click is imported, takes only `-q` and `-j`: cli/entry.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

# CPUs a run's budget may hold (`-j`, config.yaml's `jobs:`): build/jobserver.py writes its
# tokens into a FIFO at once, and a pipe holds 65,536 bytes on Linux (a write past that
# waited for ever: -j 1000000 hung)
MAX_CPUS = 4096


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
