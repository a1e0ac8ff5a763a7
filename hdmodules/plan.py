"""Planning and running: which artifacts are missing, building them in DAG order with up to
N at once, then assembling the profile and pointing its link at it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import memo
from .config import Home
from .errors import BuildFailed, HitError
from .profiles import plan_farm, write_farm
from .progress import Progress
from .resolve import Node, Resolved
from .store import (
    Store,
    profile_link,
    read_manifest,
    register_root,
    remove_tree,
    set_link,
)


@dataclass(frozen=True)
class Result:
    profile: Path
    link: Path
    built: int
    link_changed: bool


def missing(resolved: Resolved, store: Store) -> list[Node]:
    return [n for n in resolved.nodes.values() if not store.is_installed(n.ref)]


def run_builds(resolved: Resolved, home: Home, store: Store, jobs: int, progress: Progress) -> int:
    """Build what is missing, dependencies first, `jobs` at a time; returns how many built.

    After a failure nothing new starts, the builds under way finish, then the first failure
    is raised (with every failure reported)."""
    todo = {n.name: n for n in missing(resolved, store)}
    for n in resolved.nodes.values():
        if n.name not in todo:
            progress.cached(n.ref.short)
    if not todo:
        return 0
    import concurrent.futures as cf  # only when there is something to build

    from . import builder

    waiting = dict(todo)
    done: set[str] = set(resolved.nodes) - set(todo)
    failures: list[BuildFailed] = []
    built = 0

    def one(node: Node) -> builder.Outcome:
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
                    for name, node in list(waiting.items()):
                        if len(running) >= jobs:
                            break
                        if all(d in done for d in node.deps):
                            del waiting[name]
                            running[pool.submit(one, node)] = node
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
                    done.add(node.name)
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
        skipped = sorted(waiting)
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


def build_profile(resolved: Resolved, home: Home, jobs: int, progress: Progress) -> Result:
    store = Store(home.store)
    start = time.monotonic()
    link = profile_link(resolved.profile.file)
    if link.exists() and not link.is_symlink():  # say so now, not after hours of building
        raise HitError(f"{link} exists and is not a symlink; move it away first")
    built = run_builds(resolved, home, store, jobs, progress)
    new = assemble(resolved, store)
    profile = store.prefix(resolved.profile_ref)
    changed = set_link(link, profile)
    register_root(home.gc_roots, link)
    short = resolved.profile_ref.short
    if new:
        progress.note(f"profile {short} assembled in {time.monotonic() - start:.1f} s")
    elif changed:
        progress.note(f"profile {short} exists already; link switched to it")
    memo.save(home, resolved)
    return Result(profile, link, built, changed)
