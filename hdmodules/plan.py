"""Planning and running: which artifacts are missing, building them in DAG order with up to
N at once, then assembling the profile and pointing its link at it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import memo, roots
from .config import Home, open_store
from .errors import BuildFailed, HitError
from .farm import plan_farm, write_farm
from .progress import Progress
from .resolve import Node, Resolved
from .store import Store, read_manifest, remove_tree


@dataclass(frozen=True)
class Result:
    profile: Path
    link: Path
    built: int
    link_changed: bool


def missing(resolved: Resolved, store: Store) -> list[Node]:
    return [n for n in resolved.nodes.values() if not store.is_installed(n.ref)]


def run_builds(
    stacks: list[Resolved],
    home: Home,
    store: Store,
    jobs: int,
    progress: Progress,
    only: set[str] | None = None,
) -> int:
    """Build what is missing in any of `stacks`, dependencies first, `jobs` at a time; an
    artifact several stacks share is built once. Returns how many were built.

    After a failure nothing new starts, the builds under way finish, then the first failure
    is raised (with every failure reported)."""
    work: dict[str, tuple[Resolved, Node]] = {}
    for resolved in stacks:
        for node in resolved.nodes.values():
            work.setdefault(node.ref.id, (resolved, node))
    todo = {i: rn for i, rn in work.items() if not store.is_installed(rn[1].ref)}
    if only is not None:  # a Slurm job: just these, and their dependencies must be built
        todo = {i: rn for i, rn in todo.items() if i in only}
        for _r, node in todo.values():
            for dep in node.spec["dependencies"].values():
                if dep not in todo and not store.is_installed(work[dep][1].ref):
                    raise HitError(
                        f"{node.ref.id} needs {dep}, which is not built (its job failed?)"
                    )
    for i, (_r, node) in work.items():
        if i not in todo:
            progress.cached(node.ref.short)
    if not todo:
        return 0
    import concurrent.futures as cf  # only when there is something to build

    from . import builder

    waiting = dict(todo)
    done: set[str] = set(work) - set(todo)
    failures: list[BuildFailed] = []
    built = 0

    def one(resolved: Resolved, node: Node) -> builder.Outcome:
        progress.started(node.ref.short)
        return builder.build(
            resolved,
            node,
            home,
            store,
            jobs=max(1, jobs),
            on_wait=lambda: progress.waiting(node.ref.short),
        )

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[cf.Future, Node] = {}
        try:
            while waiting or running:
                if not failures:
                    for i, (resolved, node) in list(waiting.items()):
                        if len(running) >= jobs:
                            break
                        if all(d in done for d in node.spec["dependencies"].values()):
                            del waiting[i]
                            running[pool.submit(one, resolved, node)] = node
                if not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    node = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except BuildFailed as e:
                        progress.failed(node.ref.short)
                        failures.append(e)
                        continue
                    except HitError as e:
                        progress.failed(node.ref.short)
                        failures.append(BuildFailed(f"{node.ref.id}: {e}"))
                        continue
                    done.add(node.ref.id)
                    if outcome.status == "built":
                        built += 1
                        progress.built(node.ref.short, outcome.seconds)
                    else:
                        progress.running.pop(node.ref.short, None)
                        progress.cached(node.ref.short)
        except KeyboardInterrupt:
            builder.kill_running()
            for fut in running:
                fut.cancel()
            raise
    if failures:
        skipped = sorted(node.ref.short for _r, node in waiting.values())
        more = f"\n  not built because of the failure: {', '.join(skipped)}" if skipped else ""
        extra = "".join(f"\n{e}" for e in failures[1:])
        raise BuildFailed(f"{failures[0]}{extra}{more}")
    return built


def assemble(resolved: Resolved, store: Store) -> bool:
    """The profile artifact: a symlink farm over the listed packages, made once like any
    artifact. Returns False when it existed already."""
    ref = resolved.profile_ref
    if store.is_installed(ref):
        return False
    prefixes = [store.prefix(resolved.nodes[name].ref) for name in resolved.roots]
    manifests = {n: (p, read_manifest(p)) for n, p in zip(resolved.roots, prefixes, strict=True)}
    links = plan_farm(manifests, resolved.profile.prefer)  # conflicts fail before any write
    with store.lock(ref):
        if store.is_installed(ref):
            return False
        prefix = store.begin(ref)
        try:
            manifest = write_farm(prefix, links)
            spec = {"id": ref.id, "kind": "profile", **resolved.profile_spec}
            store.commit(ref, spec, None, manifest)
        except BaseException:
            remove_tree(prefix)
            raise
    return True


def link_profile(resolved: Resolved, home: Home, store: Store) -> tuple[Path, bool]:
    """Point the profile's link at its (assembled) profile and register it as a gc root."""
    link = resolved.profile.link_path
    target = store.prefix(resolved.profile_ref)
    changed = roots.point(home.gc_roots, link, target)
    roots.record_generation(home.gc_roots, link, target, home.history_keep, home.history_days)
    return link, changed


