"""Durations people write (`30d`, `12h`, `2w`, `45m`, `10s`): `hit gc --older-than` and the
`slurm:` walltimes of site.yaml, config.yaml and recipes' `resources: time`."""

from __future__ import annotations

import re

from .errors import HitError

DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}  # seconds per unit
# Slurm's own forms (sbatch(1) --time): days-hours[:minutes[:seconds]], minutes:seconds,
# hours:minutes:seconds; a bare number (minutes to Slurm) is not taken: 30 could mean anything
SLURM_TIME = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+))?(?::(\d+))?|(\d+):(\d+)(?::(\d+))?)$")


def parse_duration(text: str, what: str = "--older-than") -> float:
    """`30d`, `12h`, `2w`, `45m`, `10s` -> seconds (a whole number and one unit), or Slurm's
    `2-12:00:00`, `02:00:00`, `90:00` (SLURM_TIME). Raises HitError naming `what` (the option
    or key the text came from) for anything else."""
    text = str(text).strip()
    m = DURATION.match(text)
    if m:
        return int(m.group(1)) * UNITS[m.group(2)]
    s = SLURM_TIME.match(text)
    if s is None:
        raise HitError(
            f"{what} {text!r}: give a number and a unit, like 30d, 12h or 2w (or Slurm's 02:00:00)"
        )
    days, hours, minutes, seconds, a, b, c = (int(x) if x else 0 for x in s.groups())
    if s.group(1) is None:  # no days: minutes:seconds, or hours:minutes:seconds
        hours, minutes, seconds = (a, b, c) if s.group(7) else (0, a, b)
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
