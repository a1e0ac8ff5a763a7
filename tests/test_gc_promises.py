"""What `hit gc`, `hit purge` and `hit verify` promise (issue 16): rollback history only when
asked, every kind of root listed and counted, purge never breaking a kept profile, verify
seeing dangling links, build debris tidied, messages that say what happened, and a profile
behind a link moved with a plain `mv` kept and reported."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import filelock
import pytest

from hdmodules.store.roots import add_temp
from tests.conftest import (
    alive,
    artifact_ids,
    blocking_recipe,
    copy_demo,
    hit_proc,
    read_pid,
    run_clean,
    run_hit,
    set_config,
    wait_for,
    write_profile,
    write_recipe,
)
from tests.test_guide_gc import add_zlib, comment_out_zlib


def greet(demo: Path, words: str) -> None:
    """app in the demo's default.yaml says `words` (a new app artifact, a new profile)."""
    yaml = demo / "default.yaml"
    text = re.sub(r"  app:\n(    parameters: .*\n)?", "  app:\n", yaml.read_text())
    yaml.write_text(text.replace("  app:\n", f"  app:\n    parameters: {{greeting: {words}}}\n"))


def says(link: Path) -> str:
    return run_clean([str(link / "bin" / "app")]).stdout


# --- item 2: rollback history is a choice; gc says what it kept and why -----------------------


def test_rollback_history_is_kept_only_when_asked(hit, home, demo):
    link = demo / "default"
    hit("build", cwd=demo)
    greet(demo, "Two")
    hit("build", cwd=demo)
    set_config(home, "history_days: 30\n")
    listed = hit("gc", "--list").out
    assert f"{link}  generation 1 -> profile/" in listed
    assert "(rollback history: history_days: 30)" in listed
    r = hit("gc")
    assert r.out.startswith("removed 0 artifact(s)")
    assert "1 earlier generation(s) kept as rollback history (history_days: 30)" in r.out
    assert "(generation 1)" in hit("rollback", cwd=demo).out  # after a gc: history kept it
    assert says(link).startswith("Hello from")
    # the default again (no history): one run keeps it with --keep-history
    set_config(home, "history_days: 0\n")
    r = hit("gc", "--keep-history", "1h")
    assert r.out.startswith("removed 0 artifact(s)") and "(--keep-history 1h)" in r.out
    r = hit("gc", "--keep-history", "soon", check=False)
    assert r.code == 2 and "'--keep-history': 'soon': give a number and a unit" in r.err
    r = hit("gc")  # generation 2 (Two), left by the rollback, goes with its app
    assert r.out.startswith("removed 2 artifact(s)")
    assert f"forgot generation(s) 2 of {link}: their profiles are removed" in r.err
    assert "rollback history is not kept (history_keep: 0, history_days: 0)" in r.err
    assert says(link).startswith("Hello from")
    r = hit("rollback", cwd=demo, check=False)  # at generation 1: there never was one before
    assert r.code == 1 and "no earlier generation" in r.err and "Traceback" not in r.err
    assert "rollback history" not in r.err  # the trial: it blamed the gc settings
    assert len(hit("history", cwd=demo).out.splitlines()) == 1
    greet(demo, "Three")
    hit("build", cwd=demo)
    hit("gc")  # generation 1 goes: no history is kept
    r = hit("rollback", cwd=demo, check=False)
    assert r.code == 1 and "no earlier generation" in r.err
    assert "rollback history is not kept" in r.err and "Traceback" not in r.err


def test_history_days_0_is_accepted_and_a_negative_one_named(hit, home, demo):
    set_config(home, "history_keep: 0\nhistory_days: 0\nkeep_failed_days: 0\n")
    hit("build", cwd=demo)
    set_config(home, "history_days: -1\n")
    r = hit("gc", "--list", check=False)
    assert r.code == 1
    assert "config.yaml:1: 'history_days' must be a whole number, at least 0" in r.err


