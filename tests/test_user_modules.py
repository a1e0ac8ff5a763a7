"""A user's module tree on a site (issue 13, item 2, the user part): the union of the modules
of all the user's live site-style profiles, names settled across them by the site's rule,
regenerated whole at each `hit build` and after `hit gc` and `hit rm`, and loaded by the real
Lmod and the real Environment Modules."""

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import demo_site, need, run_hit, write_profile, write_recipe
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import module_shell

TOOLS = ("lmod", "tcl")
LEVEL = ("Compiler", "gcc", "12.2.0")
HELLO = """\
version: "1.0"
description: A user's own package
parameters: {flavour: release}
build: |
  mkdir -p "$ARTIFACT/share"
  echo "$FLAVOUR" > "$ARTIFACT/share/flavour"
"""


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    """A site with one gcc-12 stack (libcore) and modules for gcc-12 only."""
    need(bool(shutil.which("gcc-12")), "gcc-12")
    tmp = tmp_path_factory.mktemp("usersite")
    site_yaml = demo_site(tmp, "  gcc12:\n    compiler: gcc-12\n    packages: [libcore]\n")
    text = re.sub(r"externals: \[[^]]*\]", "externals: [gcc-12]", site_yaml.read_text())
    site_yaml.write_text(text)
    root = tmp / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    return root


@pytest.fixture
def user(site, tmp_path, monkeypatch):
    """A user of the site: HIT_HOME, the site's defaults, a project with `hello` and the
    profiles release.yaml and debug.yaml (hello built with another parameter)."""
    home = tmp_path / "hithome"
    monkeypatch.setenv("HIT_HOME", str(home))
    monkeypatch.setenv("HIT_SITE_CONFIG", str(site / "user-config.yaml"))
    proj = tmp_path / "proj"
    write_recipe(proj / "mypkgs", "hello", HELLO)
    head = f"extends: [{site}/stacks/gcc12.yaml]\npackage_dirs: [mypkgs]\n"
    write_profile(proj / "release.yaml", head + "packages: {hello: }\n")
    write_profile(
        proj / "debug.yaml", head + "packages:\n  hello: {parameters: {flavour: debug}}\n"
    )
    return {"home": home, "proj": proj, "site": site}


def hit(user, *args, check=True):
    return run_hit(*args, cwd=user["proj"], check=check)


def load(user, tool: str, *names: str):
    """Load the site's gcc/12.2.0 then `names` in a clean shell of `tool`; the run."""
    core = user["site"] / "modules" / tool / "Core"
    return module_shell(
        tool,
        f"export HIT_HOME={shlex.quote(str(user['home']))}; module use {core}; "
        f"module load gcc/12.2.0 && module load {' '.join(names)}",
    )


def avail(user, tool: str) -> list[str]:
    """The user's hello modules `module -t avail` lists after loading the site's compiler."""
    core = user["site"] / "modules" / tool / "Core"
    run = module_shell(
        tool,
        f"export HIT_HOME={shlex.quote(str(user['home']))}; module use {core}; "
        "module load gcc/12.2.0 && module -t avail 2>&1",
        capture_env=False,
    )
    assert run.code == 0, run.err
    names = [re.sub(r"\s*(\([^)]*\)|<[^>]*>)", "", w) for w in run.out.split()]
    return sorted(n for n in names if n.startswith("hello/") and not n.endswith("/"))


def flavour(run) -> str:
    """What the loaded hello artifact was built as (release or debug)."""
    assert run.code == 0, run.err
    return (Path(run.env["HELLO_ROOT"]) / "share" / "flavour").read_text().strip()


def suffixed(stderr: str) -> list[str]:
    """The hash-suffixed hello names `hit build` said it wrote."""
    return re.findall(r"module written: (hello/1\.0-[0-9a-z]{7}) \(Compiler/gcc/12\.2\.0\)", stderr)


