"""Builds as Slurm batch jobs on a real one-node cluster (slurm/start-cluster.sh)."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hdmodules.build.slurm import SlurmConfig, plan_jobs
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.recipes import load_recipe
from hdmodules.spec.resolve import resolve
from hdmodules.store.layout import Store
from tests.conftest import DEMO, copy_demo, demo_site, need, write_recipe
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import available, module_shell
from tests.slurm_cluster import job_states, wait_jobs


@pytest.fixture(scope="module")
def slurm(slurm_cluster):
    """The local cluster (conftest), and the compilers and MPI the demo site uses."""
    need(bool(shutil.which("gcc-11") and shutil.which("mpicc.openmpi")), "gcc-11 and Open MPI")


def _site(tmp: Path, stacks: str | None = None, slurm: str = "") -> Path:
    site = demo_site(tmp, stacks)
    site.write_text(site.read_text() + slurm)
    return site


def _submitted(stderr: str) -> list[str]:
    m = re.search(r"submitted \d+ job\(s\) for \d+ artifact\(s\): ([\d, ]+)", stderr)
    assert m, stderr
    return [x.strip() for x in m.group(1).split(",")]


def test_demo_site_through_slurm(slurm, tmp_path):
    site = _site(tmp_path)
    root = tmp_path / "root"
    r = hdmod("build", str(site), "--root", str(root), "--slurm")
    ids = _submitted(r.stderr)
    final = re.search(r"job (\d+) assembles the result", r.stderr).group(1)
    queue = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    assert any(line.split()[0] in ids and " hd-" in line for line in queue.splitlines()), queue
    states = wait_jobs([*ids, final], timeout=400)
    assert set(states.values()) == {"COMPLETED"}, states
    # the same artifact ids a local build resolves to, all installed, modules in place
    store = Store(root / "bld")
    from hdmodules.spec.site import load_site

    for stack in load_site(site, root).stacks:
        for node in resolve(stack.profile).nodes.values():
            assert store.is_installed(node.ref), node.ref.id
    status = hdmod("status", str(site), "--root", str(root)).stdout
    assert status.count("  built  ") == len(ids) and "failed" not in status
    assert f"final job {final} (profiles and modules): completed" in status
    need(available("lmod"), "Lmod")
    run = module_shell(
        "lmod", f"module use {root / 'modules/lmod/Core'}; module load gcc/12.2.0 app && app"
    )
    assert run.code == 0 and "Hello from app" in run.out, run.err
    # nothing is missing now: a second --slurm submits nothing
    r = hdmod("build", str(site), "--root", str(root), "--slurm")
    assert "submitted" not in r.stderr and "modulefiles in" in r.stdout


BROKEN = """  only:
    compiler: gcc-12
    packages: [libcore, liba, libb, app]
"""


def test_a_failed_job_cancels_its_dependents_and_a_rerun_builds_the_rest(slurm, tmp_path):
    site = _site(tmp_path, BROKEN)
    liba = site.parent / "pkgs" / "liba.yaml"
    good = liba.read_text()
    liba.write_text(good.replace("install -Dm644 a.h", "false\n  install -Dm644 a.h"))
    root = tmp_path / "root"
    r = hdmod("build", str(site), "--root", str(root), "--slurm", "--wait", check=False)
    assert r.returncode == 1
    assert (
        re.search(r"liba/\w+: failed", r.stderr) and "the build script failed (exit 1)" in r.stderr
    )
    assert re.search(r"app/\w+: cancelled \(a dependency failed\)", r.stderr)
    assert "Run the same command again" in r.stderr
    assert not any((root / "bld").glob("app/*"))  # app was never built
    liba.write_text(good)
    r = hdmod("build", str(site), "--root", str(root), "--slurm", "--wait")
    assert "submitted 2 job(s) for 2 artifact(s)" in r.stderr  # liba and app; the rest is built
    assert (root / "profiles" / "only" / "bin" / "app").exists()


def test_jobs_run_the_installed_tool_whatever_folder_they_were_submitted_from(slurm, tmp_path):
    """A job starts in the folder `hdmod build --slurm` ran in; an `hdmodules/` folder there
    (a checkout of this project, say) must not be what the job imports."""
    site = _site(tmp_path, BROKEN)
    root = tmp_path / "root"
    decoy = tmp_path / "here"
    (decoy / "hdmodules").mkdir(parents=True)
    (decoy / "hdmodules" / "__init__.py").write_text(
        'raise ImportError("the decoy was imported")\n'
    )
    submit = [
        sys.executable,
        "-P",
        "-m",
        "hdmodules.cli.hdmod",
        "build",
        str(site),
        "--root",
        str(root),
        "--slurm",
    ]
    r = subprocess.run(submit, cwd=decoy, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ids = _submitted(r.stderr)
    final = re.search(r"job (\d+) assembles the result", r.stderr).group(1)
    states = wait_jobs([*ids, final], timeout=400)
    logs = "".join(p.read_text() for p in (root / "slurm" / "logs").glob("*.log"))
    assert set(states.values()) == {"COMPLETED"}, (states, logs)
    assert "decoy" not in logs
    out = subprocess.run(
        ["env", "-i", str(root / "profiles" / "only" / "bin" / "app")],
        capture_output=True,
        text=True,
    )
    assert out.stdout.startswith("Hello from app"), out


OVERLAP_A = """  a:
    compiler: gcc-12
    packages: [libcore, liba]