def _user_of(site_home: Path, tmp_path: Path) -> Path:
    """Another home whose upstream is `site_home`, with the demo built on top of it (nothing
    built: every artifact is the site's, the profile too); its `hit build` records in the
    site's roots folder (`gcroots/users`, as `hdmod build` makes it) what its profile uses.
    Returns the user's profile link."""
    (site_home / "gcroots" / "users").mkdir(parents=True, exist_ok=True)
    user_home = tmp_path / "userhome"
    set_config(user_home, f"upstreams: [{site_home}]\n")
    proj = copy_demo(tmp_path / "userproj")
    r = run_hit("build", cwd=proj, env={**os.environ, "HIT_HOME": str(user_home)})
    assert "built in" not in r.err and "could not record" not in r.err, r.err
    return proj / "default"


def test_gc_list_and_gc_show_every_kind_of_root(hit, home, demo, tmp_path):
    set_config(home, "history_days: 30\n")
    hit("build", cwd=demo)
    greet(demo, "Two")
    hit("build", cwd=demo)  # generation 1 is rollback history
    hit("cp", "default", "copy", cwd=demo)
    (demo / "copy").unlink()  # a stale root
    profile = os.readlink(demo / "default")
    (home / "gcroots" / "mine").symlink_to(profile)  # a root of yours
    user_link = _user_of(home, tmp_path)  # a user's record
    slow = tmp_path / "slow"
    slow.mkdir()
    build = hit_proc("build", str(blocking_recipe(slow)))  # a running build
    try:
        wait_for(slow / "pid")
        listed = hit("gc", "--list").out.splitlines()
    finally:
        (slow / "go").touch()
        build.communicate(timeout=60)
    expected = [
        f"{demo / 'default'} -> profile/",
        f"{demo / 'copy'}  STALE: the link is gone or points outside the store; keeps profile/",
        f"{home / 'gcroots' / 'mine'} -> profile/",
        f"{demo / 'default'}  generation 1 -> profile/",
        f"a running build (pid {build.pid}): ",
        f"{user_link}  (a user's profile, alive: uses 5 artifact(s))",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in listed), (start, listed)
    temp = add_temp(home / "gcroots", [next((home / "bld" / "libcore").iterdir())])
    try:  # this process stands for a build in flight, as in test_gc
        r = hit("gc", "--dry-run")
    finally:
        temp.unlink()
    assert (
        "reached from 2 profile link(s), 1 stale root(s) (links moved or removed outside hit), "
        "1 root(s) of yours in the roots folder, 1 earlier generation(s) kept as rollback "
        "history (history_days: 30), 1 running build(s), 1 user profile(s) using this store"
    ) in r.out, r.out


# --- item 4: purge never breaks a kept profile; verify sees dangling links --------------------


def test_purge_refuses_what_any_root_reaches_naming_it(hit, home, demo, tmp_path):
    yaml = add_zlib(demo)
    hit("build", cwd=demo)
    comment_out_zlib(yaml)
    hit("build", cwd=demo)  # zlib is in generation 1's profile only
    (zlib,) = artifact_ids(home, "zlib")
    set_config(home, "history_days: 30\n")
    r = hit("purge", zlib, check=False)
    assert r.code == 1 and "Traceback" not in r.err
    assert f"{zlib} is still reached from the root {demo / 'default'} (generation 1)" in r.err
    assert "(generation 1), rollback history; it is kept by history_days: 30 in config" in r.err
    set_config(home, "")
    prefix = next((home / "bld" / "zlib").iterdir())
    temp = add_temp(home / "gcroots", [prefix])  # this process stands for a running build
    try:
        r = hit("purge", "zlib", check=False)
    finally:
        temp.unlink()
    assert r.code == 1 and ", a build running now; wait until it ends" in r.err
    old_profile = os.readlink(demo / "default")
    os.rename(demo / "default", demo / "moved")
    r = hit("purge", "app", check=False)
    assert r.code == 1 and f"still reached from the root {demo / 'default'}, a stale root" in r.err
    os.rename(demo / "moved", demo / "default")
    assert os.readlink(demo / "default") == old_profile
    # nothing keeps generation 1 now: zlib goes, and the profile that used it with it
    r = hit("purge", "zlib")
    assert f"removed {zlib}" in r.out and "too: it used what was purged" in r.out
    assert not (home / "bld" / "zlib").exists()
    assert hit("verify").code == 0  # no profile left with a dangling link
    r = hit("rollback", cwd=demo, check=False)
    assert r.code == 1 and "no earlier generation" in r.err
    assert says(demo / "default").startswith("Hello from")


