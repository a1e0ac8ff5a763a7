"""A profile switch answered from the no-op memo (build/memo.py), without resolving: the
profile's YAML lists other packages, nothing else changed.

Resolving 5,000 packages costs most of a second (recipes, source stamps, build specs hashed),
although a switch that removes one of them changes no artifact (issue 18, goal 3). The memo
of the last build already knows every artifact's id and dependencies, and stamps every
input. When every stamped input but the profile's own YAML is unchanged, the YAML loads to
the same key (profiles.switch_key: everything but its plain packages) and each package it
lists is one of the memo's artifacts, then resolving would give those same artifacts: a
plain package resolves as it does as a dependency, and nothing else differs. The profile is
then the memo's artifacts that the listed packages need, in the order resolving gives;
anything else (a package the memo does not know, a version or parameters changed, `prefer`
naming a package not listed) is left to the full path, which says what is wrong. A YAML
that differs from the one the memo's build loaded only in lines listing plain packages is
not parsed again: its list is read from those lines (spec/profiledelta.py; the memo keeps
that text's layout), which is what loading it would give: 2 ms against 42 ms for 5,000.

The memo written after a switch keeps every input and every artifact of the one before (the
recipes and sources of a package removed too), so listing that package again is a switch as
well, once its artifact is found still installed (under the store's GC lock, which the
caller holds until the profile is linked: publish/builds.py); a change to those inputs sends
the next build down the full path, which is slower, never wrong.
"""

from __future__ import annotations

import contextlib
import os
from array import array
from dataclasses import dataclass, replace
from pathlib import Path

from ..build import memo
from ..collector import collector_paused
from ..errors import ConfigError, HitError
from ..names import profile_link
from ..spec import profiledelta, yamlfile
from ..spec.artifact import ArtifactRef
from ..spec.buildspec import ProfileDoc
from ..spec.profiles import load_profile, switch_key
from ..spec.resolvecache import note, seen
from ..store.home import Home, open_store
from ..store.homeroot import home_root
from ..store.layout import MANIFEST, META, Store
from .assemble import FarmLinks, ProfilePlan, Written, drop, farm_links, write_ahead


@dataclass(frozen=True)
class Quick:
    """A switch answered from the memo: the profile's plan, the short ids of the artifacts
    it uses in build order, where each stood in the memo's build order, that memo, its
    paths (split once), the layout of the profile's text (profiledelta.py; None: not kept),
    the profile's farm planned (None: the profile is installed) and, once planned, written
    (assemble.write_ahead: its links made while the memo's stamps are checked)."""

    plan: ProfilePlan
    shorts: tuple[str, ...]
    places: tuple[int, ...]
    memo: dict
    paths: list[str]
    layout: profiledelta.Layout | None
    farm: FarmLinks | None = None
    written: Written | None = None  # the farm written while the stamps were checked


def quick_plan(file: Path, home: Home) -> Quick | None:
    """The plan of the profile YAML `file` built in `home` when the memo of its last build
    answers for it (the module's docstring), else None (resolve in full). Raises HitError
    for a YAML that does not load, as resolving would."""
    profile = os.path.abspath(file)
    try:
        return _plan(profile, str(home_root()), home)
    finally:
        memo.end_switch_check()  # a check begun early that was not waited for


