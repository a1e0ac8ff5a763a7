"""`hit build -j N` is a budget of N CPUs: one GNU make jobserver shared by every build of
the run (hdmodules/build/jobserver.py), with real make, recursive make, a configure script
and CMake's generated Makefiles; `--concurrent-packages` caps the packages built at once."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import need, run_hdmod, set_config, write_profile, write_recipe

# One job of a Makefile: present in DIR/run while it runs, it counts who else is (each job
# that starts sees every job still running: the largest count is the most at once), then
# sleeps and runs the rest of its arguments (a compiler, for CMake's launcher).
SLOT = """\
#!/bin/sh
dir=$1 name=$2
shift 2
mkdir -p "$dir/run"
touch "$dir/run/$name.$$"
ls "$dir/run" | wc -l >> "$dir/counts"
sleep 0.3
code=0
[ $# -eq 0 ] || "$@" || code=$?
rm -f "$dir/run/$name.$$"
exit $code
"""

TARGETS = " ".join(f"t{i}" for i in range(1, 9))


def _makefile(slot: Path, dir: Path, name: str, fail: str = "") -> str:
    """A Makefile of eight independent jobs (`fail`: the one that exits 1)."""
    rules = f"all: {TARGETS}\n"
    for t in TARGETS.split():
        rules += f"{t}:\n\t@sh {slot} {dir} {name}-{t}{' false' if t == fail else ''}\n"
    return rules


def _stack(tmp: Path, counting: Path, fail: bool = False) -> Path:
    """Three independent packages, each eight jobs of `counting` deep: a configure script
    writing a Makefile (autotools), a recursive make (`make`) and CMake with a compiler
    launcher (cmake). With `fail`, a fourth whose make fails one job while others run."""
    slot = tmp / "slot.sh"
    slot.write_text(SLOT)
    src = tmp / "pkgs" / "src"
    auto = src / "configured"
    auto.mkdir(parents=True)
    (auto / "configure").write_text(
        "#!/bin/sh\n# like autoconf's: its own descriptors 5 and 6\nexec 5>config.log 6>&1\n"
        f"cat > Makefile <<'EOF'\n{_makefile(slot, counting, 'auto')}"
        "install:\n\tmkdir -p $(PREFIX)/share && touch $(PREFIX)/share/configured\nEOF\n"
        'echo "PREFIX = $2" >> Makefile\n'
    )
    (auto / "configure").chmod(0o755)
    rec = src / "recursive"
    (rec / "sub").mkdir(parents=True)
    (rec / "Makefile").write_text(
        "all:\n\t$(MAKE) -C sub\n"
        "install:\n\tmkdir -p $(PREFIX)/share && touch $(PREFIX)/share/recursive\n"
    )
    (rec / "sub" / "Makefile").write_text(_makefile(slot, counting, "rec"))
    cm = src / "cmaked"
    cm.mkdir()
    files = [f"f{i}.c" for i in range(1, 9)]
    for i, f in enumerate(files):
        (cm / f).write_text(f"int f{i}(void) {{ return {i}; }}\n")
    (cm / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(cmaked C)\n"
        f"add_library(cmaked SHARED {' '.join(files)})\ninstall(TARGETS cmaked)\n"
    )
    launcher = f"-DCMAKE_C_COMPILER_LAUNCHER=sh;{slot};{counting};cc"
    recipes = {
        "configured": "build_system: autotools\n",
        "recursive": "build_system: make\n",
        "cmaked": f"build_system: cmake\ncmake_args: [{launcher!r}]\n",
    }
    for name, body in recipes.items():
        write_recipe(tmp / "pkgs", name, f'version: "1"\nsources:\n  - path: src/{name}\n{body}')
    names = list(recipes)
    if fail:
        failing = tmp / "failing.mk"
        failing.write_text(_makefile(slot, tmp / "elsewhere", "bad", fail="t2"))
        write_recipe(tmp / "pkgs", "failing", f'version: "1"\nbuild: make -f {failing}\n')
        names.append("failing")
    return write_profile(tmp / "default.yaml", f"package_dirs: [pkgs]\npackages: {names}\n")


def _most_at_once(counting: Path) -> int:
    return max(int(n) for n in (counting / "counts").read_text().split())


def _tools() -> None:
    for tool in ("make", "cmake", "cc"):
        need(shutil.which(tool) is not None, tool)


def test_every_make_of_every_build_shares_the_budget(hit, tmp_path):
    """-j 2: the three packages build side by side, yet no more than two jobs of all their
    makes (recursive, after a configure script, CMake's) run at once (each build used to
    run make -j2 of its own: up to 4), and more than one does at some point."""
    _tools()
    counting = tmp_path / "counting"
    profile = _stack(tmp_path, counting)
    hit("build", "-j", "2", str(profile))
    counts = [int(n) for n in (counting / "counts").read_text().split()]
    assert len(counts) >= 24  # every job of the three makes ran (and CMake's 8 compiles)
    assert max(counts) == 2, counts
    assert (tmp_path / "default" / "lib" / "libcmaked.so").exists()
    assert (tmp_path / "default" / "share" / "recursive").exists()


def test_a_failing_make_gives_its_tokens_back(hit, tmp_path):
    """A build whose make fails while its other jobs run: the run fails, naming it; every
    token came back (the run counts them once no build runs, and would say it put back any
    a make kept), and so did the scheduler's own."""
    _tools()
    counting = tmp_path / "counting"
    profile = _stack(tmp_path, counting, fail=True)
    r = hit("build", "-j", "3", str(profile), check=False)
    assert r.code != 0 and "failing" in r.err
    assert "jobserver token" not in r.err
    assert _most_at_once(counting) <= 3


def test_tokens_a_killed_make_kept_are_put_back(hit, tmp_path):
    """A make killed (SIGKILL) while it holds tokens cannot give them back: once no build
    runs the run counts the pool and tops it up, so the two builds after it still run
    side by side (with one token lost they would run one at a time)."""
    _tools()
    slot = tmp_path / "slot.sh"
    slot.write_text(SLOT)
    counting = tmp_path / "counting"
    leak = tmp_path / "leak.mk"
    leak.write_text(_makefile(slot, tmp_path / "leaking", "leak"))
    write_recipe(
        tmp_path / "pkgs",
        "leaky",
        f"""\
        version: "1"
        build: |
          make -f {leak} &
          until [ "$(ls {tmp_path}/leaking/run 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.05; done
          kill -9 $!
        """,
    )
    for name in ("after1", "after2"):
        mk = tmp_path / f"{name}.mk"
        mk.write_text(_makefile(slot, counting, name))
        write_recipe(
            tmp_path / "pkgs",
            name,
            f'version: "1"\ndependencies: [leaky]\nbuild: make -f {mk} t1 t2 t3\n',
        )
    profile = write_profile(
        tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [after1, after2]\n"
    )
    r = hit("build", "-j", "2", str(profile))
    assert "1 jobserver token(s) a killed make kept: put back" in r.err
    assert _most_at_once(counting) == 2


def test_concurrent_packages_caps_the_packages_not_the_cpus(hit, home, tmp_path):
    """--concurrent-packages 1 (or config.yaml's concurrent_packages: 1): one package at a
    time, each of whose makes still uses both CPUs of -j 2."""
    _tools()
    for how in ("option", "config"):
        work = tmp_path / how
        work.mkdir()
        counting = work / "counting"
        profile = _stack(work, counting)
        pkg = work / "pkg"  # a package is in pkg/run from before its configure to its end
        for name in ("configured", "recursive", "cmaked"):
            recipe = work / "pkgs" / f"{name}.yaml"
            enter = f"mkdir -p {pkg}/run && touch {pkg}/run/{name}"
            enter += f" && ls {pkg}/run | wc -l >> {pkg}/counts"
            leave = f"rm {pkg}/run/{name}"
            recipe.write_text(recipe.read_text() + f"pre_configure: {enter}\nbuild: {leave}\n")
        if how == "option":
            hit("build", "-j", "2", "--concurrent-packages", "1", str(profile))
        else:
            set_config(home, "concurrent_packages: 1\n")
            hit("build", "-j", "2", str(profile))
        assert _most_at_once(pkg) == 1, how
        assert _most_at_once(counting) == 2, how


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-j", "0"], "'-j' / '--jobs': 0 is not in the range x>=1"),
        (["--concurrent-packages", "0"], "'--concurrent-packages': 0 is not in the range x>=1"),
        (["--concurrent-packages", "two"], "'two' is not a valid integer"),
    ],
)
def test_bad_values_are_refused_with_one_message(hit, tmp_path, args, says):
    profile = write_profile(tmp_path / "default.yaml", "packages: []\n")
    r = hit("build", *args, str(profile), check=False)
    assert r.code == 2 and says in r.err
    r = run_hdmod("build", *args, str(profile), check=False)
    assert r.returncode == 2 and says in r.stderr


