"""A real non-root user of a site that root builds with hdmod: the test user and group, a
venv of this checkout that the user can run, and commands run as that user
(tests/test_users.py, tests/test_site_life.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from tests.conftest import DEMO, DEMO_LEFTOVERS, HOST_SETUP, REPO, need

USER, GROUP = "hduser", "hdsite"
GREET_C = (
    "#include <stdio.h>\n#include <a.h>\n"
    'int main(void){printf("greet: %s\\n", a_describe());return 0;}\n'
)
GREET = """version: "0.1"
description: A user's own package on top of the site stack
sources: [{path: src}]
dependencies: [liba]
build: |
  gcc $CPPFLAGS -o greet greet.c $LDFLAGS -la
  install -Dm755 greet "$ARTIFACT/bin/greet"
"""
# one venv per checkout: test runs of two worktrees never install into each other's
VENV = Path(f"/var/tmp/hdmod-user-venv-{hashlib.sha256(str(REPO).encode()).hexdigest()[:8]}")
HOME = Path(f"/home/{USER}")


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    """Run `cmd` (as root); fail the test unless it exits 0."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r


def need_user() -> None:
    """Skip (fail under CI) unless the tests may add a user and root runs them, with the
    tools the site tests use."""
    need(HOST_SETUP, "permission to add a test user and a venv in /var/tmp")
    need(os.geteuid() == 0, "root (to create a user)")
    need(bool(shutil.which("runuser") and shutil.which("useradd")), "runuser and useradd")
    need(bool(shutil.which("gcc-11") and shutil.which("mpicc.openmpi")), "gcc-11 and Open MPI")


@cache
def install_for_user() -> None:
    """The test user (in the group GROUP) and this checkout installed into VENV, which the
    user can run (root's Python under /root is private to root); once a test session."""
    need_user()
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        sh("useradd", "-m", "-G", GROUP, "-s", "/bin/bash", USER)
    if not (VENV / "bin" / "python").exists():
        sh("/usr/bin/python3", "-m", "venv", str(VENV))
    src = Path(tempfile.mkdtemp(prefix="hdmod-src-", dir="/var/tmp"))
    leftovers = shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", ".pytest_cache")

    def skip(folder: str, names: list[str]) -> set[str]:  # ./build, not hdmodules/build
        top = {"build", "dist"} if Path(folder) == REPO else set()
        demo = set(DEMO_LEFTOVERS) if Path(folder) == DEMO else set()
        return leftovers(folder, names) | (top | demo) & set(names)

    try:
        shutil.copytree(REPO, src / "repo", ignore=skip)
        sh(str(VENV / "bin" / "pip"), "install", "-q", str(src / "repo"), timeout=600)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def as_user(
    *cmd: str, root: Path, cwd: Path, env_extra=(), home: Path = HOME
) -> subprocess.CompletedProcess:
    """`cmd` run as USER in `cwd`, with an empty environment but HOME, a PATH with VENV's
    `hit` first, and the site `root`'s defaults (HIT_SITE_CONFIG)."""
    env = [f"HOME={home}", f"PATH={VENV}/bin:/usr/bin:/bin",
           f"HIT_SITE_CONFIG={root}/user-config.yaml", *env_extra]  # fmt: skip
    return subprocess.run(
        ["runuser", "-u", USER, "--", "env", "-i", *env, *cmd],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def write_as_user(path: Path, text: str) -> None:
    """Write `path` as USER (so it is the user's file, in a folder of the user's)."""
    sh("runuser", "-u", USER, "--", "bash", "-c", f'cat > "{path}"', input=text)


def user_project(proj: Path, stack: Path) -> Path:
    """The user's project `proj`, made as USER: mypkgs/greet.yaml (the user's own package,
    on the stack's liba) and default.yaml, which extends the site's stack file `stack` and
    adds greet. Returns `proj`."""
    sh("runuser", "-u", USER, "--", "mkdir", "-p", str(proj / "mypkgs" / "src"))
    profile = f"extends: [{stack}]\npackage_dirs: [mypkgs]\npackages: {{greet: }}\n"
    write_as_user(proj / "mypkgs" / "src" / "greet.c", GREET_C)
    write_as_user(proj / "mypkgs" / "greet.yaml", GREET)
    write_as_user(proj / "default.yaml", profile)
    return proj
