"""The build reaper: no process of a build outlives it, however it detached."""

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