def test_purge_on_a_site_refuses_what_a_users_profile_uses(hit, home, demo, tmp_path):
    hit("build", cwd=demo)
    user_link = _user_of(home, tmp_path)
    hit("rm", "default", cwd=demo)  # the site drops its stack; the user's profile remains
    (core,) = artifact_ids(home, "libcore")
    r = hit("purge", core, check=False)
    assert r.code == 1 and f"the root the user's profile {user_link}, a user's record" in r.err
    r = hit("gc")  # the profile the user's link points at is the site's: kept too
    assert r.out.startswith("removed 0 artifact(s)")
    assert "reached from 1 user profile(s) using this store" in r.out
    assert says(user_link).startswith("Hello from")


def test_a_user_removes_a_link_to_the_profile_the_site_built(hit, home, demo, tmp_path):
    """A user's profile the same as the site's is the site's artifact: `hit rm` removes the
    link, and the record that told the site's gc what it uses."""
    hit("build", cwd=demo)
    user_link = _user_of(home, tmp_path)
    assert os.readlink(user_link).startswith(f"{home}/bld/profile/")  # the site's profile
    assert list((home / "gcroots" / "users").glob("*.json"))
    r = run_hit("rm", str(user_link), env={**os.environ, "HIT_HOME": str(tmp_path / "userhome")})
    assert r.out.startswith(f"removed {user_link} (was -> {home}/bld/profile/")
    assert not user_link.is_symlink()
    assert not list((home / "gcroots" / "users").glob("*.json"))
    r = run_hit("rm", str(demo / "nowhere"), check=False)
    assert r.code == 1 and "is not a profile link" in r.err


def test_verify_reports_a_profiles_dangling_links(hit, home, demo):
    hit("build", cwd=demo)
    app = next((home / "bld" / "app").iterdir())
    for d in (app.parent, app, *[p for p in app.rglob("*") if p.is_dir()]):
        d.chmod(0o755)
    for f in app.rglob("*"):
        if f.is_file() and not f.is_symlink():
            f.unlink()
    for d in sorted((p for p in app.rglob("*") if p.is_dir()), reverse=True):
        d.rmdir()
    app.rmdir()  # removed by hand, as a `rm -rf` would
    r = hit("verify", check=False)
    assert r.code == 1 and "have dangling links" in r.err
    assert re.search(r"dangling  profile/\S+ -> \S+/bld/app/", r.out), r.out
    r = hit("verify", "profile", check=False)  # the one profile, by its package name
    assert r.code == 1 and "dangling  profile/" in r.out


# --- item 6: debris is collected -------------------------------------------------------------


def _failing(tmp_path: Path, name: str = "broken") -> Path:
    write_recipe(tmp_path / "pkgs", name, 'version: "1"\nbuild: |\n  echo trying\n  exit 1\n')
    return write_profile(tmp_path / f"{name}.yaml", f"package_dirs: [pkgs]\npackages: [{name}]\n")