@pytest.mark.parametrize("tool", TOOLS)
def test_two_builds_of_one_package_get_two_names_and_one_default(user, tool):
    """release.yaml and debug.yaml build hello 1.0 differently: both modules load under
    their own hash-suffixed names, `hello` and `hello/1.0` load the same one (debug's: the
    profile whose link sorts first), and `hit build` says which names it wrote."""
    first = hit(user, "build", "release.yaml")
    assert "module written: hello/1.0 (Compiler/gcc/12.2.0)" in first.err, first.err
    second = hit(user, "build", "debug.yaml")
    [debug] = suffixed(second.err)
    assert f"module hello/1.0 at {'/'.join(LEVEL)} is 2 different builds" in second.err
    assert str(user["proj"] / "release") in second.err and str(user["proj"] / "debug") in second.err
    assert f"`module load hello` and hello/1.0 load {debug}" in second.err, second.err
    names = avail(user, tool)
    [release] = [n for n in names if n.startswith("hello/1.0-") and n != debug]
    assert set(names) - {"hello/1.0"} == {release, debug}, names
    assert flavour(load(user, tool, release)) == "release"
    assert flavour(load(user, tool, debug)) == "debug"
    for plain in ("hello", "hello/1.0"):
        assert flavour(load(user, tool, plain)) == "debug", plain
    assert (user["home"] / "modules").is_symlink()  # published whole, by one link


def test_the_default_does_not_depend_on_the_build_order(user, tmp_path, monkeypatch):
    """The same two profiles built the other way round, in another home, give the same module
    names and the same rc files (the names are a function of the live profiles, not of the
    history)."""
    homes = (user["home"], tmp_path / "other")
    for home, order in zip(homes, (("release", "debug"), ("debug", "release")), strict=True):
        monkeypatch.setenv("HIT_HOME", str(home))
        for profile in order:
            hit(user, "build", f"{profile}.yaml")
    trees = [(home / "modules").resolve() for home in homes]
    files = [{p.relative_to(t): p for p in t.rglob("*") if p.is_file()} for t in trees]
    assert (
        files[0].keys() == files[1].keys() and len(files[0]) == 7
    )  # 2 modules, 1 rc file, 2 formats; the manifest
    rcs = [k for k in files[0] if k.name.startswith(".modulerc")]
    assert all(files[0][k].read_bytes() == files[1][k].read_bytes() for k in rcs)


@pytest.mark.parametrize("tool", TOOLS)
def test_the_same_artifact_in_two_profiles_is_one_plain_module(user, tool):
    shutil.copy(user["proj"] / "release.yaml", user["proj"] / "same.yaml")
    hit(user, "build", "release.yaml")
    r = hit(user, "build", "same.yaml")
    assert "module written: hello/1.0 (Compiler/gcc/12.2.0)" in r.err and "different" not in r.err
    assert avail(user, tool) == ["hello/1.0"]
    assert flavour(load(user, tool, "hello")) == "release"


@pytest.mark.parametrize("tool", TOOLS)
def test_removing_a_profile_gives_the_other_its_plain_name_back(user, tool):
    """`hit rm debug` then `hit gc`: release's hello is `hello/1.0` again and loads release's
    artifact; debug's module, artifact and record are gone."""
    hit(user, "build", "release.yaml")
    hit(user, "build", "debug.yaml")
    debug_profile = (user["proj"] / "debug").resolve()
    record = user["home"] / "gcroots" / "_modules" / f"{debug_profile.name}.json"
    assert record.exists()
    debug_root = Path(load(user, tool, "hello").env["HELLO_ROOT"])
    r = hit(user, "rm", "debug")
    assert "module written: hello/1.0 (Compiler/gcc/12.2.0)" in r.err, r.err
    assert re.search(r"module removed: hello/1\.0-[0-9a-z]{7} \(Compiler/gcc/12\.2\.0\)", r.err)
    r = hit(user, "gc")
    assert f"removed hello/{debug_root.name.partition('-')[2]}" in r.err
    assert not debug_root.exists()
    assert not record.exists() and not debug_profile.exists()
    assert avail(user, tool) == ["hello/1.0"]
    run = load(user, tool, "hello/1.0")
    assert flavour(run) == "release"
    assert Path(run.env["HELLO_ROOT"]) == (user["proj"] / "release" / "share").resolve().parent


