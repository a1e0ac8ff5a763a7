"""`hit build` end to end on the demo diamond, with the real gcc and the real linker."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need, run_clean, write_profile, write_recipe

APP_OUTPUT = (
    "Hello from app\ncore: libcore 1.0, answer 42\n"
    "a: liba on top of libcore 1.0\nb: twice the answer is 84\n"
)


def built_lines(r) -> list[str]:
    return [line for line in r.err.splitlines() if "built in" in line]


def test_demo_builds_and_runs_with_an_empty_environment(hit, home, demo):
    r = hit("build", cwd=demo)
    link = demo / "default"
    assert link.is_symlink() and Path(os.readlink(link)).is_relative_to(home / "bld" / "profile")
    assert len(built_lines(r)) == 4
    out = run_clean([str(link / "bin" / "app")])
    assert out.returncode == 0 and out.stdout == APP_OUTPUT
    # libraries are found through RUNPATH, into the hashed prefixes
    dyn = subprocess.run(
        ["readelf", "-d", str(link / "bin" / "app")], capture_output=True, text=True
    )
    runpath = next(line for line in dyn.stdout.splitlines() if "RUNPATH" in line)
    assert str(home / "bld" / "liba") in runpath and str(home / "bld" / "libcore") in runpath
    # every artifact holds its spec, log and manifest, and is read-only
    app = next((home / "bld" / "app").iterdir())
    spec = json.loads((app / ".hit" / "build.json").read_text())
    assert spec["id"].startswith("app/") and app.name == f"1.0-{spec['id'][4:16]}"
    manifest = json.loads((app / ".hit" / "manifest.json").read_text())
    assert list(manifest) == ["bin/app"] and manifest["bin/app"].startswith("x:")
    assert stat.S_IMODE((app / "bin").stat().st_mode) & 0o222 == 0
    assert (app / "bin" / "app").stat().st_mode & 0o222 == 0
    # the profile link is a gc root
    from hdmodules.store.roots import list_roots

    roots = list_roots(home / "gcroots", home / "bld")
    assert [(r.link, r.target) for r in roots] == [(link, Path(os.readlink(link)))]


def test_a_hit_home_given_with_dot_dot_is_the_folder_it_reaches(demo, tmp_path):
    """`HIT_HOME=../home` from the demo's folder: the store's path written into RUNPATH was
    `<demo>/../home/bld/...`, so renaming the demo's folder broke every program built
    there. The home is the folder the path reaches; the program still runs after it."""
    env = {**os.environ, "HIT_HOME": "../home"}
    r = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hit", "build"],
        cwd=demo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    link = demo / "default"
    assert os.readlink(link).startswith(f"{tmp_path}/home/bld/profile/")
    dyn = subprocess.run(["readelf", "-d", str(link / "bin" / "app")], capture_output=True)
    assert b"/../" not in dyn.stdout and f"{tmp_path}/home/bld/".encode() in dyn.stdout
    app = (link / "bin" / "app").resolve()
    demo.rename(tmp_path / "moved")
    assert run_clean([str(app)]).stdout == APP_OUTPUT


def test_second_build_is_a_no_op(hit, demo):
    hit("build", cwd=demo)
    r = hit("build", cwd=demo)
    assert built_lines(r) == [] and "building" not in r.err
    assert "(up to date)" in r.out


def test_remove_a_package_then_add_it_back(hit, demo):
    hit("build", cwd=demo)
    first = os.readlink(demo / "default")
    yaml = demo / "default.yaml"
    full = yaml.read_text()
    yaml.write_text(full.replace("  app:\n", ""))
    r = hit("build", cwd=demo)
    assert built_lines(r) == [] and "assembled" in r.err  # only a new profile
    assert os.readlink(demo / "default") != first
    assert not (demo / "default" / "bin").exists()
    yaml.write_text(full)
    r = hit("build", cwd=demo)
    assert built_lines(r) == [] and "assembled" not in r.err  # that profile exists already
    assert os.readlink(demo / "default") == first


def test_profiles_side_by_side_with_parameters(hit, demo):
    write_profile(demo / "release.yaml", "extends: [default.yaml]\n")
    write_profile(
        demo / "debug.yaml",
        "extends: [default.yaml]\npackages:\n  app:\n    parameters: {greeting: Debugging}\n",
    )
    hit("build", "release.yaml", cwd=demo)
    r = hit("build", "debug.yaml", cwd=demo)
    assert len(built_lines(r)) == 1  # only app differs
    assert run_clean([str(demo / "release" / "bin" / "app")]).stdout.startswith("Hello from app")
    assert run_clean([str(demo / "debug" / "bin" / "app")]).stdout.startswith("Debugging from")
    assert os.readlink(demo / "release") != os.readlink(demo / "debug")


def _toolbin(folder: Path) -> dict[str, tuple[str, int]]:
    """What a build folder's toolchain (bin/ and the MPI stub) holds: name -> (link target or
    text, mode)."""
    files = [*(folder / "toolchain" / "bin").iterdir(), folder / "toolchain" / "mpi-stub"]
    return {
        p.name: (os.readlink(p), 0) if p.is_symlink() else (p.read_text(), p.stat().st_mode & 0o777)
        for p in files
    }


def test_status_of_an_unchanged_profile_comes_from_the_memo_and_says_the_same(hit, demo, home):
    """`hit status` of a profile built and unchanged is answered from the no-op memo without
    resolving (issue 18: about a second at 5,000 packages over a site store), word for word
    what resolving and looking says; once the link points elsewhere (a rollback) or a recipe
    changes, it resolves again."""
    from hdmodules.errors import HitError
    from hdmodules.publish.status import profile_status
    from hdmodules.store.home import load_home

    def no_resolve(_profile):
        raise HitError("resolved")

    hit("build", cwd=demo)
    looked = hit("status", "default.yaml", cwd=demo).out  # first: from the memo
    (home / ".cache").rename(home / "cache-away")  # no memo: resolved and looked up
    assert hit("status", "default.yaml", cwd=demo).out == looked
    assert looked.count("  built\n") == 5
    shutil.rmtree(home / ".cache", ignore_errors=True)  # (what resolving cached, if any)
    (home / "cache-away").rename(home / ".cache")
    profile = str(demo / "default.yaml")
    assert profile_status(profile, load_home(), no_resolve) == (looked[:-1], None)  # not resolved
    yaml = demo / "default.yaml"
    yaml.write_text(yaml.read_text().replace("  app:\n", ""))
    assert "exists already" not in hit("build", cwd=demo).err  # a switch, from the memo
    assert "app " not in hit("status", cwd=demo).out  # its memo says nothing of the last
    recipe = demo / "pkgs" / "liba.yaml"
    recipe.write_text(recipe.read_text() + "\n")  # an input changed: the memo answers no more
    with pytest.raises(HitError, match="resolved"):
        profile_status(profile, load_home(), no_resolve)


def test_status_show_and_bdir(hit, demo, tmp_path):
    r = hit("status", cwd=demo)
    assert r.out.count("needs build") == 5
    hit("build", cwd=demo)
    r = hit("status", "default.yaml", cwd=demo)
    lines = r.out.splitlines()
    assert len(lines) == 5 and all(line.endswith("built") for line in lines)
    assert len({line.rindex("built") for line in lines}) == 1, r.out  # one column, any id
    app_line = next(line for line in lines if line.startswith("app "))
    spec = json.loads(hit("show", "buildspec", "app", "-p", "default.yaml", cwd=demo).out)
    assert spec["id"][: len("app/") + 12] in app_line
    assert spec["parameters"] == {"greeting": "Hello"} and set(spec["dependencies"]) == {
        "liba",
        "libb",
        "libcore",
    }
    script = hit("show", "script", "app", cwd=demo).out
    assert "export ARTIFACT=" in script and "-DGREETING" in script and "LIBA_DIR=" in script
    # `hit bdir app bld`: the package, then the folder (relative to cwd)
    hit("bdir", "app", "bld", cwd=demo)
    assert (demo / "bld" / "src" / "app.c").exists()
    # hit lays out the toolchain without a process; build.sh run by hand makes the same
    laid_out = _toolbin(demo / "bld")
    assert laid_out["mpicc"] == ("../mpi-stub", 0) and laid_out["mpi-stub"][1] == 0o755
    shutil.rmtree(demo / "bld" / "toolchain")
    done = subprocess.run(["bash", "build.sh"], cwd=demo / "bld", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _toolbin(demo / "bld") == laid_out
    assert run_clean([str(demo / "bld" / "artifact" / "bin" / "app")]).stdout == APP_OUTPUT
    r = hit("bdir", "app", "bld", cwd=demo, check=False)
    assert r.code == 1 and "not empty" in r.err


def test_builds_share_a_toolchain_laid_out_again_when_it_was_changed(hit, home, tmp_path):
    # what a build finds on its PATH as cc and mpicc, recorded in its artifact
    for name in ("one", "two"):
        write_recipe(
            tmp_path / "pkgs",
            name,
            f"""
            version: "1.0"
            build: |
              mkdir -p "$ARTIFACT/{name}"
              readlink "$(command -v cc)" > "$ARTIFACT/{name}/cc"
              mpicc 2> "$ARTIFACT/{name}/mpicc" || true
            """,
        )
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [one]\n")
    hit("build", cwd=tmp_path)
    (shared,) = (p for p in (home / "tmp" / ".toolchains").iterdir() if p.is_dir())
    cc = os.readlink(shared / "bin" / "cc")
    # a changed toolchain folder (by hand, or by a build) is laid out again before it is used
    os.unlink(shared / "bin" / "cc")
    os.symlink("/bin/false", shared / "bin" / "cc")
    (shared / "bin" / "mpicc").unlink()
    profile.write_text("package_dirs: [pkgs]\npackages: [one, two]\n")
    hit("build", "-j", "1", cwd=tmp_path)  # one build at a time: one slot
    toolchains = sorted(p.name for p in (home / "tmp" / ".toolchains").iterdir())
    assert toolchains == [shared.name, f"{shared.name}.lock"]
    for name in ("one", "two"):
        (artifact,) = (home / "bld" / name).iterdir()
        assert (artifact / name / "cc").read_text() == f"{cc}\n"
        assert "does not declare toolchain: [mpi]" in (artifact / name / "mpicc").read_text()
    assert not [p for p in (home / "tmp").iterdir() if p.name != ".toolchains"]
    # a toolchains folder others may write to (build_temp shared) is not used
    (home / "tmp" / ".toolchains").chmod(0o777)
    profile.write_text("package_dirs: [pkgs]\npackages: [one, two, three]\n")
    write_recipe(tmp_path / "pkgs", "three", 'version: "1.0"\nbuild: "true"\n')
    r = hit("build", cwd=tmp_path, check=False)
    assert r.code == 1 and "only this user can write to" in r.err and "Traceback" not in r.err


def _chain_built_one_at_a_time(hit, tmp_path: Path, spoil: list[str], record: str) -> dict:
    """Build, with -j 1, a chain of packages before <- spoiler <- after1 <- ... <- after6
    (each depends on the one before): the spoiler's build runs the shell lines `spoil`
    first; every build writes what the shell command `record` prints into its artifact.
    Returns package name -> what its build recorded."""
    names = ["before", "spoiler", *(f"after{i}" for i in range(1, 7))]
    for i, name in enumerate(names):
        steps = [
            *(spoil if name == "spoiler" else []),
            'mkdir -p "$ARTIFACT/share"',
            f'({record}) > "$ARTIFACT/share/{name}"',
        ]
        deps = names[i - 1] if i else ""
        build = "".join(f"  {step}\n" for step in steps)
        write_recipe(
            tmp_path / "pkgs", name, f'version: "1.0"\ndependencies: [{deps}]\nbuild: |\n{build}'
        )
    write_profile(tmp_path / "default.yaml", f"package_dirs: [pkgs]\npackages: {names}\n")
    hit("build", "-j", "1", cwd=tmp_path)
    return {n: (tmp_path / "default" / "share" / n).read_text().strip() for n in names}


@pytest.mark.parametrize(
    "spoil",
    [
        ["prlimit --pid $PPID --nofile=77:77", "renice -n 7 -p $PPID"],
        [
            "ionice -c 3 -p $PPID",
            "echo 0 > /proc/$PPID/coredump_filter",
            "echo 19 > /proc/$PPID/autogroup 2>/dev/null || true",  # a kernel with autogroups
        ],
    ],
    ids=["limits-nice", "io-core-autogroup"],
)
def test_a_build_that_changes_its_reaper_changes_no_later_build(hit, tmp_path, spoil):
    """Reapers serve build after build (reaper.py); any process of the user may change
    another's limits, nice value, I/O priority, core dump filter and its session's autogroup
    (`prlimit --pid $PPID`, `renice -p $PPID`, `ionice -p $PPID`, /proc/$PPID/...). A
    reaper whose build did so serves no more: the builds after it, one at a time (-j 1, so
    they go to the same two reapers in turn), start as the one before it did."""
    need(all(shutil.which(t) for t in ("prlimit", "renice", "ionice")), "prlimit, renice, ionice")
    record = [
        'echo "$(ulimit -Sn) $(ulimit -Hn) $(nice)"',
        "ionice -p $$",
        "cat /proc/self/coredump_filter",
        "sed 's/^[^ ]* //' /proc/self/autogroup 2>/dev/null || true",
    ]
    seen = _chain_built_one_at_a_time(hit, tmp_path, spoil, "; ".join(record))
    after = [n for n in seen if n.startswith("after")]
    assert len(after) == 6 and all(seen[n] == seen["before"] for n in after), seen


def test_a_build_that_changes_the_reaper_server_changes_no_later_build(hit, tmp_path):
    """A build may change its reaper's parent too, the server that forks every later
    reaper (reaper.serve): a reaper not as hit started the server serves no build, and hit
    starts another server for it, so no later build runs under the limits it set."""
    need(bool(shutil.which("prlimit") and shutil.which("renice")), "prlimit and renice")
    spoil = [
        'server=$(ps -o ppid= -p $PPID | tr -d " ")',
        "prlimit --pid $server --nofile=77:77",
        "renice -n 7 -p $server",
        "renice -n 7 -p $PPID",  # its own reaper serves no more: later ones are new forks
    ]
    record = 'echo "$(ulimit -Sn) $(ulimit -Hn) $(nice)"'
    seen = _chain_built_one_at_a_time(hit, tmp_path, spoil, record)
    after = [n for n in seen if n.startswith("after")]
    assert len(after) == 6 and all(seen[n] == seen["before"] for n in after), seen


def test_a_build_that_changes_the_reaper_beside_its_own_changes_no_later_build(hit, tmp_path):
    """The server keeps a reaper waiting beside the one running a build (reaper.serve),
    which that build can find (its reaper's parent's children) and change too: a reaper
    not as hit started the server when a request comes serves none (it ends, another
    takes the build), so no later build runs under the nice value or limits it was given.
    The spoiler changes its own reaper as well: the next build goes to the waiting one."""
    need(bool(shutil.which("prlimit") and shutil.which("renice")), "prlimit and renice")
    spoil = [
        'server=$(ps -o ppid= -p $PPID | tr -d " ")',
        "for p in $(ps -o pid= --ppid $server); do renice -n 7 -p $p; done",
        "for p in $(ps -o pid= --ppid $server); do prlimit --pid $p --nofile=77:77; done",
    ]
    record = 'echo "$(ulimit -Sn) $(ulimit -Hn) $(nice)"'
    seen = _chain_built_one_at_a_time(hit, tmp_path, spoil, record)
    after = [n for n in seen if n.startswith("after")]
    assert len(after) == 6 and all(seen[n] == seen["before"] for n in after), seen


def test_what_a_build_writes_into_the_shared_toolchain_reaches_no_later_build(hit, tmp_path):
    """The builds of a home share one toolchain folder per set of tools, first on PATH
    (tmp/.toolchains/<hash12>/bin). A build that puts a command there (a stray `install`
    into the first folder of PATH) does not lend it to the builds after it in the same run:
    the folder is checked before every build and laid out again."""
    spoil = ['printf "#!/bin/sh\\necho planted\\n" > "${PATH%%:*}/planted"',
             'chmod +x "${PATH%%:*}/planted"']  # fmt: skip
    seen = _chain_built_one_at_a_time(hit, tmp_path, spoil, "command -v planted || echo clean")
    assert seen["spoiler"].endswith("/planted"), seen  # it did plant it, on its own PATH
    after = [n for n in seen if n.startswith("after")]
    assert seen["before"] == "clean" and all(seen[n] == "clean" for n in after), seen


def test_a_failed_build_run_again_by_hand_lends_its_toolchain_to_no_build_of_hit(hit, tmp_path):
    """A failed build's folder is kept and its build.sh offers to run it again by hand
    (`bash build.sh`, as hit runs it). Run so while hit builds, it does not use the
    toolchain slot hit leased to the failed build, which hit now leases to another build:
    what it puts first on its PATH (a stray `install` into that folder) reaches no build
    of hit's running beside it."""
    t = tmp_path
    bad = (
        f'if [ -e {t}/go ]; then printf "#!/bin/sh\\necho planted\\n" > "${{PATH%%:*}}/planted"\n'
        f'  chmod +x "${{PATH%%:*}}/planted"; touch {t}/planted; fi\n'
        "exit 1\n"
    )
    write_recipe(t / "pkgs", "bad", 'version: "1"\nbuild: |\n' + _indent(bad))
    good = (
        f"touch {t}/started; while [ ! -e {t}/planted ]; do sleep 0.05; done\n"
        'mkdir -p "$ARTIFACT/share"\n'
        '(command -v planted || echo clean) > "$ARTIFACT/share/good"\n'
    )
    write_recipe(t / "pkgs", "good", 'version: "1"\nbuild: |\n' + _indent(good))
    write_profile(t / "bad.yaml", "package_dirs: [pkgs]\npackages: [bad]\n")
    r = hit("build", "bad.yaml", cwd=t, check=False)
    assert r.code == 1 and "build script failed" in r.err, r.err
    (kept,) = (t / "hithome" / "tmp").glob("bad-*")
    (t / "go").touch()
    wait = f"while [ ! -e {t}/started ]; do sleep 0.05; done; bash build.sh"
    by_hand = subprocess.Popen(["bash", "-c", wait], cwd=kept, stderr=subprocess.DEVNULL)
    try:
        write_profile(t / "default.yaml", "package_dirs: [pkgs]\npackages: [good]\n")
        hit("build", cwd=t, timeout=120)
    finally:
        by_hand.kill()
        by_hand.wait()
    assert (t / "default" / "share" / "good").read_text() == "clean\n"


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def test_a_build_that_links_the_shared_toolchain_elsewhere_lends_that_to_no_later_build(
    hit, tmp_path
):
    """A build that replaces the shared toolchain's bin/ by a symlink to a folder elsewhere
    holding the same links (a folder others may write to) does not make that folder the
    first of the later builds' PATH: a toolchain folder is right only if its folders are
    folders, not links; the outside folder is left alone."""
    pub = tmp_path / "pub"
    bin_ = '"${PATH%%:*}"'
    spoil = [f"mkdir -p {pub}; cp -a {bin_} {pub}/bin; cp -a {bin_}/../mpi-stub {pub}",
             f"rm -rf {bin_}; ln -s {pub}/bin {bin_}"]  # fmt: skip
    seen = _chain_built_one_at_a_time(hit, tmp_path, spoil, 'readlink -f "${PATH%%:*}"')
    assert seen["spoiler"] == f"{pub}/bin", seen  # it did link it, for itself
    after = [n for n in seen if n.startswith("after")]
    assert len(after) == 6 and all(seen[n] == seen["before"] for n in after), seen
    assert (pub / "bin" / "cc").is_symlink()