"""
OVERLAP_B = """  b:
    compiler: gcc-12
    packages: [libcore, libb]
"""


def test_two_overlapping_submissions_build_shared_artifacts_once(slurm, tmp_path):
    site_a = _site(tmp_path / "a", OVERLAP_A)
    site_b = _site(tmp_path / "b", OVERLAP_B)
    root = tmp_path / "root"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hdmodules.cli.hdmod",
                "build",
                str(s),
                "--root",
                str(root),
                "--slurm",
                "--wait",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (site_a, site_b)
    ]
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err
    # libcore was submitted by both but built once: one recorded build duration
    assert len((root / "bld" / ".durations" / "libcore").read_text().split()) == 1
    assert len(list((root / "bld" / "libcore").iterdir())) == 1


def test_a_rejected_submission_leaves_no_jobs(slurm, tmp_path):
    site = _site(tmp_path, BROKEN)
    app = site.parent / "pkgs" / "app.yaml"
    app.write_text(app.read_text() + "resources: {cpus: 64}\n")  # more CPUs than the node has
    root = tmp_path / "root"
    r = hdmod("build", str(site), "--root", str(root), "--slurm", check=False)
    assert r.returncode == 1 and "sbatch refused hd-app" in r.stderr
    m = re.search(r"cancelled the 3 job\(s\) submitted before it \(([\d, ]+)\)", r.stderr)
    assert m, r.stderr
    ids = [x.strip() for x in m.group(1).split(",")]
    assert set(job_states(ids).values()) == {"CANCELLED"}
    assert not (root / "bld" / "libcore").exists() or not any((root / "bld" / "libcore").iterdir())


def test_missing_sbatch_is_one_message(tmp_path):
    copy_demo(tmp_path / "demo")
    site = _site_without_externals(tmp_path / "demo")
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    r = hdmod("build", str(site), "--root", str(tmp_path / "root"), "--slurm", check=False, env=env)
    assert r.returncode == 1 and "sbatch not found" in r.stderr


def _site_without_externals(demo: Path) -> Path:
    """A site whose stack uses the host compiler by an explicit path (no detection needed)."""
    (demo / "ext.yaml").write_text(
        "externals:\n  host:\n    kind: compiler\n    version: '12'\n"
        "    commands: {cc: /usr/bin/gcc}\n"
    )
    site = demo / "plain.yaml"
    site.write_text(
        "root: r\npackage_dirs: [pkgs]\nexternals_from: [ext.yaml]\n"
        "stacks:\n  s:\n    compiler: host\n    packages: [libcore]\nmodules: {layout: flat}\n"
    )
    hdmod("build", str(site), "--root", str(demo / "pin"), "--repin")  # pins it; exits 0
    return site


def test_walltime_is_learned_and_quick_builds_are_packed(tmp_path):
    resolved = resolve(load_profile(DEMO / "default.yaml"))
    store = Store(tmp_path)
    work = [("", n) for n in resolved.nodes.values()]
    cfg = SlurmConfig(time="1h", time_factor=2.0, time_floor="10m")
    jobs = plan_jobs(work, store, cfg, pack=0)
    assert [len(j.members) for j in jobs] == [1, 1, 1, 1]
    assert all(j.seconds == 3600 for j in jobs)  # nothing known yet: the site default
    app = next(j for j in jobs if j.members[0][1].name == "app")
    assert len(app.deps) == 3  # liba, libb, libcore
    store.record_duration("libcore", 30.0)
    store.record_duration("libcore", 900.0)
    jobs = plan_jobs(work, store, cfg, pack=0)
    assert jobs[0].seconds == 1800  # 2 x the longest recorded build
    store.record_duration("liba", 1.0)
    assert plan_jobs(work[1:2], store, cfg, 0)[0].seconds == 600  # the floor
    packed = plan_jobs(work, store, cfg, pack=10)
    assert [len(j.members) for j in packed] == [1, 3]  # libcore is slow (900 s): alone
    assert packed[1].deps == {0}


def test_recipe_resources_and_site_settings_reach_the_job_script(tmp_path):
    from hdmodules.templating import render

    f = write_recipe(
        tmp_path, "big", 'version: "1"\nbuild: "true"\nresources: {cpus: 16, mem: 32G, time: 2h}\n'
    )
    assert load_recipe(f).resources == {"cpus": "16", "mem": "32G", "time": "2h"}
    cfg = SlurmConfig(partition="long", account="proj1", qos="hi", extra=("--exclusive",))
    text = render(
        "job.sh.j2",
        name="n",
        log="/l",
        cpus=16,
        mem="32G",
        minutes=120,
        slurm=cfg,
        what="w",
        home="/h",
        command=["python", "-m", "x"],
    )
    for line in (
        "--partition=long",
        "--account=proj1",
        "--qos=hi",
        "#SBATCH --exclusive",
        "--cpus-per-task=16",
        "--mem=32G",
        "--time=120",
    ):
        assert line in text
    assert "constraint" not in text


def test_hit_build_slurm_for_a_user_profile(slurm, hit, home, demo):
    r = hit("build", "--slurm", "--wait", cwd=demo)
    assert "submitted 4 job(s) for 4 artifact(s)" in r.err
    out = subprocess.run(
        ["env", "-i", str(demo / "default" / "bin" / "app")], capture_output=True, text=True
    )
    assert out.stdout.startswith("Hello from app")
    r = hit("build", "--slurm", "--pack", "10", cwd=demo)
    assert "submitted" not in r.err  # everything is built: nothing to submit


def test_status_while_running_then_cancel(slurm, tmp_path):
    site = _site(tmp_path, "  s:\n    compiler: gcc-12\n    packages: [libcore, liba]\n")
    core = site.parent / "pkgs" / "libcore.yaml"
    gate = tmp_path / "go"
    wait_for_gate = f"  echo JOBS=$JOBS\n  while [ ! -e {gate} ]; do sleep 0.2; done\n"
    core.write_text(core.read_text().replace("build: |\n", "build: |\n" + wait_for_gate))
    (site.parent / "site.yaml").write_text(site.read_text() + "slurm: {cpus: 2}\n")
    root = tmp_path / "root"
    r = hdmod("build", str(site), "--root", str(root), "--slurm")
    ids = _submitted(r.stderr)
    end = time.monotonic() + 120
    while not any("JOBS=" in p.read_text() for p in (root / "tmp").glob("libcore-*/build.log")):
        assert time.monotonic() < end, "the libcore build never started"
        time.sleep(0.2)
    status = hdmod("status", str(site), "--root", str(root)).stdout
    assert re.search(r"libcore/\w+  running", status) and re.search(r"liba/\w+  pending", status)
    r = hdmod("cancel", str(site), "--root", str(root))
    assert f"cancelled {len(ids) + 1} job(s)" in r.stdout
    states = wait_jobs(ids, timeout=60)
    assert set(states.values()) == {"CANCELLED"}, states
    gate.touch()
    build_log = next((root / "tmp").glob("libcore-*/build.log")).read_text()
    assert "JOBS=2" in build_log  # the job's --cpus-per-task became the build's JOBS


@pytest.mark.parametrize("key", ["partition", "account", "qos", "constraint", "mem", "extra"])
def test_a_line_break_in_a_slurm_setting_is_refused_at_load(tmp_path, key):
    """Each setting becomes an #SBATCH line of the job script: a line break would start a
    shell command in every job. Refused with file:line before anything is built."""
    copy_demo(tmp_path / "demo")
    site = _site_without_externals(tmp_path / "demo")
    value = f'["x\\ntouch {tmp_path}/owned"]' if key == "extra" else f'"x\\ntouch {tmp_path}/o"'
    text = site.read_text()
    site.write_text(text + f"slurm:\n  {key}: {value}\n")
    line = text.count("\n") + 2
    r = hdmod("build", str(site), "--root", str(tmp_path / "root"), "--slurm", check=False)
    assert r.returncode == 1 and f"plain.yaml:{line}: slurm {key} " in r.stderr, r.stderr
    assert "line break" in r.stderr and not (tmp_path / "root" / "bld").exists()