def test_gc_removes_build_folders_of_failed_builds_once_old_and_empty_folders(hit, home, tmp_path):
    r = hit("build", str(_failing(tmp_path)), check=False)
    assert r.code == 1
    (folder,) = (home / "tmp").glob("broken-*")
    not_ours = [home / "tmp" / "notes", home / "tmp" / "x-abcdefghijkl"]
    for d in not_ours:
        d.mkdir()  # not build folders: never touched
    r = hit("gc")
    kept = f"kept the build folder {folder}: a failed or interrupted build, last written under a"
    kept += " minute ago"
    assert f"{kept}, kept for debugging (keep_failed_days: 3)" in r.err
    assert folder.is_dir()
    assert not (home / "bld" / "broken").exists()  # its empty package folder went
    old = time.time() - 4 * 86400
    for f in (folder / "build.log", folder):
        os.utime(f, (old, old))
    r = hit("gc")
    gone = f"removed the build folder {folder}: a failed or interrupted build, last written 4"
    gone += " days ago"
    assert gone in r.err
    assert "removed 1 build folder(s) of failed or interrupted builds" in r.out
    assert not folder.exists() and all(d.is_dir() for d in not_ours)
    set_config(home, "keep_failed_days: 0\n")
    assert hit("build", str(_failing(tmp_path, "other")), check=False).code == 1
    r = hit("gc", "--dry-run")
    assert "would remove the build folder" in r.err and list((home / "tmp").glob("other-*"))
    hit("gc")
    assert not list((home / "tmp").glob("other-*"))


def test_a_running_builds_folder_is_never_removed(home, tmp_path):
    """A build folder where a process of its build still runs (one that outlived a killed
    `hit` and its reapers), then one whose lock is held: both are kept, and removed once
    nothing runs there."""
    set_config(home, "keep_failed_days: 0\n")
    build = hit_proc("build", str(blocking_recipe(tmp_path)))
    script = read_pid(tmp_path / "pid")
    os.kill(build.pid, signal.SIGKILL)  # hit only: its build dies with it
    build.wait()
    (folder,) = (home / "tmp").glob("slow-*")
    end = time.monotonic() + 10
    while alive(script):
        assert time.monotonic() < end
        time.sleep(0.05)
    # a process of that build left running all the same: it carries the build's id
    orphan = subprocess.Popen(["sleep", "60"], env={**os.environ, "HIT_BUILD_ID": str(folder)})
    try:
        r = run_hit("gc")
        assert f"kept the build folder {folder}: its build is running" in r.err
        assert folder.is_dir()
    finally:
        orphan.kill()
        orphan.wait()
    (lockfile,) = (home / "bld" / ".locks").glob("slow-*.lock")
    with filelock.FileLock(lockfile):  # held, as by a build of that artifact
        r = run_hit("gc")
    assert f"kept the build folder {folder}: its build is running" in r.err
    r = run_hit("gc")
    assert f"removed the build folder {folder}: a failed or interrupted build" in r.err
    assert not folder.exists()


# --- item 7: messages say what happened ------------------------------------------------------


def test_gc_purge_verify_messages(hit, home, demo):
    hit("build", cwd=demo)
    r = hit("gc", "--older-than", "3", "days", check=False)
    assert r.code == 2 and "give the age as one word, like --older-than 3d" in r.err
    r = hit("gc", "other.yaml", check=False)
    assert r.code == 2 and "only taken with --sources" in r.err
    (demo / "default").unlink()
    r = hit("gc", "--drop-stale", "--dry-run")
    assert f"would drop root {demo / 'default'}: the link no longer exists" in r.err
    assert "dropped root" not in r.err and r.out.startswith("would remove 5 artifact(s)")
    assert f"{demo / 'default'}  STALE" in hit("gc", "--list").out  # nothing was dropped
    hit("build", cwd=demo)
    write_profile(demo / "other.yaml", "extends: [default.yaml]\n"
                  "packages:\n  app: {parameters: {greeting: Other}}\n")  # fmt: skip
    hit("build", "other.yaml", cwd=demo)
    apps = sorted(artifact_ids(home, "app"))
    for command in ("purge", "verify"):
        r = hit(command, "app", check=False)
        assert r.code == 1 and "Traceback" not in r.err
        assert f"app matches 2 artifacts in {home / 'bld'}: {apps[0]} (app/" in r.err, r.err
        assert apps[1] in r.err and "give one of these ids" in r.err
    assert hit("verify", "liba").out.startswith("ok        liba/")  # one artifact: its name
    r = hit("purge", "nosuch", check=False)
    assert r.code == 1 and "no artifact nosuch" in r.err and "give a package name" in r.err