def test_rollback_gives_back_the_modules_of_the_generation_it_makes_live(user):
    """release.yaml built, then changed and built again: `hit rollback release.yaml` points the
    link back, and `module load hello` loads the earlier build again (Environment Modules)."""
    hit(user, "build", "release.yaml")
    first = flavour(load(user, "tcl", "hello"))
    text = (user["proj"] / "release.yaml").read_text()
    (user["proj"] / "release.yaml").write_text(
        text.replace("packages: {hello: }", "packages:\n  hello: {parameters: {flavour: second}}")
    )
    hit(user, "build", "release.yaml")
    assert flavour(load(user, "tcl", "hello")) == "second"
    hit(user, "rollback", "release.yaml")
    assert flavour(load(user, "tcl", "hello")) == first == "release"


def test_a_link_removed_by_hand_keeps_its_modules_while_the_gc_keeps_its_profile(user):
    """Which profiles count follows the gc's roots: a link deleted with plain `rm` leaves a
    stale root that keeps its profile, and its module; `hit gc --drop-stale` drops both."""
    hit(user, "build", "release.yaml")
    hit(user, "build", "debug.yaml")
    (user["proj"] / "debug").unlink()
    r = hit(user, "gc")
    assert "stale root" in r.err and len(avail(user, "lmod")) == 3  # both, and the alias
    r = hit(user, "gc", "--drop-stale")
    assert "module written: hello/1.0 (Compiler/gcc/12.2.0)" in r.err, r.err
    assert avail(user, "lmod") == ["hello/1.0"]
    assert flavour(load(user, "lmod", "hello")) == "release"


@pytest.mark.parametrize("tool", TOOLS)
def test_modules_appear_in_a_shell_that_loaded_the_compiler_before(user, tool):
    """The first build turns a missing `$HIT_HOME/modules` into the link, the second re-points
    it: a shell that loaded the site's compiler before either sees both."""
    core = user["site"] / "modules" / tool / "Core"
    hit_cmd = shlex.join([sys.executable, "-m", "hdmodules.cli.hit", "build"])
    env = f"HIT_SITE_CONFIG={shlex.quote(os.environ['HIT_SITE_CONFIG'])}"
    script = (
        f"export HIT_HOME={shlex.quote(str(user['home']))} {env}; cd {user['proj']}; "
        f"module use {core}; module load gcc/12.2.0 || exit 3; "
        f"{hit_cmd} release.yaml 2>/dev/null >&2 || exit 4; "
        "module load hello || exit 5; echo FIRST=$HELLO_ROOT; module unload hello; "
        f"{hit_cmd} debug.yaml 2>/dev/null >&2 || exit 6; "
        "module -t avail 2>&1 | grep -c '^hello/1.0-'"
    )
    run = module_shell(tool, script, capture_env=False)
    assert run.code == 0, run.out + run.err
    first = re.search(r"FIRST=(\S+)", run.out)
    assert first and Path(first[1], "share", "flavour").read_text().strip() == "release"
    assert run.out.split()[-1] == "2", run.out + run.err


def test_an_old_module_folder_is_moved_aside_not_lost(user):
    """A `$HIT_HOME/modules` folder an earlier hit wrote file by file is moved aside (it may
    hold the user's own files), and the tree takes its place as a link."""
    old = user["home"] / "modules" / "lmod" / "Compiler" / "gcc" / "12.2.0" / "mine"
    old.mkdir(parents=True)
    (old / "1.0.lua").write_text('setenv("MINE", "yes")\n')
    r = hit(user, "build", "release.yaml")
    moved = user["home"] / "modules.before-regeneration"
    assert f"to {moved}" in r.err and (moved / "lmod/Compiler/gcc/12.2.0/mine/1.0.lua").exists()
    assert (user["home"] / "modules").is_symlink()
    assert avail(user, "tcl") == ["hello/1.0"]


