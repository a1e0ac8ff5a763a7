"""What the store promises when builds misbehave and machines fail: no setuid files, no
process that outlives its build, durable commits, no link without its gc root, clear errors
on a full disk."""

import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hdmodules.spec.artifact import ArtifactRef
from hdmodules.store import layout as store_mod
from hdmodules.store.layout import Store
from tests.conftest import (
    IN_CI,
    need,
    record_store_events,
    run_clean,
    run_hit,
    write_profile,
    write_recipe,
)


def _one_package(tmp_path: Path, build: str, name: str = "pkg") -> Path:
    body = "\n".join("  " + line for line in build.strip().splitlines())
    write_recipe(tmp_path / "pkgs", name, f'version: "1"\nbuild: |\n{body}\n')
    return write_profile(tmp_path / "default.yaml", f"package_dirs: [pkgs]\npackages: [{name}]\n")


def _prefix(home: Path, name: str = "pkg") -> Path:
    return next((home / "bld" / name).iterdir())


def test_setuid_setgid_sticky_are_stripped_and_nothing_is_writable(home, tmp_path):
    profile = _one_package(
        tmp_path,
        """
        printf '#!/bin/sh\\necho hi\\n' > prog
        install -D -m 4755 prog "$ARTIFACT/bin/suid"
        install -D -m 2775 prog "$ARTIFACT/bin/sgid"
        install -d -m 1777 "$ARTIFACT/share/tmp"
        install -D -m 0666 prog "$ARTIFACT/share/open"
        """,
    )
    run_hit("build", str(profile))
    prefix = _prefix(home)
    for rel in ("bin/suid", "bin/sgid", "share/tmp", "share/open", "bin", "."):
        mode = stat.S_IMODE((prefix / rel).stat().st_mode)
        assert mode & 0o7000 == 0, (rel, oct(mode))
        assert mode & 0o222 == 0, (rel, oct(mode))
    assert stat.S_IMODE((prefix / "bin" / "suid").stat().st_mode) & 0o777 == 0o500  # private
    assert run_clean([str(prefix / "bin" / "suid")]).stdout == "hi\n"
    assert run_hit("verify").code == 0


