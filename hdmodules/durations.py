"""Durations people write (`30d`, `12h`, `2w`, `45m`, `10s`): `hit gc --older-than` and the
`slurm:` walltimes of site.yaml, config.yaml and recipes' `resources: time`."""

from __future__ import annotations

import re

from .errors import HitError

DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}  # seconds per unit


def parse_duration(text: str, what: str = "--older-than") -> float:
    """`30d`, `12h`, `2w`, `45m`, `10s` -> seconds (a whole number and one unit). Raises
    HitError naming `what` (the option or key the text came from) for anything else."""
    m = DURATION.match(str(text).strip())
    if not m:
        raise HitError(f"{what} {text!r}: give a number and a unit, like 30d, 12h or 2w")
    return int(m.group(1)) * UNITS[m.group(2)]
