"""A real non-root user building on top of the site store that root built with hdmod."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import copy_demo, need
from tests.module_tools import LMOD_INIT, available
from tests.site_users import GROUP, HOME, USER, install_for_user, sh, user_project, write_as_user
from tests.site_users import as_user as run_as_user


@pytest.fixture(scope="module")
def world():
    install_for_user()
    base = Path(tempfile.mkdtemp(prefix="hdmod-site-", dir="/var/tmp"))
    base.chmod(0o755)
    copy_demo(base / "demo")
    hd = [sys.executable, "-m", "hdmodules.cli.hdmod"]
    sh(*hd, "externals", "detect", "--write", str(base / "demo" / "externals.yaml"))
    site = base / "demo" / "site.yaml"
    site.write_text(site.read_text() + f'permissions:\n  group: {GROUP}\n  mode: "0750"\n')
    root = base / "root"
    sh(*hd, "build", str(site), "--root", str(root), timeout=600)
    home = HOME
    proj = user_project(home / "proj", root / "stacks" / "gcc12.yaml")
    yield {"root": root, "home": home, "proj": proj, "site": site}
    subprocess.run(["rm", "-rf", str(home / ".hashdist"), str(proj)])
    shutil.rmtree(base, ignore_errors=True)


def as_user(world, *cmd, env_extra=(), cwd=None):
    return run_as_user(*cmd, root=world["root"], cwd=cwd or world["proj"], env_extra=env_extra)


def test_user_builds_only_their_package_on_the_site_stack(world):
    r = as_user(world, "hit", "build")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("built in") == 1 and "greet/" in r.stderr  # the rest is the site's
    assert "module written" in r.stderr
    profile = world["proj"] / "default"
    for prog, expect in (("greet", "greet: liba on top of libcore"), ("app", "Hello from app")):
        out = as_user(world, str(profile / "bin" / prog))
        assert out.returncode == 0 and out.stdout.startswith(expect), out.stderr
    greet = next((world["home"] / ".hashdist" / "bld" / "greet").iterdir())
    st = (greet / "bin" / "greet").stat()
    assert st.st_uid == int(sh("id", "-u", USER).stdout) and st.st_mode & 0o077 == 0  # private
    assert stat.S_IMODE(st.st_mode) & 0o222 == 0
    # the site store is group-readable, never world-writable, read-only
    app = next((world["root"] / "bld" / "app").iterdir())
    mode = stat.S_IMODE((app / "bin" / "app").stat().st_mode)
    assert mode & 0o040 and not mode & 0o222 and not mode & 0o007
    r = as_user(world, "hit", "build")
    assert r.returncode == 0 and "(up to date)" in r.stdout


def test_user_modules_load_after_the_site_compiler(world):
    need(available("lmod"), "Lmod")
    as_user(world, "hit", "build")
    script = (f"source {LMOD_INIT}; module use {world['root']}/modules/lmod/Core; "
              "module load gcc/12.2.0 greet && greet")  # fmt: skip
    r = as_user(world, "bash", "--noprofile", "--norc", "-c", script)
    assert r.returncode == 0 and "greet: liba on top of libcore" in r.stdout, r.stderr


def test_building_into_or_collecting_the_site_store_is_refused(world):
    site_home = [f"HIT_HOME={world['root']}"]
    for cmd in (("hit", "build"), ("hit", "gc")):
        r = as_user(world, *cmd, env_extra=site_home)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"you cannot write to {world['root']}" in r.stderr and "upstreams:" in r.stderr
    r = as_user(world, "hit", "gc", "--list", env_extra=site_home)  # reading is fine
    assert r.returncode == 0 and "profiles/gcc12" in r.stdout


def test_site_gc_keeps_what_a_user_uses(world):
    as_user(world, "hit", "build")
    env = {**os.environ, "HIT_HOME": str(world["root"])}
    env.pop("HIT_SITE_CONFIG", None)
    hit = [sys.executable, "-m", "hdmodules.cli.hit"]
    listed = sh(*hit, "gc", "--list", env=env).stdout
    assert f"{world['proj'] / 'default'}  (a user's profile, alive: uses 4 artifact(s))" in listed
    sh(*hit, "rm", str(world["root"] / "profiles" / "gcc12"), env=env)  # the site drops a stack
    r = sh(*hit, "gc", env=env)
    assert "kept what 1 user profile(s) use" in r.stderr
    assert "1 user profile(s) using this store" in r.stdout  # and said why
    assert (world["root"] / "bld" / "liba").exists()
    out = as_user(world, str(world["proj"] / "default" / "bin" / "greet"))
    assert out.returncode == 0, out.stderr
    # the user's own gc touches only the user's store
    r = as_user(world, "hit", "gc")
    assert r.returncode == 0 and (world["root"] / "bld" / "liba").exists()


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *cmd], capture_output=True, text=True)


def test_private_means_private_from_the_start(world):
    """With `private: true` (a user's default) nothing of the user's is readable by others:
    not the prefix of a build while it runs, not the log a failed build leaves, not the
    source cache, the memo, the usage stamps or the user's modulefiles."""
    proj = world["proj"]
    write_as_user(proj / "mypkgs" / "peek.yaml", 'version: "1"\nbuild: |\n'
                   '  mkdir -p "$ARTIFACT/share"\n'
                   '  stat -c %a "$ARTIFACT" .. > "$ARTIFACT/share/modes"\n')  # fmt: skip
    write_as_user(proj / "mypkgs" / "leaky.yaml",
                   'version: "1"\nbuild: |\n  echo "token=s3cr3t"\n  exit 1\n')  # fmt: skip
    write_as_user(proj / "peek.yaml", "package_dirs: [mypkgs]\npackages: [peek]\n")
    write_as_user(proj / "leaky.yaml", "package_dirs: [mypkgs]\npackages: [leaky]\n")
    assert as_user(world, "hit", "build", "peek.yaml").returncode == 0
    assert as_user(world, "hit", "build").returncode == 0  # a module written, sources cached
    r = as_user(world, "hit", "build", "leaky.yaml")
    assert r.returncode == 1 and "token=s3cr3t" in r.stderr  # the user sees their own log
    hd = world["home"] / ".hashdist"
    peek = next((hd / "bld" / "peek").iterdir())
    # while it ran, the prefix and the build folder were the user's only
    assert (peek / "share" / "modes").read_text().split() == ["700", "700"]
    log = next(hd.glob("tmp/leaky-*/build.log"))
    assert "s3cr3t" in log.read_text()
    for path in (hd, hd / "src", hd / "tmp", hd / "bld", hd / "gcroots"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (log, hd / "src", hd / ".cache", hd / "bld" / ".used", hd / "modules"):
        assert path.exists(), path
        r = _as_nobody("cat" if path.is_file() else "ls", str(path))
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r.stdout)


def test_users_records_cannot_hang_or_break_the_site_gc(world):
    """gcroots/users/ is writable by the site's group; what a user puts there is read by
    root's GC without following links or blocking, and a bad record is skipped by name."""
    folder = world["root"] / "gcroots" / "users"
    made = {
        "fifo.json": "mkfifo fifo.json",
        "zero.json": "ln -s /dev/zero zero.json",
        "big.json": "head -c 2000000 /dev/zero > big.json",
        "junk.json": "echo '[1, 2' > junk.json",
        "deep.json": 'python3 -c \'print("{\\"link\\": " + "[" * 200000 + "]" * 200000 '
        '+ ", \\"profile\\": \\"/p\\", \\"uses\\": []}")\' > deep.json',
        "nul.json": 'printf \'{"link": "/tmp/a\\\\u0000b", "profile": "/p", "uses": []}\''
        " > nul.json",
    }
    for cmd in made.values():
        sh("runuser", "-u", USER, "--", "bash", "-c", f"cd {folder} && {cmd}")
    env = {**os.environ, "HIT_HOME": str(world["root"])}
    env.pop("HIT_SITE_CONFIG", None)
    try:
        r = subprocess.run([sys.executable, "-m", "hdmodules.cli.hit", "gc", "--dry-run"],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        for name in made:
            assert f"skipped a user's record {folder / name}: " in r.stderr, (name, r.stderr)
        assert "fifo.json: not a regular file" in r.stderr
        assert "larger than" in r.stderr
    finally:
        for name in made:
            (folder / name).unlink(missing_ok=True)


def test_a_user_builds_on_the_mpi_stack_in_a_shell_with_the_site_s_modules_loaded(world):
    """A scientist's shell after `module load gcc/12.2.0 openmpi/4.1.4`: the gcc module's
    wrappers come first on PATH, and the MPI's fingerprint took the wrapper for the
    compiler its mpicc runs (`compiler: pinned '/usr/bin/x86_64-linux-gnu-gcc-12@...',
    found '.../wrappers/gcc/12.2.0/bin/gcc@...'`): every build of a user's package on the
    site's MPI stack failed its check there (the last trial). The pins name the real
    commands, past the modules' wrappers: it builds, and the program runs on two ranks. Last
    in this file: its profile is a second user's profile the site's gc tests do not count."""
    need(available("lmod"), "Lmod")
    proj = world["home"] / "mpiproj"
    sh("runuser", "-u", USER, "--", "mkdir", "-p", str(proj / "mypkgs" / "src"))
    hello = (Path(__file__).parent.parent / "site-configs/demo/src/mpi-hello/hello.c").read_text()
    write_as_user(proj / "mypkgs" / "src" / "hello.c", hello)
    recipe = (
        'version: "1.0"\nsources:\n  - path: src\ntoolchain: [mpi]\nbuild: |\n'
        '  "$MPICC" -O2 -o myhello hello.c\n  install -Dm755 myhello "$ARTIFACT/bin/myhello"\n'
    )
    write_as_user(proj / "mypkgs" / "myhello.yaml", recipe)
    stack = world["root"] / "stacks" / "gcc12-openmpi.yaml"
    write_as_user(
        proj / "default.yaml",
        f"extends: [{stack}]\npackage_dirs: [mypkgs]\npackages: {{myhello: }}\n",
    )
    script = (f"source {LMOD_INIT}; module use {world['root']}/modules/lmod/Core; "
              "module load gcc/12.2.0 openmpi/4.1.4 && command -v gcc && hit build && "
              "mpirun --oversubscribe -np 2 ./default/bin/myhello")  # fmt: skip
    r = as_user(world, "bash", "--noprofile", "--norc", "-c", script, cwd=proj)
    assert r.returncode == 0, r.stderr
    assert "/wrappers/" in r.stdout.splitlines()[0]  # the module's gcc, first on PATH
    assert r.stderr.count("built in") == 1 and "myhello/" in r.stderr
    assert r.stdout.count("hello from rank") == 2, r.stdout
