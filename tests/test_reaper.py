"""The build reaper: no process of a build outlives it, however it detached."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hdmodules.reaper

REAPER = Path(hdmodules.reaper.__file__)

ESCAPES = """
( env -i /usr/bin/setsid /bin/sh -c 'sleep 2; echo late > {d}/setsid-env-i' \\
  >/dev/null 2>&1 </dev/null & )
( sh -c 'sleep 2; echo late > {d}/double-fork' & ) &
nohup sh -c 'trap "" HUP TERM; sleep 2; echo late > {d}/nohup' >/dev/null 2>&1 &
echo started > {d}/started
"""


def _alive_sleepers(d: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(d) in line and "sleep" in line]


def test_every_detached_process_is_killed_and_the_exit_code_kept(tmp_path):
    script = tmp_path / "build.sh"
    script.write_text(ESCAPES.format(d=tmp_path) + "exit 3\n")
    r = subprocess.run([sys.executable, "-I", str(REAPER), "/bin/bash", str(script)])
    assert r.returncode == 3 and (tmp_path / "started").exists()
    assert _alive_sleepers(tmp_path) == []
    time.sleep(2.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.sh", "started"]


def test_sigterm_to_the_reaper_kills_the_whole_build(tmp_path):
    script = tmp_path / "build.sh"
    script.write_text(ESCAPES.format(d=tmp_path) + "sleep 30\n")
    proc = subprocess.Popen([sys.executable, "-I", str(REAPER), "/bin/bash", str(script)])
    deadline = time.monotonic() + 10
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    assert _alive_sleepers(tmp_path) == []
    time.sleep(2.5)
    assert not any(p.name in ("setsid-env-i", "double-fork", "nohup") for p in tmp_path.iterdir())


def _spawn(reaper, script: Path, **kw):
    log = script.parent / "build.log"
    with open(log, "wb") as out:
        return reaper.spawn(
            ["/bin/bash", str(script)], str(script.parent), {"PATH": "/usr/bin:/bin"},
            out.fileno(), **kw,
        )  # fmt: skip


def test_the_reaper_server_kills_what_each_build_leaves_and_keeps_its_exit_code(tmp_path):
    """What `hit build` uses: one server per process, a forked reaper per build."""
    reaper = hdmodules.reaper.Reaper()
    builds = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        (d / "build.sh").write_text(ESCAPES.format(d=d) + "echo out; echo err >&2; exit 3\n")
        builds.append(_spawn(reaper, d / "build.sh"))
    assert [b.wait() for b in builds] == [3, 3]
    assert _alive_sleepers(tmp_path) == []
    time.sleep(2.5)
    for name in ("a", "b"):
        files = sorted(p.name for p in (tmp_path / name).iterdir())
        assert files == ["build.log", "build.sh", "started"]
        assert (tmp_path / name / "build.log").read_text() == "out\nerr\n"


def test_the_reaper_server_passes_descriptors_and_nothing_else(tmp_path):
    reaper = hdmodules.reaper.Reaper()
    read, write = os.pipe()
    os.write(write, b"token\n")
    os.close(write)
    script = tmp_path / "build.sh"
    script.write_text("read -r x <&7; echo \"$x\"; ls /proc/self/fd | sort -n | tr '\\n' ' '\n")
    assert _spawn(reaper, script, pass_fds={7: read}).wait() == 0
    os.close(read)
    out = (tmp_path / "build.log").read_text().splitlines()
    # ls's own descriptor for reading /proc/self/fd shows up as 3
    assert out == ["token", "0 1 2 3 7 "]


def test_sigterm_to_a_served_build_kills_it_whole_and_sigkill_to_its_reaper_is_told(tmp_path):
    reaper = hdmodules.reaper.Reaper()
    script = tmp_path / "build.sh"
    script.write_text(ESCAPES.format(d=tmp_path) + "sleep 30\n")
    build = _spawn(reaper, script)
    deadline = time.monotonic() + 10
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert build.wait(timeout=0.1) is None
    os.kill(build.pid, signal.SIGTERM)
    assert build.wait(timeout=10) == 128 + signal.SIGTERM
    assert _alive_sleepers(tmp_path) == []
    (tmp_path / "started").unlink()
    build = _spawn(reaper, script)
    while not (tmp_path / "started").exists() and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    os.kill(build.pid, signal.SIGKILL)  # the caller must clean up: it is told so
    assert build.wait(timeout=10) == -1
    os.killpg(build.pid, signal.SIGKILL)


def test_passed_descriptors_land_on_their_numbers_even_where_a_copy_would_land(tmp_path):
    """The jobserver's descriptors reach the build at their numbers when the reaper holds
    what it received at numbers the build gets others at (put in place one after another,
    one would land on another: the make of every build ran one job, "jobserver
    unavailable")."""
    reaper = hdmodules.reaper.Reaper()
    pipes = [os.pipe() for _ in range(4)]
    for k, (_read, write) in enumerate(pipes):
        os.write(write, f"pipe{k}\n".encode())
        os.close(write)
    script = tmp_path / "build.sh"
    script.write_text("for fd in 3 4 5 6; do read -r x <&$fd; echo $fd $x; done\n")
    crossed = {6 - k: read for k, (read, _write) in enumerate(pipes)}  # 6: pipe0 ... 3: pipe3
    assert _spawn(reaper, script, pass_fds=crossed).wait() == 0
    for read, _write in pipes:
        os.close(read)
    out = (tmp_path / "build.log").read_text().splitlines()
    assert out == ["3 pipe3", "4 pipe2", "5 pipe1", "6 pipe0"]


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_the_server_keeps_a_reaper_on_standby_replaces_a_killed_one_and_ends_with_hit(tmp_path):
    """Each build's reaper is forked before its request comes, and serves build after
    build: eight builds one at a time are served by a few reapers, not eight (the server
    forks one only when it sees none idle, which for builds one at a time is a matter of
    timing: two usually, three when a reaper's "idle again" comes after the next one's
    "busy").
    Killed while they wait, they are replaced (the next build runs); when the client closes
    its end (hit exits), the server and they end."""
    reaper = hdmodules.reaper.Reaper()
    script = tmp_path / "build.sh"
    script.write_text("echo ran\n")
    served = set()
    for _ in range(8):
        build = _spawn(reaper, script)
        served.add(build.pid)
        assert build.wait(timeout=30) == 0
    assert 1 <= len(served) <= 3, served  # reused, not one reaper per build
    server = reaper._server
    waiting = _children_of(server.pid)
    assert 1 <= len(waiting) <= 3, waiting  # on standby, and no more
    for pid in waiting:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # each killed one is gone (reaped: a zombie is still a child) and another forked
    while time.monotonic() < deadline:
        now = set(_children_of(server.pid))
        if now and not now & set(waiting):
            break
        time.sleep(0.02)
    assert not set(_children_of(server.pid)) & set(waiting)  # replaced
    assert _spawn(reaper, script).wait(timeout=30) == 0
    assert (tmp_path / "build.log").read_text() == "ran\n"
    waiting = _children_of(server.pid)
    reaper._sock.close()
    assert server.wait(timeout=10) == 0
    while any(map(_running, waiting)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(_running, waiting))


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
