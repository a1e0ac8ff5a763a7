"""A profile switch answered from the memo (publish/quickswitch.py): when the profile only lists
other packages of its last build, `hit build` plans the profile without resolving, and what it
makes is what resolving would make; anything else is resolved in full."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import hdmodules
from hdmodules.errors import HitError
from hdmodules.publish import farm
from hdmodules.publish.quickswitch import build_order
from hdmodules.spec import resolve as resolving
from hdmodules.spec.resolve import resolve_file
from hdmodules.store.home import SETTINGS_CODE, load_home, open_store
from hdmodules.store.layout import MANIFEST, META
from tests.conftest import (
    alive,
    blocking_recipe,
    read_pid,
    write_profile,
    write_recipe,
)

# top -> left, right; left, right -> base; alone stands alone; old has two versions
RECIPES = {
    "base": "",
    "left": "dependencies: [base]\n",
    "right": "dependencies: [base]\n",
    "top": "dependencies: [left, right]\n",
    "alone": "",
}
ALL = "package_dirs: [pkgs]\npackages:\n  top:\n  alone:\n  base:\n  old:\n"


def _project(tmp_path: Path) -> Path:
    for name, deps in RECIPES.items():
        write_recipe(
            tmp_path / "pkgs",
            name,
            f'version: "1"\n{deps}build: |\n'
            f'  mkdir -p "$ARTIFACT/bin" && echo {name} > "$ARTIFACT/bin/{name}"\n',
        )
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "README").write_text("old\n")
    write_recipe(
        tmp_path / "pkgs",
        "old",
        'version: "2"\nversions:\n  "1": {path: ../src}\n  "2": {path: ../src}\n'
        'build: |\n  mkdir -p "$ARTIFACT/bin" && echo "old $VERSION" > "$ARTIFACT/bin/old"\n',
    )
    return write_profile(tmp_path / "default.yaml", ALL)


def _build(profile: Path, *args: str) -> tuple[subprocess.CompletedProcess, bool]:
    """`hit build` of `profile` (`_imports`), never a traceback; its run and whether it
    imported the resolver (False: the memo answered)."""
    r, imported = _imports(profile, *args)
    assert "Traceback" not in r.stderr, r.stderr
    return r, "hdmodules.spec.resolve" in imported


def _imports(profile: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`hit build ARGS PROFILE` through the console script's entry, in a child; its run (the
    import times taken out of stderr) and the modules it imported. hit leaves with os._exit:
    the imports are told by `-X importtime`."""
    code = (
        "import sys\n"
        "from hdmodules.cli.entry import hit\n"
        f"sys.argv = ['hit', 'build', *{list(args)!r}, {str(profile)!r}]\n"
        "hit()\n"
    )
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=profile.parent,
        capture_output=True,
        text=True,
    )
    lines = r.stderr.splitlines()
    imported = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    r.stderr = "".join(f"{line}\n" for line in lines if not line.startswith("import time:"))
    return r, imported


def _resolved_profile(profile: Path) -> Path:
    """The prefix of the profile that resolving `profile` in full gives (without building)."""
    return open_store(load_home()).prefix(resolve_file(profile).profile_ref)


def _link(profile: Path) -> Path:
    return Path(os.readlink(profile.parent / profile.stem))


def test_removing_packages_is_answered_from_the_memo_as_resolving_would(home, tmp_path):
    profile = _project(tmp_path)
    first, resolver = _build(profile)
    assert first.returncode == 0 and resolver, first.stderr
    # `alone` and the listed `base` go (base stays, top needs it), the others swap places
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  old:\n  top:\n")
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver, r.stderr
    assert "assembled in" in r.stderr
    assert _link(profile) == _resolved_profile(profile)
    made = tmp_path / "default" / "bin"
    assert sorted(os.listdir(made)) == ["old", "top"]  # listed only, as resolving makes it
    # what it says is what the full path says for the same profile (another home)
    again = tmp_path / "again"
    again.mkdir()
    (again / "pkgs").symlink_to(tmp_path / "pkgs")
    (again / "src").symlink_to(tmp_path / "src")
    other = write_profile(again / "default.yaml", profile.read_text())
    env = {**os.environ, "HIT_HOME": str(tmp_path / "h2")}
    command = [sys.executable, "-m", "hdmodules.cli.hit", "build", str(other)]
    assert subprocess.run(command, capture_output=True, env=env).returncode == 0
    os.utime(other)  # not a no-op: resolved in full, everything present
    full = subprocess.run(command, capture_output=True, text=True, env=env)
    assert full.returncode == 0, full.stderr
    present = [line.split()[1] for line in r.stderr.splitlines() if "present" in line]
    expected = [line.split()[1] for line in full.stderr.splitlines() if "present" in line]
    assert present == expected and len(present) == 5  # the same artifacts, in the same order
    # the next build is a no-op answered by the memo the switch wrote
    noop, resolver = _build(profile, "-q")
    assert noop.returncode == 0 and not resolver and "(up to date)" in noop.stdout


