"""Planning at the unit level: build order, what is missing, how a profile's links are laid out."""

from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.publish.farm import plan_farm
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.resolve import resolve, to_build
from hdmodules.store.layout import Store
from tests.conftest import DEMO


def test_diamond_is_ordered_dependencies_first():
    r = resolve(load_profile(DEMO / "default.yaml"))
    order = list(r.nodes)
    assert order.index("libcore") < order.index("liba") < order.index("app")
    assert order.index("libb") < order.index("app")
    assert set(r.nodes["app"].closure) == {"libcore", "liba", "libb"}
    assert r.nodes["app"].closure.index("libcore") < r.nodes["app"].closure.index("liba")
    assert r.packages == ("libcore", "liba", "libb", "app")


def test_missing_is_what_the_store_lacks(tmp_path):
    r = resolve(load_profile(DEMO / "default.yaml"))
    store = Store(tmp_path)
    assert [n.name for _r, n in to_build([(r, r)], store.is_installed)] == list(r.nodes)
    core = store.begin(r.nodes["libcore"].ref)  # a prefix without a manifest is not installed
    assert [n.name for _r, n in to_build([(r, r)], store.is_installed)] == list(r.nodes)
    store.commit(r.nodes["libcore"].ref, {}, None)
    assert core.exists() and "libcore" not in [
        n.name for _r, n in to_build([(r, r)], store.is_installed)
    ]


def _m(prefix: str, *files: str) -> tuple[Path, dict[str, str]]:
    return Path(prefix), {f: "f:0" for f in files}


def test_farm_folds_single_owner_folders_and_merges_shared_ones():
    links = plan_farm(
        {
            "a": _m("/s/a", "bin/a", "lib/liba.so", "share/a/x", "share/a/y/z"),
            "b": _m("/s/b", "bin/b", "lib/libb.so", "include/b.h"),
        },
        [],
    )
    assert links == {
        "bin/a": Path("/s/a/bin/a"),
        "bin/b": Path("/s/b/bin/b"),
        "lib/liba.so": Path("/s/a/lib/liba.so"),
        "lib/libb.so": Path("/s/b/lib/libb.so"),
        "share": Path("/s/a/share"),  # only a has share/: one link
        "include": Path("/s/b/include"),
    }


def test_farm_conflicts():
    both = {"a": _m("/s/a", "bin/tool"), "b": _m("/s/b", "bin/tool")}
    with pytest.raises(HitError, match="packages a and b conflict on bin/tool"):
        plan_farm(both, [])
    assert plan_farm(both, ["b"])["bin/tool"] == Path("/s/b/bin/tool")
    assert plan_farm(both, ["a", "b"])["bin/tool"] == Path("/s/a/bin/tool")
    shape = {"a": _m("/s/a", "lib/x"), "b": _m("/s/b", "lib/x/y")}
    for prefer in ([], ["a"], ["b"]):  # the message never sends the user to `prefer:` for it
        with pytest.raises(HitError) as caught:
            plan_farm(shape, prefer)
        said = str(caught.value)
        assert "a folder in one, a file in the other" in said
        assert "`prefer:` cannot settle that: leave one of them out" in said


def test_a_file_three_packages_ship_goes_to_the_preferred_one_in_any_listed_order():
    """The preferred package wins over every other shipper of a file, whatever order the
    profile lists them in (found by the closing trial: `[a, b, e]` with `prefer: [e]`
    failed on a against b, `[a, e, b]` did not, and a switch between them said up to date)."""
    from itertools import permutations

    three = {n: _m(f"/s/{n}", "bin/tool") for n in ("a", "b", "e")}
    for order in permutations(three):
        listed = {n: three[n] for n in order}
        assert plan_farm(listed, ["e"])["bin/tool"] == Path("/s/e/bin/tool")
        assert plan_farm(listed, ["b", "e"])["bin/tool"] == Path("/s/b/bin/tool")
        first, second = [n for n in order][:2]
        with pytest.raises(HitError, match=f"packages {first} and {second} conflict"):
            plan_farm(listed, [])
    # a name given twice in `prefer` counts where it first stands (the last trial: `pb, pb`
    # refused the profile, `pb, pc, pb` gave the file to pc)
    for prefer in (["b", "b"], ["b", "e", "b"], ["b", "b", "e"]):
        for order in permutations(three):
            listed = {n: three[n] for n in order}
            assert plan_farm(listed, prefer)["bin/tool"] == Path("/s/b/bin/tool"), (prefer, order)
    # with only some preferred, the rest conflicting among themselves is no error
    four = {**three, "g": _m("/s/g", "bin/tool")}
    assert plan_farm(four, ["g"])["bin/tool"] == Path("/s/g/bin/tool")


def _sets(owners: dict) -> dict[str, set[str]]:
    """Planned.owners with every folder's owners a set (the index keeps them joined)."""
    return {d: set(o.split("\0")) if isinstance(o, str) else o for d, o in owners.items()}


@pytest.mark.parametrize("seed", range(6))
def test_a_farm_planned_after_removing_packages_is_the_one_planned_from_scratch(seed):
    """farm.after_removal (a profile switch that only removes packages) gives exactly the
    links, folder owners and shared files `plan_farm_links` gives the packages left, or
    None; over random farms: folders shared or not, nested, files shipped twice with a
    `prefer`, packages of one file or of a folded tree."""
    import random

    from hdmodules.publish.farm import Planned, after_removal, joined_owners, plan_farm_links

    rng = random.Random(seed)
    names = ["bin/x", "bin/y", "lib/a.so", "lib/pc/a.pc", "share/d/f", "share/d/g", "share/e/h",
             "include/z.h", "include/sub/w.h", "etc/conf"]  # fmt: skip
    answered = planned_again = 0
    for _round in range(400):
        packages = {}
        for i in range(rng.randint(1, 7)):
            own = [f"share/p{i}/data", f"bin/p{i}"] if rng.random() < 0.5 else []
            picked = rng.sample(names, rng.randint(0, 3)) + own
            packages[f"p{i}"] = (f"/s/p{i}", picked or [f"only/p{i}"])
        prefer = rng.sample(sorted(packages), rng.randint(0, len(packages)))
        try:
            before = plan_farm_links(packages, prefer)
        except HitError:
            continue
        if _round % 2:  # as the farm's index keeps it (its owners joined)
            before = Planned(before.links, joined_owners(before.owners), before.shared)
        gone = rng.sample(sorted(packages), rng.randint(1, len(packages)))
        left = {n: v for n, v in packages.items() if n not in gone}
        after = after_removal(before, {n: packages[n] for n in gone})
        if after is None:
            planned_again += 1
            continue
        answered += 1
        scratch = plan_farm_links(left, prefer)
        assert after.links == scratch.links, (packages, prefer, gone)
        assert _sets(after.owners) == scratch.owners and after.shared == scratch.shared
    assert answered > 50 and planned_again > 20  # both paths were taken
