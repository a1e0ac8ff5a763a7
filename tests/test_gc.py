"""Garbage collection, profile links and store integrity, under concurrency and kill -9."""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from hdmodules.store.gc import collect
from hdmodules.store.layout import Store
from hdmodules.store.roots import add_temp
from tests.conftest import (
    alive,
    blocking_recipe,
    hit_proc,
    run_clean,
    run_hit,
    wait_for,
    write_profile,
    write_recipe,
)


def artifacts(home: Path) -> set[str]:
    store = Store(home / "bld")
    return {f"{p.parent.name}/{p.name}" for p in store.prefixes()}


def names(home: Path) -> set[str]:
    return {a.split("/")[0] for a in artifacts(home)}


def test_gc_keeps_what_roots_reach_and_removes_the_rest(hit, home, demo):
    write_profile(demo / "apponly.yaml", "package_dirs: [pkgs]\npackages: [app]\n")
    hit("build", "apponly.yaml", cwd=demo)
    write_profile(demo / "other.yaml", "package_dirs: [pkgs]\npackages: [libcore]\n"
                  "parameters: {version_tag: other}\n")  # fmt: skip
    hit("build", "other.yaml", cwd=demo)
    before = artifacts(home)
    hit("rm", "other", cwd=demo)
    r = hit("gc", "--dry-run", cwd=demo)
    assert "would remove 2 artifact(s)" in r.out and artifacts(home) == before
    r = hit("gc", cwd=demo)
    assert "removed 2 artifact(s)" in r.out
    # app's dependencies are kept although the profile lists only app
    assert names(home) == {"app", "liba", "libb", "libcore", "profile"}
    assert run_clean([str(demo / "apponly" / "bin" / "app")]).stdout.startswith("Hello")
    assert hit("gc", cwd=demo).out.startswith("removed 0 artifact(s)")


def test_cp_edit_rebuild_both_survive(hit, home, demo):
    """HashDist's user guide: `hit cp default old_profile`, edit, rebuild: both usable."""
    hit("build", cwd=demo)
    hit("cp", "default", "old_profile", cwd=demo)
    yaml = demo / "default.yaml"
    yaml.write_text(
        yaml.read_text().replace("  app:\n", "  app:\n    parameters: {greeting: New}\n")
    )
    hit("build", cwd=demo)
    hit("gc", cwd=demo)
    assert run_clean([str(demo / "old_profile/bin/app")]).stdout.startswith("Hello from")
    assert run_clean([str(demo / "default/bin/app")]).stdout.startswith("New from")
    listed = hit("gc", "--list", cwd=demo).out
    assert f"{demo / 'old_profile'} -> profile/" in listed and f"{demo / 'default'} -> " in listed
    for cmd in ("cp", "mv"):  # into a folder that does not exist: refused, none made
        r = hit(cmd, "old_profile", "nosuch/dir/x", cwd=demo, check=False)
        assert r.code == 1 and f"no such folder {demo / 'nosuch' / 'dir'}" in r.err, r.err
        assert not (demo / "nosuch").exists() and (demo / "old_profile").is_symlink()
    assert "nosuch" not in hit("gc", "--list").out
    hit("mv", "old_profile", "kept", cwd=demo)
    assert not (demo / "old_profile").exists() and "old_profile" not in hit("gc", "--list").out
    hit("gc", cwd=demo)
    assert run_clean([str(demo / "kept/bin/app")]).stdout.startswith("Hello from")


def test_plain_mv_is_stale_but_kept_until_dropped(hit, home, demo):
    hit("build", cwd=demo)
    os.rename(demo / "default", demo / "moved")
    r = hit("gc", "--list", cwd=demo)
    assert f"{demo / 'default'}  STALE" in r.out and "keeps profile/" in r.out
    r = hit("gc", cwd=demo)
    assert "stale root" in r.err and "removed 0 artifact(s)" in r.out
    assert run_clean([str(demo / "moved" / "bin" / "app")]).stdout.startswith("Hello from")
    r = hit("gc", "--drop-stale", cwd=demo)
    assert f"dropped root {demo / 'default'}: the link no longer exists" in r.err
    assert "removed 5 artifact(s)" in r.out and not artifacts(home)


def test_a_users_own_root(hit, home, demo):
    hit("build", cwd=demo)
    (home / "gcroots" / "mine").symlink_to(os.readlink(demo / "default"))
    hit("rm", "default", cwd=demo)
    assert "(your root)" in hit("gc", "--list").out
    hit("gc")
    assert "app" in names(home)
    (home / "gcroots" / "mine").unlink()
    hit("gc")
    assert not artifacts(home)


