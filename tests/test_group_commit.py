"""`hit build` publishes its artifacts in groups from a background thread (store/commit.py):
what a power cut needs still holds (files flushed before a manifest's rename, build folders
removed before the flush, dependencies published first, the last renames flushed before
the run ends), and a publish that fails leaves nothing half installed."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.spec.artifact import ArtifactRef
from hdmodules.store import layout as store_mod
from hdmodules.store.commit import GroupCommit
from hdmodules.store.layout import Store
from tests.conftest import record_store_events, run_clean, run_hit, write_profile, write_recipe


def _staged(store: Store, name: str, tmp_path: Path) -> tuple[Path, Path]:
    """An artifact `name` staged in `store` and its build folder (holding a log)."""
    ref = ArtifactRef(name, "1", name[0] * 32)
    prefix = store.begin(ref)
    (prefix / "bin").mkdir()
    (prefix / "bin" / name).write_text("#!/bin/sh\n")
    folder = tmp_path / "tmp" / f"{name}-build"
    (folder / "src").mkdir(parents=True)
    (folder / "build.log").write_text(f"built {name}\n")
    store.stage(ref, {"id": ref.id}, folder / "build.log")
    return prefix, folder


def _record(monkeypatch) -> list[tuple[str, str]]:
    """The flushes, renames and removals the store does, in order."""
    events: list[tuple[str, str]] = []
    record_store_events(monkeypatch, events)
    return events


def test_a_group_is_flushed_once_before_its_renames_in_the_order_handed_over(tmp_path, monkeypatch):
    store = Store(tmp_path / "bld")
    staged = [_staged(store, name, tmp_path) for name in ("base", "mid", "top")]
    events = _record(monkeypatch)
    commit = GroupCommit(store)
    installed = [commit.hand_over(prefix, folder) for prefix, folder in staged]
    for each in installed:
        assert each.result(timeout=30) is None
    commit.close()
    renames = [e for e in events if e[0] == "rename"]
    assert renames == [("rename", str(p / ".hit" / "manifest.json")) for p, _f in staged]
    for prefix, folder in staged:
        assert not folder.exists() and store_mod.read_manifest(prefix)
        assert (prefix / ".hit" / "build.log").read_text().startswith("built ")
        rename = events.index(("rename", str(prefix / ".hit" / "manifest.json")))
        removed = events.index(("remove", str(folder)))
        flush = max(i for i, e in enumerate(events[:rename]) if e[0] == "syncfs")
        assert removed < flush < rename  # the build folder never reaches the disk
    assert events[-1][0] == "syncfs"  # the last renames are flushed before the run ends
    assert len([e for e in events if e[0] == "syncfs"]) <= 4  # a group, one flush


def test_a_failed_flush_installs_nothing_of_its_group_or_after(tmp_path, monkeypatch):
    store = Store(tmp_path / "bld")
    first = _staged(store, "first", tmp_path)
    later = _staged(store, "later", tmp_path)

    def broken(path):
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(store_mod, "_syncfs", broken)
    with GroupCommit(store) as commit:
        failed = commit.hand_over(*first)
        with pytest.raises(HitError, match="Input/output error"):
            failed.result(timeout=30)
        monkeypatch.undo()  # the disk is back: what comes after the failure still fails
        with pytest.raises(HitError, match="not installed"):
            commit.hand_over(*later).result(timeout=30)
    for prefix, _folder in (first, later):
        assert not (prefix / ".hit" / "manifest.json").exists()


def _chain(tmp_path: Path, n: int) -> Path:
    for i in range(n):
        dep = f"dependencies: [c{i - 1}]\n" if i else ""
        write_recipe(
            tmp_path / "pkgs",
            f"c{i}",
            f'version: "1"\n{dep}build: |\n  mkdir -p "$ARTIFACT/bin"\n'
            f'  printf "#!/bin/sh\\necho c{i}\\n" > "$ARTIFACT/bin/c{i}"\n'
            f'  chmod +x "$ARTIFACT/bin/c{i}"\n',
        )
    names = ", ".join(f"c{i}" for i in range(n))
    return write_profile(tmp_path / "default.yaml", f"package_dirs: [pkgs]\npackages: [{names}]\n")


def _hit_with(code: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """`hit build` with `code` run first (it patches the store to record or fail)."""
    argv = ["hit", "build", *args, str(profile)]
    main = f"from hdmodules.cli.hit import main\nsys.argv = {argv!r}\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", "import os, sys\n" + code + main], capture_output=True, text=True
    )


def test_hit_build_publishes_each_dependency_before_what_was_built_on_it(home, tmp_path):
    profile = _chain(tmp_path, 6)
    order = tmp_path / "renames"
    code = f"""
real = os.replace
def replace(src, dst, **kw):
    if str(dst).endswith("manifest.json"):
        with open({str(order)!r}, "a") as f:
            f.write(str(dst) + "\\n")
    return real(src, dst, **kw)