def _plan(profile: str, root: str, home: Home) -> Quick | None:
    """`quick_plan` of the profile YAML at `profile` (absolute), in the home at `root`. The
    YAML is loaded, and the profile and its farm planned, before the memo's stamps are
    checked: a check begun early (by the no-op check, memo._begin_switch_check) runs
    meanwhile in a child, and planning waits for nothing the check decides (the stamps of
    the memo's manifests it uses are the memo's own, which the check then confirms). While
    a child checks, a new profile's farm is written too, into its private prefix
    (assemble.write_ahead), and removed when the check finds a change: the links' system
    calls take the core the wait left idle. The caller drops it (assemble.drop) when it is
    not committed."""
    doc = memo.switch_candidate(root, profile)
    if doc is None:
        return None
    known = doc["switch"]
    listed = _listed(profile, known)
    if listed is None:  # not told by its plain packages' lines alone: loaded in full
        spec = load_profile(Path(profile))
        if switch_key(spec) != known["key"]:
            return None
        listed = tuple(spec.packages), tuple(spec.prefer), profiledelta.of_profile(spec)
    paths = doc["paths"].split("\0")
    stamps = _manifest_stamps(doc, paths)
    quick = _planned(profile, listed, doc, paths, stamps, home)
    if quick is not None and quick.farm is not None and memo.checking(root, profile, doc):
        with contextlib.suppress(HitError, OSError):  # said by assembling once they hold,
            store = open_store(home)  # as another build holding the lock is (its wait)
            quick = replace(quick, written=write_ahead(quick.plan, store, quick.farm, wait=False))
    written = quick.written if quick is not None else None
    try:
        with collector_paused():
            holds = memo.switchable(root, profile, doc)
    except BaseException:
        drop(written)
        raise
    if not holds:
        drop(written)  # an input changed: resolved in full
        return None
    if quick is not None:  # for assembling and remember(), as resolving's stamps
        taken = seen()
        for path, stamp in stamps.items():
            taken.setdefault(path, stamp)
    return quick


def _listed(profile: str, known: dict) -> Listed | None:
    """What the profile YAML at `profile` lists when its text differs from the one the memo
    (its switch data, `known`) loaded in plain package lines alone (profiledelta.py), read
    without parsing it; None otherwise (it is loaded in full). Stamped before it is read,
    as load_profile stamps it."""
    old = profiledelta.from_saved(known.get("layout"))
    if old is None:
        return None
    note(profile)
    try:
        text = yamlfile.read(Path(profile))
    except ConfigError:  # said by loading it
        return None
    found = profiledelta.listed(old, text)
    if found is None:
        return None
    names, layout = found
    return names, tuple(known.get("prefer", ())), layout


# a profile's packages in order, its `prefer:`, and its layout (None: none kept)
Listed = tuple[tuple[str, ...], tuple[str, ...], "profiledelta.Layout | None"]


def _planned(
    profile: str, listed: Listed, doc: dict, paths: list[str], stamps: dict, home: Home
) -> Quick | None:
    """The Quick of the profile YAML `profile` (what it lists: `listed`) from the memo `doc`
    (its `paths` split, the `stamps` of its manifests), those stamps not yet checked; None
    when the memo cannot answer for it."""
    known = doc["switch"]
    listed_names, prefer, layout = listed
    ids, versions, deps = _artifacts(known)
    place = {artifact_id.partition("/")[0]: i for i, artifact_id in enumerate(ids)}
    listed = list(listed_names)
    if any(name not in place for name in listed):
        return None  # a package the memo's resolution does not have
    if not set(prefer) <= set(listed):
        return None  # an error, said by resolving
    places = build_order([place[name] for name in listed], deps)
    refs = []
    for artifact_id, version in zip(ids, versions, strict=True):
        name, _, hash_ = artifact_id.partition("/")
        refs.append(ArtifactRef(name, version, hash_))
    store = open_store(home)
    stamped = set(_kept(known))
    if any(i not in stamped and not store.is_installed(refs[i]) for i in places):
        return None  # one the last profile did not use, gone since (gc): built in full
    profile_doc = ProfileDoc({name: ids[place[name]] for name in listed}, prefer)
    ref = ArtifactRef("profile", "", profile_doc.hash())
    held = {name: refs[place[name]] for name in listed}
    uses = tuple(refs[i] for i in places)
    plan = ProfilePlan(profile_link(Path(profile)), ref, profile_doc, held, uses)
    farm = None
    if not store.is_installed(ref):  # a new profile: its links planned now
        with contextlib.suppress(HitError):  # said once the stamps hold (by assembling)
            farm = farm_links(plan, store, stamps)  # else by resolving
    return Quick(plan, tuple(r.short for r in uses), tuple(places), doc, paths, layout, farm)