def test_what_a_build_writes_into_its_toolchain_reaches_no_build_running_beside_it(
    hit, home, tmp_path
):
    """Builds running at the same time (-j 2) that share a set of tools each have a slot of
    the shared toolchain folder of their own (tmp/.toolchains/<hash12>, <hash12>.1): a
    build that replaces `cc` first on its PATH while the other runs does not change the
    other's `cc`, and a build after them finds its slot as it should be."""
    record = 'cc --version | head -1 > "$ARTIFACT/share/{}"'
    for name, steps in [
        ("planter", ["sleep 0.3", 'rm -f "${PATH%%:*}/cc"',  # the link, not the host's gcc
                     'printf "#!/bin/sh\\necho planted\\n" > "${PATH%%:*}/cc"',
                     'chmod +x "${PATH%%:*}/cc"', 'mkdir -p "$ARTIFACT"']),
        ("beside", ["sleep 1.5", 'mkdir -p "$ARTIFACT/share"', record.format("beside")]),
        ("later", ['mkdir -p "$ARTIFACT/share"', record.format("later")]),
    ]:  # fmt: skip
        deps = "planter, beside" if name == "later" else ""  # not started before beside's cc
        build = "".join(f"  {step}\n" for step in steps)
        write_recipe(
            tmp_path / "pkgs", name, f'version: "1.0"\ndependencies: [{deps}]\nbuild: |\n{build}'
        )
    profile = "package_dirs: [pkgs]\npackages: [planter, beside, later]\n"
    write_profile(tmp_path / "default.yaml", profile)
    hit("build", "-j", "2", cwd=tmp_path)
    host = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout
    for name in ("beside", "later"):
        assert (tmp_path / "default" / "share" / name).read_text() == host.splitlines()[0] + "\n"
    slots = sorted(p.name for p in (home / "tmp" / ".toolchains").iterdir() if p.is_dir())
    assert len(slots) == 2 and slots[1] == f"{slots[0]}.1", slots