os.replace = replace
"""
    r = _hit_with(code, profile, "-j", "2")
    assert r.returncode == 0, r.stderr
    names = [Path(line).parts[-4] for line in order.read_text().split()]
    assert names[:6] == [f"c{i}" for i in range(6)]  # then the profile
    assert run_clean([str(tmp_path / "default" / "bin" / "c5")]).stdout == "c5\n"
    assert run_hit("verify").code == 0


def test_a_publish_failing_under_hit_build_is_one_clear_error_and_nothing_half_installed(
    home, tmp_path
):
    """The disk fails at the second artifact's flush: hit says which artifact and why, exit
    1, no traceback; the first counts as installed, the rest do not, `verify` is content,
    and the next build (the disk back) builds the rest."""
    profile = _chain(tmp_path, 3)
    code = """
import errno
from hdmodules.store import layout
real, calls = layout._syncfs, []
def syncfs(path):
    calls.append(path)
    if len(calls) == 2:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
    return real(path)
layout._syncfs = syncfs
"""
    r = _hit_with(code, profile, "-j", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("hit: error:")]
    assert error and "c1/" in error[0] and "Input/output error" in r.stderr, r.stderr
    installed = {p.parts[-4] for p in (home / "bld").glob("c*/*/.hit/manifest.json")}
    assert installed == {"c0"}
    assert run_hit("verify").code == 0
    run_hit("build", str(profile))
    assert run_clean([str(tmp_path / "default" / "bin" / "c2")]).stdout == "c2\n"


def test_a_build_that_writes_into_its_dependency_is_reported_by_verify(home, tmp_path):
    """A build that changes its dependency's files (root ignores read-only bits, and any
    owner can chmod them back) leaves a dependency that `hit verify` reports: its manifest
    records what its own build made, never what a later build added. (The dependency's
    large file keeps the group commit hashing it while the dependent build starts.)"""
    pkgs = tmp_path / "pkgs"
    write_recipe(
        pkgs,
        "base",
        """
        version: "1"
        build: |
          mkdir -p "$ARTIFACT/lib"
          echo base > "$ARTIFACT/lib/base.txt"
          truncate -s 2G "$ARTIFACT/big"  # sparse: no disk, but seconds to hash
        """,
    )
    write_recipe(
        pkgs,
        "user",
        """
        version: "1"
        dependencies: [base]
        build: |
          chmod u+w "$BASE_DIR/lib"
          echo intruder > "$BASE_DIR/lib/added.txt"
          chmod a-w "$BASE_DIR/lib/added.txt" "$BASE_DIR/lib"
          mkdir -p "$ARTIFACT/share"
          echo user > "$ARTIFACT/share/user.txt"
        """,
    )
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [user]\n")
    run_hit("build", str(profile))
    r = run_hit("verify", check=False)
    added = [line for line in r.out.splitlines() if line.startswith("added")]
    assert r.code == 1 and added and "lib/added.txt" in added[0], r.both


def test_an_artifact_that_cannot_be_described_fails_alone(home, tmp_path):
    """One package whose manifest cannot be written (a file name that is not UTF-8) fails
    with a message naming it; a package that does not depend on it, handed over after it,
    is still installed (the group commit must not fail every later artifact, as it does for
    a failed flush: those may have been built on it, this one was not)."""
    pkgs = tmp_path / "pkgs"
    write_recipe(
        pkgs,
        "odd",
        """
        version: "1"
        build: |
          mkdir -p "$ARTIFACT/share"
          echo x > "$ARTIFACT/share/$(printf 'caf\\351')"
        """,
    )
    write_recipe(
        pkgs,
        "later",
        """
        version: "1"
        build: |
          sleep 2
          mkdir -p "$ARTIFACT/bin"
          echo later > "$ARTIFACT/bin/later"
        """,
    )
    profile = write_profile(
        tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [odd, later]\n"
    )
    r = run_hit("build", "-j", "2", str(profile), check=False)
    assert r.code == 1, r.both
    errors = [line for line in r.err.splitlines() if line.startswith("hit: error:")]
    assert errors and "odd/" in errors[0], r.err
    installed = {p.parts[-4] for p in (home / "bld").glob("*/*/.hit/manifest.json")}
    assert "later" in installed, r.err


def test_build_json_is_indented_but_a_long_one_is_one_line(tmp_path):
    """build.json is indented for reading; a profile's record of thousands of packages is
    written on one line (json indents in pure Python: issue 18), the same document."""
    store = Store(tmp_path / "bld")
    small = {"id": "a/1-x", "artifacts": {f"p{i}": f"p{i}/1-{i:032}" for i in range(3)}}
    large = {"id": "b/1-y", "artifacts": {f"p{i}": f"p{i}/1-{i:032}" for i in range(5000)}}
    for name, spec in (("a", small), ("b", large)):
        ref = ArtifactRef(name, "1", name * 32)
        prefix = store.begin(ref)
        store.stage(ref, spec, None)
        text = (prefix / ".hit" / "build.json").read_text()
        assert json.loads(text) == spec and text.endswith("}\n")
        assert (text.count("\n") > 3) == (spec is small)