def test_the_memo_a_switch_writes_answers_the_next_switch_and_a_gc(hit, home, tmp_path):
    profile = _project(tmp_path)
    _build(profile)
    everything = _link(profile)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  base:\n  old:\n")
    assert not _build(profile)[1]
    write_profile(profile, ALL)  # back: that profile exists, and the memo knows `alone`
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver and "link switched to it" in r.stderr
    assert _link(profile) == everything
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  base:\n  old:\n")
    assert not _build(profile)[1]
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  old:\n  base:\n")  # reordered
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver
    assert _link(profile) == _resolved_profile(profile)
    hit("gc")  # the earlier profiles and top, left and right go (no history kept)
    assert not any((home / "bld").glob("top/*/.hit"))
    noop, resolver = _build(profile, "-q")
    assert noop.returncode == 0 and not resolver and "(up to date)" in noop.stdout
    # a dependency listed on its own is one of the memo's artifacts
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  old:\n")
    assert not _build(profile)[1]
    # top is gone from the store: resolved and built again
    write_profile(profile, ALL)
    r, resolver = _build(profile)
    assert r.returncode == 0 and resolver
    assert any(
        line.split()[1].startswith("top/") for line in r.stderr.splitlines() if "built in" in line
    )
    assert _link(profile) == _resolved_profile(profile)
    assert (tmp_path / "default" / "bin" / "top").read_text() == "top\n"


def test_gc_older_than_keeps_what_a_switch_used_after_its_profile_went(hit, home, tmp_path):
    """gc --older-than keeps an unreachable artifact that a switch used within the age,
    though the profile of that switch went to an earlier gc: a switch stamps every artifact
    its profile uses. (Stamping the profile alone and taking a package's last use from the
    profiles left in the store lost it: found by this stop's review.)"""
    _project(tmp_path)
    one = write_profile(tmp_path / "one.yaml", "package_dirs: [pkgs]\npackages:\n  top:\n  base:\n")
    two = write_profile(
        tmp_path / "two.yaml", "package_dirs: [pkgs]\npackages:\n  top:\n  alone:\n"
    )
    _build(one)
    _build(two)
    long_ago = time.time() - 60 * 86400
    for stamp in (home / "bld" / ".used").iterdir():
        os.utime(stamp, (long_ago, long_ago))
    write_profile(two, "package_dirs: [pkgs]\npackages:\n  top:\n")
    r, resolver = _build(two)
    assert r.returncode == 0 and not resolver, r.stderr  # a switch from the memo
    write_profile(two, "package_dirs: [pkgs]\npackages:\n  alone:\n")
    _build(two)
    hit("gc")  # the profile of top alone goes; top stays (`one` holds it)
    write_profile(one, "package_dirs: [pkgs]\npackages:\n  base:\n")
    _build(one)
    r = hit("gc", "--older-than", "30d")
    for name in ("top", "left", "right"):
        assert any((home / "bld").glob(f"{name}/*/.hit")), (name, r.err)
    hit("gc", "--older-than", "0s")
    assert not any((home / "bld").glob("top/*/.hit"))


@pytest.mark.parametrize("removal", ["gc", "purge"])
def test_gc_older_than_keeps_what_a_switch_used_before_a_rollback(hit, home, tmp_path, removal):
    """The same through `hit rollback`: the profile switched to, then rolled back from,
    goes to a plain gc or `hit purge`; the packages it held that stay keep its last use
    (gc.hand_down). A switch stamps its profile alone."""
    profile = _project(tmp_path)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  alone:\n  base:\n")
    _build(profile)
    used = home / "bld" / ".used"
    long_ago = time.time() - 60 * 86400
    for stamp in used.iterdir():
        os.utime(stamp, (long_ago, long_ago))
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  base:\n")
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver, r.stderr
    recent = [p.name for p in used.iterdir() if p.stat().st_mtime > long_ago + 60]
    assert len(recent) == 1 and recent[0].startswith(f"profile-{_link(profile).name}")
    switched = f"profile/{_link(profile).name}"
    hit("rollback", "default", cwd=tmp_path)
    hit(*(["gc"] if removal == "gc" else ["purge", switched]))  # that profile goes
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  alone:\n  base:\n")
    _build(profile)
    r = hit("gc", "--older-than", "30d", "--dry-run")
    for name in ("top", "left", "right"):
        assert not any(f"{name}/" in line for line in r.out.splitlines()), r.out
    r = hit("gc", "--older-than", "30d")
    assert all(any((home / "bld").glob(f"{n}/*/.hit")) for n in ("top", "left", "right"))


def test_a_last_use_that_cannot_be_handed_down_is_a_warning_not_a_failed_gc(hit, home, tmp_path):
    """gc removes what it should though one stamp cannot be written (gc.hand_down: in a
    shared store, another user's file), and says which."""
    profile = _project(tmp_path)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  base:\n")
    _build(profile)
    before = _link(profile)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  base:\n")
    _build(profile)  # the first profile is unreachable now; base stays
    (stamp,) = (home / "bld" / ".used").glob("base-*")
    stamp.unlink()
    stamp.symlink_to(tmp_path / "no" / "such" / "folder")
    (base,) = (home / "bld").glob("base/*/.hit")
    os.utime(base / MANIFEST, (0, 0))  # built long before the profile was last used
    r = hit("gc")
    assert "warning: could not record in .used/ that base/" in r.err, r.err
    assert not before.exists() and any((home / "bld").glob("base/*/.hit"))