def test_parallel_builds_overlap(hit, tmp_path):
    stamp = tmp_path / "stamps"
    for name in ("slow1", "slow2"):
        write_recipe(
            tmp_path / "pkgs",
            name,
            f"""
            version: "1"
            build: |
              echo start {name} $(date +%s.%N) >> {stamp}
              sleep 1
              echo end {name} $(date +%s.%N) >> {stamp}
              mkdir -p "$ARTIFACT/share" && echo {name} > "$ARTIFACT/share/{name}"
            """,
        )
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [slow1, slow2]\n")
    hit("build", "-j", "2", str(p))
    times = {}
    for line in stamp.read_text().splitlines():
        what, name, t = line.split()
        times[(what, name)] = float(t)
    assert times[("start", "slow2")] < times[("end", "slow1")]
    assert times[("start", "slow1")] < times[("end", "slow2")]


def test_a_dependency_built_in_the_same_run_is_linked_from_the_folder_it_has(hit, home, tmp_path):
    """A dependency that installs its libraries into lib64 only, built in the same run as
    two packages that need it, one with a build system that runs host tools (its job was
    made before anything built, to check them) and one without (made when it is to start):
    both link from its lib64, as a later run's build would (LDFLAGS, LIBRARY_PATH and the
    run path look at the folders a dependency has, so each job is made once it is built)."""
    write_recipe(
        tmp_path / "pkgs",
        "d",
        'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/lib64"\n  touch "$ARTIFACT/lib64/libd.a"\n',
    )
    record = 'mkdir -p "$ARTIFACT/share"\n  echo "$LDFLAGS" > "$ARTIFACT/share/{0}"'
    write_recipe(
        tmp_path / "pkgs",
        "e",
        f'version: "1"\ndependencies: [d]\nbuild: |\n  {record.format("e")}\n',
    )
    makefile = "printf 'all:\\n\\ttrue\\ninstall:\\n\\ttrue\\n' > Makefile"
    write_recipe(
        tmp_path / "pkgs",
        "f",
        f'version: "1"\ndependencies: [d]\nbuild_system: make\npre_configure: |\n  {makefile}\n'
        f"build: |\n  {record.format('f')}\n",
    )
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [e, f]\n")
    hit("build", "-j", "2", str(p))
    (d,) = (home / "bld" / "d").iterdir()
    for name in ("e", "f"):
        (prefix,) = (home / "bld" / name).iterdir()
        flags = (prefix / "share" / name).read_text()
        assert f"-L{d}/lib64" in flags and f"-L{d}/lib " not in flags + " ", (name, flags)