@pytest.mark.parametrize("jobs", ["100000", "99999999999999999999"])
def test_a_budget_no_jobserver_can_hold_is_refused_before_anything_builds(hit, tmp_path, jobs):
    """-j far past any machine's CPUs: one message and exit 1, nothing built, no jobserver
    folder left (its tokens did not fit the FIFO: -j 1000000 hung, a larger one was a
    traceback). `hdmod build` opens its jobserver the same way (open_jobserver)."""
    write_recipe(tmp_path / "pkgs", "one", 'version: "1"\nbuild: mkdir -p "$ARTIFACT/share"\n')
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [one]\n")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    r = hit("build", "-j", jobs, str(profile), check=False, env=env, timeout=60)
    assert r.code == 1 and "a build run's CPU budget is at most 4,096 CPUs" in r.err, r.err
    assert [x for x in r.err.splitlines() if x.startswith("hit: error:")] == r.err.splitlines()[-1:]
    assert not (Path(os.environ["HIT_HOME"]) / "bld" / "one").exists()
    assert not list(temp.iterdir())  # no hit-jobserver-* folder


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_concurrent_packages_in_config_yaml_is_refused(hit, home, tmp_path, value):
    set_config(home, f"concurrent_packages: {value}\n")
    profile = write_profile(tmp_path / "default.yaml", "packages: []\n")
    r = hit("build", str(profile), check=False)
    assert r.code != 0 and "'concurrent_packages' must be a positive whole number" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_the_auth_form_follows_the_make_a_build_runs(tmp_path):
    """make 4.4+ gets the fifo form; older (Debian bookworm's 4.3) the pipe form, with the
    descriptors it must inherit: 4.3 stops on the fifo form, which the real make shows."""
    from hdmodules.build.jobserver import Jobserver, auth_form, make_version

    assert auth_form((4, 3)) == "pipe" and auth_form((4, 4)) == "fifo"
    assert auth_form((5, 0)) == "fifo" and auth_form(None) == "pipe"
    need(shutil.which("make") is not None, "make")
    host = make_version(shutil.which("make"))
    assert host is not None and host >= (4, 0)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "make").write_text("#!/bin/sh\necho 'GNU Make 4.4.1'\n")
    (newer / "make").chmod(0o755)
    with Jobserver(3) as pool:
        assert pool.for_make(f"{newer}:/usr/bin:/bin").makeflags.endswith(f"fifo:{pool.fifo}")
        flags = pool.for_make("/usr/bin:/bin")
        assert (pool.fifo.stat().st_mode & 0o777, pool.folder.stat().st_mode & 0o777) == (
            0o600,
            0o700,
        )
        fifo_flags = f" -j3 --jobserver-auth=fifo:{pool.fifo}"
        mk = tmp_path / "Makefile"
        mk.write_text("all:\n\t@echo ran\n")
        env = {"PATH": "/usr/bin:/bin"}
        real = subprocess.run(
            ["make", "-f", str(mk)],
            env={**env, "MAKEFLAGS": flags.makeflags},
            pass_fds=flags.fds,
            capture_output=True,
            text=True,
        )
        assert real.returncode == 0 and "ran" in real.stdout and "warning" not in real.stderr
        if host < (4, 4):
            assert flags.fds and "--jobserver-auth=fifo:" not in flags.makeflags
            fifo = subprocess.run(
                ["make", "-f", str(mk)], env={**env, "MAKEFLAGS": fifo_flags},
                capture_output=True, text=True,
            )  # fmt: skip
            assert fifo.returncode != 0 and "invalid --jobserver-auth" in fifo.stderr
        else:
            assert flags.makeflags == fifo_flags and not flags.fds
    assert not pool.folder.exists()