def test_older_than_keeps_recent_unreachable(hit, home, demo):
    hit("build", cwd=demo)
    hit("rm", "default", cwd=demo)
    r = hit("gc", "--older-than", "30d")
    assert "kept 5 unreachable artifact(s) used within 30d" in r.err
    assert len(artifacts(home)) == 5
    r = hit("gc", "--older-than", "0s")
    assert "removed 5 artifact(s)" in r.out
    r = hit("gc", "--older-than", "soon", check=False)  # a usage error (README: exit 2)
    assert r.code == 2 and "'--older-than': 'soon': give a number and a unit" in r.err, r.err
    assert len(artifacts(home)) == 0 and "Traceback" not in r.err


def _url_source_stack(tmp_path: Path) -> tuple[Path, str]:
    archive = tmp_path / "data-1.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("data-1/hello.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"hi\n"))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    write_recipe(
        tmp_path / "pkgs",
        "data",
        f"""
        version: "1"
        sources:
          - url: http://127.0.0.1:9/data-1.tar.gz
            sha256: {sha}
        build: |
          install -Dm644 hello.txt "$ARTIFACT/share/hello.txt"
        """,
    )
    return archive, sha


def test_rm_last_link_gc_everything_then_rebuild_from_cached_sources(hit, home, tmp_path):
    archive, sha = _url_source_stack(tmp_path)
    hit("fetch", str(archive))  # the URL itself is dead: only the cache has it
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [data]\n")
    hit("build", str(p))
    hit("rm", str(tmp_path / "default"))
    assert "removed 2 artifact(s)" in hit("gc").out
    assert not artifacts(home) and (home / "src" / "sha256" / sha).exists()
    r = hit("build", str(p))
    assert "built in" in r.err
    assert (tmp_path / "default" / "share" / "hello.txt").read_text() == "hi\n"


def test_gc_sources_keeps_what_profiles_need(hit, home, tmp_path):
    archive, sha = _url_source_stack(tmp_path)
    hit("fetch", str(archive))
    other = tmp_path / "other.txt"
    other.write_text("not needed")
    other_sha = hit("fetch", str(other)).out.split()[1]
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [data]\n")
    r = hit("gc", "--sources", str(p))
    assert "removed 1 cached source(s)" in r.out
    assert (home / "src/sha256" / sha).exists() and not (home / "src/sha256" / other_sha).exists()
    r = hit("gc", "--sources", check=False)
    assert r.code == 2 and "needs the profiles" in r.err


def test_verify_reports_modified_added_removed(hit, home, demo):
    hit("build", cwd=demo)
    r = hit("verify")
    assert r.out.count("ok ") == 5
    lib = next((home / "bld" / "liba").iterdir())
    for d in (lib, lib / "lib", lib / "include"):
        d.chmod(0o755)
    (lib / "include" / "a.h").chmod(0o644)
    (lib / "include" / "a.h").write_text("tampered\n")
    (lib / "lib" / "extra.txt").write_text("x")
    (lib / "lib" / "liba.so").unlink()
    r = hit("verify", f"liba/{lib.name.split('-')[1]}", check=False)
    assert r.code == 1 and "1 of 1 artifact(s) differ" in r.err
    assert "modified  liba/" in r.out and "include/a.h" in r.out
    assert "added" in r.out and "lib/extra.txt" in r.out
    assert "removed" in r.out and "lib/liba.so" in r.out
    assert hit("verify", "nope/xyz", check=False).code == 1


def test_purge_refuses_what_a_root_reaches(hit, home, demo):
    hit("build", cwd=demo)
    core = json.loads((next((home / "bld" / "libcore").iterdir()) / ".hit/build.json").read_text())
    r = hit("purge", core["id"], check=False)
    assert r.code == 1 and f"still reached from the root {demo / 'default'}" in r.err
    hit("rm", "default", cwd=demo)
    r = hit("purge", core["id"])
    assert f"removed {core['id']}" in r.out and "libcore" not in names(home)


def test_temp_roots_of_a_live_build_are_kept(home, demo):
    run_hit("build", cwd=demo)
    run_hit("rm", "default", cwd=demo)
    store = Store(home / "bld")
    app = next((home / "bld" / "app").iterdir())
    temp = add_temp(home / "gcroots", [app])  # as a running build (this process) would
    collect(store, home / "gcroots")
    assert {"app", "liba", "libb", "libcore"} == names(home)  # app and its dependencies
    temp.unlink()
    collect(store, home / "gcroots")
    assert not artifacts(home)


