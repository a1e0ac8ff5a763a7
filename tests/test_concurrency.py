"""Several `hit build` processes at once, and builds that are killed half way."""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import (
    alive,
    blocking_recipe,
    hit_proc,
    read_pid,
    run_clean,
    run_hit,
    wait_for,
    write_profile,
    write_recipe,
)


def _counting_stack(tmp_path: Path, log: Path) -> Path:
    """A small DAG whose build scripts record each time they really run."""
    deps = {"base": "[]", "left": "[base]", "right": "[base]", "top": "[left, right]"}
    for name, dep in deps.items():
        write_recipe(
            tmp_path / "pkgs",
            name,
            f"""
            version: "1"
            dependencies: {dep}
            build: |
              echo {name} >> {log}
              sleep 0.5
              mkdir -p "$ARTIFACT/share"
              echo {name} > "$ARTIFACT/share/{name}.txt"
            """,
        )
    return write_profile(
        tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [base, left, right, top]\n"
    )


def test_four_processes_build_each_artifact_once(home, tmp_path):
    log = tmp_path / "runs.log"
    profile = _counting_stack(tmp_path, log)
    procs = [hit_proc("build", "-j", "2", str(profile)) for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]  # read pipes before waiting
    results = [(p.returncode, *o) for p, o in zip(procs, outputs, strict=True)]
    for code, _out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    assert sorted(log.read_text().split()) == ["base", "left", "right", "top"]
    assert (tmp_path / "default" / "share" / "top.txt").read_text() == "top\n"
    waited = sum("waiting: another process is building it" in err for _c, _o, err in results)
    assert waited >= 1  # the others really waited on the lock rather than skipping it
    history = run_hit("history", str(profile)).out.splitlines()
    assert len(history) == 1 and history[0].split()[0] == "1", history  # one profile, once


def _switch_many(gc_roots: str, link: str, targets: list[str], rounds: int, start, out) -> None:
    from hdmodules.store.generations import switch

    start.wait()
    changed = 0
    for i in range(rounds):
        changed += switch(Path(gc_roots), Path(link), Path(targets[i % len(targets)])).changed
    Path(out).write_text(str(changed))


