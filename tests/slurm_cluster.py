"""Helpers for tests that submit real batch jobs to the one-node Slurm cluster.

The cluster is started by `slurm/start-cluster.sh` (see slurm/README.md); it writes
/etc/slurm/slurm.conf, so plain `sbatch`, `squeue`, `scontrol` and `scancel` reach it.
Finished jobs stay visible to `squeue -t all` and `scontrol show job` for MinJobAge (1 h).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from hdmodules.build import slurm

REPO = Path(__file__).resolve().parent.parent
START_SCRIPT = REPO / "slurm" / "start-cluster.sh"
# Where start-cluster.sh keeps state, spool, logs and the daemons' PIDs.
STATE_DIR = os.environ.get("HDMOD_SLURM_STATE", "/var/tmp/hdmod-slurm")

# Node states in which the node can run jobs (sinfo %T, lower case).
USABLE_NODE_STATES = {"idle", "mixed", "allocated", "completing"}

# Job states after which a job never changes again (squeue %T / scontrol JobState).
FINAL_STATES = frozenset(slurm.FINAL_STATES | {"REVOKED", "SPECIAL_EXIT"})

# A job id Slurm no longer (or never) knew.
UNKNOWN = "UNKNOWN"


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def cluster_up() -> bool:
    """True if the controller answers and its node can run jobs (not down, drained, ...)."""
    if shutil.which("sinfo") is None:
        return False
    try:
        res = _run(["sinfo", "-h", "-N", "-o", "%T"], timeout=10)
    except subprocess.TimeoutExpired:
        return False
    if res.returncode != 0:
        return False
    states = res.stdout.split()
    # A trailing "*" means "not responding"; "+" joins flags such as "idle+drain".
    return bool(states) and all(
        not s.endswith("*") and all(part in USABLE_NODE_STATES for part in s.split("+"))
        for s in states
    )


def ensure_cluster() -> bool:
    """Start the cluster unless it is up; True if this call started it (the caller then
    stops it with stop_cluster when done: no daemon outlives the test run). Only when the
    test run may change the host (tests.conftest.HOST_SETUP); RuntimeError otherwise, and
    with the script's output on failure."""
    from tests.conftest import HOST_SETUP

    if cluster_up():
        return False
    if not HOST_SETUP:
        raise RuntimeError("not running, and this test run may not start one")
    try:
        res = subprocess.run(
            ["bash", str(START_SCRIPT), STATE_DIR],
            capture_output=True,
            text=True,
            timeout=600,  # a first start installs the packages with apt
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{START_SCRIPT} timed out:\n{exc.stdout}\n{exc.stderr}") from exc
    if res.returncode != 0 or not cluster_up():
        raise RuntimeError(
            f"{START_SCRIPT} failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return True


def stop_cluster() -> None:
    """Stop the daemons start-cluster.sh started (slurm/stop-cluster.sh, by recorded PIDs)."""
    subprocess.run(
        ["bash", str(REPO / "slurm" / "stop-cluster.sh"), STATE_DIR],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _scontrol_state(job_id: str) -> str:
    """JobState from `scontrol show job -o`, or UNKNOWN if Slurm does not know the job."""
    try:
        res = _run(["scontrol", "show", "job", "-o", job_id])
    except subprocess.TimeoutExpired:
        return UNKNOWN
    if res.returncode != 0:
        return UNKNOWN
    for field in res.stdout.split():
        if field.startswith("JobState="):
            return field.removeprefix("JobState=")
    return UNKNOWN


def job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Current state of each job, finished ones included, e.g. {"12": "COMPLETED"}.

    Asks `squeue -t all` in one call; jobs it does not list (or all of them, if it fails,
    which it does when one of the ids is no longer known) are asked of `scontrol show job`.
    A job neither knows is UNKNOWN.
    """
    ids = [str(j) for j in job_ids]
    if not ids:
        return {}
    states: dict[str, str] = {}
    try:
        res = _run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"])
    except subprocess.TimeoutExpired:
        res = None
    if res is not None and res.returncode == 0:
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ids:
                states[parts[0]] = parts[1]
    for job_id in ids:
        if job_id not in states:
            states[job_id] = _scontrol_state(job_id)
    return {job_id: states[job_id] for job_id in ids}


def wait_jobs(job_ids: list[str], timeout: float = 300, poll: float = 0.5) -> dict[str, str]:
    """Wait until every job is in a final state; return id -> state.

    Raises TimeoutError (with the states seen last) if they are not all final in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = job_states(job_ids)
        if all(state in FINAL_STATES for state in states.values()):
            return states
        if time.monotonic() >= deadline:
            raise TimeoutError(f"jobs not finished after {timeout:g}s: {states}")
        time.sleep(poll)