def test_a_file_three_packages_ship_is_the_preferred_ones_in_any_listed_order(home, tmp_path):
    """`[a, b, e]` with `prefer: [e]` is built, as `[a, e, b]` is, and both are the same
    profile (found by the closing trial: resolving refused the first, while a switch to it
    from the second said up to date)."""
    for name in ("a", "b", "e"):
        write_recipe(
            tmp_path / "pkgs",
            name,
            f'version: "1"\nbuild: |\n'
            f'  mkdir -p "$ARTIFACT/bin" && echo {name} > "$ARTIFACT/bin/tool"\n',
        )
    for order in (["a", "b", "e"], ["a", "e", "b"]):
        listed = "".join(f"  {n}:\n" for n in order)
        fresh = write_profile(
            tmp_path / f"{''.join(order)}.yaml",
            f"package_dirs: [pkgs]\npackages:\n{listed}prefer: [e]\n",
        )
        r, _ = _build(fresh)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "".join(order) / "bin" / "tool").read_text() == "e\n"
    assert _link(tmp_path / "abe.yaml") == _link(tmp_path / "aeb.yaml")
    # a name twice in `prefer` counts where it first stands (the last trial)
    twice = "package_dirs: [pkgs]\npackages:\n  a:\n  b:\n  e:\nprefer: [e, b, e]\n"
    r, _ = _build(write_profile(tmp_path / "twice.yaml", twice))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "twice" / "bin" / "tool").read_text() == "e\n"
    # and a name given twice is the same profile as given once (the tenth stop's trial)
    once = write_profile(tmp_path / "once.yaml", twice.replace("[e, b, e]", "[e, b]"))
    r, _ = _build(once)
    assert r.returncode == 0, r.stderr
    assert _link(once) == _link(tmp_path / "twice.yaml")


