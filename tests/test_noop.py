"""The no-op `hit build` (issue 18): answered from the memo before click, PyYAML or the
resolver are imported, and never when anything it relies on changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hdmodules
from hdmodules.cli.noop import noop_options
from tests.conftest import (
    blocking_recipe,
    copy_demo,
    git,
    hit_proc,
    set_config,
    wait_for,
    write_profile,
    write_recipe,
)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["build"], ("default.yaml", False, None, None)),
        (["build", "-q", "release.yaml"], ("release.yaml", True, None, None)),
        (["build", "-j", "4", "--quiet"], ("default.yaml", True, 4, None)),
        (["build", "-j2", "--jobs=3", "x.yaml"], ("x.yaml", False, 3, None)),
        (["build", "-j2", "x.yaml"], ("x.yaml", False, 2, None)),
        (["build", "--concurrent-packages", "2", "-q"], ("default.yaml", True, None, 2)),
        (["build", "--concurrent-packages=3", "--jobs", "5"], ("default.yaml", False, 5, 3)),
        (["build", "--concurrent-packages=0"], None),
        (["build", "-j", "0"], None),  # click says what is wrong
        (["build", "-j", "²"], None),  # a digit to str.isdigit, no number to int()
        (["build", "-j"], None),
        (["build", "--repin"], None),  # reads the YAML
        (["build", "--explain", "x.yaml"], None),
        (["build", "a.yaml", "b.yaml"], None),
        (["build", ""], None),  # no profile: not the default one
        (["build", "--help"], None),
        (["status"], None),
        ([], None),
    ],
)
def test_only_a_plain_build_is_answered_before_click(args, expected):
    assert noop_options(args) == expected


def _noop_in_child(cwd, *args: str) -> list[str]:
    """Run the fast path alone in a child; its output lines, then whether it answered and
    which heavy modules it imported."""
    code = (
        "import sys\n"
        "from hdmodules.cli.noop import noop_build\n"
        f"answered = noop_build({list(args)!r})\n"
        "heavy = sorted(m for m in sys.modules if m in ('click', 'yaml', 'jinja2', 'filelock')"
        " or m.startswith(('hdmodules.spec', 'hdmodules.publish', 'hdmodules.store.layout')))\n"
        "print(answered, heavy)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return r.stdout.splitlines()


def test_no_op_build_imports_neither_click_nor_the_resolver(hit, demo):
    hit("build", cwd=demo)
    *out, last = _noop_in_child(demo, "build", "-q")
    assert last == "True []"
    assert out == [f"{demo / 'default'} -> {os.readlink(demo / 'default')} (up to date)"]
    os.utime(demo / "default.yaml")  # a new stamp: the full path resolves, builds nothing
    assert hit("build", "-q", cwd=demo).out.splitlines() == out  # and says the same


def test_no_op_lists_every_artifact_unless_quiet(hit, demo):
    full = hit("build", cwd=demo).err
    fast = hit("build", cwd=demo).err
    assert "present" in fast and "built in" not in fast
    assert len(fast.splitlines()) == len([ln for ln in full.splitlines() if ln.startswith("[")])


def test_a_removed_artifact_is_built_again_not_taken_from_the_memo(hit, home, demo):
    hit("build", cwd=demo)
    hit("build", cwd=demo)  # the memo is written and used
    liba = next((home / "bld" / "liba").iterdir())
    shutil.rmtree(liba)  # removed behind hit's back (an admin, a full disk cleaned)
    assert _noop_in_child(demo, "build")[-1] == "False []"
    r = hit("build", cwd=demo)
    assert "liba/" in r.err and "built in" in r.err
    assert (liba / ".hit" / "manifest.json").exists()


def test_after_a_switch_the_memo_holds_each_manifest_as_found_before_the_build(hit, home, demo):
    """A full `hit build` over artifacts that are all installed (a switch) takes their
    manifests' stamps from the check of what to build (memo.installed), and the next build
    is a no-op; an artifact removed after it is built again."""
    hit("build", cwd=demo)
    os.utime(demo / "default.yaml")  # the full path, nothing to build
    assert "built in" not in hit("build", cwd=demo).err
    assert _noop_in_child(demo, "build")[-1].startswith("True")
    liba = next((home / "bld" / "liba").iterdir())
    shutil.rmtree(liba)
    assert _noop_in_child(demo, "build")[-1] == "False []"
    assert "liba/" in hit("build", cwd=demo).err
    assert _noop_in_child(demo, "build")[-1].startswith("True")


def test_a_link_pointed_elsewhere_is_put_back_by_the_full_path(hit, demo, tmp_path):
    hit("build", cwd=demo)
    target = os.readlink(demo / "default")
    (demo / "default").unlink()
    os.symlink(tmp_path, demo / "default")  # the user pointed it elsewhere by hand
    assert _noop_in_child(demo, "build", "-q")[-1] == "False []"
    hit("build", "-q", cwd=demo)
    assert os.readlink(demo / "default") == target


def test_a_damaged_memo_means_a_full_resolution(hit, home, demo):
    hit("build", cwd=demo)
    for memo in (home / ".cache").glob("build-*.memo"):
        memo.write_bytes(memo.read_bytes()[:40])  # cut short (a full disk, a crash)
    assert _noop_in_child(demo, "build")[-1] == "False []"
    r = hit("build", "-q", cwd=demo)
    assert r.out.endswith("(up to date)\n")
    assert _noop_in_child(demo, "build", "-q")[-1] == "True []"  # written anew


def test_version_is_answered_as_click_would(tmp_path):
    code = "import sys; from hdmodules.cli.entry import hit; sys.argv[1:] = ['--version']; hit()"
    fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    full = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hit", "--version"], capture_output=True, text=True
    )
    assert fast.returncode == full.returncode == 0
    assert fast.stdout == full.stdout and fast.stdout.startswith("hit, version ")


def test_a_file_whose_mtime_was_put_back_is_seen(hit, demo):
    """Same size, mtime put back (`touch -d`, `cp -p`): the ctime still differs."""
    hit("build", cwd=demo)
    app_c = demo / "src" / "app" / "app.c"
    before = app_c.stat()
    app_c.write_text(app_c.read_text().replace("from app", "FROM app"))  # same size
    os.utime(app_c, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _noop_in_child(demo, "build")[-1] == "False []"
    r = hit("build", cwd=demo)
    assert "app/" in r.err and "built in" in r.err


def test_another_site_config_is_no_no_op(hit, demo, tmp_path):
    hit("build", cwd=demo)
    config = tmp_path / "user-config.yaml"
    config.write_text("bogus_key: 1\n")
    r = hit("build", cwd=demo, env={**os.environ, "HIT_SITE_CONFIG": str(config)}, check=False)
    assert r.code != 0 and "bogus_key" in r.err  # read, not skipped by the memo


def test_a_site_config_named_through_a_link_and_dotdot_is_the_one_stamped(
    hit, demo, tmp_path, monkeypatch
):
    """HIT_SITE_CONFIG=.../cur/../user-config.yaml, `cur` a link to a folder elsewhere: the
    home reads the file the kernel finds (beside the link's target), and the memo stamps
    that file, so an edit of it is no no-op (it stamped the path with `..` folded away,
    another file or none, and the edit was answered as a no-op)."""
    real = tmp_path / "site" / "real"
    (real / "sub").mkdir(parents=True)
    (real / "user-config.yaml").write_text("keep_failed_days: 3\n")
    os.symlink(real / "sub", tmp_path / "site" / "cur")
    monkeypatch.setenv("HIT_SITE_CONFIG", f"{tmp_path}/site/cur/../user-config.yaml")
    hit("build", cwd=demo)
    assert _noop_in_child(demo, "build", "-q")[-1] == "True []"
    (real / "user-config.yaml").write_text("bogus_key: 1\n")
    assert _noop_in_child(demo, "build", "-q")[-1] == "False []"
    r = hit("build", cwd=demo, check=False)
    assert r.code != 0 and "bogus_key" in r.err and "Traceback" not in r.err, r.err


def test_another_installation_of_hdmodules_does_not_take_this_ones_memo(hit, demo, tmp_path):
    """The memo stamps the code that wrote it: a second copy of the package (another
    checkout, a virtual environment; here a copy that would hash differently) resolves in
    full, then has its own no-op."""
    hit("build", cwd=demo)
    assert _noop_in_child(demo, "build", "-q")[-1] == "True []"
    other = tmp_path / "other"
    shutil.copytree(Path(hdmodules.__file__).parent, other / "hdmodules", symlinks=False)
    env = {**os.environ, "PYTHONPATH": str(other)}
    code = "from hdmodules.cli.noop import noop_build; print(noop_build(['build', '-q']))"
    answer = [sys.executable, "-c", code]
    first = subprocess.run(answer, cwd=demo, env=env, capture_output=True, text=True)
    assert first.stdout.splitlines()[-1] == "False"  # not this one's memo
    full = [sys.executable, "-c", "from hdmodules.cli.entry import hit; hit()", "build", "-q"]
    subprocess.run(full, cwd=demo, env=env, check=True, capture_output=True)
    again = subprocess.run(answer, cwd=demo, env=env, capture_output=True, text=True)
    assert again.stdout.splitlines()[-1] == "True"  # its own memo, once it wrote one


def test_a_memo_of_the_wrong_shape_is_no_memo(hit, home, demo):
    import marshal

    hit("build", cwd=demo)
    for memo in (home / ".cache").glob("build-*.memo"):
        doc = marshal.loads(memo.read_bytes())
        doc["links"] = []
        memo.write_bytes(marshal.dumps(doc))
    assert _noop_in_child(demo, "build")[-1] == "False []"
    assert hit("build", "-q", cwd=demo).out.endswith("(up to date)\n")


def test_a_change_in_either_half_of_a_long_memo_is_seen(hit, home, demo):
    """From memo.SPLIT_FROM paths on, a forked child stamps the second half of the memo's
    list: a file changed in its half, as in this process's half, means a full resolution."""
    import marshal

    from hdmodules.build.memo import SPLIT_FROM

    data = demo / "src" / "app" / "data"
    data.mkdir()
    for i in range(SPLIT_FROM):
        (data / f"f{i:05d}.txt").write_text(f"{i:05d}\n")
    hit("build", "-q", cwd=demo)
    hit("build", "-q", cwd=demo)  # the memo is written and used
    assert _noop_in_child(demo, "build", "-q")[-1] == "True []"
    (memo,) = (home / ".cache").glob("build-*.memo")
    paths = marshal.loads(memo.read_bytes())["paths"].split("\0")
    assert len(paths) > SPLIT_FROM
    halves = paths[: len(paths) // 2], paths[len(paths) // 2 :]
    for half in halves:
        changed = Path(next(p for p in reversed(half) if p.startswith(str(data) + "/")))
        before = changed.stat()
        changed.write_text(changed.read_text().replace("0", "x", 1))  # same size
        os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
        assert _noop_in_child(demo, "build", "-q")[-1] == "False []", changed
        r = hit("build", cwd=demo)
        assert "app/" in r.err and "built in" in r.err
        assert _noop_in_child(demo, "build", "-q")[-1] == "True []"


def test_a_source_edited_while_its_package_builds_is_seen_by_the_next_build(hit, home, tmp_path):
    """The memo holds the stamps resolving took, before it read the sources: a source file
    edited after it was hashed (here by the build itself, as an editor saving during a long
    build) makes the next `hit build` resolve and build again, never a no-op."""
    src = tmp_path / "src" / "tool"
    src.mkdir(parents=True)
    (src / "msg.txt").write_text("one\n")
    write_recipe(
        tmp_path / "pkgs",
        "tool",
        f"""
        version: "1"
        sources: [{{path: ../src/tool}}]
        build: |
          mkdir -p "$ARTIFACT/share"
          cp msg.txt "$ARTIFACT/share/"
          echo two > {src}/msg.txt
        """,
    )
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [tool]\n")
    hit("build", cwd=tmp_path)
    assert (tmp_path / "default" / "share" / "msg.txt").read_text() == "one\n"
    assert _noop_in_child(tmp_path, "build", "-q")[-1] == "False []"
    r = hit("build", cwd=tmp_path)
    assert "tool/" in r.err and "built in" in r.err
    assert (tmp_path / "default" / "share" / "msg.txt").read_text() == "two\n"


def test_the_memo_names_the_same_paths_of_a_source_folder_as_resolving_walked(tmp_path):
    """memo.save takes a path source's listing from resolving's walk (resolvecache): the
    same paths as memo.tree's own walk, with `.git` left out and links not followed."""
    from hdmodules.build.memo import tree
    from hdmodules.spec import resolvecache

    root = tmp_path / "src"
    for d in ("a/b", ".git/objects", "c"):
        (root / d).mkdir(parents=True)
    for f in ("top.txt", "a/x.c", "a/b/y.h", ".git/HEAD", "c/.gitignore"):
        (root / f).write_text(f)
    (root / "to-dir").symlink_to("a")
    (root / "to-file").symlink_to("top.txt")
    (root / "dangling").symlink_to("nowhere")
    resolvecache.tree_hash(root)
    walked: dict[str, None] = {}
    tree(root, walked)
    assert sorted(resolvecache.listing(str(root))) == sorted(walked)
    seen = resolvecache.seen()
    for path in walked:  # each stamp as memo.stamps takes it (links: stated anew)
        if not os.path.islink(path):
            st = os.stat(path)
            assert seen[path] == (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        else:
            assert path not in seen


def test_the_console_script_answers_a_no_op_in_full_through_pipes(hit, demo):
    """The console script leaves at once after a no-op (no interpreter teardown): what it
    printed still reaches both pipes, as the full path prints it."""
    full = hit("build", cwd=demo)
    code = "import sys; from hdmodules.cli.entry import hit; sys.exit(hit())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as users run it
    fast = subprocess.run(
        [sys.executable, "-c", code, "build"], cwd=demo, capture_output=True, text=True, env=env
    )
    assert fast.returncode == 0
    assert fast.stdout == f"{demo / 'default'} -> {os.readlink(demo / 'default')} (up to date)\n"
    presents = [ln for ln in fast.stderr.splitlines() if "present" in ln]
    assert len(presents) == len([ln for ln in full.err.splitlines() if ln.startswith("[")])


def test_hit_leaves_at_once_with_its_output_and_exit_code_whole(home, demo):
    """`hit` exits without the interpreter's teardown (cli/common.leave): what a command
    printed still reaches block-buffered pipes, and its exit code is kept. (In the test's
    own home: without it, it built into the user's ~/.hashdist.)"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as users run it
    cmd = [sys.executable, "-m", "hdmodules.cli.hit"]
    built = subprocess.run([*cmd, "build"], cwd=demo, capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stderr
    assert built.stdout == f"{demo / 'default'} -> {os.readlink(demo / 'default')}\n"
    assert "libcore/" in built.stderr and "profile" in built.stderr
    bad = subprocess.run([*cmd, "build", "nope.yaml"], cwd=demo, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("hit: error: ")


EXTRA = """
version: "1"
build: |
  mkdir -p "$ARTIFACT/bin"
  printf '#!/bin/sh\\necho extra\\n' > "$ARTIFACT/bin/extra"
  chmod +x "$ARTIFACT/bin/extra"
"""


def _console_hit(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`hit ARGS` as the console script runs it (cli/entry.py: the no-op fast path first)."""
    code = "import sys; from hdmodules.cli.entry import hit; sys.exit(hit())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _edit_while_building(tmp_path: Path, edit) -> None:
    """Run `hit build` in `tmp_path` (a profile with blocking_recipe's package) and call
    `edit()` while that package builds; the build then ends successfully."""
    proc = hit_proc("build", cwd=tmp_path)
    wait_for(tmp_path / "pid")
    edit()
    (tmp_path / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def test_a_profile_edited_while_it_builds_is_seen_by_the_next_build(hit, tmp_path):
    """A package added to the profile YAML during a long `hit build` (an editor saving) is
    built by the next `hit build`: that one is never answered as a no-op of the old YAML."""
    profile = blocking_recipe(tmp_path)
    write_recipe(tmp_path / "pkgs", "extra", EXTRA)
    _edit_while_building(
        tmp_path, lambda: write_profile(profile, "package_dirs: [pkgs]\npackages: [slow, extra]\n")
    )
    r = _console_hit(tmp_path, "build")
    assert r.returncode == 0 and "extra/" in r.stderr, r.stdout + r.stderr
    assert (tmp_path / "default" / "bin" / "extra").exists()


def test_a_recipe_put_first_in_the_package_dirs_while_building_is_seen(hit, tmp_path):
    """A recipe added during a build to a package dir searched before the one that had it
    (a site's override) is what the next `hit build` uses."""
    first = tmp_path / "first"
    first.mkdir()
    blocking_recipe(tmp_path)
    write_profile(tmp_path / "default.yaml", "package_dirs: [first, pkgs]\npackages: [slow]\n")
    override = 'version: "2"\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n  echo 2 > "$ARTIFACT/bin/v2"\n'
    _edit_while_building(tmp_path, lambda: write_recipe(first, "slow", override))
    r = _console_hit(tmp_path, "build")
    assert r.returncode == 0 and "built in" in r.stderr, r.stdout + r.stderr
    assert (tmp_path / "default" / "bin" / "v2").exists()


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("how", ["module", "console"])
def test_output_that_cannot_be_written_is_one_clear_error(hit, demo, how, unbuffered):
    """`hit build > /dev/full` (a full disk under a redirected stdout): its answer is lost, so
    it says so in one line and exits 1, never a traceback, on the full path (`python -m`,
    cli/common.leave) and on the console script's no-op path (cli/entry.py); with output
    buffered (as users run it) and with PYTHONUNBUFFERED=1 (each print written at once)."""
    if how == "console":
        hit("build", cwd=demo)  # the next one is a no-op
    code = "import sys; from hdmodules.cli.entry import hit; sys.exit(hit())"
    module = [sys.executable, "-m", "hdmodules.cli.hit"]
    cmd = [sys.executable, "-c", code] if how == "console" else module
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [*cmd, "build"], cwd=demo, stdout=full, stderr=subprocess.PIPE, text=True, env=env
        )
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1].startswith("hit: error: "), r.stderr
    assert r.stderr.count("hit: error: ") == 1, r.stderr


# a compiler whose `--version` (run while resolving, to check its pin) waits while `hold`
# exists until `go` does: a hook in the middle of resolving
HOLDING_CC = """#!/bin/sh
if [ "$1" = --version ]; then
  if [ -e {dir}/hold ]; then touch {dir}/asked; while [ ! -e {dir}/go ]; do sleep 0.05; done; fi
  echo "holdcc 1.0"; exit 0
fi
exec /usr/bin/gcc "$@"
"""


@pytest.mark.parametrize("edit", ["profile", "config", "recipe"])
def test_an_input_edited_while_resolving_is_seen_by_the_next_build(hit, home, tmp_path, edit):
    """The memo keeps the stamp each input had before resolving read it: the profile YAML,
    the home's config.yaml or a package dir's listing edited while `hit build` resolves
    (after it was read, before the build starts) is a change to the next `hit build`, never
    answered as a no-op of what was read."""
    cc = tmp_path / "holdcc"
    cc.write_text(HOLDING_CC.format(dir=tmp_path))
    cc.chmod(0o755)
    write_recipe(tmp_path / "pkgs", "one", EXTRA.replace("extra", "one"))
    write_recipe(tmp_path / "pkgs", "extra", EXTRA)
    (tmp_path / "first").mkdir()
    profile = write_profile(
        tmp_path / "default.yaml",
        f"""
        package_dirs: [first, pkgs]
        externals:
          hold: {{kind: compiler, version: "1.0", commands: {{cc: {cc}}}}}
        toolchain: {{compiler: hold}}
        packages: [one]
        """,
    )
    hit("build", "--repin", cwd=tmp_path)  # pins it: rewrites the profile and reads it again
    assert _noop_in_child(tmp_path, "build")[-1] == "True []"
    os.utime(profile)  # a new stamp, the same content: the next build resolves in full
    (tmp_path / "hold").touch()
    proc = hit_proc("build", cwd=tmp_path)
    wait_for(tmp_path / "asked")  # resolving: the YAML files read, recipes looked up
    if edit == "profile":
        text = profile.read_text().replace("packages: [one]", "packages: [one, extra]")
        profile.write_text(text)
    elif edit == "config":
        set_config(home, "jobs: 3\n")
    elif edit == "recipe":  # a recipe put first in the search order
        write_recipe(tmp_path / "first", "one", EXTRA)
    (tmp_path / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (tmp_path / "hold").unlink()
    assert _noop_in_child(tmp_path, "build")[-1] == "False []"
    hit("build", cwd=tmp_path)  # builds what the edit asks for
    assert (tmp_path / "default" / "bin" / "extra").exists() == (edit != "config")


def test_hit_gc_removes_the_memos_of_profiles_that_are_gone(hit, home, tmp_path):
    """A memo is written for every profile path ever built (a CI job's checkout, a scratch
    folder): `hit gc` removes those whose YAML is gone, and keeps the others."""
    jobs = [copy_demo(tmp_path / f"job{i}") for i in range(3)]
    for job in jobs:
        hit("build", "-q", cwd=job)
    assert len(list((home / ".cache").glob("build-*.memo"))) == 3
    shutil.rmtree(jobs[0])
    shutil.rmtree(jobs[1])
    hit("gc")
    assert len(list((home / ".cache").glob("build-*.memo"))) == 1
    assert _noop_in_child(jobs[2], "build", "-q")[-1] == "True []"  # the one kept serves


def test_a_commit_made_while_resolving_is_built_by_the_next_build(hit, tmp_path):
    """A package built from a checkout's branch: a commit made while `hit build` resolves
    (after git said where the branch was) is built by the next `hit build`, never answered
    as a no-op of the commit resolved before it."""
    cc = tmp_path / "holdcc"
    cc.write_text(HOLDING_CC.format(dir=tmp_path))
    cc.chmod(0o755)
    recipe = 'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n  cp msg "$ARTIFACT/bin/msg"\n'
    write_recipe(tmp_path / "pkgs", "tool", recipe)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "msg").write_text("one\n")
    git(repo, "add", "msg")
    git(repo, "commit", "-qm", "one")
    profile = write_profile(
        tmp_path / "default.yaml",
        f"""
        package_dirs: [pkgs]
        externals:
          hold: {{kind: compiler, version: "1.0", commands: {{cc: {cc}}}}}
        toolchain: {{compiler: hold}}
        packages:
          tool: {{git: ./repo, branch: main}}
        """,
    )
    hit("build", "--repin", cwd=tmp_path)
    os.utime(profile)  # the full path next
    (tmp_path / "hold").touch()
    proc = hit_proc("build", cwd=tmp_path)
    wait_for(tmp_path / "asked")  # resolving: the branch was resolved to its commit
    (repo / "msg").write_text("two\n")
    git(repo, "commit", "-qam", "two")
    (tmp_path / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (tmp_path / "hold").unlink()
    assert _noop_in_child(tmp_path, "build")[-1] == "False []"
    hit("build", cwd=tmp_path)
    assert (tmp_path / "default" / "bin" / "msg").read_text() == "two\n"


def test_a_compiler_replaced_while_resolving_is_drift_to_the_next_build(hit, tmp_path):
    """The compiler's pin is checked, then (while the MPI's is checked: held here in its
    wrapper's `-v`) the compiler is replaced, as a package upgrade would: the next `hit
    build` reports the drift, never a no-op that hides it."""
    cc = tmp_path / "cc"
    compiler = (
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "cc 1.0"; exit 0; fi\nexec gcc{} "$@"\n'
    )
    cc.write_text(compiler.format(""))
    mpicc = tmp_path / "mpicc"  # an MPICH wrapper whose `-v` waits like HOLDING_CC
    wait = f"[ -e {tmp_path}/hold ] && touch {tmp_path}/asked && until [ -e {tmp_path}/go ]"
    mpicc.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = -v ] && {{ {wait}; do sleep 0.05; done; echo "MPICH version 4.0"; exit 0; }}\n'
        f'[ "$1" = -show ] && {{ echo "{cc} -lmpi"; exit 0; }}\n'
        "exit 1\n"
    )
    for f in (cc, mpicc):
        f.chmod(0o755)
    recipe = 'version: "1"\ntoolchain: [mpi]\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n'
    write_recipe(tmp_path / "pkgs", "tool", recipe)
    profile = write_profile(
        tmp_path / "default.yaml",
        f"""
        package_dirs: [pkgs]
        externals:
          cc1: {{kind: compiler, version: "1.0", commands: {{cc: {cc}}}}}
          mp: {{kind: mpi, version: "4.0", commands: {{mpicc: {mpicc}}}}}
        toolchain: {{compiler: cc1, mpi: mp}}
        packages: [tool]
        """,
    )
    hit("build", "--repin", cwd=tmp_path)
    os.utime(profile)  # the full path next
    (tmp_path / "hold").touch()
    proc = hit_proc("build", cwd=tmp_path)
    wait_for(tmp_path / "asked")  # the compiler's pin checked, the MPI's being checked
    cc.write_text(compiler.format(" -O0"))
    (tmp_path / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (tmp_path / "hold").unlink()
    r = hit("build", cwd=tmp_path, check=False)
    assert r.code == 1 and "external cc1 (compiler) is not what it was pinned as" in r.err


def test_a_source_file_edited_once_hashed_is_a_change_to_the_memo(tmp_path, monkeypatch):
    """A path source that is a file (beside the recipe): the memo keeps the stamp it had
    before resolving hashed it, so an edit made once it was hashed, while the rest
    resolves (a big source folder after it), is a change to the next no-op check. (A hit
    build whose resolution hashes 1 GB after it showed the no-op of the old file.)"""
    from hdmodules.spec import recipes, resolvecache
    from hdmodules.spec.profiles import load_profile
    from hdmodules.spec.resolve import resolve

    msg = tmp_path / "pkgs" / "msg.txt"
    write_recipe(tmp_path / "pkgs", "tool", 'version: "1"\nsources: [{path: msg.txt}]\nbuild: x\n')
    msg.write_text("one\n")
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [tool]\n")
    real = recipes.sha256_file

    def hashed_then_edited(path):
        digest = real(path)
        msg.write_text("two, longer\n")
        return digest

    monkeypatch.setattr(recipes, "sha256_file", hashed_then_edited)
    resolve(load_profile(profile))
    st = msg.stat()
    now = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
    assert resolvecache.seen()[str(msg)] != now  # what memo.save writes for it