def test_a_site_roots_tree_is_never_replaced_by_a_users(user, tmp_path, monkeypatch):
    """A home whose `modules` is a link no record made (a site root: hdmod writes its tree)
    is left alone: the build says so and writes no module."""
    home = tmp_path / "siteish"
    (home / "elsewhere").mkdir(parents=True)
    (home / "modules").symlink_to(home / "elsewhere")
    monkeypatch.setenv("HIT_HOME", str(home))
    r = hit(user, "build", "release.yaml")
    assert "modules not written" in r.err and "module written" not in r.err
    assert os.readlink(home / "modules") == str(home / "elsewhere")
    assert not (home / "gcroots" / "_modules").exists()
    r = hit(user, "gc")
    assert os.readlink(home / "modules") == str(home / "elsewhere")


def test_a_broken_record_is_skipped_by_name(user):
    """A record that is not one hit wrote costs that profile its modules, with a note naming
    the record and the profile's link; the others are written."""
    hit(user, "build", "release.yaml")
    hit(user, "build", "debug.yaml")
    profile = (user["proj"] / "debug").resolve()
    record = user["home"] / "gcroots" / "_modules" / f"{profile.name}.json"
    doc = json.loads(record.read_text())
    doc["modules"][0]["level"] = 7
    record.write_text(json.dumps(doc))
    r = hit(user, "rm", "release")  # any regeneration
    assert f"skipped the module record {record} of {user['proj'] / 'debug'}" in r.err, r.err
    assert "Traceback" not in r.err and avail(user, "lmod") == []


@pytest.mark.parametrize("tool", TOOLS)
def test_a_loaded_module_whose_profile_is_removed_still_unloads(user, tool):
    """A shell loads hello (debug's build, `hello/1.0-<hash>`); `hit rm debug` renames
    release's to `hello/1.0` and drops debug's name; `module unload hello` still unsets what
    debug's module set (the new tree holds a hidden stand-in at the old path)."""
    hit(user, "build", "release.yaml")
    hit(user, "build", "debug.yaml")
    core = user["site"] / "modules" / tool / "Core"
    rm = shlex.join([sys.executable, "-m", "hdmodules.cli.hit", "rm", str(user["proj"] / "debug")])
    run = module_shell(
        tool,
        f"export HIT_HOME={shlex.quote(str(user['home']))}; module use {core}; "
        "module load gcc/12.2.0 hello && echo WAS=$HELLO_ROOT; "
        f"{rm} > /dev/null 2>&1 || exit 7; module unload hello || exit 8; "
        "echo NOW=${HELLO_ROOT-unset}",
    )
    assert run.code == 0, run.out + run.err
    seen = run.echoed()
    assert "/hello/" in seen["WAS"] and seen["NOW"] == "unset", run.out


def _named_site(tmp_path, monkeypatch, stacks: list[str], naming: str) -> tuple[Path, ...]:
    """The demo site with `stacks` (each libcore and liba with gcc-12) and `naming`, built
    into tmp_path/root; a user's home and project beside it (HIT_HOME, HIT_SITE_CONFIG set).
    Returns (root, home, project)."""
    need(bool(shutil.which("gcc-12")), "gcc-12")
    listed = "".join(
        f"  {name}:\n    compiler: gcc-12\n    packages: [libcore, liba]\n" for name in stacks
    )
    site_yaml = demo_site(tmp_path, listed)
    text = re.sub(r"externals: \[[^]]*\]", "externals: [gcc-12]", site_yaml.read_text())
    site_yaml.write_text(text.replace("modules:\n", f'modules:\n  naming: "{naming}"\n'))
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    home, proj = tmp_path / "hithome", tmp_path / "proj"
    monkeypatch.setenv("HIT_HOME", str(home))
    monkeypatch.setenv("HIT_SITE_CONFIG", str(root / "user-config.yaml"))
    return root, home, proj


