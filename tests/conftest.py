"""Shared fixtures: a private hit home per test, a copy of the demo, and running the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "site-configs" / "demo"
IN_CI = os.environ.get("CI") == "true"
# May the tests change this machine (install packages with apt, add a test user, start a
# Slurm cluster for the session)? Only when asked: CI, or HDMOD_TEST_SETUP=1 (the README's
# test command). A bare `python -m pytest` changes nothing and skips what is missing.
HOST_SETUP = IN_CI or os.environ.get("HDMOD_TEST_SETUP") == "1"
SETUP_SCRIPT = REPO / "tests" / "tools" / "setup-host.sh"


def pytest_sessionstart(session) -> None:
    """With HOST_SETUP, install what the tests need (tests/tools/setup-host.sh, idempotent)."""
    if not HOST_SETUP or os.geteuid() != 0:
        return
    r = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True)
    if r.returncode != 0:
        message = f"{SETUP_SCRIPT} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
        if IN_CI:
            pytest.exit(message, returncode=1)
        print(message, file=sys.stderr)


def need(condition: bool, what: str) -> None:
    """Skip locally when a real component is missing; under CI=true that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {what} is missing")
    hint = "" if HOST_SETUP else " (HDMOD_TEST_SETUP=1 lets the tests set it up)"
    pytest.skip(f"{what} is missing{hint}")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "hithome"
    monkeypatch.setenv("HIT_HOME", str(h))
    return h