def _record_upstream_use(
    resolved: Resolved, home: Home, store: Store, link: Path, progress: Progress
) -> None:
    """Tell each upstream (the site) which of its artifacts this profile uses, so that its
    GC keeps them; say so if it cannot be told."""
    for up_home, up_store in zip(home.upstreams, store.upstreams, strict=True):
        ids = [n.ref.id for n in resolved.nodes.values()
               if store.prefix(n.ref).is_relative_to(up_store.root)]  # fmt: skip
        if ids and not roots.record_use(up_home / "gcroots", link.absolute(),
                                        store.prefix(resolved.profile_ref), ids):  # fmt: skip
            progress.note(
                f"warning: could not record in {up_home / 'gcroots' / roots.USERS} that "
                f"{link} uses {len(ids)} artifact(s) of that store; its garbage collection "
                f"may remove them (ask its admin for write access to that folder)"
            )


def check_link(resolved: Resolved) -> None:
    link = resolved.profile.link_path
    if link.exists() and not link.is_symlink():  # say so now, not after hours of building
        raise HitError(f"{link} exists and is not a symlink; move it away first")


def build_profiles(
    stacks: list[Resolved], home: Home, jobs: int, progress: Progress
) -> list[Result]:
    """Build every stack (one DAG: shared artifacts once), then assemble and link each.

    The whole run holds the store's GC lock shared, and registers everything it builds or
    uses as temporary roots, so a garbage collection can never pull anything from under it."""
    store = open_store(home)
    for resolved in stacks:
        check_link(resolved)
    with _building(stacks, home, store, progress) as refs:
        results = _build_locked(stacks, home, store, jobs, progress)
        store.mark_used(refs)
    return results


@contextmanager
def _building(stacks: list[Resolved], home: Home, store: Store, progress: Progress):
    """Hold the store's GC lock shared and register everything the stacks use as temporary
    roots, for as long as the build runs."""
    with store.gc_lock(False, lambda: progress.note("waiting: a garbage collection is running")):
        refs = [n.ref for r in stacks for n in r.nodes.values()] + [r.profile_ref for r in stacks]
        temp = roots.add_temp(home.gc_roots, [store.prefix(ref) for ref in refs])
        try:
            yield refs
        finally:
            temp.unlink(missing_ok=True)


def build_and_assemble(resolved: Resolved, home: Home, jobs: int, progress: Progress) -> Path:
    """Build what the profile needs and assemble it, without pointing any link at it."""
    store = open_store(home)
    with _building([resolved], home, store, progress) as refs:
        run_builds([resolved], home, store, jobs, progress)
        assemble(resolved, store)
        store.mark_used(refs)
    return store.prefix(resolved.profile_ref)


def build_only(
    stacks: list[Resolved], ids: set[str], home: Home, jobs: int, progress: Progress
) -> int:
    """Build just the artifacts `ids` of `stacks` (what one Slurm job was given)."""
    known = {n.ref.id for r in stacks for n in r.nodes.values()}
    unknown = sorted(ids - known)
    if unknown:
        raise HitError(
            f"{', '.join(unknown)}: not what the YAML resolves to now (was it changed after "
            f"the jobs were submitted?); nothing was built"
        )
    store = open_store(home)
    with _building(stacks, home, store, progress):
        return run_builds(stacks, home, store, jobs, progress, only=ids)


def _build_locked(
    stacks: list[Resolved], home: Home, store: Store, jobs: int, progress: Progress
) -> list[Result]:
    start = time.monotonic()
    built = run_builds(stacks, home, store, jobs, progress)
    results = []
    for resolved in stacks:
        new = assemble(resolved, store)
        link, changed = link_profile(resolved, home, store)
        _record_upstream_use(resolved, home, store, link, progress)
        short = resolved.profile_ref.short
        if new:
            progress.note(f"profile {short} assembled in {time.monotonic() - start:.1f} s")
        elif changed:
            progress.note(f"profile {short} exists already; link switched to it")
        if resolved.profile.link is None:  # a YAML file's own link: remember for the no-op path
            memo.save(home, resolved)
        results.append(Result(store.prefix(resolved.profile_ref), link, built, changed))
    return results


def build_profile(resolved: Resolved, home: Home, jobs: int, progress: Progress) -> Result:
    return build_profiles([resolved], home, jobs, progress)[0]