def test_a_user_s_modules_follow_the_site_s_naming(tools, tmp_path, monkeypatch):
    """A site with `naming: "{name}/{compiler}{compiler_version}/{version}"`: a user's own
    package built on its stack is named by that rule, and the site's module it depends on
    is loaded by the site's name (the user's module said `depends_on("liba/1.0")` and failed
    to load: this stop's new-user trial). The stack's published copy carries the naming."""
    root, home, proj = _named_site(
        tmp_path, monkeypatch, ["gcc12"], "{name}/{compiler}{compiler_version}/{version}"
    )
    write_recipe(proj / "mypkgs", "mytool", HELLO + "dependencies: [liba]\n")
    write_profile(
        proj / "default.yaml",
        f"extends: [{root}/stacks/gcc12.yaml]\npackage_dirs: [mypkgs]\npackages: {{mytool: }}\n",
    )
    r = run_hit("build", cwd=proj)
    assert "module written: mytool/gcc12.2.0/1.0 (Compiler/gcc/12.2.0)" in r.err, r.err
    for tool in TOOLS:
        core = root / "modules" / tool / "Core"
        run = module_shell(
            tool,
            f"export HIT_HOME={shlex.quote(str(home))}; module use {core}; "
            "module load gcc/12.2.0 && module load mytool/gcc12.2.0",
        )
        assert run.code == 0, run.err
        assert Path(run.env["MYTOOL_ROOT"]).is_relative_to(home), run.env.get("MYTOOL_ROOT")
        assert Path(run.env["LIBA_ROOT"]).is_relative_to(root), run.env.get("LIBA_ROOT")
    # a profile's own `modules:` takes what it does not say from the stack it extends (the
    # smallest one, `stack:` alone, named the site's modules by the default naming)
    write_profile(
        proj / "other.yaml",
        f"extends: [{root}/stacks/gcc12.yaml]\npackage_dirs: [mypkgs]\n"
        "packages: {mytool: {parameters: {flavour: debug}}}\nmodules: {stack: mine}\n",
    )
    r = run_hit("build", "other.yaml", cwd=proj)
    assert re.search(r"module written: mytool/gcc12\.2\.0/1\.0-[0-9a-z]{7} ", r.err), r.err
    lua = next((home / "modules" / "lmod").rglob("1.0-*.lua")).read_text()
    assert 'depends_on("liba/gcc12.2.0/1.0")' in lua, lua


def test_a_user_s_modules_load_the_site_s_modules_by_the_names_the_site_gave(
    tools, tmp_path, monkeypatch
):
    """With `{stack}` in the site's naming, the artifacts two stacks share have one module,
    named after the first stack (liba/1.0-first). A user on the second stack named it by
    the second's (`depends_on("liba/1.0-second")`), which no module is, and the load failed;
    so did a profile extending both stacks (named by the last). The published copy lists the
    name the site gave each of the stack's artifacts, and a user's modules use it."""
    root, home, proj = _named_site(
        tmp_path, monkeypatch, ["first", "second"], "{name}/{version}-{stack}"
    )
    stacks = root / "stacks"
    for file, extends, tool in [
        ("default.yaml", f"{stacks}/second.yaml", "mytool"),
        ("both.yaml", f"{stacks}/first.yaml, {stacks}/second.yaml", "othertool"),
    ]:
        write_recipe(proj / "mypkgs", tool, HELLO + "dependencies: [liba]\n")
        write_profile(
            proj / file,
            f"extends: [{extends}]\npackage_dirs: [mypkgs]\npackages: {{{tool}: }}\n",
        )
        r = run_hit("build", file, cwd=proj)
        assert f"module written: {tool}/1.0-second " in r.err, r.err
        lua = next((home / "modules" / "lmod").rglob(f"{tool}/1.0-second.lua")).read_text()
        assert 'depends_on("liba/1.0-first")' in lua, lua
        for kind in TOOLS:
            run = module_shell(
                kind,
                f"export HIT_HOME={shlex.quote(str(home))}; "
                f"module use {root / 'modules' / kind / 'Core'}; "
                f"module load gcc/12.2.0 && module load {tool}/1.0-second",
            )
            assert run.code == 0, (file, kind, run.err)
            assert Path(run.env["LIBA_ROOT"]).is_relative_to(root), run.env.get("LIBA_ROOT")