EDITS = {
    "a package never built": ("  top:\n  extra:\n", None),
    "a version asked for": ('  top:\n  old:\n    version: "1"\n', None),
    "parameters of the profile": ("  top:\nparameters: {flavour: x}\n", "no package of this"),
    "prefer naming a package left out": ("  top:\nprefer: [alone]\n", "prefer names 'alone'"),
    "a recipe edited too": ("  top:\n", None),
    "a package dir added": ("  top:\n", None),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_what_the_memo_cannot_answer_is_resolved_in_full(home, tmp_path, edit):
    profile = _project(tmp_path)
    write_recipe(tmp_path / "pkgs", "extra", 'version: "1"\nbuild: "true"\n')
    assert _build(profile)[0].returncode == 0
    packages, error = EDITS[edit]
    dirs = "[pkgs]"
    if edit == "a recipe edited too":
        recipe = tmp_path / "pkgs" / "left.yaml"
        recipe.write_text(recipe.read_text().replace("echo left", "echo LEFT"))
    if edit == "a package dir added":
        write_recipe(
            tmp_path / "more", "left", 'version: "1"\ndependencies: [base]\nbuild: "true"\n'
        )
        dirs = "[more, pkgs]"
    write_profile(profile, f"package_dirs: {dirs}\npackages:\n{packages}")
    r, resolver = _build(profile)
    assert resolver, r.stderr
    if error is not None:
        assert r.returncode != 0 and error in r.stderr
        return
    assert r.returncode == 0, r.stderr
    assert _link(profile) == _resolved_profile(profile)


def test_a_profile_that_does_not_load_is_one_error_on_the_quick_path_too(home, tmp_path):
    profile = _project(tmp_path)
    _build(profile)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  : [\n")
    r, _resolver = _build(profile)
    assert r.returncode != 0 and f"{profile}:" in r.stderr and "malformed YAML" in r.stderr


@pytest.mark.parametrize("seed", range(30))
def test_the_build_order_is_the_resolvers(seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randint(1, 25))]
    deps = {  # a DAG: each depends on some of those before it, in any order
        name: rng.sample(names[:i], rng.randint(0, min(i, 4))) for i, name in enumerate(names)
    }
    roots = rng.sample(names, rng.randint(1, len(names)))
    recipes = {n: SimpleNamespace(dependencies=tuple(d)) for n, d in deps.items()}
    expected = resolving._build_order(recipes, roots)
    place = {n: i for i, n in enumerate(names)}
    got = build_order([place[r] for r in roots], [[place[d] for d in deps[n]] for n in names])
    assert [names[i] for i in got] == expected


def test_two_threads_make_the_farm_one_makes_and_an_error_in_either_half_is_raised(
    tmp_path, monkeypatch
):
    old = tmp_path / "old"
    links = {f"bin/t{i:02d}": f"/nowhere/t{i}" for i in range(40)}
    links |= {f"share/s{i:02d}": f"/nowhere/s{i}" for i in range(40)}
    farm.write_farm(old, links)
    monkeypatch.setattr(farm, "SPLIT_FROM", 4)
    changed = {**links, "bin/t03": "/elsewhere/t3", "share/s39": "/elsewhere/s39"}
    new = tmp_path / "new"
    manifest = farm.write_farm(new, changed, str(old))
    assert manifest == {rel: f"l:{t}" for rel, t in changed.items()}
    assert {
        f"{d}/{n}": os.readlink(new / d / n) for d in ("bin", "share") for n in os.listdir(new / d)
    } == changed
    assert os.stat(new / "bin" / "t04", follow_symlinks=False).st_nlink == 2  # hard-linked
    # told which links the earlier farm holds (its index), it reads none of them
    monkeypatch.setattr(os, "readlink", None)
    indexed = tmp_path / "indexed"
    assert farm.write_farm(indexed, changed, str(old), links) == manifest
    monkeypatch.undo()
    monkeypatch.setattr(farm, "SPLIT_FROM", 4)
    assert {
        f"{d}/{n}": os.readlink(indexed / d / n)
        for d in ("bin", "share")
        for n in os.listdir(indexed / d)
    } == changed
    assert os.stat(indexed / "bin" / "t04", follow_symlinks=False).st_nlink == 3
    real = os.symlink

    def refuse(target, path, *a, **k):
        if str(path).endswith("s39"):  # a name in its open folder
            raise OSError(28, "No space left on device", str(path))
        return real(target, path, *a, **k)

    monkeypatch.setattr(os, "symlink", refuse)
    with pytest.raises(OSError, match="No space"):
        farm.write_farm(tmp_path / "third", changed, str(old))


def test_a_ctrl_c_while_the_farm_waits_for_its_second_thread_is_raised_once_it_ended(
    tmp_path, monkeypatch
):
    """assemble removes the folder write_farm was interrupted in: nothing may still write
    there. A Ctrl-C (here an alarm raising it) that comes while this thread waits for the
    other half is raised once that half is made."""
    import signal
    import threading
    import time

    monkeypatch.setattr(farm, "SPLIT_FROM", 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})  # two threads here too
    real = farm._links

    def slow_second_half(base, todo, reuse, reused):
        if threading.current_thread() is threading.main_thread():
            real(base, todo, reuse, reused)
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            return
        for item in todo:
            time.sleep(0.02)
            real(base, [item], reuse, reused)

    def ctrl_c(_signum, _frame):
        raise KeyboardInterrupt

    monkeypatch.setattr(farm, "_links", slow_second_half)
    previous = signal.signal(signal.SIGALRM, ctrl_c)
    links = {f"bin/t{i:02d}": f"/nowhere/t{i}" for i in range(40)}
    try:
        with pytest.raises(KeyboardInterrupt):
            farm.write_farm(tmp_path / "farm", links)
        assert len(os.listdir(tmp_path / "farm" / "bin")) == 40
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_switch_keeps_each_artifacts_manifest_stamp_from_the_memo(home, tmp_path):
    """The memo a switch writes names the manifests of exactly the artifacts the profile
    uses, and the new profile's."""
    import marshal

    from hdmodules.build.memo import memo_file
    from hdmodules.store.homeroot import home_root

    profile = _project(tmp_path)
    _build(profile)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  left:\n")
    assert not _build(profile)[1]
    doc = marshal.loads(Path(memo_file(str(home_root()), str(profile))).read_bytes())
    paths = doc["paths"].split("\0")
    manifests = [p for p in paths if p.endswith(f"/{META}/{MANIFEST}")]
    named = sorted(Path(p).parent.parent.parent.name for p in manifests)
    assert named == ["base", "left", "profile"]
    assert manifests[-1].startswith(str(_link(profile)))


def test_a_profile_of_no_package_edited_is_switched_as_resolving_would(home, tmp_path):
    """The memo of a profile that lists no package holds no artifact: an edit that keeps it
    so (a comment added) is one more profile of no package, not a crash."""
    profile = write_profile(tmp_path / "default.yaml", "packages: {}\n")
    first, _resolver = _build(profile)
    assert first.returncode == 0, first.stderr
    write_profile(profile, "# nothing yet\npackages: {}\n")
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver, r.stderr
    assert _link(profile) == _resolved_profile(profile)
    noop, resolver = _build(profile, "-q")
    assert noop.returncode == 0 and not resolver and "(up to date)" in noop.stdout


def test_a_conflict_between_the_memos_artifacts_is_not_said_when_a_recipe_ends_it(home, tmp_path):
    """The farm of a likely switch is planned while the memo's stamps are checked: a conflict
    between two of the memo's artifacts (`a` and the old `tool`, never in one profile) is
    not said when the check then finds `tool`'s recipe changed; resolving builds the new
    `tool`, which ships another file, and the profile is made."""
    pkgs = tmp_path / "pkgs"

    def recipe(name: str, file: str, deps: str = "") -> None:
        script = f'  mkdir -p "$ARTIFACT/bin" && echo {name} > "$ARTIFACT/bin/{file}"\n'
        write_recipe(pkgs, name, f'version: "1"\n{deps}build: |\n{script}')

    recipe("a", "tool")
    recipe("tool", "tool")
    recipe("user", "user", "dependencies: [tool]\n")
    profile = write_profile(
        tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages:\n  a:\n  user:\n"
    )
    assert _build(profile)[0].returncode == 0
    recipe("tool", "other")
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  a:\n  tool:\n")
    r, resolver = _build(profile)
    assert r.returncode == 0 and resolver, r.stderr
    assert sorted(os.listdir(tmp_path / "default" / "bin")) == ["other", "tool"]
    assert (tmp_path / "default" / "bin" / "tool").read_text() == "a\n"


