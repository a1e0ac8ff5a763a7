"""A site rebuilt under its users' feet: shells that loaded modules before `hdmod build`
unload them cleanly afterwards, in the real Lmod and the real Environment Modules (issue 13,
item 7)."""

import os
import shlex
import sys
from pathlib import Path

import pytest

from hdmodules.publish.moduletree import trees_folder, write_tree
from hdmodules.spec.site import load_site
from tests.conftest import TWO_APPS, demo_site
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import module_shell

TOOLS = ("lmod", "tcl")
STACK = "  gcc12:\n    compiler: gcc-12\n    packages: [libcore, liba, libb, app]\n"


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rebuilt")
    site_yaml = demo_site(tmp, STACK)
    root = tmp / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    return {"yaml": site_yaml, "root": root, "recipe": site_yaml.parent / "pkgs" / "app.yaml"}


def _rebuild(site, greeting: str) -> str:
    """Shell text: change app's greeting and rebuild the site from inside the shell."""
    text = site["recipe"].read_text().replace("greeting: Hello", f"greeting: {greeting}")
    edit = f"printf %s {shlex.quote(text)} > {shlex.quote(str(site['recipe']))}"
    build = shlex.join(
        [
            sys.executable,
            "-m",
            "hdmodules.cli.hdmod",
            "build",
            str(site["yaml"]),
            "--root",
            str(site["root"]),
        ]  # fmt: skip
    )
    return f"{edit} && {build} > /dev/null 2>&1 || exit 7"


@pytest.mark.parametrize("tool", TOOLS)
def test_a_module_loaded_before_a_rebuild_unloads_cleanly(site, tool):
    """A shell loads app; the admin changes app and rebuilds; `module unload app` removes
    the old artifact's bin/ from PATH and its APP_ROOT; loading again gives the new build;
    unloading the compiler then takes everything it added."""
    original = site["recipe"].read_text()
    greeting = f"Howdy{tool}"  # a new build whatever an earlier test left published
    core = site["root"] / "modules" / tool / "Core"
    try:
        run = module_shell(
            tool,
            f"module use {core}; module load gcc/12.2.0 app; echo OLD=$APP_ROOT; "
            f"echo PATH_LOADED=$PATH; {_rebuild(site, greeting)}; "
            "module unload app; echo PATH_UNLOADED=$PATH; echo ROOT_UNLOADED=${APP_ROOT-unset}; "
            "module load app && app && echo NEW=$APP_ROOT; module unload app gcc",
        )
    finally:
        site["recipe"].write_text(original)
    assert run.code == 0, run.err
    seen = run.echoed()
    old, new = seen["OLD"], seen["NEW"]
    assert old and new and old != new  # the rebuild made a new artifact
    assert f"{old}/bin" in seen["PATH_LOADED"].split(":")
    assert f"{old}/bin" not in seen["PATH_UNLOADED"].split(":"), seen["PATH_UNLOADED"]
    assert seen["ROOT_UNLOADED"] == "unset"
    assert greeting in run.out  # the new build, loaded by name after the rebuild
    assert run.env["PATH"] == "/usr/bin:/bin", run.env["PATH"]
    assert not any(k.startswith("__HDMOD_") for k in run.env), run.env.keys()
    assert not [p for p in run.env.get("MODULEPATH", "").split(":") if "Compiler" in p]


def test_replaced_trees_are_kept_for_keep_days(site, tmp_path):
    """A replaced tree stays while shells may unload from it: `modules: keep_days` (30 by
    default) after it was replaced; the tree just replaced is always kept."""
    loaded = load_site(site["yaml"], tmp_path / "root", tmp_path / "modules")
    day = 86400.0
    files = {"lmod/Core/a/1.0.lua": b"-- one\n", "tcl/Core/a/1.0": b"#%Module\n"}
    first, _ = write_tree(loaded, files, now=0.0)
    second, _ = write_tree(loaded, {**files, "lmod/Core/a/1.0.lua": b"-- two\n"}, now=day)
    third, _ = write_tree(loaded, {**files, "lmod/Core/a/1.0.lua": b"-- three\n"}, now=2 * day)
    assert first.exists() and second.exists() and third.exists()
    assert os.readlink(loaded.modules.path) == str(third)
    # 31 days after `first` was replaced: it goes; `second` (replaced on day 2) stays
    fourth, _ = write_tree(loaded, {**files, "lmod/Core/a/1.0.lua": b"-- four\n"}, now=32 * day)
    assert not first.exists() and second.exists() and third.exists() and fourth.exists()
    kept = sorted(p.name for p in trees_folder(loaded.modules.path).iterdir())
    assert [k for k in kept if not k.startswith(".")] == sorted(
        Path(p).name for p in (second, third, fourth)
    )


