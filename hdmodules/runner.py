"""The one subprocess runner of short queries of host tools (a version, a wrapper's --showme).
Long logged builds run through the reaper (reaper.py: `Reaper.spawn`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from .errors import HitError

QUERY_TIMEOUT = 60


@dataclass(frozen=True)
class Output:
    """What a finished command gave: its exit `code` and its `out`put (stdout and stderr)."""

    code: int
    out: str  # stdout and stderr together, as a person would see them


def query(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = QUERY_TIMEOUT
) -> Output:
    """Run a command to its end and return its exit code and output (stdout and stderr
    together): a quick query (a version, a wrapper's --showme) by default, or a longer one
    with a `timeout` in seconds (making a venv). Never raises for a non-zero exit, only
    HitError for a command that cannot be started or runs past `timeout`."""
    try:
        p = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise HitError(f"{cmd[0]}: command not found") from None
    except PermissionError:
        raise HitError(f"{cmd[0]}: not executable") from None
    except subprocess.TimeoutExpired:
        raise HitError(f"{' '.join(cmd)}: no answer after {timeout:.0f} s") from None
    return Output(p.returncode, p.stdout.decode(errors="replace"))