def test_a_build_by_hand_gets_minus_j_jobs(hit, tmp_path):
    """`bash build.sh` (hit bdir) outside a `hit build`: MAKEFLAGS is -j$JOBS."""
    write_recipe(tmp_path / "pkgs", "show", 'version: "1"\nbuild: echo "MAKEFLAGS=[$MAKEFLAGS]"\n')
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [show]\n")
    hit("bdir", "show", str(tmp_path / "b"), "-p", str(profile))
    env = {"PATH": os.environ["PATH"], "JOBS": "3"}
    out = subprocess.run(["bash", str(tmp_path / "b" / "build.sh")], env=env, capture_output=True)
    assert b"MAKEFLAGS=[ -j3]" in out.stdout, out


def test_a_packed_slurm_job_shares_its_cpus_the_same_way(slurm_cluster, hit, home, tmp_path):
    """`hit build --slurm --pack`: one job builds the three packages with the same scheduler
    and one jobserver of its --cpus-per-task (2): no more than two jobs of their makes at
    once, more than one at some point."""
    _tools()
    counting = tmp_path / "counting"
    profile = _stack(tmp_path, counting)
    set_config(home, "slurm: {cpus: 2}\n")
    r = hit("build", "--slurm", "--pack", "10", "--wait", str(profile), timeout=900)
    assert "submitted 1 job(s) for 3 artifact(s)" in r.err
    assert _most_at_once(counting) == 2