@pytest.mark.parametrize("tool", TOOLS)
def test_a_module_the_rebuild_renamed_or_removed_still_unloads(tools, tmp_path, tool):
    """Two builds of app are `app/1.0-<hash>`: a rebuild that changes app renames both, and
    one that drops a stack removes one. A shell that loaded one before unloads it cleanly
    (the new tree holds a hidden stand-in at the old path), `avail` does not list the
    stand-in, and loading it by its old name fails with a message saying why."""
    site_yaml = demo_site(tmp_path, TWO_APPS)
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    recipe = site_yaml.parent / "pkgs" / "app.yaml"
    site = {"yaml": site_yaml, "root": root, "recipe": recipe}
    core = root / "modules" / tool / "Core"
    dropped = (
        site_yaml.read_text().split("  two:\n")[0]
        + "modules:"
        + (site_yaml.read_text().split("modules:", 1)[1])
    )
    drop = shlex.join(["sh", "-c", f"printf %s {shlex.quote(dropped)} > {site_yaml}"])
    run = module_shell(
        tool,
        f"module use {core}; module load gcc/12.2.0 app; echo OLD=$APP_ROOT; "
        "echo OLDNAME=$(module -t list 2>&1 | grep '^app/'); "
        f"{_rebuild(site, 'Renamed')}; module unload app || exit 3; echo PATH1=$PATH; "
        "module load app && echo NEW=$APP_ROOT; "
        f"{drop} && {_rebuild(site, 'Renamed')}; module unload app || exit 4; echo PATH2=$PATH; "
        "module -t avail 2>&1 | grep '^app' | tr '\\n' ' '; echo",
    )
    assert run.code == 0, run.out + run.err
    seen = run.echoed()
    assert seen["OLD"] != seen["NEW"]
    for key, root_dir in (("PATH1", seen["OLD"]), ("PATH2", seen["NEW"])):
        assert f"{root_dir}/bin" not in seen[key].split(":"), (key, seen[key])
    last = run.out.strip().splitlines()[-1].split()
    avail = [n.split("(")[0] for n in last if not n.endswith("/")]
    assert avail == ["app/1.0"], avail  # one build left: the plain name, no stand-ins
    old_name = seen["OLDNAME"].strip().split("(")[0]
    assert old_name.startswith("app/1.0-"), seen["OLDNAME"]
    run = module_shell(tool, f"module use {core}; module load gcc/12.2.0 {old_name}")
    assert run.code != 0 and "was removed by a rebuild" in " ".join(run.err.split()), run.err


def test_modules_removed_after_a_naming_change_leave_the_tree_writable(tools, tmp_path):
    """Built with `naming: {name}/{version}/{hash}` (`app/1.0/<hash>`), then the default
    naming (`app/1.0`), then without app: both old modules wanted a hidden stand-in, one a
    file and one below it, so the Tcl tree could not be written (`File exists`), that build
    and every later one (the second trial). Now the newer tree's stand-in is kept, and the
    builds after it publish their trees."""
    stack = "  gcc12:\n    compiler: gcc-12\n    packages: [libcore, app]\n"
    site_yaml = demo_site(tmp_path, stack)
    base = site_yaml.read_text().replace("formats: [lmod, tcl]", "formats: [tcl]")
    naming = base.replace("modules:\n", "modules:\n  naming: '{name}/{version}/{hash}'\n", 1)
    root = tmp_path / "root"
    for text in (naming, base, base.replace("[libcore, app]", "[libcore]"), base):
        site_yaml.write_text(text)
        r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    core = root / "modules" / "tcl" / "Core"
    run = module_shell("tcl", f"module use {core}; module load gcc/12.2.0 app; echo A=$APP_ROOT")
    assert run.code == 0 and run.echoed()["A"].startswith(str(root)), run.out + run.err
