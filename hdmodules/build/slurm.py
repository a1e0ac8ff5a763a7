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
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_atomic
from ..durations import parse_duration
from ..errors import FollowStopped, HitError, log_line
from ..runner import query
from ..spec.artifact import short_id
from ..spec.resolve import Node, Resolved, to_build
from ..spec.slurmconfig import SlurmConfig
from ..store.layout import Store
from ..templating import render

QUICK_SECONDS = 300  # builds shorter than this may share a job when packing
FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}  # squeue %T states after which a job never changes
Say = Callable[[str], None]  # where progress lines go (the CLI: stderr)


def tool_command(module: str) -> tuple[str, ...]:
    """How a job runs this tool: this interpreter on `module` (e.g. "hdmodules.cli.hit") with
    `-P`, so the job's working folder (where the user submitted from; it may hold an
    unrelated `hdmodules/` folder, such as a checkout of this project) is not on sys.path
    and the installed tool runs."""
    return (sys.executable, "-P", "-m", module)


@dataclass(frozen=True)
class Commands:
    """What the jobs run. `artifact`: `... build-artifact YAML [--root R ...]`, to which each
    job appends `--artifact CONTEXT:ID` per member and `--jobs CPUS`; `final`: the ordinary
    build command, which assembles profiles and module trees once all is built; `hint`: how
    to follow and cancel the jobs, said after submitting."""

    artifact: tuple[str, ...]
    final: tuple[str, ...]
    hint: str


@dataclass(frozen=True)
class SlurmRequest:
    """One `--slurm` build: the home (or site root) whose store the jobs build into, the YAML
    file built (it names the submission record), the `slurm:` settings, the commands, `pack`
    (quick artifacts per job; None: the settings' own) and `wait` (follow the jobs here and
    assemble here instead of in a last job)."""

    home_root: Path
    yaml_file: Path
    config: SlurmConfig
    commands: Commands
    pack: int | None = None
    wait: bool = False


@dataclass
class Job:
    """One batch job being planned: its members (context, node) in build order, the indices
    of the jobs it waits for, and what it asks for (CPUs, memory, walltime in seconds)."""

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
        joins = current is not None and not current.closed and len(current.members) < pack
        if not (pack > 1 and quick and joins):
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
        for dep in node.spec.dependencies.values():
            if dep in where and where[dep] != len(jobs) - 1:
                current.deps.add(where[dep])
    return jobs


@dataclass(frozen=True)
class JobRecord:
    """One submitted job: its Slurm id, name, log file and the artifact ids it builds."""

    job: str
    name: str
    log: str
    artifacts: tuple[str, ...]


