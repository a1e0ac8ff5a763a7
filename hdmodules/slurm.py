"""Builds as Slurm batch jobs that write into the same store a local build would.

Only artifacts missing from the store become jobs, one per artifact (or, with `pack`, up to N
quick ones in dependency order per job). Each job runs `<tool> build-artifact`, which resolves
the same YAML again, refuses if the artifact id no longer matches (the inputs changed since
submission), and builds with the very same builder under the same per-artifact locks, so a
job and a local build never build one artifact twice. Jobs are submitted held, with
`afterok` dependencies and `--kill-on-invalid-dep=yes`, then released together; if any
submission fails, everything submitted is cancelled. The last job runs the ordinary build
command, which then finds everything built and only assembles profiles and module trees.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .durations import parse_duration
from .errors import HitError
from .resolve import Node, Resolved
from .runner import query
from .slurmconfig import SlurmConfig
from .store import Store
from .templating import render

QUICK_SECONDS = 300  # builds shorter than this may share a job when packing
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE"}  # fmt: skip


@dataclass
class Job:
    members: list[tuple[str, Node]]  # (context, node): context names the stack, "" for hit
    deps: set[int] = field(default_factory=set)  # indices of the jobs it waits for
    cpus: int = 1
    mem: str | None = None
    seconds: float = 0.0
    closed: bool = False  # takes no more members (it holds a long build)

    @property
    def name(self) -> str:
        first = self.members[0][1]
        more = f"+{len(self.members) - 1}" if len(self.members) > 1 else ""
        return f"hd-{first.name}-{first.ref.hash[:7]}{more}"


def walltime(node: Node, store: Store, cfg: SlurmConfig) -> float:
    """Seconds to ask for: the recipe's own, else learned from earlier builds of the package
    (times a safety factor, at least the floor), else the site default."""
    if "time" in node.recipe.resources:
        return parse_duration(node.recipe.resources["time"], f"{node.name} resources time")
    seen = store.durations(node.name)
    if seen:
        return max(parse_duration(cfg.time_floor), cfg.time_factor * max(seen))
    return parse_duration(cfg.time, "slurm time")


def _mem_bytes(mem: str) -> float:
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    return float(mem[:-1]) * units[mem[-1].upper()] if mem[-1].upper() in units else float(mem)


def plan_jobs(work: list[tuple[str, Node]], store: Store, cfg: SlurmConfig, pack: int) -> list[Job]:
    """`work` is the missing artifacts in dependency order. Quick ones (no resources asked,
    short or unknown build times) are packed `pack` at a time into consecutive groups, so
    every dependency of a job is in an earlier job or already built."""
    jobs: list[Job] = []
    where: dict[str, int] = {}
    for context, node in work:
        longest = max(store.durations(node.name), default=0)
        quick = not node.recipe.resources and longest < QUICK_SECONDS
        current = jobs[-1] if jobs else None
        if not (pack > 1 and quick and current and not current.closed
                and len(current.members) < pack):  # fmt: skip
            current = Job([])
            jobs.append(current)
        current.closed = not quick
        current.members.append((context, node))
        where[node.ref.id] = len(jobs) - 1
        current.cpus = max(current.cpus, int(node.recipe.resources.get("cpus", cfg.cpus)))
        mem = node.recipe.resources.get("mem", cfg.mem)
        if mem and (current.mem is None or _mem_bytes(mem) > _mem_bytes(current.mem)):
            current.mem = mem
        current.seconds += walltime(node, store, cfg)  # packed members run one after another
        for dep in node.spec["dependencies"].values():
            if dep in where and where[dep] != len(jobs) - 1:
                current.deps.add(where[dep])
    return jobs


@dataclass(frozen=True)
class Submission:
    record: Path
    job_ids: list[str]
    final: str | None


def record_path(home_root: Path, yaml_file: Path) -> Path:
    key = hashlib.sha256(str(yaml_file).encode()).hexdigest()[:16]
    return home_root / "slurm" / f"{yaml_file.stem}-{key}.json"


def _sbatch() -> str:
    exe = shutil.which("sbatch")
    if exe is None:
        raise HitError("sbatch not found: Slurm's client commands are not installed here")
    return exe


def cancel(job_ids: list[str]) -> None:
    if job_ids and shutil.which("scancel"):
        query(["scancel", *job_ids])


def submit(
    jobs: list[Job],
    home_root: Path,
    yaml_file: Path,
    cfg: SlurmConfig,
    artifact_command: list[str],  # `... build-artifact YAML [--root R]`; members are appended
    final_command: list[str] | None,
) -> Submission:
    """Submit every job held, then release them together; on any failure cancel them all."""
    sbatch = _sbatch()
    folder = home_root / "slurm"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    overrides = (cfg.templates,) if cfg.templates else ()
    submitted: list[str] = []
    entries = []

    def one(name: str, what: str, command: list[str], cpus: int, mem, seconds: float, deps):
        log = folder / "logs" / f"{name}-%j.log"
        script = folder / "scripts" / f"{name}.sh"
        script.write_text(render("job.sh.j2", overrides, name=name, log=log, cpus=cpus, mem=mem,
                                 minutes=max(1, math.ceil(seconds / 60)), slurm=cfg, what=what,
                                 home=home_root, command=command))  # fmt: skip
        args = [sbatch, "--parsable", "--hold", "--kill-on-invalid-dep=yes"]
        if deps:
            args.append("--dependency=afterok:" + ":".join(deps))
        out = query([*args, str(script)])
        if out.code != 0 or not out.out.strip():
            cancel(submitted)
            undone = ""
            if submitted:
                undone = (f"; cancelled the {len(submitted)} job(s) submitted before it "
                          f"({', '.join(submitted)})")  # fmt: skip
            raise HitError(f"sbatch refused {name}: {out.out.strip() or 'no answer'}{undone}")
        job_id = out.out.strip().splitlines()[-1].split(";")[0]
        submitted.append(job_id)
        return job_id, str(log).replace("%j", job_id)

    ids: list[str] = []
    for job in jobs:
        members = [f"{ctx}:{node.ref.id}" for ctx, node in job.members]
        command = [
            *artifact_command,
            *[x for m in members for x in ("--artifact", m)],
            "--jobs",
            str(job.cpus),
        ]  # fmt: skip  (the job's CPUs are the build's JOBS)
        what = "build " + ", ".join(node.ref.short for _c, node in job.members)
        job_id, log = one(job.name, what, command, job.cpus, job.mem, job.seconds,
                          [ids[d] for d in sorted(job.deps)])  # fmt: skip
        ids.append(job_id)
        entries.append({"job": job_id, "name": job.name, "log": log,
                        "artifacts": [node.ref.id for _c, node in job.members]})  # fmt: skip
    final = None
    if final_command is not None and ids:
        final, log = one("hd-final", "assemble profiles and module trees", final_command, 1, None,
                         parse_duration(cfg.time_floor), ids)  # fmt: skip
    release = query(["scontrol", "release", ",".join(submitted)]) if submitted else None
    if release is not None and release.code != 0:
        cancel(submitted)
        raise HitError(f"scontrol release failed: {release.out.strip()}; cancelled all jobs")
    record = record_path(home_root, yaml_file)
    doc = {"yaml": str(yaml_file), "submitted": time.time(), "jobs": entries, "final": final,
           "python": sys.executable}  # fmt: skip
    tmp = record.with_name(f".{record.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, record)
    return Submission(record, ids, final)


# --- following what was submitted ---------------------------------------------------------


def job_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """id -> (state, reason), finished jobs included while Slurm remembers them."""
    if not job_ids:
        return {}
    if shutil.which("squeue") is None:
        raise HitError("squeue not found: Slurm's client commands are not installed here")
    out = query(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"])
    if out.code != 0 and "Invalid job id" not in out.out:
        raise HitError(f"squeue failed: {out.out.strip()}")
    states = {}
    for line in out.out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


@dataclass(frozen=True)
class ArtifactState:
    artifact: str
    state: str  # pending, running, built, failed, cancelled, unknown
    job: str
    detail: str = ""


def load_record(home_root: Path, yaml_file: Path) -> dict:
    path = record_path(home_root, yaml_file)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise HitError(f"nothing was submitted to Slurm for {yaml_file}") from None


def status(record: dict, store: Store) -> list[ArtifactState]:
    states = job_states([e["job"] for e in record["jobs"]])
    out = []
    for e in record["jobs"]:
        state, reason = states.get(e["job"], ("", ""))
        for aid in e["artifacts"]:
            if store.find(aid) is not None:
                out.append(ArtifactState(aid, "built", e["job"]))
            elif state in ("PENDING", "CONFIGURING"):
                out.append(ArtifactState(aid, "pending", e["job"], reason))
            elif state in ("RUNNING", "COMPLETING"):
                out.append(ArtifactState(aid, "running", e["job"]))
            elif state == "CANCELLED" and "Dependency" in reason:
                out.append(ArtifactState(aid, "cancelled", e["job"], "a dependency failed"))
            elif state in FINAL_STATES:
                out.append(ArtifactState(aid, "failed", e["job"], e["log"]))
            else:
                out.append(ArtifactState(aid, "unknown", e["job"], state or "Slurm forgot it"))
    return out


def log_tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(
            "    " + x for x in Path(path).read_text(errors="replace").splitlines()[-lines:]
        )
    except OSError:
        return "    (no log)"


def finished(states: list[ArtifactState]) -> bool:
    return all(s.state in ("built", "failed", "cancelled", "unknown") for s in states)


def follow(record: dict, store: Store, say, interval: float = 1.0) -> list[ArtifactState]:
    """Poll until every artifact is built, failed or cancelled, reporting each change."""
    seen: dict[str, str] = {}
    while True:
        states = status(record, store)
        for s in states:
            if seen.get(s.artifact) != s.state:
                seen[s.artifact] = s.state
                detail = f" ({s.detail})" if s.detail and s.state != "pending" else ""
                say(f"{s.artifact.split('/')[0]}/{s.artifact.split('/')[1][:12]}  {s.state}"
                    f"  job {s.job}{detail}")  # fmt: skip
        if finished(states):
            return states
        time.sleep(interval)


def missing_work(stacks: list[tuple[str, Resolved]], store: Store) -> list[tuple[str, Node]]:
    """The artifacts to build, each once (the first stack naming it), dependencies first."""
    seen: set[str] = set()
    out = []
    for context, resolved in stacks:
        for node in resolved.nodes.values():
            if node.ref.id not in seen and not store.is_installed(node.ref):
                seen.add(node.ref.id)
                out.append((context, node))
    return out


def submit_and_follow(
    stacks: list[tuple[str, Resolved]],
    home_root: Path,
    store: Store,
    yaml_file: Path,
    cfg: SlurmConfig,
    pack: int | None,
    wait: bool,
    artifact_command: list[str],
    final_command: list[str],
    say,
    follow_hint: str,
) -> Submission | None:
    """Submit what is missing; with `wait`, follow the jobs and stop with one message if any
    artifact was not built. Returns None when there was nothing to build."""
    work = missing_work(stacks, store)
    if not work:
        return None
    jobs = plan_jobs(work, store, cfg, cfg.pack if pack is None else pack)
    sub = submit(jobs, home_root, yaml_file, cfg, artifact_command, None if wait else final_command)
    say(f"submitted {len(sub.job_ids)} job(s) for {len(work)} artifact(s): {', '.join(sub.job_ids)}"
        + (f"; job {sub.final} assembles the result" if sub.final else ""))  # fmt: skip
    if not wait:
        say(follow_hint)
        return sub
    try:
        states = follow(load_record(home_root, yaml_file), store, say)
    except KeyboardInterrupt:
        say(f"stopped following; the jobs keep running. {follow_hint}")
        raise SystemExit(130) from None
    bad = [s for s in states if s.state != "built"]
    if bad:
        lines = []
        for s in bad:
            lines.append(f"  {s.artifact}: {s.state}" + (f" ({s.detail})" if s.detail else ""))
            if s.state == "failed":
                lines.append(log_tail(s.detail))
        raise HitError(
            f"{len(bad)} artifact(s) were not built:\n"
            + "\n".join(lines)
            + "\nRun the same command again to resubmit only what is missing."
        )
    return sub