def _tagged(build_id_part: str) -> list[int]:
    """Processes whose HIT_BUILD_ID (the build folder, buildjob.build_id) starts so."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"HIT_BUILD_ID=" + build_id_part.encode() in env:
            found.append(int(pid))
    return found


def test_no_build_process_outlives_its_build(home, tmp_path):
    marker = tmp_path / "started"
    profile = _one_package(
        tmp_path,
        f"""
        mkdir -p "$ARTIFACT/share"
        ( sleep 3; echo late > "$ARTIFACT/share/late" ) &
        setsid sh -c 'sleep 3; echo late > "$ARTIFACT/share/late-setsid"' &
        nohup sh -c 'trap "" HUP; sleep 3; echo late > "$ARTIFACT/share/late-nohup"' \\
          >/dev/null 2>&1 &
        ( env -i /usr/bin/setsid /bin/sh -c 'sleep 3; echo late > "$0/share/late-env-i"; \\
          chmod 4777 "$0/share/done"' "$ARTIFACT" >/dev/null 2>&1 </dev/null & )
        touch {marker}
        echo done > "$ARTIFACT/share/done"
        """,
        name="bgpkg",
    )
    run_hit("build", str(profile))
    assert marker.exists()
    assert _tagged(f"{home / 'tmp' / 'bgpkg-'}") == []  # killed before the manifest was written
    time.sleep(3.5)
    prefix = _prefix(home, "bgpkg")
    assert sorted(os.listdir(prefix / "share")) == ["done"]
    assert stat.S_IMODE((prefix / "share" / "done").stat().st_mode) == 0o400
    assert run_hit("verify").code == 0


def test_verify_reports_modes_changed_after_the_commit(home, tmp_path):
    """What a commit never leaves (write or setuid bits, special files) is reported."""
    profile = _one_package(tmp_path, 'mkdir -p "$ARTIFACT/bin"\ntouch "$ARTIFACT/bin/tool"\n')
    run_hit("build", str(profile))
    prefix = _prefix(home)
    assert run_hit("verify").code == 0
    (prefix / "bin" / "tool").chmod(0o4777)
    r = run_hit("verify", check=False)
    assert r.code == 1 and "unsafe" in r.out and "bin/tool (mode 4777)" in r.out, r.out


@pytest.mark.parametrize("how", ["syncfs", "fsync each file"])
def test_commit_syncs_every_file_before_the_manifest_and_the_folder_after(
    tmp_path, monkeypatch, how
):
    """A power cut cannot be staged here; what a power cut needs is checked instead: the
    artifact's files and folders reached the disk (one syncfs of their filesystem, or, where
    the C library lacks it, an fsync of each) before the manifest's rename made it count as
    installed, and the folder holding the manifest was synced after. The build folder is
    removed after its log is copied and before the flush (its files need not reach the
    disk)."""
    folder = tmp_path / "tmp" / "pkg-build"
    (folder / "src").mkdir(parents=True)
    (folder / "build.log").write_text("compiled\n")
    store = Store(tmp_path / "bld")
    ref = ArtifactRef("pkg", "1", "a" * 32)
    prefix = store.begin(ref)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "tool").write_text("#!/bin/sh\n")
    (prefix / "lib").mkdir()
    (prefix / "lib" / "libx.so.1").write_bytes(b"\x7fELF")
    (prefix / "lib" / "libx.so").symlink_to("libx.so.1")
    events: list[tuple[str, str]] = []
    real_fsync = os.fsync

    def fsync(fd):
        events.append(("sync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    record_store_events(monkeypatch, events, syncfs_works=how != "fsync each file")
    store.commit(ref, {"id": ref.id}, folder / "build.log", discard=folder)
    assert not folder.exists() and (prefix / ".hit" / "build.log").read_text() == "compiled\n"
    flushes = [i for i, (kind, _path) in enumerate(events) if kind in ("sync", "syncfs")]
    assert events.index(("remove", str(folder))) < flushes[0]
    rename = events.index(("rename", str(prefix / ".hit" / "manifest.json")))
    if how == "syncfs":
        assert ("syncfs", str(prefix)) in events[:rename]
    else:
        assert not [e for e in events if e[0] == "syncfs"]
        synced_before = {path for kind, path in events[:rename] if kind == "sync"}
        for path in (
            prefix, prefix / "bin", prefix / "bin" / "tool", prefix / "lib",
            prefix / "lib" / "libx.so.1", prefix / ".hit", prefix / ".hit" / "build.json",
            prefix / ".hit" / ".manifest.json.tmp",
        ):  # fmt: skip
            assert str(path) in synced_before, path
    assert ("sync", str(prefix / ".hit")) in events[rename + 1 :]
    assert store.is_installed(ref)


def _kill_at_link(profile: Path, when: str) -> subprocess.CompletedProcess:
    """`hit build` killed (os._exit, like kill -9: no cleanup) exactly before or after its
    profile link is switched."""
    code = f"""
import os, sys
from hdmodules.store import roots
real = roots.set_link
def set_link(link, target):
    if link.name == "default" and {when!r} == "before":
        os._exit(9)
    changed = real(link, target)
    if link.name == "default" and {when!r} == "after":
        os._exit(9)
    return changed
roots.set_link = set_link
from hdmodules.cli.hit import main
sys.argv = ["hit", "build", {str(profile)!r}]
main()
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_profile_link_is_never_visible_without_its_gc_root(home, demo, when):
    profile = demo / "default.yaml"
    r = _kill_at_link(profile, when)
    assert r.returncode == 9, r.stderr
    link = demo / "default"
    assert link.is_symlink() == (when == "after")
    run_hit("gc")
    if link.is_symlink():  # the link exists: what it points at survived the collection
        assert run_clean([str(link / "bin" / "app")]).stdout.startswith("Hello from app")
    r = run_hit("build", str(profile))
    assert run_clean([str(link / "bin" / "app")]).stdout.startswith("Hello from app")
    run_hit("gc")
    assert run_clean([str(link / "bin" / "app")]).stdout.startswith("Hello from app")