def run_hit(*args: str, cwd: Path | None = None, check: bool = True, env=None, timeout=600) -> Run:
    """The real command line, in a child process, as a user would run it."""
    p = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    r = Run(p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in r.both, r.both
    if check:
        assert r.code == 0, f"hit {' '.join(args)} failed ({r.code}):\n{r.both}"
    return r


def run_hdmod(*args: str, check: bool = True, env=None, timeout: float = 900, cwd=None):
    """The real `hdmod` command line in a child process; never a traceback."""
    r = subprocess.run([sys.executable, "-m", "hdmodules.cli.hdmod", *args], cwd=cwd,
                       capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture
def hit(home):
    return run_hit


@pytest.fixture
def demo(tmp_path) -> Path:
    """A copy of site-configs/demo, so profile links land in tmp, not in the repo."""
    return copy_demo(tmp_path / "demo")


# what a person's own session in site-configs/demo leaves there (README: A first session)
DEMO_LEFTOVERS = ("default", "release", "debug", "old_profile", "bld", "externals.yaml")


def copy_demo(dest: Path) -> Path:
    """A copy of site-configs/demo without the links, build folders and detected externals
    a person's own session there leaves behind; returns `dest`."""
    shutil.copytree(DEMO, dest, ignore=shutil.ignore_patterns(*DEMO_LEFTOVERS))
    return dest


# demo stacks in which app is built twice (the second with another greeting), so its two
# artifacts share one module name: `app/1.0-<hash>` each, with an explicit default
TWO_APPS = """  one:
    compiler: gcc-12
    packages: [libcore, liba, libb, app]
  two:
    compiler: gcc-12
    packages:
      libcore:
      liba:
      libb:
      app: {parameters: {greeting: Howdy}}
"""


def demo_site(tmp: Path, stacks: str | None = None) -> Path:
    """A copy of the demo site with this machine's externals detected; `stacks` (YAML text)
    replaces its stacks. Returns the site.yaml."""
    demo = tmp / "demo"
    copy_demo(demo)
    run_hdmod("externals", "detect", "--write", str(demo / "externals.yaml"))
    text = (demo / "site.yaml").read_text()
    if stacks is not None:
        head, _, rest = text.partition("stacks:\n")
        text = head + "stacks:\n" + stacks + "modules:" + rest.split("modules:", 1)[1]
    (demo / "site.yaml").write_text(text)
    return demo / "site.yaml"


GIT = ["git", "-c", "user.email=dev@example.org", "-c", "user.name=Dev"]


def git(repo: Path, *args: str) -> str:
    """`git -C repo ARGS` with a fixed author; its stripped stdout. Raises CalledProcessError."""
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """`git init` (if needed), add everything in `repo` and commit it; the commit's hash."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def write_recipe(pkgdir: Path, name: str, text: str) -> Path:
    pkgdir.mkdir(parents=True, exist_ok=True)
    f = pkgdir / f"{name}.yaml"
    f.write_text(textwrap.dedent(text).lstrip())
    return f


def write_profile(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def set_config(home: Path, text: str) -> None:
    """The home's config.yaml says `text` and nothing else (every other key at its default)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(textwrap.dedent(text).lstrip())


def artifact_ids(home: Path, name: str) -> set[str]:
    """The ids of the installed artifacts of package `name` in the home's store."""
    folder = home / "bld" / name
    found = folder.glob("*/.hit/manifest.json") if folder.is_dir() else []
    return {json.loads((m.parent / "build.json").read_text())["id"] for m in found}


def run_clean(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run with an empty environment (`env -i`): no LD_LIBRARY_PATH, nothing inherited."""
    return subprocess.run(["env", "-i", *cmd], capture_output=True, text=True, **kw)


# --- processes of a test: builds started, waited for, killed ---------------------------------


def hit_proc(*args, cwd=None) -> subprocess.Popen:
    """`hit ARGS` started in its own session (so a test can kill it alone), pipes open."""
    return subprocess.Popen(
        [sys.executable, "-m", "hdmodules.cli.hit", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def blocking_recipe(tmp_path: Path) -> Path:
    """A build that writes part of its output, then blocks until the file `go` exists."""
    write_recipe(
        tmp_path / "pkgs",
        "slow",
        f"""
        version: "1"
        build: |
          echo $$ > {tmp_path}/pid
          mkdir -p "$ARTIFACT/bin"
          echo partial > "$ARTIFACT/bin/partial"
          while [ ! -e {tmp_path}/go ]; do sleep 0.1; done
          echo $$ >> {tmp_path}/finished
          echo done > "$ARTIFACT/bin/done"
        """,
    )
    return write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [slow]\n")


def wait_for(path: Path, seconds: float = 30) -> None:
    """Wait until `path` exists; fail the test after `seconds`."""
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def read_pid(path: Path, seconds: float = 30) -> int:
    """The pid a build script wrote to `path` (`echo $$ > path`), once its line is whole: the
    shell makes the file before it writes the line (reading it at once read ''); fail the
    test after `seconds`."""
    end = time.monotonic() + seconds
    while True:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        assert time.monotonic() < end, f"{path} never held a whole line"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def tools():
    """The real Lmod and Environment Modules, installed if the run may change the host
    (HOST_SETUP); missing ones skip the test (fail under CI)."""
    from tests.module_tools import available, ensure_installed

    try:
        ensure_installed()
    except RuntimeError as e:
        need(False, f"Lmod and Environment Modules ({e})")
    need(available("lmod") and available("tcl"), "Lmod and Environment Modules")


@pytest.fixture(scope="module")
def slurm_cluster():
    """The local one-node Slurm cluster (tests/slurm_cluster.py), started for the module's
    tests and stopped after if it was not up before."""
    from tests.slurm_cluster import cluster_up, ensure_cluster, stop_cluster

    try:
        started = ensure_cluster()
    except RuntimeError as e:
        need(False, f"a local Slurm cluster ({e})")
    need(cluster_up(), "a local Slurm cluster")
    yield
    if started:
        stop_cluster()


def record_store_events(monkeypatch, events: list, syncfs_works: bool = True) -> None:
    """Append to `events` the store's flushes ("syncfs", path), manifest renames ("rename",
    destination) and tree removals ("remove", path), in order, each still done for real
    (the real syncfs of this machine's C library); with `syncfs_works` False, syncfs says
    it is not there (the store falls back to an fsync of each file)."""
    from hdmodules.store import files, layout

    real_replace, real_syncfs, real_remove = os.replace, layout._syncfs, layout.remove_tree

    def replace(src, dst, **kw):
        events.append(("rename", str(dst)))
        return real_replace(src, dst, **kw)

    def syncfs(path):
        if not syncfs_works:
            return False
        assert real_syncfs(path)
        events.append(("syncfs", str(path)))
        return True

    def remove_tree(path):
        events.append(("remove", str(path)))
        return real_remove(path)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(layout, "_syncfs", syncfs)
    monkeypatch.setattr(files, "remove_tree", remove_tree)  # what remove_trees calls
    monkeypatch.setattr(layout, "remove_tree", remove_tree)