def _artifacts(known: dict) -> tuple[list[str], list[str], list[list[int]]]:
    """The ids, versions and dependencies (places) of the memo's artifacts (switch_data's
    strings), in build order; none for a resolution of no artifact (a profile listing no
    package): its strings are all empty, as one artifact's without a dependency would be."""
    if not known["ids"]:
        return [], [], []
    ids = known["ids"].split("\0")
    versions = known["versions"].split("\0")
    deps = [[int(d) for d in each.split(",")] if each else [] for each in known["deps"].split("\0")]
    return ids, versions, deps


def _kept(known: dict) -> list[int]:
    """The places of the artifacts whose manifests the memo stamps, in the order it lists
    those manifests (after its inputs): the ones the last profile used."""
    return [int(i) for i in known["kept"].split(",")] if known["kept"] else []


_ints = len(memo.GONE)  # the integers of one path's stamp


def _manifest_stamps(doc: dict, paths: list[str]) -> dict[str, tuple[int, ...]]:
    """The memo's stamps of the artifacts' manifests (what it stamps after its inputs), path
    -> the four integers. `paths`: the memo's, split."""
    saved = array("q", doc["stamps"])
    return {
        paths[i]: tuple(saved[_ints * i : _ints * (i + 1)])
        for i in range(doc["inputs"], len(paths))
    }


def build_order(roots: list[int], deps: list[list[int]]) -> list[int]:
    """The artifacts `roots` need (places in `deps`, each one's dependencies in its recipe's
    order), dependencies first, in the order resolve._build_order gives for the same roots:
    depth first, each root and dependency in turn. The memo's resolution had no cycle."""
    order: list[int] = []
    done: set[int] = set()
    for root in roots:
        stack = [(root, iter(deps[root]))]
        if root in done:
            continue
        done.add(root)
        while stack:
            node, rest = stack[-1]
            dep = next(rest, None)
            if dep is None:
                stack.pop()
                order.append(node)
            elif dep not in done:
                done.add(dep)
                stack.append((dep, iter(deps[dep])))
    return order


def remember(quick: Quick, home: Home, store: Store) -> None:
    """Save the memo of the profile `quick` linked: the inputs of the memo it came from (the
    profile's own YAML stamped as loading it stamped it), the manifests of the artifacts it
    uses and of the profile, its link, and what the next switch needs: every artifact of the
    memo it came from (a package removed and listed again is switched back without
    resolving: its inputs are still stamped). Never raises for an unwritable cache."""
    old = quick.memo
    size = memo.STAMP_BYTES
    count = old["inputs"]
    paths = quick.paths
    saved = old["stamps"]
    own = old["own"]
    profile = paths[own]
    stamps = bytearray(saved[: count * size])
    stamps[own * size : (own + 1) * size] = memo.stamps([profile], seen())
    known = old["switch"]
    was = {place: count + j for j, place in enumerate(_kept(known))}  # place -> its path
    manifests = []
    for place, ref in zip(quick.places, quick.plan.uses, strict=True):
        at = was.get(place)
        if at is None:  # not used by the last profile: stamped now (found installed)
            manifests.append(f"{memo.prefix_text(store, ref)}/{META}/{MANIFEST}")
            stamps += memo.stamps(manifests[-1:])
        else:
            manifests.append(paths[at])
            stamps += saved[at * size : (at + 1) * size]
    mine = f"{memo.prefix_text(store, quick.plan.ref)}/{META}/{MANIFEST}"
    stamps += memo.stamps([mine])
    doc = {
        **old,
        "paths": "\0".join([*paths[:count], *manifests, mine]),
        "stamps": bytes(stamps),
        "links": memo.links(home, quick.plan.link, store.prefix(quick.plan.ref)),
        "shorts": "\0".join(quick.shorts),
        "switch": {
            **known,
            "kept": ",".join(str(place) for place in quick.places),
            "prefer": list(quick.plan.doc.prefer),
            "layout": profiledelta.saved(quick.layout),
        },
        "status": None,  # the last resolution's: not this profile's (`hit status` resolves)
    }
    memo.write(profile, doc)