@dataclass(frozen=True)
class Submission:
    """What one `--slurm` build submitted, kept as JSON in `record_path(...)`: the YAML file,
    when (seconds since the epoch), the build jobs, the last job that assembles (None when
    the submitter waits and assembles itself) and the Python the jobs run."""

    yaml: Path
    submitted: float
    jobs: tuple[JobRecord, ...]
    final: str | None
    python: str

    @property
    def job_ids(self) -> list[str]:
        """The build jobs' ids, in submission order (the final job not included)."""
        return [j.job for j in self.jobs]

    def to_json(self) -> str:
        """The record's JSON text (keys: yaml, submitted, jobs, final, python)."""
        jobs = [{**j.__dict__, "artifacts": list(j.artifacts)} for j in self.jobs]
        doc = {
            "yaml": str(self.yaml),
            "submitted": self.submitted,
            "jobs": jobs,
            "final": self.final,
            "python": self.python,
        }
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Submission:
        """Read `to_json()`'s text back. Raises ValueError for anything else."""
        try:
            doc = json.loads(text)
            jobs = tuple(
                JobRecord(
                    str(e["job"]),
                    str(e["name"]),
                    str(e["log"]),
                    tuple(str(a) for a in e["artifacts"]),
                )
                for e in doc["jobs"]
            )
            final = doc.get("final")
            return cls(
                Path(doc["yaml"]),
                float(doc["submitted"]),
                jobs,
                None if final is None else str(final),
                str(doc.get("python", "")),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a submission record: {e}") from None


def record_path(home_root: Path, yaml_file: Path) -> Path:
    """Where the last submission for `yaml_file` is recorded: `<home>/slurm/<stem>-<key>.json`."""
    key = hashlib.sha256(str(yaml_file).encode()).hexdigest()[:16]
    return home_root / "slurm" / f"{yaml_file.stem}-{key}.json"


def load_record(home_root: Path, yaml_file: Path) -> Submission:
    """The last submission for `yaml_file`. Raises HitError if there is none (or it is junk)."""
    try:
        return Submission.from_json(record_path(home_root, yaml_file).read_text())
    except (OSError, ValueError):
        raise HitError(f"nothing was submitted to Slurm for {yaml_file}") from None


def _sbatch() -> str:
    exe = shutil.which("sbatch")
    if exe is None:
        raise HitError("sbatch not found: Slurm's client commands are not installed here")
    return exe


def cancel(job_ids: list[str]) -> None:
    """scancel the jobs (nothing if there are none or Slurm's commands are missing)."""
    if job_ids and shutil.which("scancel"):
        query(["scancel", *job_ids])


@dataclass(frozen=True)
class JobScript:
    """One job script to submit: its name, what it does (a comment), its command, CPUs,
    memory (Slurm's form, e.g. 32G) and walltime in seconds."""

    name: str
    what: str
    command: tuple[str, ...]
    cpus: int = 1
    mem: str | None = None
    seconds: float = 600.0


class _Submitter:
    """Submits job scripts held; on a refusal cancels everything submitted so far."""

    def __init__(self, request: SlurmRequest) -> None:
        self.sbatch = _sbatch()
        self.request = request
        self.folder = request.home_root / "slurm"
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        (self.folder / "scripts").mkdir(parents=True, exist_ok=True)
        self.submitted: list[str] = []

    def submit(self, job: JobScript, deps: list[str]) -> tuple[str, str]:
        """sbatch `job` held, after `deps` (job ids) succeed. Returns (job id, log path).
        Raises HitError (after cancelling the jobs submitted before) if sbatch refuses."""
        cfg = self.request.config
        log = self.folder / "logs" / f"{job.name}-%j.log"
        script = self.folder / "scripts" / f"{job.name}.sh"
        text = render(
            "job.sh.j2",
            (cfg.templates,) if cfg.templates else (),
            name=job.name,
            log=log,
            cpus=job.cpus,
            mem=job.mem,
            minutes=max(1, math.ceil(job.seconds / 60)),
            slurm=cfg,
            what=job.what,
            home=self.request.home_root,
            command=list(job.command),
        )
        write_atomic(script, text)
        args = [self.sbatch, "--parsable", "--hold", "--kill-on-invalid-dep=yes"]
        if deps:
            args.append("--dependency=afterok:" + ":".join(deps))
        out = query([*args, str(script)])
        if out.code != 0 or not out.out.strip():
            cancel(self.submitted)
            undone = ""
            if self.submitted:
                undone = (
                    f"; cancelled the {len(self.submitted)} job(s) submitted before it "
                    f"({', '.join(self.submitted)})"
                )
            raise HitError(f"sbatch refused {job.name}: {out.out.strip() or 'no answer'}{undone}")
        job_id = out.out.strip().splitlines()[-1].split(";")[0]
        self.submitted.append(job_id)
        return job_id, str(log).replace("%j", job_id)

    def release(self) -> None:
        """Let every submitted job run. Raises HitError (all cancelled) if Slurm refuses."""
        if not self.submitted:
            return
        release = query(["scontrol", "release", ",".join(self.submitted)])
        if release.code != 0:
            cancel(self.submitted)
            raise HitError(f"scontrol release failed: {release.out.strip()}; cancelled all jobs")


def submit(jobs: list[Job], request: SlurmRequest, final: bool) -> Submission:
    """Submit every job held (each after the jobs it depends on), with `final` a last job
    that runs `request.commands.final` after all of them, then release them together and
    record the submission (atomically). On any failure everything is cancelled and HitError
    raised."""
    submitter = _Submitter(request)
    records: list[JobRecord] = []
    for job in jobs:
        members = tuple(node.ref.id for _c, node in job.members)
        command = [*request.commands.artifact]
        for context, node in job.members:
            command += ["--artifact", f"{context}:{node.ref.id}"]
        command += ["--jobs", str(job.cpus)]  # the job's CPUs are the build's JOBS
        what = "build " + ", ".join(node.ref.short for _c, node in job.members)
        script = JobScript(job.name, what, tuple(command), job.cpus, job.mem, job.seconds)
        job_id, log = submitter.submit(script, [records[d].job for d in sorted(job.deps)])
        records.append(JobRecord(job_id, job.name, log, members))
    last = None
    if final and records:
        floor = parse_duration(request.config.time_floor)
        script = JobScript(
            "hd-final", "assemble profiles and module trees", request.commands.final, seconds=floor
        )
        last, _log = submitter.submit(script, [r.job for r in records])
    submitter.release()
    sub = Submission(request.yaml_file, time.time(), tuple(records), last, sys.executable)
    write_atomic(record_path(request.home_root, request.yaml_file), sub.to_json())
    return sub


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
    """A submitted artifact as `status` sees it; `detail` is the pending reason, the log of a
    failed job, or why a state is unknown."""

    artifact: str
    state: str  # pending, running, built, failed, cancelled, unknown
    job: str
    detail: str = ""

    def line(self, pending_reason: bool = True) -> str:
        """`name/<hash12>  state  job N (detail)`: how a state is shown; following jobs
        leaves out a pending reason (`pending_reason=False`: it changes while nothing
        happens)."""
        shown = self.detail and (pending_reason or self.state != "pending")
        detail = f" ({self.detail})" if shown else ""
        return f"{short_id(self.artifact)}  {self.state}  job {self.job}{detail}"


def status_lines(record: Submission, store: Store) -> tuple[list[ArtifactState], list[str]]:
    """`hdmod status`: each submitted artifact's state and line, and the final job's line
    (the job that assembles profiles and modules)."""
    states = status(record, store)
    lines = [s.line() for s in states]
    if record.final:
        state, reason = job_states([record.final]).get(record.final, ("forgotten", ""))
        why = f" ({reason})" if reason and reason != "None" else ""
        lines.append(f"final job {record.final} (profiles and modules): {state.lower()}{why}")
    return states, lines


def status(record: Submission, store: Store) -> list[ArtifactState]:
    """Each submitted artifact's state: built (in the store), else from its job's state."""
    states = job_states(record.job_ids)
    out = []
    for e in record.jobs:
        state, reason = states.get(e.job, ("", ""))
        for aid in e.artifacts:
            if store.find(aid) is not None:
                out.append(ArtifactState(aid, "built", e.job))
            elif state in ("PENDING", "CONFIGURING"):
                out.append(ArtifactState(aid, "pending", e.job, reason))
            elif state in ("RUNNING", "COMPLETING"):
                out.append(ArtifactState(aid, "running", e.job))
            elif state == "CANCELLED" and "Dependency" in reason:
                out.append(ArtifactState(aid, "cancelled", e.job, "a dependency failed"))
            elif state in FINAL_STATES:
                out.append(ArtifactState(aid, "failed", e.job, e.log))
            else:
                out.append(ArtifactState(aid, "unknown", e.job, state or "Slurm forgot it"))
    return out


def log_tail(path: str, lines: int = 20) -> str:
    """The last `lines` lines of a job's log, indented, or "(no log)"."""
    try:
        text = Path(path).read_text(errors="replace")
        return "\n".join("    " + log_line(x) for x in text.splitlines()[-lines:])
    except OSError:
        return "    (no log)"


def finished(states: list[ArtifactState]) -> bool:
    """True when no artifact is pending or running any more."""
    return all(s.state in ("built", "failed", "cancelled", "unknown") for s in states)


def follow(
    record: Submission, store: Store, say: Say, interval: float = 1.0
) -> list[ArtifactState]:
    """Poll every `interval` seconds until every artifact is built, failed or cancelled,
    `say`ing each change. Raises HitError if Slurm cannot be asked; lets Ctrl-C through."""
    seen: dict[str, str] = {}
    while True:
        states = status(record, store)
        for s in states:
            if seen.get(s.artifact) != s.state:
                seen[s.artifact] = s.state
                say(s.line(pending_reason=False))
        if finished(states):
            return states
        time.sleep(interval)


def submit_and_follow(
    request: SlurmRequest, stacks: list[tuple[str, Resolved]], store: Store, say: Say
) -> Submission | None:
    """Submit what `stacks` (context, resolved) miss in `store`; with `request.wait`, follow
    the jobs and stop with one message if any artifact was not built. Returns None when there
    was nothing to build. Raises HitError (sbatch missing or refusing, artifacts not built),
    FollowStopped on Ctrl-C while following."""
    work = to_build(stacks, store.is_installed)
    if not work:
        return None
    cfg = request.config
    jobs = plan_jobs(work, store, cfg, cfg.pack if request.pack is None else request.pack)
    sub = submit(jobs, request, final=not request.wait)
    last = f"; job {sub.final} assembles the result" if sub.final else ""
    ids = ", ".join(sub.job_ids)
    say(f"submitted {len(sub.job_ids)} job(s) for {len(work)} artifact(s): {ids}{last}")
    if not request.wait:
        say(request.commands.hint)
        return sub
    try:
        states = follow(sub, store, say)
    except KeyboardInterrupt:
        raise FollowStopped(
            f"stopped following; the jobs keep running. {request.commands.hint}"
        ) from None
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