def test_gc_waits_for_a_running_build_which_then_succeeds(home, tmp_path):
    profile = blocking_recipe(tmp_path)
    build = hit_proc("build", str(profile))
    wait_for(tmp_path / "pid")
    gc = hit_proc("gc")
    time.sleep(1.0)
    assert gc.poll() is None  # waiting for the build's shared lock
    prefix = next((home / "bld" / "slow").iterdir())
    assert (prefix / "bin" / "partial").exists()  # the half-written output is untouched
    (tmp_path / "go").touch()
    _out, err = build.communicate(timeout=60)
    assert build.returncode == 0, err
    out, err = gc.communicate(timeout=60)
    assert gc.returncode == 0 and "waiting for running builds" in err
    assert "removed 0 artifact(s)" in out
    assert (tmp_path / "default" / "bin" / "done").read_text() == "done\n"


def test_gc_killed_half_way_leaves_a_consistent_store(home, tmp_path):
    """Many dead artifacts with many files; kill -9 the collector while it sweeps."""
    for i in range(40):
        write_recipe(
            tmp_path / "pkgs",
            f"big{i}",
            f"""
            version: "1"
            build: |
              mkdir -p "$ARTIFACT/share/big{i}"
              for n in $(seq 600); do echo {i} $n > "$ARTIFACT/share/big{i}/f$n"; done
            """,
        )
    p = write_profile(
        tmp_path / "default.yaml",
        "package_dirs: [pkgs]\npackages: [" + ", ".join(f"big{i}" for i in range(40)) + "]\n",
    )
    run_hit("build", "-j", "2", str(p))
    run_hit("rm", str(tmp_path / "default"))
    store = Store(home / "bld")
    gc = subprocess.Popen([sys.executable, "-m", "hdmodules.cli.hit", "gc"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    end = time.monotonic() + 30
    while not (store.trash.is_dir() and any(store.trash.iterdir())):  # the sweep has begun
        assert gc.poll() is None and time.monotonic() < end, "gc ended before it was killed"
        time.sleep(0.002)
    os.kill(gc.pid, signal.SIGKILL)
    gc.wait()
    assert any(store.trash.iterdir())  # killed half way: deletions were under way
    left = sorted(t.name for t in store.trash.iterdir())
    # whatever is left in the store's namespace is either complete and intact, or absent
    for prefix in store.prefixes():
        assert (prefix / ".hit" / "manifest.json").exists(), prefix
    assert run_hit("verify", check=False).code == 0
    r = run_hit("gc", "--dry-run")  # says it, and leaves it
    assert "would empty what an interrupted collection had moved out" in r.err, r.err
    assert sorted(t.name for t in store.trash.iterdir()) == left
    r = run_hit("gc")
    assert not artifacts(home) and not any(store.trash.iterdir())
    assert "removed" in r.out
    said = f"emptied what an interrupted collection had moved out of the store ({len(left)} "
    assert said in r.err and left[0] in r.err, r.err  # named, not emptied without a word
    run_hit("build", str(p))
    assert (tmp_path / "default" / "share" / "big39" / "f600").exists()
    assert not alive(gc.pid)


def test_gc_prunes_the_users_modulefiles_of_removed_artifacts(hit, home, demo):
    hit("build", cwd=demo)
    app = json.loads((next((home / "bld" / "app").iterdir()) / ".hit/build.json").read_text())
    level = home / "modules" / "lmod" / "Compiler" / "gcc" / "12"
    (level / "app").mkdir(parents=True)
    (level / "app" / "1.0.lua").write_text(
        f"-- app/1.0: artifact {app['id']}, generated by hdmodules\n"
    )
    (level / "gone").mkdir()
    gone = level / "gone" / "1.0.lua"
    gone.write_text("-- gone/1.0: artifact gone/abcdefabcdefabcdef, generated by hdmodules\n")
    hit("rm", "default", cwd=demo)
    hit("build", "-q", cwd=demo)  # the same profile again: nothing of app is removed below
    write_profile(demo / "other.yaml", "package_dirs: [pkgs]\npackages: [libcore]\n"
                  "parameters: {version_tag: x}\n")  # fmt: skip
    hit("build", "other.yaml", cwd=demo)
    hit("rm", "other", cwd=demo)
    r = hit("gc", cwd=demo)
    assert f"removed the modulefile {gone}" in r.err
    assert not (level / "gone").exists() and (level / "app" / "1.0.lua").exists()


def test_the_collectors_cache_changes_no_decision(hit, home, demo):
    """`hit gc` keeps what it read of each artifact's build.json in the store (gcscan.py):
    with it, without it, damaged, or naming an artifact by a manifest that is not the one
    in the store now (built again), the collector decides the same."""
    import marshal

    from hdmodules.store.gcscan import FORMAT, SCAN_CACHE, load_cache

    write_profile(demo / "apponly.yaml", "package_dirs: [pkgs]\npackages: [app]\n")
    hit("build", "apponly.yaml", cwd=demo)
    write_profile(demo / "other.yaml", "package_dirs: [pkgs]\npackages: [libcore]\n"
                  "parameters: {version_tag: other}\n")  # fmt: skip
    hit("build", "other.yaml", cwd=demo)
    cache = home / "bld" / SCAN_CACHE
    assert "would remove 0 artifact(s)" in hit("gc", "--dry-run", cwd=demo).out
    assert cache.exists()
    hit("rm", "other", cwd=demo)
    cached = hit("gc", "--dry-run", cwd=demo).out
    assert "would remove 2 artifact(s)" in cached
    cache.unlink()
    assert hit("gc", "--dry-run", cwd=demo).out == cached
    cache.write_bytes(b"not a cache")
    assert hit("gc", "--dry-run", cwd=demo).out == cached
    # the layout's shape, but a stamp no 64-bit integer holds
    cache.write_bytes(marshal.dumps((FORMAT, "p", "i", "", [2**70, 1])))
    assert hit("gc", "--dry-run", cwd=demo).out == cached
    # an entry for app saying it keeps nothing, under a manifest that is not app's now
    entries = load_cache(cache.parent)
    app = next(i for i, p in enumerate(entries.prefixes) if "/app/" in p)
    assert entries.refs[app]  # app keeps liba and libb alive
    entries.stamps[2 * app] = entries.stamps[2 * app + 1] = 0  # (inode, mtime): not app's now
    entries.refs[app] = ""
    cache.write_bytes(entries.dump())
    assert hit("gc", "--dry-run", cwd=demo).out == cached  # liba, libb still reached
    assert "removed 2 artifact(s)" in hit("gc", cwd=demo).out
    assert names(home) == {"app", "liba", "libb", "libcore", "profile"}


def test_a_cycle_among_unreachable_artifacts_is_collected_without_a_traceback(hit, home, demo):
    """A damaged build.json can make two artifacts hold each other: gc --older-than (dry
    or not) and a plain gc still answer (no order keeps such a closure whole)."""
    hit("build", cwd=demo)
    hit("rm", "default", cwd=demo)
    store = home / "bld"
    one, two = sorted(p for p in store.glob("*/*") if (p / ".hit" / "build.json").is_file())[:2]
    ids = [json.loads((p / ".hit" / "build.json").read_text())["id"] for p in (one, two)]
    for prefix, other in ((one, ids[1]), (two, ids[0])):
        spec = prefix / ".hit" / "build.json"
        os.chmod(prefix / ".hit", 0o700)
        os.chmod(spec, 0o600)
        doc = json.loads(spec.read_text())
        doc.setdefault("dependencies", {})["cycle"] = other
        spec.write_text(json.dumps(doc))
    (store / ".gc-scan").unlink(missing_ok=True)
    for args in (("--older-than", "30d", "--dry-run"), ("--older-than", "30d"), ()):
        r = hit("gc", *args)
        assert "Traceback" not in r.err
    assert "removed" in r.out and not artifacts(home)


def test_an_artifact_s_use_stamp_goes_with_it(hit, home, demo):
    """gc and purge remove the `.used` stamp of each artifact they remove (its last use was
    handed down): the stamps of artifacts long gone no longer pile up (closing trial)."""
    hit("build", cwd=demo)
    used = home / "bld" / ".used"
    stamps = {p.name for p in used.iterdir()}
    assert len(stamps) == len(artifacts(home)) > 1
    hit("rm", "default", cwd=demo)
    hit("purge", "app")
    left = {p.name for p in used.iterdir()}
    assert len(left) == len(stamps) - 2  # app and the profile that used it
    assert not any(name.startswith(("app-", "profile-")) for name in left)
    hit("gc")
    assert not list(used.iterdir())