def test_a_full_disk_names_the_artifact_and_leaves_nothing_half_written(tmp_path):
    """A store on a 1 MiB tmpfs (mounted in a private mount namespace, so the host sees
    nothing) that the build itself fills: the commit fails, hit says which artifact and
    where, and the store holds no trace of it."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare")
    store_dir = tmp_path / "small"
    store_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(f"store: {store_dir}/bld\n")
    profile = _one_package(
        tmp_path,
        """
        mkdir -p "$ARTIFACT/share"
        dd if=/dev/zero of="$ARTIFACT/share/big" bs=64k count=64 2>/dev/null || true
        """,
        name="filler",
    )
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {store_dir} || exit 97\n"
        f"exec {sys.executable} -m hdmodules.cli.hit build {profile}"
    )
    env = {**os.environ, "HIT_HOME": str(home)}
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    if r.returncode == 97 and not IN_CI:
        pytest.skip("tmpfs cannot be mounted here")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("hit: error:")]
    assert error and "filler/" in error[0] and "No space left on device" in r.stderr
    assert str(store_dir / "bld") in r.stderr
    assert not list(store_dir.iterdir())  # the tmpfs was private to the namespace
    assert not os.path.ismount(store_dir)


def test_sync_trees_skips_links_and_special_files(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    (tmp_path / "l").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    monkeypatch.setattr(store_mod, "_syncfs", lambda _p: False)  # the walk, not syncfs
    synced: list[str] = []
    monkeypatch.setattr(store_mod, "sync_path", lambda p: synced.append(os.path.basename(p)))
    done = threading.Thread(target=store_mod.sync_trees, args=([tmp_path],), daemon=True)
    done.start()
    done.join(10)  # a FIFO opened for reading would block forever
    assert not done.is_alive() and sorted(synced) == sorted(["f", tmp_path.name])


@pytest.mark.parametrize(
    "install, fragment",
    [
        ('mkfifo "$ARTIFACT/share/fifo"', "share/fifo is a device, FIFO or socket"),
        ('mknod "$ARTIFACT/share/null" c 1 3', "share/null is a device, FIFO or socket"),
        ('ln {outside} "$ARTIFACT/share/hl"', "share/hl is a hard link to a file outside"),
    ],
    ids=["fifo", "device", "outside-hard-link"],
)
def test_an_artifact_holds_files_folders_and_symlinks_only(home, tmp_path, install, fragment):
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    outside.chmod(0o666)
    build = f'mkdir -p "$ARTIFACT/share"\ncp {outside} "$ARTIFACT/share/copy"\n'
    build += 'ln "$ARTIFACT/share/copy" "$ARTIFACT/share/inner-link"\n'  # inside: fine
    profile = _one_package(tmp_path, build + install.format(outside=outside), name="odd")
    r = run_hit("build", str(profile), check=False)
    assert r.code == 1 and fragment in r.err, r.err
    kept = Path(r.err.split("build folder kept: ")[1].splitlines()[0])  # named, with its log
    assert (kept / "src").is_dir() and f"log: {kept / 'build.log'}" in r.err, r.err
    assert stat.S_IMODE(outside.stat().st_mode) == 0o666  # never touched
    assert not any((home / "bld" / "odd").iterdir())  # nothing half-installed


def test_hard_links_inside_an_artifact_are_kept(home, tmp_path):
    profile = _one_package(
        tmp_path,
        'mkdir -p "$ARTIFACT/bin"\nprintf "#!/bin/sh\\necho hi\\n" > "$ARTIFACT/bin/a"\n'
        'chmod +x "$ARTIFACT/bin/a"\nln "$ARTIFACT/bin/a" "$ARTIFACT/bin/b"\n',
        name="links",
    )
    run_hit("build", str(profile))
    prefix = _prefix(home, "links")
    assert (prefix / "bin" / "a").stat().st_ino == (prefix / "bin" / "b").stat().st_ino
    assert run_clean([str(prefix / "bin" / "b")]).stdout == "hi\n"


@pytest.mark.parametrize("step", ["_syncfs", "replace"])
def test_hit_killed_inside_a_commit_leaves_nothing_installed_and_the_next_build_recovers(
    home, tmp_path, step
):
    """`hit build` killed (os._exit, like kill -9) inside the commit: after the build folder
    went and before the flush, or just before the manifest's rename. Nothing counts as
    installed, `hit verify` is content, and the next build builds it."""
    profile = _one_package(tmp_path, 'mkdir -p "$ARTIFACT/bin"\necho x > "$ARTIFACT/bin/x"\n')
    target = "os" if step == "replace" else "layout"
    code = f"""
