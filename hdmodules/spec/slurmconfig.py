"""The `slurm:` settings of site.yaml (or of a hit home's config.yaml): what every build job
asks Slurm for. Loaded with the rest of the configuration; slurm.py submits with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..durations import parse_duration
from ..errors import HitError
from . import yamlfile
from .yamlfile import check_line

SLURM_KEYS = frozenset(
    [
        "partition",
        "account",
        "qos",
        "constraint",
        "extra",
        "cpus",
        "mem",
        "time",
        "time_factor",
        "time_floor",
        "pack",
        "templates",
    ]
)
SBATCH_WORDS = ("partition", "account", "qos", "constraint", "mem")  # one #SBATCH line each


@dataclass(frozen=True)
class SlurmConfig:
    """Job settings. Durations (`time`, `time_floor`) are texts like `1h` (durations.py)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: tuple[str, ...] = ()  # extra `#SBATCH` lines
    cpus: int = 1
    mem: str | None = None
    time: str = "1h"  # walltime of a package never built before
    time_factor: float = 2.0  # a rebuild gets this times its longest recorded build
    time_floor: str = "10m"
    pack: int = 0  # up to this many quick artifacts per job (0: one per job)
    templates: Path | None = None


def load_config(m: yamlfile.Mapping, base: Path) -> SlurmConfig:
    """The `slurm:` mapping `m`; `templates` is relative to the folder `base`. Raises
    ConfigError (file:line) for an unknown key, a bad duration, factor or count, and for a
    control character in what becomes an `#SBATCH` line."""
    yamlfile.check_keys(m, SLURM_KEYS, "slurm")
    for key in ("time", "time_floor"):
        if m.get(key) is not None:
            try:
                parse_duration(yamlfile.get_str(m, key), f"slurm {key}")
            except HitError as e:  # at its line (it had none, and stopped hit status too)
                yamlfile.fail(m, key, str(e))
    factor = m.get("time_factor", 2.0)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
        yamlfile.fail(m, "time_factor", "'time_factor' must be a number of at least 1")
    pack = m.get("pack", 0)
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 0:
        yamlfile.fail(m, "pack", "'pack' must be a whole number (0: one artifact per job)")
    templates = yamlfile.get_str(m, "templates")
    # each becomes an #SBATCH line of the job script: one line, nothing more
    words = {k: check_line(m, k, yamlfile.get_str(m, k), f"slurm {k}") for k in SBATCH_WORDS}
    extra = tuple(
        check_line(m, "extra", x, "slurm extra") for x in yamlfile.get_str_list(m, "extra")
    )
    return SlurmConfig(
        **words,
        extra=extra,
        cpus=yamlfile.get_int(m, "cpus", 1),
        time=yamlfile.get_str(m, "time", "1h"),
        time_factor=float(factor),
        time_floor=yamlfile.get_str(m, "time_floor", "10m"),
        pack=pack,
        templates=(base / templates) if templates else None,
    )