def test_a_killed_runs_jobserver_folder_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """`hit build -j 2` killed with SIGKILL mid-build leaves its jobserver folder in TMPDIR
    (nothing of it runs to remove it); the next run that opens a jobserver removes it, and
    one that older code left (no `held` file) a minute after it was made, never the folder
    of a run still alive (it holds its `held` file's lock: whatever its machine, container
    or pid namespace) nor one being made."""
    import fcntl
    import signal
    import time

    from tests.conftest import blocking_recipe, hit_proc, read_pid, run_hit

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("HIT_HOME", str(tmp_path / "home"))
    profile = blocking_recipe(tmp_path)
    killed = hit_proc("build", "-j", "2", str(profile))
    read_pid(tmp_path / "pid")  # its build runs: its jobserver is open
    (left,) = [p for p in temp.iterdir() if p.name.startswith("hit-jobserver-")]
    assert (left / "fifo").exists() and (left / "held").exists()
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert left.exists()  # nothing removed it: the case this test is about

    alive, older, making = (temp / f"hit-jobserver-{n}" for n in ("alive", "older", "making"))
    for folder in (alive, older, making):
        folder.mkdir()
    held = os.open(alive / "held", os.O_RDWR | os.O_CREAT)  # a run alive elsewhere holds it
    fcntl.flock(held, fcntl.LOCK_EX)
    hour_ago = time.time() - 3600
    os.utime(older, (hour_ago, hour_ago))  # left by code from before `held`
    (tmp_path / "go").touch()
    one = write_profile(tmp_path / "one.yaml", "package_dirs: [pkgs]\npackages: [one]\n")
    write_recipe(tmp_path / "pkgs", "one", 'version: "1"\nbuild: mkdir -p "$ARTIFACT/share"\n')
    try:
        run_hit("build", "-j", "2", str(one))
    finally:
        os.close(held)
    assert sorted(p.name for p in temp.iterdir()) == [alive.name, making.name]