import os, sys
from hdmodules.store import layout
real = getattr({target}, {step!r})
def killed(*args, **kw):
    if {step!r} == "_syncfs" or str(args[1]).endswith("manifest.json"):
        os._exit(9)
    return real(*args, **kw)
setattr({target}, {step!r}, killed)
from hdmodules.cli.hit import main
sys.argv = ["hit", "build", {str(profile)!r}]
main()
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 9, r.stderr
    prefix = _prefix(home)
    assert (prefix / "bin" / "x").exists() and not (prefix / ".hit" / "manifest.json").exists()
    assert "needs build" in run_hit("status", str(profile)).out
    assert run_hit("verify").code == 0
    run_hit("build", str(profile))
    assert (tmp_path / "default" / "bin" / "x").read_text() == "x\n"
    assert run_hit("verify").code == 0


def test_a_profile_switch_flushes_its_links_with_syncfs_before_its_manifest(hit, demo, monkeypatch):
    """A profile is a farm of symlinks, and a symlink's own inode (and, on ext4, the block
    of a target longer than 59 bytes) reaches the disk only with a syncfs of its filesystem:
    no fsync can open a link, and an fsync of its folder alone does not write it on ext4
    without a journal. So a switch that builds nothing still runs a syncfs before the new
    profile's manifest is renamed into place (in process, the store's calls recorded)."""
    hit("build", cwd=demo)
    profile = demo / "default.yaml"
    profile.write_text(profile.read_text().replace("  app:\n", ""))
    events: list[tuple[str, str]] = []
    record_store_events(monkeypatch, events)
    monkeypatch.chdir(demo)
    from click.testing import CliRunner

    from hdmodules.cli.hit import cli

    r = CliRunner().invoke(cli, ["build"])
    assert r.exit_code == 0, r.output
    renames = [
        i
        for i, (kind, path) in enumerate(events)
        if kind == "rename" and "/bld/profile/" in path and path.endswith("/manifest.json")
    ]
    assert renames, events
    assert "syncfs" in [kind for kind, _path in events[: renames[0]]], events


@pytest.mark.parametrize("hide", [0, 0o077])
def test_a_farm_is_made_read_only_from_its_manifest_as_a_walk_would(tmp_path, hide):
    from hdmodules.store.files import make_entries_read_only, make_read_only

    def farm(root: Path) -> dict[str, str]:
        (root / ".hit").mkdir(parents=True)
        (root / ".hit" / "farm.index").write_bytes(b"x")
        (root / "bin").mkdir()
        (root / "share" / "deep").mkdir(parents=True)
        (root / "bin" / "a").symlink_to("/nowhere/a")
        (root / "share" / "deep" / "b").symlink_to("/nowhere/b")
        (root / "pyvenv.cfg").write_text("home = /x\n")
        os.chmod(root / "pyvenv.cfg", 0o4755)  # a special bit: stripped
        return {"bin/a": "l:/nowhere/a", "share/deep/b": "l:/nowhere/b", "pyvenv.cfg": "f:0"}

    def modes(root: Path) -> dict[str, int]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
        return out

    walked, listed = tmp_path / "walked", tmp_path / "listed"
    farm(walked)
    make_read_only(walked, hide, keep_writable=walked / ".hit")
    make_entries_read_only(listed, farm(listed), hide, meta=".hit")
    assert modes(listed) == modes(walked)
    assert modes(listed)["share/deep"] == 0o555 & ~hide and modes(listed)[".hit"] & 0o200
    assert modes(listed)["pyvenv.cfg"] == 0o555 & ~hide


def test_verify_of_a_folder_outside_the_store_says_so(home, tmp_path):
    """`hit verify /tmp` said its manifest was missing "(try `hit verify`)"."""
    r = run_hit("verify", str(tmp_path), check=False)
    assert r.code == 1 and f"{tmp_path}: not in the store ({home / 'bld'})" in r.err, r.err
    assert "try `hit verify`" not in r.err