def test_processes_switching_one_link_at_once_number_each_generation_once(tmp_path):
    """Builds of one profile that finish together switch its link together: each switch
    (the link, the gc root, a new generation) happens whole, one after the other. Without
    the link's lock two of them both made generation 1 and one failed on the other's
    symlink (seen in CI: `... exists and is not a symlink; move it away first`)."""
    import multiprocessing

    from hdmodules.store.generations import generations

    gc_roots, link = tmp_path / "gcroots", tmp_path / "default"
    targets = []
    for name in ("p1", "p2"):
        (tmp_path / "store" / name).mkdir(parents=True)
        targets.append(str(tmp_path / "store" / name))
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    outs = [tmp_path / f"changed-{i}" for i in range(6)]
    procs = [
        ctx.Process(
            target=_switch_many, args=(str(gc_roots), str(link), targets, 40, start, str(out))
        )
        for out in outs
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    gens = generations(gc_roots, link)
    assert [g.number for g in gens] == list(range(1, len(gens) + 1))
    # each switch that moved the link made one generation: none was written over by another
    assert len(gens) == sum(int(out.read_text()) for out in outs)
    assert all(a.target != b.target for a, b in zip(gens, gens[1:], strict=False)), gens
    assert str(gens[-1].target) == os.readlink(link)


def test_kill_9_leaves_nothing_installed_and_next_build_recovers(home, tmp_path):
    profile = blocking_recipe(tmp_path)
    proc = hit_proc("build", str(profile))
    wait_for(tmp_path / "pid")
    wait_for(next((home / "bld" / "slow").iterdir()) / "bin" / "partial")
    os.kill(proc.pid, signal.SIGKILL)  # only hit itself: its build script dies with it
    proc.wait()
    orphan = read_pid(tmp_path / "pid")
    _gone([orphan])
    assert "needs build" in run_hit("status", str(profile)).out
    prefix = next((home / "bld" / "slow").iterdir())
    assert not (prefix / ".hit" / "manifest.json").exists()

    (tmp_path / "pid").unlink()
    second = hit_proc("build", str(profile))
    wait_for(tmp_path / "pid")  # the new build runs, in place of the killed one's leftovers
    (tmp_path / "go").touch()
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and "built in" in err
    assert (tmp_path / "finished").read_text().split() == [(tmp_path / "pid").read_text().strip()]
    assert (tmp_path / "default" / "bin" / "done").read_text() == "done\n"
    assert "built" in run_hit("status", str(profile)).out.splitlines()[0]


def _gone(pids: list[int], seconds: float = 5.0) -> None:
    """Wait until none of `pids` runs; fail the test after `seconds`."""
    end = time.monotonic() + seconds
    while [p for p in pids if alive(p)]:
        assert time.monotonic() < end, f"still running: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (children of any of its threads, theirs, ...)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            out += [child, *_descendants(child)]
    return out


def test_kill_9_of_hit_ends_its_builds_and_the_next_build_runs_anew(home, tmp_path):
    write_recipe(
        tmp_path / "pkgs",
        "slow",
        f"""
        version: "1"
        build: |
          echo "build $$"
          sleep 60 &
          echo $! > {tmp_path}/sleeper
          echo $$ > {tmp_path}/pid
          if [ ! -e {tmp_path}/go ]; then wait; fi
          mkdir -p "$ARTIFACT"
          echo done > "$ARTIFACT/done"
        """,
    )
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [slow]\n")
    proc = hit_proc("build", str(profile))
    first = read_pid(tmp_path / "pid")
    script = [first, int((tmp_path / "sleeper").read_text())]
    # the reaper server and its reapers hold no descriptor of hit's artifact lock
    helpers = [p for p in _descendants(proc.pid) if p not in script]
    assert helpers
    for pid in helpers:
        fds = Path(f"/proc/{pid}/fd")
        held = [os.readlink(fds / fd) for fd in os.listdir(fds) if (fds / fd).is_symlink()]
        assert not [f for f in held if "/.locks/" in f], (pid, held)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _gone(script + helpers)  # the build dies with hit, however it was started
    (tmp_path / "go").touch()
    r = run_hit("build", str(profile))
    assert "built in" in r.err
    second = read_pid(tmp_path / "pid")
    (prefix,) = (home / "bld" / "slow").iterdir()
    assert second != first and (prefix / ".hit" / "build.log").read_text() == f"build {second}\n"


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_ctrl_c_stops_builds_and_installs_nothing(home, tmp_path, signum, code):
    """Ctrl-C, and SIGTERM or SIGHUP as `timeout`, `scancel` or a closed terminal send."""
    profile = blocking_recipe(tmp_path)
    proc = hit_proc("build", str(profile))
    builder_pid = read_pid(tmp_path / "pid")
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == code and "Traceback" not in err
    assert err.endswith("\n\nhit: interrupted\n"), err  # past the ^C, as click says it
    time.sleep(0.2)
    assert not alive(builder_pid)
    assert not any((home / "bld" / "slow").iterdir())
    (tmp_path / "go").touch()
    run_hit("build", str(profile))
    assert run_clean(["/bin/cat", str(tmp_path / "default" / "bin" / "done")]).stdout == "done\n"


def test_ctrl_c_while_waiting_for_another_process_s_build_ends_hit_at_once(home, tmp_path):
    """A `hit build` waits for another process building the same artifact (its lock); a
    Ctrl-C ends it at once, as it ends a build of its own, and the other build goes on. (It
    waited until the other build ended: stopping joined the thread blocked on the lock.)"""
    profile = blocking_recipe(tmp_path)
    holder = hit_proc("build", str(profile))
    builder_pid = read_pid(tmp_path / "pid")
    waiter = hit_proc("build", str(profile))
    try:
        said = ""
        while "waiting: another process is building it" not in said:
            assert waiter.poll() is None, said
            said += waiter.stderr.readline()  # (a line at a time: it says it, then waits)
        start = time.monotonic()
        os.kill(waiter.pid, signal.SIGINT)
        _out, err = waiter.communicate(timeout=30)
        assert time.monotonic() - start < 5, "hit waited for the other build to end"
        assert waiter.returncode == 130 and "Traceback" not in err, err
        assert (said + err).endswith("\n\nhit: interrupted\n"), said + err
        assert alive(builder_pid) and holder.poll() is None  # the other build goes on
    finally:
        (tmp_path / "go").touch()
        _out, err = holder.communicate(timeout=60)
    assert holder.returncode == 0, err
    assert run_clean(["/bin/cat", str(tmp_path / "default" / "bin" / "done")]).stdout == "done\n"


class _FakeExecutor:
    """An executor that ends builds in the order they started; `fail` ids fail."""

    def __init__(self, slots: int, fail: set[str]):
        self.slots = slots
        self.cpus = None
        self.fail = fail
        self.started: list[str] = []
        self.running: list = []
        self.events: list[str] = []

    def start(self, job) -> None:
        self.started.append(job.ref.name)
        self.running.append(job)

    def next_done(self, or_token=False, meanwhile=None):
        from hdmodules.build.builder import Outcome
        from hdmodules.errors import BuildFailed

        if meanwhile is not None:  # the builds under way run
            self.events.append(f"meanwhile while {[j.ref.name for j in self.running]}")
            meanwhile()
        job = self.running.pop(0)
        if job.ref.name in self.fail:
            return job, BuildFailed(job.ref.id, "the build script failed (exit 1)")
        return job, Outcome("built", 0.5)

    def interrupt(self) -> None:
        pass


def _jobs(graph: dict[str, tuple[str, ...]]):
    """Build jobs named like `graph`'s keys, depending on the jobs named by its values."""
    from hdmodules.build.buildjob import BuildJob
    from hdmodules.spec.artifact import ArtifactRef

    refs = {name: ArtifactRef(name, "1", name * 4) for name in graph}
    return [
        BuildJob(
            refs[n],
            None,
            tuple(refs[d].id for d in deps),
            (),
            "",
            (),
            (),
            frozenset(),
            Path("/nowhere"),
            Path("/nowhere"),
            1,
            Path("/nowhere"),
        )
        for n, deps in graph.items()
    ]


def test_the_scheduler_runs_dependencies_first_and_stops_starting_after_a_failure():
    import io

    import pytest

    from hdmodules.build.scheduler import BuildsFailed, run
    from hdmodules.progress import Progress

    graph = {"d": ("c",), "a": (), "b": ("a",), "c": ("a", "b")}
    executor = _FakeExecutor(1, set())
    assert run(_jobs(graph), executor, Progress(4, io.StringIO())) == 4
    assert executor.started == ["a", "b", "c", "d"]
    # two at once: a fails while x builds; x finishes, nothing new starts, b and c are skipped
    graph = {"a": (), "x": (), "b": ("a",), "c": ("x",)}
    executor = _FakeExecutor(2, {"a"})
    with pytest.raises(BuildsFailed) as caught:
        run(_jobs(graph), executor, Progress(4, io.StringIO()))
    assert executor.started == ["a", "x"]
    failed = caught.value
    assert failed.artifact == "a/aaaa" and [f.artifact for f in failed.failures] == ["a/aaaa"]
    assert failed.skipped == ("b/bbbb", "c/cccc")
    assert str(failed).endswith("not built because of the failure: b/bbbb, c/cccc")


def test_the_scheduler_makes_the_next_job_while_the_one_before_runs():
    """With `make` (scheduler.run: the jobs are planned ones, made into build jobs when they
    are next to start), one slot: the job that starts next is made while the one before it
    runs, never before the run's first build starts; each is made once, none that a failure
    leaves unstarted is started."""
    import io
    from types import SimpleNamespace

    import pytest

    from hdmodules.build.scheduler import BuildsFailed, run
    from hdmodules.errors import HitError
    from hdmodules.progress import Progress

    graph = {"a": (), "b": (), "c": ("a",), "d": ()}
    jobs = {j.ref.name: j for j in _jobs(graph)}
    planned = [SimpleNamespace(ref=j.ref, dependencies=j.dependencies) for j in jobs.values()]
    executor = _FakeExecutor(1, set())

    def make(p):
        executor.events.append(f"made {p.ref.name}")
        return jobs[p.ref.name]

    assert run(planned, executor, Progress(4, io.StringIO()), make) == 4
    assert executor.started == ["a", "b", "d", "c"]
    assert executor.events == [
        "made a",  # the first: nothing runs yet
        "meanwhile while ['a']",
        "made b",
        "meanwhile while ['b']",
        "made d",
        "meanwhile while ['d']",
        "made c",  # ready once a is built
    ]
    executor = _FakeExecutor(1, {"a"})
    executor.events.clear()
    with pytest.raises(BuildsFailed):
        run(planned, executor, Progress(4, io.StringIO()), make)
    assert executor.started == ["a"] and executor.events[-1] == "made b"  # made, not started

    def unmakeable(p):  # a job that cannot be made (a HitError) fails as its build would
        if p.ref.name == "b":
            raise HitError("b: cannot be made")
        return make(p)

    executor = _FakeExecutor(1, set())
    with pytest.raises(BuildsFailed) as caught:
        run(planned, executor, Progress(4, io.StringIO()), unmakeable)
    assert executor.started == ["a"]  # nothing new starts after a failure
    assert [f.artifact for f in caught.value.failures] == [jobs["b"].ref.id]
    assert "b: cannot be made" in str(caught.value)


class _EndingExecutor(_FakeExecutor):
    """A fake executor that says ENDED: the oldest running build's script ends first, then,
    nothing else running, the oldest ended one's Outcome comes (checked, sealed)."""

    def __init__(self, slots: int, fail: set[str]):
        super().__init__(slots, fail)
        self.ended: list = []

    def start(self, job) -> None:
        super().start(job)
        self.events.append(f"start {job.ref.name}")

    def next_done(self, or_token=False, meanwhile=None):
        from hdmodules.build.builder import Outcome
        from hdmodules.build.scheduler import ENDED
        from hdmodules.errors import BuildFailed

        if self.running:
            job = self.running.pop(0)
            self.ended.append(job)
            self.events.append(f"ended {job.ref.name}")
            return job, ENDED
        job = self.ended.pop(0)
        self.events.append(f"outcome {job.ref.name}")
        if job.ref.name in self.fail:
            return job, BuildFailed(job.ref.id, "library check failed")
        return job, Outcome("built", 0.5)


def test_the_next_build_starts_when_a_script_ends_and_what_depends_on_it_when_it_is_built():
    """One slot: once a's script ended (ENDED) b starts, before a's Outcome (its checks, the
    seal); c, which depends on a, only after a's Outcome. A failure found after the script
    ended (the link check) stops new builds as any failure does."""
    import io

    import pytest

    from hdmodules.build.scheduler import BuildsFailed, run
    from hdmodules.progress import Progress

    graph = {"a": (), "b": (), "c": ("a",)}
    executor = _EndingExecutor(1, set())
    assert run(_jobs(graph), executor, Progress(3, io.StringIO())) == 3
    assert executor.events == [
        "start a", "ended a", "start b", "ended b", "outcome a", "start c", "ended c",
        "outcome b", "outcome c",
    ]  # fmt: skip
    executor = _EndingExecutor(1, {"a"})
    with pytest.raises(BuildsFailed) as caught:
        run(_jobs(graph), executor, Progress(3, io.StringIO()))
    assert executor.events == ["start a", "ended a", "start b", "ended b", "outcome a", "outcome b"]
    assert caught.value.skipped == ("c/cccc",)


def test_the_live_line_lists_as_many_builds_as_run_scripts():
    """On a terminal, `-j 1`: a build whose script ended is listed as checking, not as
    building, while the next one's script runs (the trial: `-j 2` listed three building)."""
    import io
    import re

    from hdmodules.build.scheduler import run
    from hdmodules.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    assert run(
        _jobs({"a": (), "b": (), "c": ("a",)}), _EndingExecutor(1, set()), Progress(3, screen)
    )
    shown = [t.split("\n")[-1] for t in screen.getvalue().split("\r\x1b[K")]
    lives = [t for t in shown if t.startswith("[")]
    assert "[0/3] building: b/bbbb; checking: a/aaaa" in lives, lives
    for live in lives:
        building = re.search(r"building: ([^;]*)", live)
        assert building is None or len(building.group(1).split(", ")) == 1, live


def test_with_j_1_a_build_runs_while_the_one_before_is_checked(tmp_path, monkeypatch):
    """`-j 1`, real builds: the link check of the first of two independent packages (made
    slow: it waits for the other's script) sees the other's script start meanwhile; the
    package that depends on it starts only once it is checked, and every artifact is
    installed. On the code before, the check waited 30 s and saw nothing."""
    import subprocess
    import sys

    monkeypatch.setenv("HIT_HOME", str(tmp_path / "home"))
    marks = tmp_path / "marks"
    marks.mkdir()
    for name, deps, check in (("a", "[]", ""), ("b", "[]", ""), ("c", "[a]", "checked-a")):
        test = f"test -e {marks}/{check}\n  " if check else ""
        write_recipe(
            tmp_path / "pkgs",
            name,
            f'version: "1"\ndependencies: {deps}\nbuild: |\n  {test}touch {marks}/started-{name}'
            f'\n  mkdir -p "$ARTIFACT/share"\n  echo {name} > "$ARTIFACT/share/{name}"\n',
        )
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [a, b, c]\n")
    patched = f"""
import sys, time
from pathlib import Path
import hdmodules.build.builder as builder
marks, real = Path({str(marks)!r}), builder._check_links
def check(job, prefix):
    name = job.ref.name
    other = {{"a": "b", "b": "a"}}.get(name)
    if other and not (marks / f"checked-{{other}}").exists():  # the first of the two checked
        end = time.monotonic() + 30
        while not (marks / f"started-{{other}}").exists() and time.monotonic() < end:
            time.sleep(0.01)
        seen = (marks / f"started-{{other}}").exists()
        (marks / "overlap").write_text(f"{{name}} saw {{other}} start: {{seen}}")
    (marks / f"checked-{{name}}").touch()
    real(job, prefix)
builder._check_links = check
from hdmodules.cli.entry import hit
hit()
"""
    done = subprocess.run(
        [sys.executable, "-c", patched, "build", str(profile), "-j", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (marks / "overlap").read_text() in ("a saw b start: True", "b saw a start: True")
    for name in "abc":
        assert (tmp_path / "p" / "share" / name).read_text() == f"{name}\n"


def test_builds_beside_one_waiting_for_another_process_go_on_at_once(tmp_path, monkeypatch):
    """A build waits for another `hit`'s lock on its artifact while the other slot builds
    the rest: each of those is collected when it ends and the next one started. (The jobs
    made ahead, scheduler.run's `make`, once waited for every started build to run before a
    finished one was looked at: with a build waiting for a lock, up to LOOKAHEAD_WAIT for
    each package, which this run makes a minute.)"""
    import subprocess
    import sys

    monkeypatch.setenv("HIT_HOME", str(tmp_path / "home"))
    blocking_recipe(tmp_path)
    quick = [f"q{i}" for i in range(1, 5)]
    for name in quick:
        build = f'mkdir -p "$ARTIFACT/share"\n  touch "$ARTIFACT/share/{name}"'
        write_recipe(tmp_path / "pkgs", name, f'version: "1"\nbuild: |\n  {build}\n')
    first = write_profile(tmp_path / "first.yaml", "package_dirs: [pkgs]\npackages: [slow]\n")
    second = write_profile(
        tmp_path / "second.yaml", f"package_dirs: [pkgs]\npackages: [slow, {', '.join(quick)}]\n"
    )
    holder = hit_proc("build", str(first), cwd=tmp_path)
    read_pid(tmp_path / "pid")  # its build of `slow` runs, holding the artifact's lock
    patched = (
        "import sys; import hdmodules.build.scheduler as s; s.LOOKAHEAD_WAIT = 60; "
        "from hdmodules.cli.entry import hit; hit()"
    )
    waiter = subprocess.Popen(
        [sys.executable, "-c", patched, "build", str(second), "-j", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        shown = tmp_path / "home" / "bld"
        end = time.monotonic() + 40
        while not all(list((shown / name).glob("*/.hit/manifest.json")) for name in quick):
            assert time.monotonic() < end, "the quick packages were not built beside the wait"
            assert waiter.poll() is None and holder.poll() is None
            time.sleep(0.1)
        assert not (tmp_path / "finished").exists()  # `slow` still waits for `go`
    finally:
        (tmp_path / "go").touch()
        outs = [p.communicate(timeout=120) for p in (holder, waiter)]
    assert holder.returncode == 0 and waiter.returncode == 0, outs
    assert "waiting: another process is building it" in outs[1][1]


def test_two_stores_build_the_same_artifact_at_once(tmp_path, monkeypatch):
    """Two homes (two users, or a user and the site) build one artifact, same inputs and so
    same id, at the same time: each build's processes are its own (HIT_BUILD_ID is the build
    folder), so neither kills the other's (it did: the second build's sweep for leftovers of
    a killed attempt matched the first's processes by artifact id, exit 137)."""
    started = tmp_path / "started"
    write_recipe(
        tmp_path / "pkgs",
        "slowpkg",
        f"""
        version: "1"
        build: |
          touch {started}
          sleep 2
          mkdir -p "$ARTIFACT/share"
          echo done > "$ARTIFACT/share/done"
        """,
    )
    procs = []
    for user in ("one", "two"):
        (tmp_path / user).mkdir()
        profile = write_profile(
            tmp_path / user / "default.yaml", "package_dirs: [../pkgs]\npackages: [slowpkg]\n"
        )
        monkeypatch.setenv("HIT_HOME", str(tmp_path / user / "home"))
        procs.append(hit_proc("build", str(profile), cwd=tmp_path / user))
        wait_for(started)  # the second starts while the first builds
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for user in ("one", "two"):
        assert list((tmp_path / user / "home" / "bld" / "slowpkg").glob("*/share/done")), user


def test_a_shared_toolchain_another_process_just_laid_out_is_never_removed(tmp_path, monkeypatch):
    """Two `hit build`s of one home starting at once (two terminals, a job array) both find
    no toolchain folder and lay out their own (builder.lay_out_toolchain). The one that
    comes second keeps the first's, which builds may already have on their PATH: were it
    removed before the second's is renamed into place, a build starting then would find no
    `cc` there and take the host's from the rest of its PATH. The other process is played
    here: it puts its folder in place while this one lays out its own."""
    from types import SimpleNamespace

    from hdmodules.build import builder

    folder = tmp_path / "tmp" / ".toolchains" / "abcdefghijkl"
    (tmp_path / "tmp" / "build").mkdir(parents=True)
    job = SimpleNamespace(
        toolchain=folder,
        folder=tmp_path / "tmp" / "build",
        tool_links=(("cc", "/usr/bin/gcc"), ("gcc", "/usr/bin/gcc")),
        tool_stubs=("mpicc",),
    )
    lay_out = builder._lay_out
    theirs = {}

    def both(where, job):  # the other process's rename lands while ours is laid out
        lay_out(where, job)
        other = where.with_name("theirs.new")
        lay_out(other, job)
        os.rename(other, folder)
        theirs["inode"] = os.stat(folder).st_ino

    monkeypatch.setattr(builder, "_lay_out", both)
    builder.lay_out_toolchain(job)
    builder.end_lease(job)
    assert os.stat(folder).st_ino == theirs["inode"]
    assert sorted(os.listdir(folder / "bin")) == ["cc", "gcc", "mpicc"]
    assert sorted(os.listdir(folder.parent)) == [folder.name, f"{folder.name}.lock"]  # no more


def test_a_failed_rollback_leaves_no_generations_folder_and_mv_keeps_the_history(tmp_path):
    """`hit rollback` of a link without generations fails, and leaves nothing behind: a
    generations folder holding just the link's lock (when each link had its own) made `hit
    mv` to that link keep that empty folder and drop the moved link's history."""
    import pytest

    from hdmodules.errors import HitError
    from hdmodules.store.generations import generations, rollback, switch
    from hdmodules.store.roots import GENERATIONS, gen_folder, move_link

    gc_roots, store = tmp_path / "gcroots", tmp_path / "store"
    targets = []
    for name in ("p1", "p2"):
        (store / name).mkdir(parents=True)
        targets.append(store / name)
    old, new = tmp_path / "old", tmp_path / "new"
    for target in targets:
        switch(gc_roots, old, target)
    with pytest.raises(HitError, match="has no generations"):
        rollback(gc_roots, new)
    assert [p for p in (gc_roots / GENERATIONS).iterdir() if p.is_dir()] == [
        gen_folder(gc_roots, old)
    ]  # old's only
    move_link(gc_roots, store, old, new)
    assert [g.target for g in generations(gc_roots, new)] == targets


_INTERRUPT_IMPORT = """
import sys
class Interrupt:  # Ctrl-C arriving while `hdmodules.build.memo` is imported
    def find_spec(self, name, path=None, target=None):
        if name == "hdmodules.build.memo":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
from hdmodules.cli.entry import hit
sys.argv = ["hit", "build"]
hit()
"""


def test_ctrl_c_while_hit_loads_is_one_line_not_a_traceback(tmp_path):
    """A Ctrl-C before the command's guard is set up (its modules load: the closing trial
    saw a KeyboardInterrupt traceback in 7 of 28 runs interrupted in their first 0.35 s):
    `hit: interrupted` and exit 130, as one later says. Once with the interrupt raised by
    an import, then with real SIGINTs early in real runs."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_IMPORT], cwd=tmp_path, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (130, "\nhit: interrupted\n"), done.stderr
    write_recipe(tmp_path / "pkgs", "a", 'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT"\n')
    write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [a]\n")
    entry = (  # as the console script runs it; a Ctrl-C before hit() starts is Python's
        "import os, sys; from hdmodules.cli.entry import hit; sys.argv[0] = 'hit'; "
        "os.close(os.open('started', os.O_CREAT | os.O_WRONLY)); hit()"
    )
    for delay in (0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.2, 0.3):
        env = {**os.environ, "HIT_HOME": str(tmp_path / f"home-{delay}")}
        (tmp_path / "started").unlink(missing_ok=True)
        p = subprocess.Popen(
            [sys.executable, "-c", entry, "build", "-j", "2"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        end = time.monotonic() + 30
        while not (tmp_path / "started").exists():  # hit's own code starts now
            assert p.poll() is None and time.monotonic() < end
            time.sleep(0.001)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
        assert "Traceback" not in err, (delay, err)
        assert p.returncode in (0, 130), (delay, p.returncode, err)


@pytest.mark.parametrize(
    "step", ["builder._check_links", "layout.Store.describe"], ids=["check", "describe"]
)
def test_ctrl_c_while_an_ended_build_is_checked_says_so_and_installs_nothing(tmp_path, step):
    """Ctrl-C while the link check (or the describing: every file hashed) of a build whose
    script ended runs (made to wait for a file here; the closing trial's artifact of 8,192
    ELF files took 8-11 s): hit says what it waits for, the steps after it are not done,
    nothing is installed, and the next build builds it. (It waited in silence, then
    installed the artifact; the second trial found describe's step still installing it.)"""
    import subprocess
    import sys

    owner, name = step.rsplit(".", 1)

    write_recipe(tmp_path / "pkgs", "a", 'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n')
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [a]\n")
    patched = f"""
import sys, time
from pathlib import Path
from hdmodules.build import builder
from hdmodules.store import layout
marks, real = Path({str(tmp_path)!r}), {step}
def slow(*args, **kwargs):
    (marks / "checking").touch()
    end = time.monotonic() + 30
    while not (marks / "go").exists() and time.monotonic() < end:
        time.sleep(0.01)
    return real(*args, **kwargs)
{owner}.{name} = slow
from hdmodules.cli.entry import hit
hit()
"""
    env = {**os.environ, "HIT_HOME": str(tmp_path / "home")}
    p = subprocess.Popen(
        [sys.executable, "-c", patched, "build", str(profile), "-j", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(tmp_path / "checking")
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
    finally:
        (tmp_path / "go").touch()
        _out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "stopping: waiting for the step under way of checking a/" in err, err
    assert err.endswith("\nhit: interrupted\n"), err
    assert not list((tmp_path / "home" / "bld").glob("a/*/.hit/manifest.json"))
    r = run_hit("build", str(profile), env=env)
    assert "built in" in r.err and list((tmp_path / "home" / "bld").glob("a/*/.hit/manifest.json"))


def test_a_ctrl_c_as_a_build_thread_starts_leaves_the_pool_cleanly(tmp_path, monkeypatch):
    """A Ctrl-C between a build thread's listing and its start (the CI run saw it): leaving
    the pool joined that never-started thread and raised RuntimeError, a traceback instead
    of `hit: interrupted`. Now the interrupt goes on alone and the pool closes."""
    import io
    import threading

    import pytest

    from hdmodules.build.scheduler import LocalPool
    from hdmodules.progress import Progress
    from hdmodules.store.layout import Store

    real_start = threading.Thread.start

    def interrupted_start(self):
        if self.name.startswith("build-"):
            raise KeyboardInterrupt
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    job = _jobs({"a": ()})[0]
    pool = LocalPool(Store(tmp_path / "bld"), 1, Progress(1, io.StringIO()))
    with pytest.raises(KeyboardInterrupt), pool:
        pool.start(job)