def test_a_link_that_cannot_be_made_leaves_no_root(hit, home, demo):
    """`hit cp` to where no link can be made: the error names that link and why, and no gc
    root is left for it (one would keep the profile as a stale root)."""
    hit("build", cwd=demo)
    r = hit("cp", "default", "/proc/hdmod-link", cwd=demo, check=False)
    assert r.code == 1 and "cannot write the link /proc/hdmod-link: " in r.err, r.err
    assert "/proc/hdmod-link" not in hit("gc", "--list").out


def test_assembled_in_is_the_assembly_alone(hit, tmp_path):
    write_recipe(tmp_path / "pkgs", "sleepy", 'version: "1"\nbuild: |\n  sleep 2\n'
                 '  mkdir -p "$ARTIFACT/share"\n  echo hi > "$ARTIFACT/share/hi"\n')  # fmt: skip
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [sleepy]\n")
    r = hit("build", str(p))
    m = re.search(r"profile \S+ assembled in ([0-9.]+) s", r.err)
    assert m and float(m.group(1)) < 1.0, r.err  # the build took 2 s of it before


# --- item 8: a profile behind a link moved with a plain mv ----------------------------------


def test_a_link_moved_with_plain_mv_keeps_its_profile_after_a_rebuild(hit, home, demo):
    link, moved = demo / "default", demo / "moved"
    hit("build", cwd=demo)
    first = os.readlink(link)
    os.rename(link, moved)
    greet(demo, "Two")
    r = hit("build", cwd=demo)
    assert f"note: {link} was gone (moved with a plain `mv` or removed outside hit)" in r.err
    assert "until `hit gc --drop-stale`" in r.err
    r = hit("gc")
    assert r.out.startswith("removed 0 artifact(s)")
    assert f"stale root {link} (generation 1): the link was moved or removed outside hit" in r.err
    assert says(moved).startswith("Hello from") and says(link).startswith("Two from")
    assert f"{link}  generation 1  STALE" in hit("gc", "--list").out
    r = hit("gc", "--drop-stale", "--dry-run")
    assert f"would drop root {link} (generation 1)" in r.err and os.path.exists(first)
    hit("rm", "default", cwd=demo)  # the new link, removed on purpose; the moved one lives
    r = hit("gc")
    assert r.out.startswith("removed 2 artifact(s)")  # the second profile and its app
    assert f"stale root {link} (generation 1)" in r.err and says(moved).startswith("Hello")
    r = hit("gc", "--drop-stale")
    assert f"dropped root {link} (generation 1)" in r.err and "would dangle" in r.err
    assert r.out.startswith("removed 5 artifact(s)")  # the first profile and its packages
    left = [p.name for p in (home / "gcroots" / "_gen").iterdir()]
    assert not os.path.exists(first) and left == ["lock"]  # no generation: the links' lock


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(5, "under a minute"), (60, "1 minute"), (150, "2 minutes"), (3600, "1 hour"),
     (5400, "1.5 hours"), (86400, "1 day"), (4 * 86400, "4 days")],
)  # fmt: skip
def test_a_build_folders_age_is_said_as_people_say_it(seconds, said):
    """`hit gc` says how old a failed build's folder is: "1 minute", never "1 minutes"."""
    from hdmodules.store.debris import _age

    assert _age(seconds) == said