def test_a_switch_removing_packages_plans_its_farm_from_the_last_ones(home, tmp_path, monkeypatch):
    """The profile the link points at keeps its farm's plan in its index: a switch that only
    removes packages starts from it (farm.after_removal) and plans nothing from scratch,
    making the links planning from scratch makes; one that leaves a shared folder one owner
    (bin/ to `top` alone: it folds then) is planned from scratch."""
    from hdmodules.options import HitBuild
    from hdmodules.publish import assemble, builds

    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    real, scratch = assemble.plan_farm_links, []

    def planned_from_scratch(*args, **kwargs):
        scratch.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble, "plan_farm_links", planned_from_scratch)
    options = HitBuild(None, None, True, False, False, None, False, False, False)
    for listed, from_scratch in ((["top", "base", "old"], False), (["top"], True)):
        write_profile(
            profile, "package_dirs: [pkgs]\npackages:\n" + "".join(f"  {n}:\n" for n in listed)
        )
        scratch.clear()
        assert builds.hit_build(profile, options, [].append) is not None
        assert bool(scratch) == from_scratch, listed
        index = assemble.read_farm_index(_link(profile))
        held = {name: (entry[0], entry[1]) for name, entry in index.packages.items()}
        assert sorted(held) == sorted(listed)
        assert index.links == real(held, ()).links and index.planned is not None
        assert sorted(os.listdir(tmp_path / "default" / "bin")) == sorted(listed)


def test_a_switch_that_only_edits_plain_package_lines_is_read_without_loading_the_yaml(
    home, tmp_path, monkeypatch
):
    """A profile that differs from the one the memo loaded only in lines listing plain
    packages is read from those lines (spec/profiledelta.py), not loaded again: the profile
    made is the one resolving makes, and so is the next switch's (from the layout the first
    wrote). An edit the lines cannot tell (a comment added) is loaded, and one the loader
    refuses is said at its line, as resolving says it (issue 18, goal 3)."""
    from hdmodules.options import HitBuild
    from hdmodules.publish import builds, quickswitch

    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    real, loads = quickswitch.load_profile, []
    monkeypatch.setattr(quickswitch, "load_profile", lambda f: loads.append(f) or real(f))
    resolve, resolves = resolving.resolve_file, []
    monkeypatch.setattr(
        resolving, "resolve_file", lambda *a, **k: resolves.append(a) or resolve(*a, **k)
    )
    options = HitBuild(None, None, True, False, False, None, False, False, False)
    steps = [
        (ALL.replace("  alone:\n", ""), 0),  # a plain package removed
        (ALL.replace("  alone:\n", "").replace("  base:\n", ""), 0),  # the next switch
        (ALL.replace("  top:\n", "  top:\n  # top needs left and right\n"), 1),  # a comment
    ]
    for text, loaded in steps:
        write_profile(profile, text)
        loads.clear()
        assert builds.hit_build(profile, options, [].append) is not None
        assert len(loads) == loaded and not resolves, text  # answered by the memo
        assert _link(profile) == _resolved_profile(profile), text
    write_profile(profile, ALL.replace("  base:\n", "  base:\n  alone:\n"))  # twice
    loads.clear()
    with pytest.raises(HitError, match=r"default.yaml:6: .*alone"):
        builds.hit_build(profile, options, [].append)
    assert len(loads) == 1


