"""Building profiles: what resolved stacks miss is built (one DAG: an artifact several stacks
share is built once), then each profile is assembled and its link pointed at it.

The whole run holds the store's GC lock shared and registers everything it builds or uses as
temporary roots, so a garbage collection never pulls anything from under it. The builds
themselves are `buildjob.BuildJob`s run by `scheduler.run` on a `scheduler.LocalPool`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..build.memo import installed, prefix_text
from ..errors import HitError
from ..progress import Progress
from ..spec.artifact import ArtifactRef
from ..store import roots
from ..store.home import Home, open_store
from ..store.layout import Store
from .assemble import (
    FarmLinks,
    ProfilePlan,
    Written,
    assemble,
    check_link,
    link_profile,
    plan_of,
    record_upstream_use,
    vanished_note,
)

if TYPE_CHECKING:  # the resolver: imported when something is resolved (quickswitch.py)
    from ..build.buildjob import BuildJob, PendingJob
    from ..spec.resolve import Resolved


@dataclass(frozen=True)
class Result:
    """One profile after `build_profiles`: its prefix, its link, how many artifacts the run
    built (all stacks together) and whether the link changed."""

    profile: Path
    link: Path
    built: int
    link_changed: bool


def build_missing(
    stacks: list[Resolved],
    home: Home,
    store: Store,
    jobs: int,
    progress: Progress,
    only: set[str] | None = None,
) -> int:
    """Build what is missing in any of `stacks`, dependencies first, within a budget of
    `jobs` CPUs (one make jobserver) and `home.concurrent_packages` packages at once;
    with `only` (artifact ids: what one Slurm job was given) just those, whose dependencies
    must be built. Every download they need is fetched before any of them starts
    (fetching.fetch_first). Returns how many were built. Raises HitError for an `only`
    artifact whose dependency is not built or a source that cannot be fetched (nothing
    built), scheduler.BuildsFailed when builds fail."""
    from ..spec.resolve import to_build

    todo = {n.ref.id: (r, n) for r, n in to_build([(r, r) for r in stacks], installed(store))}
    if only is not None:
        todo = {i: rn for i, rn in todo.items() if i in only}
        for resolved, node in todo.values():
            for dep in (resolved.nodes[d].ref for d in node.deps):
                if dep.id not in todo and not store.is_installed(dep):
                    raise HitError(
                        f"{node.ref.id} needs {dep.id}, which is not built (its job failed?)"
                    )
    present = {n.ref.id: n for r in stacks for n in r.nodes.values() if n.ref.id not in todo}
    for node in present.values():
        progress.present(node.ref.short)
    if not todo:
        return 0
    from ..build.builder import start_reaper
    from ..build.buildjob import PendingJob, build_job  # only when there is something to build
    from ..build.fetching import fetch_first
    from ..build.scheduler import LocalPool, run

    start_reaper()  # its start-up (20-30 ms) overlaps fetching and making the jobs
    fetch_first([node.recipe for _r, node in todo.values()], home, progress.note)
    jobs = max(1, jobs)
    pending = [PendingJob(r, node) for r, node in todo.values()]
    if any(p.node.recipe.patches for p in pending):
        from ..build.patching import patch_tool

        patch_tool()  # no GNU patch: say so before anything builds
    checked = _checked_jobs(pending, home, store, jobs)

    def make(p: PendingJob) -> BuildJob:  # the others, when each is next to start
        return build_job(p.resolved, p.node, home, store, jobs)

    with LocalPool(store, jobs, progress, home.concurrent_packages) as pool:
        return run([checked.get(p.ref.id, p) for p in pending], pool, progress, make)


def _checked_jobs(
    pending: list[PendingJob], home: Home, store: Store, jobs: int
) -> dict[str, BuildJob]:
    """Before anything builds: the jobs whose build system runs host tools (cmake, meson,
    ninja, make) and whose dependencies are all built, made now (by artifact id), each tool
    found on its build's PATH. A job is made with its dependencies built (build_env looks at
    their library folders); the others are checked by the builder when they start (a
    dependency may provide the tool). Raises HitError naming each missing tool and the
    recipe line that needs it."""
    from ..build.buildjob import build_job, missing_tools
    from ..spec.buildsystems import tool_needs

    checked: dict[str, BuildJob] = {}
    problems: list[str] = []
    for p in pending:
        if not tool_needs(p.node.recipe.build_system):
            continue
        if not all(store.is_installed(p.resolved.nodes[d].ref) for d in p.node.closure):
            continue
        job = checked[p.ref.id] = build_job(p.resolved, p.node, home, store, jobs)
        problems += [m for m in missing_tools(job) if m not in problems]
    if problems:
        raise HitError("\n".join(problems) + "\nNothing was built.")
    return checked


@contextmanager
def _building(
    refs: list[ArtifactRef], home: Home, store: Store, progress: Progress
) -> Iterator[None]:
    """Hold the store's GC lock shared and register the artifacts `refs` (everything a build
    uses) as temporary roots, for as long as the build runs, in this home and, for what an
    upstream store (the site's) holds, in that store's users' records (its GC may run on
    another machine, and it keeps what a running build uses: roots.record_building)."""
    with store.gc_lock(False, lambda: progress.note("waiting: a garbage collection is running")):
        temp = roots.add_temp(home.gc_roots, [prefix_text(store, ref) for ref in refs])
        upstream = []
        for up_roots, up_store in zip(home.upstream_gc_roots, store.upstreams, strict=True):
            under = f"{up_store.root}/"  # a prefix is ROOT/name/leaf
            ids = [r.id for r in refs if prefix_text(store, r).startswith(under)]
            record = roots.record_building(up_roots, temp, ids) if ids else None
            if ids and record is None:
                progress.note(
                    f"warning: could not record in {up_roots / roots.USERS} that this build "
                    f"uses {len(ids)} artifact(s) of that store; its garbage collection may "
                    "remove them meanwhile (ask its admin for write access to that folder)"
                )
            upstream += [record] if record else []
        try:
            yield
        finally:
            temp.unlink(missing_ok=True)
            for record in upstream:
                record.unlink(missing_ok=True)


def _uses(stacks: list[Resolved]) -> list[ArtifactRef]:
    """Every artifact the stacks use: their nodes and their profiles."""
    return [n.ref for r in stacks for n in r.nodes.values()] + [r.profile_ref for r in stacks]


def build_profiles(
    stacks: list[Resolved], home: Home, jobs: int, progress: Progress
) -> list[Result]:
    """Build every stack (one DAG: shared artifacts once), then assemble each profile, point
    its link at it (a gc root, with a generation) and tell upstream stores what it uses.
    Returns one Result per stack, in order. Raises HitError (a link path that is not a
    symlink, before anything is built), scheduler.BuildsFailed."""
    store = open_store(home)
    for resolved in stacks:
        check_link(resolved.profile.link_path)
    refs = _uses(stacks)
    with _building(refs, home, store, progress):
        built = build_missing(stacks, home, store, jobs, progress)
        results = [_finish(plan_of(r, store), home, store, built, progress) for r in stacks]
        store.mark_used(refs)
    return results


def link_plan(
    plan: ProfilePlan,
    home: Home,
    progress: Progress,
    farm: FarmLinks | None = None,
    written: Written | None = None,
) -> Result:
    """`build_profile` of a profile whose artifacts are all installed, known by its plan
    alone (publish/quickswitch.py: a switch answered from the no-op memo, `farm` its links
    planned already, `written` its farm written already: assemble.write_ahead): assemble
    it, point its link at it, record what it uses, under the same GC lock and temporary
    roots. Raises HitError as `build_profiles`."""
    store = open_store(home)
    check_link(plan.link)
    refs = [*plan.uses, plan.ref]
    with _building(refs, home, store, progress):
        result = _finish(plan, home, store, 0, progress, farm, written)
        store.mark_used([plan.ref])  # its artifacts' last use is the profile's (gc.last_used)
    return result


def _finish(
    plan: ProfilePlan,
    home: Home,
    store: Store,
    built: int,
    progress: Progress,
    farm: FarmLinks | None = None,
    written: Written | None = None,
) -> Result:
    waited: list[bool] = []  # another build held the profile's lock

    def on_wait() -> None:
        progress.waiting(plan.ref.short)
        waited.append(True)

    start = time.monotonic()
    new = assemble(plan, store, farm, written, on_wait)
    seconds = time.monotonic() - start  # the assembly alone, not the builds before it
    link, switched = link_profile(plan, home, store)
    record_upstream_use(plan, home, store, progress.note)
    short = plan.ref.short
    if new:  # (after a wait: the lock's holder ended without making it)
        wait = ", the wait for the other build included" if waited else ""
        progress.note(f"profile {short} assembled in {seconds:.1f} s{wait}")
    elif switched.changed:
        progress.note(f"profile {short} exists already; link switched to it")
    note = vanished_note(link, switched, store)
    if note:
        progress.note(note)
    return Result(store.prefix(plan.ref), link, built, switched.changed)


def build_profile(resolved: Resolved, home: Home, jobs: int, progress: Progress) -> Result:
    """`build_profiles` of one profile."""
    return build_profiles([resolved], home, jobs, progress)[0]


def build_and_assemble(resolved: Resolved, home: Home, jobs: int, progress: Progress) -> Path:
    """Build what the profile needs and assemble it, without pointing any link at it
    (`hit develop`). Returns the profile's prefix. Raises as `build_profiles`."""
    store = open_store(home)
    refs = _uses([resolved])
    with _building(refs, home, store, progress):
        build_missing([resolved], home, store, jobs, progress)
        assemble(plan_of(resolved, store), store)
        store.mark_used(refs)
    return store.prefix(resolved.profile_ref)


def build_only(
    stacks: list[Resolved], ids: set[str], home: Home, jobs: int, progress: Progress
) -> int:
    """Build just the artifacts `ids` of `stacks` (what one Slurm job was given). Returns how
    many were built. Raises HitError when an id is not what the stacks resolve to now (the
    YAML changed after submission) or a dependency is not built."""
    known = {n.ref.id for r in stacks for n in r.nodes.values()}
    unknown = sorted(ids - known)
    if unknown:
        raise HitError(
            f"{', '.join(unknown)}: not what the YAML resolves to now (was it changed after "
            f"the jobs were submitted?); nothing was built"
        )
    store = open_store(home)
    with _building(_uses(stacks), home, store, progress):
        return build_missing(stacks, home, store, jobs, progress, only=ids)