def test_failed_build_keeps_folder_and_installs_nothing(hit, home, tmp_path):
    recipe = write_recipe(
        tmp_path / "pkgs",
        "broken",
        """
        version: "1"
        build: |
          mkdir -p "$ARTIFACT/bin"
          echo half > "$ARTIFACT/bin/half"
          echo "compiling the thing"
          false
          echo never
        """,
    )
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [broken]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1
    assert "the build script failed (exit 1)" in r.err and "compiling the thing" in r.err
    (kept,) = (home / "tmp").glob("broken-*")
    assert f"build folder kept: {kept}" in r.err
    assert not list((home / "bld" / "broken").iterdir())  # the half-written prefix is gone
    assert not (tmp_path / "default").exists()
    recipe.write_text(recipe.read_text().replace("  false\n", ""))
    hit("build", str(p))
    assert (tmp_path / "default" / "bin" / "half").read_text() == "half\n"


def test_a_failure_names_the_first_ten_packages_it_kept_from_being_built(hit, tmp_path):
    """A failure low in a stack skips nearly every other package: their ids made one line
    of 60 KB for 3,000 packages. The line names the first ten and counts the rest."""
    write_recipe(tmp_path / "pkgs", "base", 'version: "1"\nbuild: "exit 1"\n')
    build = 'build: |\n  mkdir -p "$ARTIFACT"\n'
    names = [f"p{i:02}" for i in range(25)]
    for name in names:
        write_recipe(tmp_path / "pkgs", name, f"version: '1'\ndependencies: [base]\n{build}")
    listed = ", ".join(names)
    p = write_profile(tmp_path / "p.yaml", f"package_dirs: [pkgs]\npackages: [{listed}]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1 and "base/" in r.err and "the build script failed (exit 1)" in r.err
    (line,) = [x for x in r.err.splitlines() if "not built because of the failure" in x]
    shown = line.split(": ", 1)[1]
    assert shown.endswith(" and 15 more"), line
    assert [x.split("/")[0] for x in shown.removesuffix(" and 15 more").split(", ")] == names[:10]


def test_a_build_that_replaces_its_log_by_a_fifo_does_not_hang_hit(hit, home, tmp_path):
    """build.log is in the build folder, the build's to change. A build that replaces it
    by a FIFO (nobody writes to it) must not block hit forever, whether the build succeeds
    (its log goes into the artifact's .hit) or fails (its tail is shown): such a log is not
    kept, and nothing is read from it; an ordinary log still is."""
    fifo = ["rm -f ../build.log", "mkfifo ../build.log"]
    for name, steps in [
        ("plain", ["echo said by plain", 'mkdir -p "$ARTIFACT"']),
        ("quiet", [*fifo, 'mkdir -p "$ARTIFACT"']),
        ("failing", ["echo said before failing", *fifo, "exit 3"]),
    ]:
        build = "".join(f"  {step}\n" for step in steps)
        write_recipe(tmp_path / "pkgs", name, f'version: "1.0"\nbuild: |\n{build}')
    p = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [plain, quiet]\n")
    hit("build", "-j", "1", str(p), timeout=120)
    logs = {d.parent.parent.name: d / "build.log" for d in (home / "bld").glob("*/*/.hit")}
    assert logs["plain"].read_text() == "said by plain\n" and not logs["quiet"].exists()
    p.write_text("package_dirs: [pkgs]\npackages: [failing]\n")
    r = hit("build", "-j", "1", str(p), check=False, timeout=120)
    assert r.code == 1 and "the build script failed (exit 3)" in r.err, r.err


def test_a_host_library_leak_fails_the_build(hit, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "z.c").write_text(
        "#include <zlib.h>\n#include <stdio.h>\nint main(void){puts(zlibVersion());return 0;}\n"
    )
    recipe = write_recipe(
        tmp_path / "pkgs",
        "usesz",
        """
        version: "1"
        sources: [{path: ../src}]
        build: |
          gcc $CPPFLAGS -o zprog z.c $LDFLAGS -l:libz.so.1
          install -Dm755 zprog "$ARTIFACT/bin/zprog"
        """,
    )
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [usesz]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1
    assert "library check failed" in r.err
    assert "bin/zprog needs libz.so.1: found on the host at" in r.err
    recipe.write_text(recipe.read_text() + "allow_host_libs: [libz.so.1]\n")
    hit("build", str(p))
    assert run_clean([str(tmp_path / "default" / "bin" / "zprog")]).returncode == 0


def test_a_failed_link_check_writes_nothing_through_a_hard_link_the_build_left(hit, tmp_path):
    """A build that replaced its build.log by a hard link to a file elsewhere (of the
    user's) and fails the library check: the check's lines are not appended to that file
    (the log is no longer the build's alone); the failure still says what is wrong."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "z.c").write_text(
        "#include <zlib.h>\n#include <stdio.h>\nint main(void){puts(zlibVersion());return 0;}\n"
    )
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    write_recipe(
        tmp_path / "pkgs",
        "usesz",
        f"""
        version: "1"
        sources: [{{path: ../src}}]
        build: |
          gcc $CPPFLAGS -o zprog z.c $LDFLAGS -l:libz.so.1
          install -Dm755 zprog "$ARTIFACT/bin/zprog"
          rm ../build.log; ln {victim} ../build.log
        """,
    )
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [usesz]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1 and "bin/zprog needs libz.so.1" in r.err and "Traceback" not in r.err
    assert victim.read_text() == "mine\n"


def _two_shipping(tmp_path, prefer=""):
    for name in ("one", "two"):
        write_recipe(
            tmp_path / "pkgs",
            name,
            f"""
            version: "1"
            build: |
              mkdir -p "$ARTIFACT/bin" "$ARTIFACT/share/{name}"
              echo {name} > "$ARTIFACT/share/{name}/README"
              printf '#!/bin/sh\\necho {name}\\n' > "$ARTIFACT/bin/tool"
              chmod +x "$ARTIFACT/bin/tool"
            """,
        )
    return write_profile(
        tmp_path / "default.yaml", f"package_dirs: [pkgs]\npackages: [one, two]\n{prefer}"
    )


def test_file_conflict_names_both_packages(hit, tmp_path):
    p = _two_shipping(tmp_path)
    r = hit("build", str(p), check=False)
    assert r.code == 1 and "packages one and two conflict on bin/tool" in r.err
    assert "prefer:" in r.err


def test_prefer_settles_a_conflict(hit, tmp_path):
    p = _two_shipping(tmp_path, "prefer: [two]\n")
    hit("build", str(p))
    assert run_clean([str(tmp_path / "default" / "bin" / "tool")]).stdout == "two\n"
    assert (tmp_path / "default" / "share" / "one" / "README").read_text() == "one\n"


def test_console_scripts_are_installed():
    bindir = Path(sys.executable).parent
    for tool in ("hit", "hdmod"):
        exe = bindir / tool if (bindir / tool).exists() else shutil.which(tool)
        assert exe, f"{tool} is not installed"
        r = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and "0.1.0" in r.stdout


def test_init_home_writes_a_commented_config(hit, home):
    r = hit("init-home")
    cfg = home / "config.yaml"
    assert r.out.strip() == str(cfg)
    text = cfg.read_text()
    for key in (
        "store: bld",
        "source_cache: src",
        "build_temp: tmp",
        "gc_roots: gcroots",
        "mirrors:",
    ):
        assert key in text
    assert text.count("#") > 10
    assert all((home / d).is_dir() for d in ("bld", "src", "tmp", "gcroots"))


def test_no_op_fast_path_still_sees_every_kind_of_change(hit, demo):
    hit("build", cwd=demo)
    hit("build", cwd=demo)  # memo written and used
    app_c = demo / "src" / "app" / "app.c"
    app_c.write_text(app_c.read_text().replace("from app", "from the app"))
    r = hit("build", cwd=demo)
    assert [line.split()[1].split("/")[0] for line in built_lines(r)] == ["app"]
    assert "from the app" in run_clean([str(demo / "default" / "bin" / "app")]).stdout
    # a recipe of the same name in a package dir searched earlier shadows the old one
    (demo / "mine").mkdir()
    (demo / "mine" / "libb.yaml").write_text(
        (demo / "pkgs" / "libb.yaml").read_text().replace("-O2", "-O1")
    )
    yaml = demo / "default.yaml"
    yaml.write_text(yaml.read_text().replace("package_dirs: [pkgs]", "package_dirs: [mine, pkgs]"))
    hit("build", cwd=demo)
    (demo / "mine" / "libb.yaml").write_text((demo / "mine" / "libb.yaml").read_text() + "\n")
    hit("build", cwd=demo)  # memo written with mine/libb.yaml as an input
    (demo / "mine" / "libb.yaml").write_text(
        (demo / "mine" / "libb.yaml").read_text().replace("-O1", "-O3")
    )
    r = hit("build", cwd=demo)
    assert sorted(line.split()[1].split("/")[0] for line in built_lines(r)) == ["app", "libb"]


def test_single_owner_folders_are_folded_into_one_link(hit, demo):
    hit("build", cwd=demo)
    profile = demo / "default"
    assert (profile / "bin").is_symlink()  # only app has bin/
    assert not (profile / "lib").is_symlink() and (profile / "lib" / "liba.so.1").is_symlink()
    assert not (profile / "include").is_symlink()


def test_live_progress_on_a_terminal(home, demo):
    """On a terminal the last line shows what is building and is redrawn in place."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: hit on a pseudo-terminal
        os.chdir(demo)
        os.execv(sys.executable, [sys.executable, "-m", "hdmodules.cli.hit", "build", "-j", "1"])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, screen
    assert "\r\x1b[K" in screen and "building: " in screen
    assert "[4/4] app/" in screen


def test_a_failed_build_carries_its_artifact_folder_log_and_tail(home, tmp_path):
    """builder.build from one BuildJob: BuildFailed's fields, and nothing installed."""
    import pytest

    from hdmodules.build.builder import build
    from hdmodules.build.buildjob import build_job
    from hdmodules.errors import BuildFailed
    from hdmodules.spec.profiles import load_profile
    from hdmodules.spec.resolve import resolve
    from hdmodules.store.home import init_home, load_home, open_store

    write_recipe(
        tmp_path / "pkgs", "bad", 'version: "1"\nbuild: |\n  echo about to fail\n  exit 3\n'
    )
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages:\n  bad:\n")
    init_home(home)
    h = load_home(home)
    store = open_store(h)
    resolved = resolve(load_profile(profile))
    job = build_job(resolved, resolved.nodes["bad"], h, store, 1)
    assert job.prefix == store.prefix(job.ref) and job.dependencies == ()
    assert ("ARTIFACT", str(job.prefix)) in job.env and f"ARTIFACT={job.prefix}" in job.script
    with pytest.raises(BuildFailed) as caught:
        build(job, store)
    failed = caught.value
    assert failed.artifact == job.ref.id and failed.what == "the build script failed (exit 3)"
    assert failed.folder == job.folder and failed.log == job.folder / "build.log"
    assert "about to fail" in failed.tail and failed.log.exists()
    assert str(failed).startswith(
        f"{job.ref.id}: the build script failed (exit 3)\n  build folder kept: {job.folder}\n"
    )
    assert not store.is_installed(job.ref) and not job.prefix.exists()