def test_a_gc_cannot_remove_what_a_switch_found_installed_before_it_is_linked(
    hit, home, tmp_path, monkeypatch
):
    """A `hit gc` that could take its lock once the switch found `alone` installed (the last
    profile did not use it: nothing keeps it) would remove it under the switch; it waits
    until the profile is linked, as it does for the full path's build."""
    import fcntl

    from hdmodules.options import HitBuild
    from hdmodules.publish import builds, quickswitch

    profile = _project(tmp_path)
    _build(profile)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n")
    assert not _build(profile)[1]
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  alone:\n")
    store = open_store(load_home())
    planned = quickswitch.farm_links  # called once the artifacts are found installed
    collected, tried = [], []

    def gc_meanwhile(*args):  # quickswitch.farm_links's arguments
        tried.append(args)
        fd = os.open(store.root / ".locks" / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # the switch holds it: a gc waits
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            collected.append(hit("gc"))
        finally:
            os.close(fd)
        return planned(*args)

    monkeypatch.setattr(quickswitch, "farm_links", gc_meanwhile)
    options = HitBuild(None, None, True, False, False, None, False, False, False)
    said: list[str] = []
    result = builds.hit_build(profile, options, said.append)
    assert result is not None and tried and not collected, collected
    assert sorted(os.listdir(tmp_path / "default" / "bin")) == ["alone", "top"]
    hit("gc")  # the profile keeps it now
    assert (tmp_path / "default" / "bin" / "alone").read_text() == "alone\n"


def test_a_farm_without_a_second_thread_is_made_by_one(tmp_path, monkeypatch):
    import threading

    links = {f"bin/t{i:02d}": f"/nowhere/t{i}" for i in range(10)}
    monkeypatch.setattr(farm, "SPLIT_FROM", 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert farm.write_farm(tmp_path / "f", links) == {r: f"l:{t}" for r, t in links.items()}
    assert sorted(os.listdir(tmp_path / "f" / "bin")) == sorted(r[4:] for r in links)


def test_a_farm_of_more_folders_than_descriptors_left_is_made(tmp_path):
    import resource

    # share/locale/<language>/LC_MESSAGES of two packages each: a folder of its own per
    # language, none folded; made again over the first farm (hard links from it)
    links = {
        f"share/locale/l{i}/LC_MESSAGES/{p}.mo": f"/nowhere/{p}/l{i}.mo"
        for i in range(150)
        for p in "ab"
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    left = 64  # descriptors left to open: fewer than the farm's folders
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + left, hard))
    try:
        made = farm.write_farm(tmp_path / "f", links)
        again = farm.write_farm(tmp_path / "g", links, str(tmp_path / "f"))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert made == again == {r: f"l:{t}" for r, t in links.items()}
    rel = "share/locale/l149/LC_MESSAGES/b.mo"
    assert os.lstat(tmp_path / "g" / rel).st_ino == os.lstat(tmp_path / "f" / rel).st_ino


def _big_project(tmp_path: Path) -> Path:
    """A profile of two packages whose memo stamps more than memo.SPLIT_FROM paths (`big`'s
    path source holds 4,100 files): a switch's check of them is begun early, by the no-op
    check, in a child (memo._begin_switch_check)."""
    src = tmp_path / "bigsrc"
    src.mkdir()
    for i in range(4100):
        (src / f"f{i}").write_text("")
    write_recipe(
        tmp_path / "pkgs",
        "big",
        'version: "1"\nsources: [{path: ../bigsrc}]\n'
        'build: |\n  mkdir -p "$ARTIFACT/bin" && ls | wc -l > "$ARTIFACT/bin/big"\n',
    )
    write_recipe(
        tmp_path / "pkgs",
        "small",
        'version: "1"\nbuild: |\n'
        '  mkdir -p "$ARTIFACT/bin" && echo small > "$ARTIFACT/bin/small"\n',
    )
    listing = "package_dirs: [pkgs]\npackages:\n  big:\n  small:\n"
    return write_profile(tmp_path / "default.yaml", listing)


def test_a_long_memos_check_begun_early_answers_the_switch_and_sees_a_change_in_its_tail(
    home, tmp_path
):
    from hdmodules.build import memo

    profile = _big_project(tmp_path)
    r, _ = _build(profile, "-q")
    assert r.returncode == 0, r.stderr
    root, path = str(home), str(profile)
    # in this process, as `hit build` runs it: the no-op check fails on the edited YAML and
    # begins the check of the rest in a child, whose answer the switch takes
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  big:\n")
    assert memo.up_to_date(root, path) is None
    assert memo._early is not None
    pid = memo._early[4]
    doc = memo.switch_candidate(root, path)
    assert doc is memo._early[2] and memo.switchable(root, path, doc)
    assert memo._early is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    # a file of big's source changed too (far after the first paths): the child says so
    (tmp_path / "bigsrc" / "f4099").write_text("changed\n")
    assert memo.up_to_date(root, path) is None
    doc = memo.switch_candidate(root, path)
    assert doc is not None and not memo.switchable(root, path, doc)
    # through the real command: resolved in full, big built again with the new file
    before = _link(profile)
    r, resolver = _build(profile)
    assert r.returncode == 0 and resolver, r.stderr
    assert "built" in r.stderr and _link(profile) != before
    # and a plain switch of that long memo is answered from it (small is one of its
    # artifacts once a build listed it)
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  big:\n  small:\n")
    assert _build(profile, "-q")[0].returncode == 0
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  small:\n")
    r, resolver = _build(profile)
    assert r.returncode == 0 and not resolver, r.stderr
    assert _link(profile) == _resolved_profile(profile)
    assert sorted(os.listdir(tmp_path / "default" / "bin")) == ["small"]


def test_a_check_begun_early_that_nobody_waits_for_is_killed_and_reaped(home, tmp_path):
    from hdmodules.build import memo
    from hdmodules.publish.quickswitch import quick_plan

    profile = _big_project(tmp_path)
    r, _ = _build(profile, "-q")
    assert r.returncode == 0, r.stderr
    # a version asked for: not a switch (another key), so the child's answer is not needed
    write_profile(profile, 'package_dirs: [pkgs]\npackages:\n  big:\n    version: "1"\n')
    assert memo.up_to_date(str(home), str(profile)) is None
    pid = memo._early[4]
    assert quick_plan(profile, load_home()) is None
    assert memo._early is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_likely_switch_is_built_without_click_and_says_what_click_would(home, tmp_path):
    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n")
    r, imported = _imports(profile, "-j", "2")
    assert r.returncode == 0 and "click" not in imported, r.stderr
    assert "filelock" not in imported  # the profile's lock is an flock: 24 ms less (issue 18)
    assert r.stdout == f"{profile.parent / 'default'} -> {_link(profile)}\n"
    assert "present" in r.stderr and "assembled in" in r.stderr
    # a package never built: resolved and built in full on that path too
    write_recipe(tmp_path / "pkgs", "extra", 'version: "1"\nbuild: "true"\n')
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  extra:\n")
    r, _imported = _imports(profile, "-q")  # (the build's reaper, forked, imports more)
    assert r.returncode == 0, r.stderr
    assert "extra/" in r.stderr and "built" in r.stderr and _link(profile).is_dir()
    # a failure is one line and exit 1, as the click CLI gives it
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  nosuch:\n")
    r, imported = _imports(profile)
    assert r.returncode == 1 and "click" not in imported
    assert r.stderr.startswith("hit: error: ") and "nosuch" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_likely_switch_built_without_click_is_stopped_as_the_cli_stops_a_build(
    home, tmp_path, signum, code
):
    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    slow = blocking_recipe(tmp_path)  # writes pkgs/slow.yaml and a profile we do not use
    slow.unlink()
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n  slow:\n")
    command = "import sys; from hdmodules.cli.entry import hit; sys.argv[0] = 'hit'; hit()"
    proc = subprocess.Popen(
        [sys.executable, "-c", command, "build", str(profile)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    builder = read_pid(tmp_path / "pid")
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == code and "Traceback" not in err
    assert err.endswith("\n\nhit: interrupted\n"), err  # past the ^C, as click says it
    time.sleep(0.2)
    assert not alive(builder)


def test_a_long_memo_is_checked_when_hit_starts_with_sigchld_ignored(home, tmp_path):
    """A parent that ignores SIGCHLD passes that on (Linux keeps it across exec): hit's forked
    stat children are then reaped by the kernel and their answers lost. The stamps are
    taken in hit itself instead: the no-op and the switch are still answered from the memo
    (no resolving), and a change in the memo's second half is still seen."""
    profile = _big_project(tmp_path)
    assert _build(profile, "-q")[0].returncode == 0

    def run() -> tuple[subprocess.CompletedProcess, bool]:
        code = "import sys; from hdmodules.cli.entry import hit; sys.argv[0] = 'hit'; hit()"
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code, "build", "-q", str(profile)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
        )
        assert "Traceback" not in r.stderr, r.stderr
        return r, "| hdmodules.spec.resolve\n" in r.stderr

    noop, resolved = run()
    assert noop.returncode == 0 and "(up to date)" in noop.stdout and not resolved
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  big:\n")
    switched, resolved = run()
    assert switched.returncode == 0 and not resolved
    assert _link(profile) == _resolved_profile(profile)
    (tmp_path / "bigsrc" / "f4000").write_text("changed\n")  # in the memo's second half
    rebuilt, resolved = run()
    assert rebuilt.returncode == 0 and resolved and "built" in rebuilt.stderr


def test_a_change_with_the_yaml_as_it_was_begins_no_switch_check(home, tmp_path):
    """The no-op check failed, the profile's YAML unchanged: what changed is elsewhere, so it
    is no switch (no child stats the memo a second time); it is built, without click as
    any plain `hit build` (cli/plainbuild.py)."""
    from hdmodules.build import memo

    profile = _big_project(tmp_path)
    assert _build(profile, "-q")[0].returncode == 0
    (tmp_path / "bigsrc" / "f4099").write_text("changed\n")
    assert memo.up_to_date(str(home), str(profile)) is None
    assert memo._early is None
    r, imported = _imports(profile, "-q")
    assert r.returncode == 0 and "click" not in imported and "built" in r.stderr, r.stderr


def test_a_switch_reads_the_home_s_settings_from_its_cache_until_config_yaml_changes(
    home, tmp_path
):
    """The home's settings are kept in its cache while its config.yaml is unchanged
    (resolvecache.remembered): a switch then imports no PyYAML (some 20 ms, issue 18). An
    edit of config.yaml, even one of the same size, is read at once; a damaged cache is
    read past."""
    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    time.sleep(2.1)  # config.yaml settled (resolvecache.SETTLE_NS): kept once read
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n")
    assert _build(profile)[0].returncode == 0
    assert (home / ".cache" / "home.pickle").is_file()
    package = Path(hdmodules.__file__).parent
    assert all((package / f).is_file() for f in SETTINGS_CODE)  # each stamped in its key
    write_profile(profile, ALL)
    r, imported = _imports(profile, "-q")
    assert r.returncode == 0 and "yaml" not in imported, r.stderr
    assert "hdmodules.spec.resolve" not in imported  # the memo answered
    config = home / "config.yaml"
    config.write_text(config.read_text().replace("store: bld", "store: new"))  # same size
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n")
    r, _ = _build(profile, "-q")
    assert r.returncode == 0, r.stderr
    assert _link(profile).parent == home / "new" / "profile"
    (home / ".cache" / "home.pickle").write_bytes(b"\x80\x05damaged")
    write_profile(profile, ALL)
    r, _ = _build(profile, "-q")
    assert r.returncode == 0 and _link(profile).parent == home / "new" / "profile", r.stderr


def test_a_farm_written_while_a_check_finds_a_change_is_removed_and_its_lock_let_go(home, tmp_path):
    """A switch writes the new profile's farm while the forked child checks the memo's
    stamps (assemble.write_ahead; a memo of 4,100 paths). When the check finds a change (a
    source file edited; then written again as it was: its stamp changed, not its content),
    that farm is removed and its lock let go before the full path resolves, assembles
    another profile or that one and links it; no half-made profile is left (a farm not
    dropped is: the first case fails then)."""
    profile = _big_project(tmp_path)
    assert _build(profile)[0].returncode == 0
    late = tmp_path / "bigsrc" / "f4099"  # far after the memo's first paths: the child's
    late.write_text("changed\n")  # another profile than the one written ahead: big anew
    _switch_with_a_change(home, tmp_path, profile, "  big:\n")
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  big:\n  small:\n")
    assert _build(profile)[0].returncode == 0
    late.write_text("changed\n")  # the same bytes, a new stamp: the same profile
    _switch_with_a_change(home, tmp_path, profile, "  small:\n")


def _switch_with_a_change(home: Path, tmp_path: Path, profile: Path, packages: str) -> None:
    """`hit build` of `profile` listing `packages`, an input of the memo changed: resolved in
    full, the profile resolving gives linked, every profile in the store installed whole."""
    write_profile(profile, f"package_dirs: [pkgs]\npackages:\n{packages}")
    code = "import sys\nfrom hdmodules.cli.entry import hit\nsys.argv = ['hit', 'build']\nhit()\n"
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "hdmodules.spec.resolve" in r.stderr, r.stderr[-2000:]
    assert _link(profile) == _resolved_profile(profile)
    profiles = home / "bld" / "profile"
    assert all((p / META / MANIFEST).is_file() for p in profiles.iterdir()), sorted(
        os.listdir(profiles)
    )


def test_a_ctrl_c_once_a_profile_is_installed_leaves_it_installed(home, tmp_path, monkeypatch):
    """A Ctrl-C during the commit's last flush (after the manifest's rename: installed)
    removed the profile all the same, and another `hit build` that had just linked to it
    was left with a link to nothing (the attack trial, with the flush slowed by strace).
    It stays installed; the next build finds it."""
    from hdmodules.publish.assemble import assemble, plan_of
    from hdmodules.store import layout

    profile = _project(tmp_path)
    assert _build(profile)[0].returncode == 0
    write_profile(profile, "package_dirs: [pkgs]\npackages:\n  top:\n")
    resolved = resolve_file(profile)
    store = open_store(load_home())

    def interrupted(path: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(layout, "sync_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        assemble(plan_of(resolved, store), store)
    assert store.is_installed(resolved.profile_ref)
    monkeypatch.undo()
    r, _ = _build(profile)
    assert r.returncode == 0 and "exists already" in r.stderr, r.stderr


@pytest.mark.parametrize("make", [_project, _big_project], ids=["checked-at-once", "child"])
def test_a_switch_waiting_for_another_build_of_its_profile_says_so(home, tmp_path, make):
    """Two builds of one switch: the second waited on the profile's lock without a word (the
    attack trial). It says so, as a build waiting for another's artifact does, then links
    the profile the lock's holder made, or makes it. With a child checking the memo's
    stamps (`child`), the farm is not written ahead under a lock another process holds."""
    import threading

    from hdmodules.store.flocks import flocked

    profile = make(tmp_path)
    assert _build(profile)[0].returncode == 0
    names = "  top:\n" if make is _project else "  big:\n"
    write_profile(profile, f"package_dirs: [pkgs]\npackages:\n{names}")
    ref = resolve_file(profile).profile_ref
    store = open_store(load_home())
    code = "import sys\nfrom hdmodules.cli.entry import hit\nsys.argv = ['hit', 'build']\nhit()\n"
    with flocked(store.root / ".locks" / f"{ref.name}-{ref.hash}.lock"):
        p = subprocess.Popen(
            [sys.executable, "-c", code], cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        timer = threading.Timer(60, p.kill)  # no line said: read to its end, not for ever
        timer.start()
        said = []  # the `present` lines, then the wait
        while not said or "waiting" not in said[-1] and said[-1]:
            said.append(p.stderr.readline())
        assert said[-1].strip() == f"{ref.short}  waiting: another process is building it", said
        time.sleep(0.3)
        assert p.poll() is None and not store.is_installed(ref)
    err = p.communicate(timeout=120)[1]
    timer.cancel()
    assert p.returncode == 0, err
    assert f"profile {ref.short} assembled in " in err  # the lock's holder made nothing
    assert "s, the wait for the other build included\n" in err
    assert _link(profile) == store.prefix(ref) and store.is_installed(ref)
