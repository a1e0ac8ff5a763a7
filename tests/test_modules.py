"""The site's module trees, loaded by the real Lmod and the real Environment Modules."""

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TWO_APPS, demo_site, need, run_clean
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import avail, module_shell

# exported: no line break. Each `touch pwned` would create HOME/pwned (the tools' cwd) if Tcl,
# Lua or the shell ever evaluated it; the last character is a backslash.
HOSTILE = (
    "q\"uote's $HOME [x] {y} back\\slash; `id` %s [exec touch pwned] $(touch pwned) "
    "`touch pwned` \"; touch pwned; \" ]] os.execute('touch pwned') --[[ ]==] \\"
)
# help and whatis text may not hold Lua long-bracket closers (names.text_problem): the rest
HOSTILE_TEXT = HOSTILE.replace("]]", "] ]").replace("]==]", "]== ]") + "\nsecond line"
TOOLS = ("lmod", "tcl")


@pytest.fixture(scope="module")
def tools(tools):
    """conftest's real module tools, and the compilers and MPI the demo site uses."""
    need(bool(shutil.which("gcc-11") and shutil.which("mpicc.openmpi")), "gcc-11 and Open MPI")


def _demo_site(tmp: Path, extra_modules: str = "", stacks: str | None = None) -> Path:
    """The demo site plus a package with hostile values, and extra `modules:` settings."""
    site = demo_site(tmp, stacks)
    (site.parent / "pkgs" / "hostile.yaml").write_text(
        f'version: "1.0"\ndescription: {yaml_quote(HOSTILE_TEXT)}\n'
        f"homepage: {yaml_quote(HOSTILE_TEXT)}\n"
        f"environment:\n  HOSTILE: {yaml_quote(HOSTILE)}\n"
        'build: |\n  mkdir -p "$ARTIFACT/share/hostile"\n  echo ok > "$ARTIFACT/share/hostile/ok"\n'
    )
    site.write_text(site.read_text().replace("modules:\n", f"modules:\n{extra_modules}"))
    return site


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    extra = f"  env:\n    app:\n      APP_NOTE: {yaml_quote(HOSTILE)}\n"
    site_yaml = _demo_site(tmp, extra)
    text = site_yaml.read_text().replace(
        "[libcore, liba, libb, app]", "[libcore, liba, libb, app, hostile]", 1
    )
    site_yaml.write_text(text)
    root = tmp / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), "-j", "2")
    assert "modulefiles in" in r.stdout
    return {"yaml": site_yaml, "root": root, "modules": root / "modules"}


def yaml_quote(s: str) -> str:
    import json

    return json.dumps(s)


def core(site, tool):
    return site["modules"] / tool / "Core"


@pytest.mark.parametrize("tool", TOOLS)
def test_a_compiler_module_loads_without_home(site, tool):
    """Under `env -i` without HOME the Tcl compiler module read `$::env(HOME)` for the
    user's tree and failed (`no such variable`; the third trial); Lmod's fell back."""
    run = module_shell(
        tool, f"unset HOME; module use {core(site, tool)}; module load gcc/12.2.0 libcore"
    )
    assert run.code == 0 and "libcore/1.0" in run.env.get("LOADEDMODULES", ""), run.err


@pytest.mark.parametrize("tool", TOOLS)
def test_avail_shows_compilers_then_the_stack(site, tool):
    assert avail(tool, [core(site, tool)]) == ["gcc/11.3.0", "gcc/12.2.0"]
    run = module_shell(
        tool, f"module use {core(site, tool)}; module load gcc/12.2.0; module -t avail 2>&1"
    )
    names = set(run.out.split())
    assert {"app/1.0", "liba/1.0", "libb/1.0", "libcore/1.0", "openmpi/4.1.4"} <= names


@pytest.mark.parametrize("tool", TOOLS)
def test_load_app_and_run_it(site, tool):
    run = module_shell(tool, f"module use {core(site, tool)}; module load gcc/12.2.0 app && app")
    assert run.code == 0, run.err
    assert "Hello from app" in run.out and "twice the answer is 84" in run.out
    root = Path(run.env["APP_ROOT"])
    assert root.is_relative_to(site["root"] / "bld" / "app")
    assert run.env["PATH"].split(":")[0] == str(root / "bin")
    assert str(root) in run.env["CMAKE_PREFIX_PATH"].split(":")
    assert "LIBA_ROOT" in run.env or tool == "tcl"  # Lmod: depends_on loads the dependencies
    assert "LD_LIBRARY_PATH" not in run.env
    assert run.env["APP_NOTE"] == HOSTILE  # a site.yaml variable, byte-exact


@pytest.mark.parametrize("tool", TOOLS)
def test_hostile_values_load_byte_exact(site, tool, tmp_path):
    """A recipe's description, homepage and `environment:` value and a site `modules: env:`
    value, all hostile, through `hdmod build`: byte-exact after `module load`, and nothing
    ran on avail, spider, whatis, help or load (HOME is the tools' working folder)."""
    use = f"module use {core(site, tool)}; module load gcc/12.2.0"
    for cmd in ("module avail", "module whatis hostile", "module help hostile", "module list",
                *(["module spider hostile"] if tool == "lmod" else [])):  # fmt: skip
        run = module_shell(tool, f"{use}; {cmd}", home=tmp_path, capture_env=False)
        assert run.code == 0 and not (tmp_path / "pwned").exists(), f"{cmd}: {run.err}"
    run = module_shell(tool, f"{use} hostile app", home=tmp_path)
    assert run.code == 0 and not (tmp_path / "pwned").exists(), run.err
    assert run.env["HOSTILE"] == HOSTILE and run.env["APP_NOTE"] == HOSTILE
    helped = module_shell(tool, f"{use}; module help hostile 2>&1", capture_env=False)
    assert HOSTILE_TEXT in helped.out  # the description, line break included


def test_line_breaks_in_exported_values_are_refused(tools, tmp_path):
    """Both tools export values unquoted: a line break would run the rest as a command."""
    bad = "one\ntouch /tmp/pwned"
    extra = f"  env:\n    app:\n      BAD: {yaml_quote(bad)}\n"
    site_yaml = _demo_site(tmp_path, extra)
    for formats in ("[lmod, tcl]", "[tcl]"):
        site_yaml.write_text(
            re.sub(r"formats: \[.*\]", f"formats: {formats}", site_yaml.read_text())
        )
        r = hdmod("build", str(site_yaml), "--root", str(tmp_path / "root"), check=False)
        assert r.returncode == 1 and "the value of BAD holds a line break" in r.stderr
    assert not (tmp_path / "root" / "modules").exists()


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_module_fails(site, tool):
    run = module_shell(tool, f"module use {core(site, tool)}; module load gcc/12.2.0 nope/1.0")
    assert run.code == 1


def test_lmod_spider_finds_a_module_hidden_in_the_hierarchy(site):
    run = module_shell("lmod", f"module use {core(site, 'lmod')}; module spider mpi-hello/1.0 2>&1")
    assert "gcc/12.2.0  openmpi/4.1.4" in run.out
    run = module_shell(
        "lmod",
        f"module use {core(site, 'lmod')}; module load gcc/12.2.0 openmpi/4.1.4 mpi-hello && "
        "mpirun.openmpi --allow-run-as-root --oversubscribe -np 2 mpi-hello",
    )
    assert run.code == 0 and run.out.count("hello from rank") == 2, run.err


def test_lmod_second_compiler_swaps_the_stack(site):
    run = module_shell(
        "lmod",
        f"module use {core(site, 'lmod')}; module load gcc/12.2.0 app; "
        "echo BEFORE=$APP_ROOT; module load gcc/11.3.0 && app",
    )
    assert run.code == 0, run.err
    before = next(x for x in run.out.splitlines() if x.startswith("BEFORE="))[7:]
    assert before and run.env["APP_ROOT"] != before  # app came back from gcc-11's tree
    comment = subprocess.run(
        ["readelf", "-p", ".comment", run.env["APP_ROOT"] + "/bin/app"], capture_output=True
    )
    assert "GCC: (Debian 11." in comment.stdout.decode()
    assert "gcc/11.3.0" in run.env["LOADEDMODULES"] and "gcc/12.2.0" not in run.env["LOADEDMODULES"]


def test_tcl_compiler_family_conflicts_and_unload_takes_dependents(site):
    """Kept on purpose: in Environment Modules 5.2 `family` is a conflict, and 5.2 has no
    Conflict Unload (5.4's `conflict_unload`, off by default), so loading a second compiler
    is refused, exit 1, and changes nothing; `module switch` swaps (the tests below)."""
    base = f"module use {core(site, 'tcl')}; module load gcc/12.2.0 app; echo BEFORE=$APP_ROOT"
    run = module_shell("tcl", f"{base}; module load gcc/11.3.0; echo LOAD=$?")
    assert "LOAD=1" in run.out and "conflict" in run.err  # one compiler family at a time
    assert run.env["LOADEDMODULES"].split(":")[0] == "gcc/12.2.0"
    assert run.env["APP_ROOT"] == _echoed(run, "BEFORE")  # the gcc-12 stack, untouched
    run = module_shell("tcl", f"{base}; module unload gcc/12.2.0")
    assert run.code == 0, run.err
    assert "app/1.0" not in run.env.get("LOADEDMODULES", "")  # prereq chain unloaded it
    assert "APP_ROOT" not in run.env


def _echoed(run, key: str) -> str:
    """The value of the line `KEY=value` the commands echoed."""
    return next(line for line in run.out.splitlines() if line.startswith(f"{key}="))[len(key) + 1 :]


def _envmod_version() -> tuple[int, int]:
    """The installed Environment Modules' (major, minor), from `module --version`."""
    said = module_shell("tcl", "module --version", capture_env=False).err
    found = re.search(r"Modules Release (\d+)\.(\d+)", said)
    assert found, said
    return int(found[1]), int(found[2])


STACK_ROOTS = ("LIBCORE_ROOT", "LIBA_ROOT", "LIBB_ROOT", "APP_ROOT")


@pytest.mark.parametrize("tool", TOOLS)
def test_switch_compiler_reloads_the_stack_from_the_new_compilers_level(site, tool):
    """`module switch` in its three spellings, the same commands in both tools: the loaded
    packages come back from gcc-11's level, as loading gcc-11's stack directly gives them
    (Environment Modules: the dependents of gcc/12.2.0 are unloaded and reloaded by name)."""
    use = f"module use {core(site, tool)}"
    load = f"{use}; module load gcc/12.2.0 libcore app"
    direct = module_shell(tool, f"{use}; module load gcc/11.3.0 libcore app")
    old = module_shell(tool, load)
    assert direct.code == 0 and old.code == 0, direct.err + old.err
    assert direct.env["LOADEDMODULES"].split(":")[0] == "gcc/11.3.0"
    for how in ("gcc/12.2.0 gcc/11.3.0", "gcc gcc/11.3.0", "gcc/11.3.0"):
        run = module_shell(tool, f"{load}; module switch {how} && app")
        assert run.code == 0, f"module switch {how}: {run.err}"
        assert "Hello from app" in run.out
        assert run.env["LOADEDMODULES"] == direct.env["LOADEDMODULES"], how
        for var in STACK_ROOTS:
            assert run.env[var] == direct.env[var] != old.env[var], (how, var)
        path = run.env["PATH"].split(":")
        assert direct.env["APP_ROOT"] + "/bin" in path and old.env["APP_ROOT"] + "/bin" not in path


@pytest.mark.parametrize("tool", TOOLS)
def test_switch_compiler_drops_an_mpi_the_new_compiler_has_no_build_of(site, tool):
    """openmpi and mpi-hello exist only for gcc-12. After the switch both tools leave the
    same environment: gcc-11's stack and no MPI (nothing built with gcc-12 stays loaded).
    Lmod calls them inactive, exit 0. Environment Modules 5.2 tries to reload them, cannot
    find them under gcc-11 and says so with an error: the switch is done, exit 1 (no
    modulefile can avoid it; 5.6 skips such a dependent silently, exit 0)."""
    use = f"module use {core(site, tool)}"
    direct = module_shell(tool, f"{use}; module load gcc/11.3.0 libcore app")
    assert direct.code == 0, direct.err
    run = module_shell(
        tool,
        f"{use}; module load gcc/12.2.0 openmpi/4.1.4 mpi-hello libcore app && "
        "echo BEFORE=$MPI_HELLO_ROOT; module switch gcc/12.2.0 gcc/11.3.0; echo SWITCH=$?",
    )
    assert _echoed(run, "BEFORE"), run.err  # mpi-hello was loaded
    if tool == "lmod":
        assert _echoed(run, "SWITCH") == "0" and "Inactive Modules" in run.err, run.err
    elif _envmod_version() < (5, 6):
        assert _echoed(run, "SWITCH") == "1", run.err
        assert "Reload of dependent openmpi/4.1.4 failed" in run.err
    else:
        assert _echoed(run, "SWITCH") == "0", run.err
    assert run.env["LOADEDMODULES"] == direct.env["LOADEDMODULES"]
    for var in STACK_ROOTS:
        assert run.env[var] == direct.env[var], var
    assert not {"MPI_DIR", "MPICC", "MPI_HELLO_ROOT"} & run.env.keys()
    assert _echoed(run, "BEFORE") + "/bin" not in run.env["PATH"].split(":")


@pytest.fixture(scope="module")
def mpi_site(tools, tmp_path_factory):
    """mpi-hello (and libcore) built with gcc-12 and Open MPI, gcc-11 and Open MPI, and
    gcc-12 and MPICH: the site's modules, and the MPICH module's name."""
    tmp = tmp_path_factory.mktemp("mpi-site")
    stacks = "".join(
        f"  {key}:\n    compiler: {c}\n    mpi: {m}\n    packages: [libcore, mpi-hello]\n"
        for key, c, m in (
            ("gcc12-openmpi", "gcc-12", "openmpi-4.1.4"),
            ("gcc11-openmpi", "gcc-11", "openmpi-4.1.4"),
            ("gcc12-mpich", "gcc-12", "MPICH"),
        )
    )
    site_yaml = demo_site(tmp, stacks)
    found = re.search(r"^  mpich-([0-9.]+):", (tmp / "demo" / "externals.yaml").read_text(), re.M)
    need(found is not None, "MPICH")
    text = site_yaml.read_text().replace("MPICH", f"mpich-{found[1]}")
    site_yaml.write_text(text.replace("openmpi-4.1.4]", f"openmpi-4.1.4, mpich-{found[1]}]"))
    hdmod("build", str(site_yaml), "--root", str(tmp / "root"), "-j", "2")
    return tmp / "root" / "modules", f"mpich/{found[1]}"


@pytest.mark.parametrize("tool", TOOLS)
def test_switch_compiler_or_mpi_reloads_the_mpi_level(mpi_site, tool, tmp_path):
    """Where the new compiler (or MPI) has the MPI and the packages, `module switch` reloads
    them from its level, exit 0, in both tools: the environment loading that combination
    directly gives (the same HOME, whose module folders the trees add to MODULEPATH)."""
    modules, mpich = mpi_site
    use = f"module use {modules / tool / 'Core'}"
    old = "gcc/12.2.0 openmpi/4.1.4 mpi-hello libcore"
    for new, how in (
        ("gcc/11.3.0 openmpi/4.1.4 mpi-hello libcore", "gcc/12.2.0 gcc/11.3.0"),
        (f"gcc/12.2.0 libcore {mpich} mpi-hello", f"openmpi/4.1.4 {mpich}"),
    ):
        direct = module_shell(tool, f"{use}; module load {new}", home=tmp_path)
        before = module_shell(tool, f"{use}; module load {old}", home=tmp_path)
        run = module_shell(tool, f"{use}; module load {old} && module switch {how}", home=tmp_path)
        assert direct.code == 0 and before.code == 0, direct.err + before.err
        assert run.code == 0, f"module switch {how}: {run.err}"
        assert run.env["LOADEDMODULES"] == direct.env["LOADEDMODULES"], how
        for var in ("MPI_DIR", "MPICC", "MPI_HELLO_ROOT", "LIBCORE_ROOT", "PATH", "MODULEPATH"):
            assert run.env.get(var) == direct.env.get(var), (how, var)
        assert run.env["MPI_HELLO_ROOT"] != before.env["MPI_HELLO_ROOT"]


def _normalized(link: Path) -> dict[str, bytes]:
    """Every file of the tree behind `link`, with the link's own paths and the tree's id
    replaced by placeholders: what must not differ between two module paths."""
    tree = Path(os.readlink(link))
    subs = [(str(tree.parent), "TREES"), (str(link), "LINK"), (tree.name, "ID")]
    files = {}
    for f in sorted(p for p in tree.rglob("*") if p.is_file()):
        content = f.read_bytes()
        for old, new in subs:
            content = content.replace(old.encode(), new.encode())
        files[f.relative_to(tree).as_posix()] = content
    return files


def test_refresh_is_reproducible_and_drops_unused_modules(site, tmp_path):
    tree = Path(os.readlink(site["modules"]))
    r = hdmod("modules", "refresh", str(site["yaml"]), "--root", str(site["root"]))
    assert "(unchanged)" in r.stdout and Path(os.readlink(site["modules"])) == tree
    # the same site.yaml elsewhere gives byte-identical files (no timestamps)
    other = tmp_path / "again"
    hdmod(
        "modules",
        "refresh",
        str(site["yaml"]),
        "--root",
        str(site["root"]),
        "--modules",
        str(other),
    )
    assert _normalized(site["modules"]) == _normalized(other)
    # drop mpi-hello from its stack: its module goes (a hidden stand-in stays for shells
    # that loaded it: tests/test_module_rebuilds.py)
    text = site["yaml"].read_text()
    site["yaml"].write_text(text.replace("[libcore, mpi-hello]", "[libcore]"))
    try:
        hdmod("modules", "refresh", str(site["yaml"]), "--root", str(site["root"]))
        for tool in TOOLS:
            use = f"module use {core(site, tool)}; module load gcc/12.2.0 openmpi/4.1.4"
            run = module_shell(tool, f"{use} && module -t avail 2>&1", capture_env=False)
            assert run.code == 0 and "mpi-hello" not in run.out, run.out + run.err
            assert module_shell(tool, f"{use} && module load mpi-hello").code != 0
        assert tree.exists()  # the previous tree is kept for shells still reading it
    finally:
        site["yaml"].write_text(text)
        hdmod("modules", "refresh", str(site["yaml"]), "--root", str(site["root"]))


def test_a_killed_refresh_leaves_debris_that_the_next_refresh_removes(site, tmp_path):
    """`hdmod modules refresh` killed (os._exit, like kill -9) after writing its staging
    folder: the next refresh removes the staging folder and publishes the tree."""
    target = tmp_path / "mods"
    code = (
        "import os, sys\n"
        "from hdmodules.publish import moduletree\n"
        "moduletree.apply = lambda *a, **k: os._exit(9)\n"
        "from hdmodules.cli.hdmod import main\n"
        f"sys.argv = ['hdmod', 'modules', 'refresh', {str(site['yaml'])!r}, "
        f"'--root', {str(site['root'])!r}, '--modules', {str(target)!r}]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    trees = tmp_path / ".mods-trees"
    assert r.returncode == 9 and [p.name for p in trees.glob(".staging-*")], r.stderr
    assert not target.exists()
    hdmod("modules", "refresh", str(site["yaml"]), "--root", str(site["root"]),
          "--modules", str(target))  # fmt: skip
    assert list(trees.glob(".staging-*")) == []
    assert "libcore/1.0" in avail(
        "lmod", [target / "lmod" / "Core", *(target / "lmod" / "Compiler").glob("*/*")]
    )


def test_stack_profiles_are_links_and_roots(site):
    gcc12 = site["root"] / "profiles" / "gcc12"
    assert gcc12.is_symlink()
    out = subprocess.run(["env", "-i", str(gcc12 / "bin" / "app")], capture_output=True, text=True)
    assert out.stdout.startswith("Hello from app")
    from hdmodules.store.roots import list_roots

    roots = list_roots(site["root"] / "gcroots", site["root"] / "bld")
    assert gcc12 in [r.link for r in roots] and not any(r.stale for r in roots)
    # libcore is in two stacks with identical inputs: one artifact
    libcores = list((site["root"] / "bld" / "libcore").iterdir())
    assert len(libcores) == 2  # gcc-12 (both gcc-12 stacks) and gcc-11


@pytest.mark.parametrize("tool", TOOLS)
def test_same_name_two_artifacts_get_suffixes_and_an_explicit_default(tools, tmp_path, tool):
    site_yaml = _demo_site(tmp_path, stacks=TWO_APPS)
    hdmod("build", str(site_yaml), "--root", str(tmp_path / "root"))
    modules = tmp_path / "root" / "modules"
    run = module_shell(
        tool, f"module use {modules / tool / 'Core'}; module load gcc/12.2.0; module -t avail 2>&1"
    )
    apps = sorted(n for n in run.out.split() if n.startswith("app/1.0-"))
    assert len(apps) == 2, run.out
    run = module_shell(
        tool, f"module use {modules / tool / 'Core'}; module load gcc/12.2.0 app && app"
    )
    assert run.code == 0 and run.out.startswith("Hello from app"), run.err  # stack one's


def _app_modules(folder: Path) -> dict[str, Path]:
    """Version -> APP_ROOT of each hash-suffixed app module in a Tcl tree's folder."""
    roots = {}
    for f in sorted(folder.glob("1.0-*")):
        roots[f.name] = Path(re.search(r'setenv "APP_ROOT" "([^"]*)"', f.read_text())[1])
    return roots


def test_one_default_per_folder_and_the_admins_wins(tools, tmp_path):
    """Two builds of app 1.0 in one folder (hash-suffixed) and `defaults:` naming the second:
    one `default` per folder, so `module load app` and `module load app/1.0` (the plain alias)
    both load the admin's choice in both tools, and Environment Modules' avail warns of no
    second default. A default naming no written module stops the refresh, and a build before
    it builds anything, at its line in site.yaml."""
    site_yaml = _demo_site(tmp_path, stacks=TWO_APPS)
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    level = ("Compiler", "gcc", "12.2.0", "app")
    roots = _app_modules(root.joinpath("modules", "tcl", *level))
    greets = {v: run_clean([str(r / "bin" / "app")]).stdout.split()[0] for v, r in roots.items()}
    chosen = next(v for v, greeting in greets.items() if greeting == "Howdy")  # stack two's
    rc = root.joinpath("modules", "tcl", *level, ".modulerc").read_text()
    assert len(roots) == 2 and f'"app/{chosen}" "default"' not in rc, rc  # stack one's so far
    text = site_yaml.read_text()
    site_yaml.write_text(text.replace("modules:\n", f"modules:\n  defaults: {{app: {chosen}}}\n"))
    hdmod("modules", "refresh", str(site_yaml), "--root", str(root))
    for tool in TOOLS:
        rc_name = {"lmod": ".modulerc.lua", "tcl": ".modulerc"}[tool]
        rc = root.joinpath("modules", tool, *level, rc_name).read_text()
        assert rc.count('"default"') == 1 and chosen in rc, rc
        use = f"module use {root / 'modules' / tool / 'Core'}; module load gcc/12.2.0"
        for name in ("app", "app/1.0"):
            run = module_shell(tool, f"{use} {name} && app")
            assert run.code == 0 and run.out.startswith("Howdy"), (tool, name, run.err)
            assert run.env["APP_ROOT"] == str(roots[chosen])
        run = module_shell(tool, f"{use}; module avail", capture_env=False)
        assert run.code == 0 and "WARNING" not in run.err.upper(), run.err
    tree = os.readlink(root / "modules")
    site_yaml.write_text(text.replace("modules:\n", "modules:\n  defaults: {app: 1.0-0000000}\n"))
    line = site_yaml.read_text().splitlines().index("  defaults: {app: 1.0-0000000}") + 1
    r = hdmod("modules", "refresh", str(site_yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and f"{site_yaml}:{line}: modules: defaults: app: " in r.stderr
    assert "app/1.0-0000000" in r.stderr and os.readlink(root / "modules") == tree
    # `hdmod build` says so before anything builds (at the line), not after the builds
    fresh = tmp_path / "fresh"
    r = hdmod("build", str(site_yaml), "--root", str(fresh), check=False)
    assert r.returncode == 1 and f"{site_yaml}:{line}: modules: defaults: app: " in r.stderr
    assert "Traceback" not in r.stderr and "built in" not in r.stderr, r.stderr
    assert not list(fresh.glob("bld/*/*")), list(fresh.glob("bld/*/*"))


JAVA = {  # + and ~ in versions, and a package needing both
    "jdk": 'version: "17.0.2+8"\nbuild: |\n  mkdir -p "$ARTIFACT/share/jdk"\n',
    "pre": 'version: "2.0~rc1"\nbuild: |\n  mkdir -p "$ARTIFACT/share/pre"\n',
    "jtool": 'version: "1.0"\ndependencies: [jdk, pre]\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n',
}


def test_versions_with_plus_and_tilde_load_in_both_tools(tools, tmp_path):
    """`17.0.2+8` and `2.0~rc1` (Environment Modules 5 reads + and ~ as variants): the
    recipe and store keep the version, the modules are jdk/17.0.2_8 and pre/2.0_rc1, listed
    so by avail and loaded by name and as dependencies in both tools."""
    site_yaml = _demo_site(tmp_path)
    for name, recipe in JAVA.items():
        (site_yaml.parent / "pkgs" / f"{name}.yaml").write_text(recipe)
    text = site_yaml.read_text()
    site_yaml.write_text(text.replace("[libcore, liba, libb, app]", "[jdk, pre, jtool]", 1))
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    for tool in TOOLS:
        use = f"module use {root / 'modules' / tool / 'Core'}; module load gcc/12.2.0"
        listed = module_shell(tool, f"{use}; module -t avail 2>&1", capture_env=False).out.split()
        assert {"jdk/17.0.2_8", "pre/2.0_rc1", "jtool/1.0"} <= set(listed), listed
        assert not [n for n in listed if "+" in n or "~" in n], listed
        for name in ("jdk", "jdk/17.0.2_8", "pre", "pre/2.0_rc1"):
            run = module_shell(tool, f"{use} {name}")
            assert run.code == 0, (tool, name, run.err)
        run = module_shell(tool, f"{use} jtool")
        assert run.code == 0, (tool, run.err)
        loaded = run.env["LOADEDMODULES"].split(":")
        assert {"jdk/17.0.2_8", "pre/2.0_rc1", "jtool/1.0"} <= set(loaded), loaded
        assert Path(run.env["JDK_ROOT"]).name.startswith("17.0.2+8-")  # the store keeps it
        assert Path(run.env["PRE_ROOT"]).name.startswith("2.0~rc1-")


@pytest.mark.parametrize("tool", TOOLS)
def test_flat_layout(tools, tmp_path, tool):
    extra = '  layout: flat\n  naming: "{name}/{version}-{compiler}{compiler_version}"\n'
    site_yaml = _demo_site(tmp_path, extra)
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    names = avail(tool, [root / "modules" / tool])
    assert {"app/1.0-gcc12.2.0", "app/1.0-gcc11.3.0", "gcc/12.2.0", "gcc/11.3.0"} <= set(names)
    flat = root / "modules" / tool
    run = module_shell(tool, f"module use {flat}; module load gcc/11.3.0 app/1.0-gcc11.3.0 && app")
    assert run.code == 0 and "Hello from app" in run.out, run.err


def test_permissions_group_readable_never_writable(tools, tmp_path):
    """Mode 0750: readable by the group, by nobody else, writable by none. (Lmod hides
    root-owned files that are not world-readable from root itself, so the load goes through
    Environment Modules here.)"""
    site_yaml = _demo_site(tmp_path)
    site_yaml.write_text(site_yaml.read_text() + 'permissions:\n  group: root\n  mode: "0750"\n')
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    f = root / "modules" / "lmod" / "Compiler" / "gcc" / "12.2.0" / "app" / "1.0.lua"
    assert stat.S_IMODE(f.stat().st_mode) == 0o440
    assert stat.S_IMODE(f.parent.stat().st_mode) == 0o550
    app = next((root / "bld" / "app").iterdir())
    assert stat.S_IMODE((app / "bin" / "app").stat().st_mode) == 0o550
    assert stat.S_IMODE((app / ".hit" / "build.json").stat().st_mode) == 0o440
    tcl = root / "modules" / "tcl" / "Core"
    run = module_shell("tcl", f"module use {tcl}; module load gcc/12.2.0 app && app")
    assert run.code == 0 and "Hello from app" in run.out, run.err


def test_site_templates_override_file_by_file(tools, tmp_path):
    site_yaml = _demo_site(tmp_path, "  templates: mytemplates\n")
    mine = site_yaml.parent / "mytemplates" / "lmod"
    mine.mkdir(parents=True)
    (mine / "module.lua").write_text('-- site template\nwhatis("{{ m.name }}")\n')
    hdmod("build", str(site_yaml), "--root", str(tmp_path / "root"))
    lua = (tmp_path / "root" / "modules" / "lmod" / "Core" / "gcc" / "12.2.0.lua").read_text()
    assert lua.startswith("-- site template")
    tcl = (tmp_path / "root" / "modules" / "tcl" / "Core" / "gcc" / "12.2.0").read_text()
    assert tcl.startswith("#%Module1.0")


def test_bad_site_yaml(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text(
        "root: x\nstacks:\n  s1:\n    compiler: gcc-12\n    packages: [a]\n    extra: 1\n"
    )
    r = hdmod("build", str(bad), check=False)
    assert r.returncode == 1 and f"{bad}:6: unknown key 'extra'" in r.stderr
    bad.write_text(
        "root: x\nstacks: {s: {compiler: c, packages: []}}\npermissions: {mode: '0777'}\n"
    )
    r = hdmod("build", str(bad), check=False)
    assert r.returncode == 1 and "never be world-writable" in r.stderr
    bad.write_text(
        "root: x\nstacks: {s: {compiler: c, packages: []}}\nmodules:\n  defaults:\n    hdf5: 1.10\n"
    )
    r = hdmod("build", str(bad), check=False)
    assert r.returncode == 1 and f"{bad}:5: modules defaults: hdf5: write the version" in r.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_hidden_modules_and_ld_library_path_opt_in(tools, tmp_path, tool):
    """`hide: [libcore]`: not listed by avail, yet `module load libcore`, `libcore/1.0` and
    app (which needs it) load it (Lmod's hide_version, Environment Modules' module-hide)."""
    site_yaml = _demo_site(tmp_path, "  hide: [libcore]\n  ld_library_path: true\n")
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    base = f"module use {root / 'modules' / tool / 'Core'}; module load gcc/12.2.0"
    listed = module_shell(tool, f"{base}; module -t avail 2>&1", capture_env=False).out.split()
    assert "liba/1.0" in listed and not any(n.startswith("libcore/") for n in listed)
    for name in ("libcore", "libcore/1.0"):
        run = module_shell(tool, f"{base} {name}")
        assert run.code == 0 and "libcore/1.0" in run.env["LOADEDMODULES"], (name, run.err)
        assert Path(run.env["LIBCORE_ROOT"]).parent == root / "bld" / "libcore"
    run = module_shell(tool, f"{base} app && app")
    assert run.code == 0 and "answer 42" in run.out, run.err
    assert "libcore/1.0" in run.env["LOADEDMODULES"]  # the hidden one loads as a dependency
    assert str(root / "bld" / "libcore") in run.env["LD_LIBRARY_PATH"]  # via the dependencies


@pytest.mark.parametrize("tool", TOOLS)
def test_external_with_a_site_module_loads_it(tools, tmp_path, tool):
    vendor = tmp_path / "vendor" / tool / "vendor-mpi"
    vendor.mkdir(parents=True)
    if tool == "lmod":
        (vendor / "9.9.lua").write_text('setenv("VENDOR_MPI", "loaded")\n')
    else:
        (vendor / "9.9").write_text("#%Module1.0\nsetenv VENDOR_MPI loaded\n")
    site_yaml = _demo_site(tmp_path)
    ext = site_yaml.parent / "externals.yaml"
    ext.write_text(
        re.sub(
            r"(  openmpi-[0-9.]+:\n    kind: mpi\n)",
            r"\1    module: vendor-mpi/9.9\n",
            ext.read_text(),
        )
    )
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    run = module_shell(
        tool,
        f"module use {vendor.parent}; module use {root / 'modules' / tool / 'Core'}; "
        "module load gcc/12.2.0 openmpi/4.1.4",
    )
    assert run.code == 0, run.err
    assert run.env["VENDOR_MPI"] == "loaded" and "MPICC" not in run.env  # loads, sets nothing


def test_a_site_root_is_a_hit_home(site, tmp_path):
    """A user profile with the same inputs as a site stack resolves to the site's artifacts."""
    demo = site["yaml"].parent
    profile = demo / "same.yaml"
    profile.write_text(
        "extends: [externals.yaml]\npackage_dirs: [pkgs]\ntoolchain: {compiler: gcc-12}\n"
        "packages: [libcore, liba, libb, app]\n"
    )
    env = {**os.environ, "HIT_HOME": str(site["root"])}
    r = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hit", "status", str(profile)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line.endswith("built") for line in lines if not line.startswith("profile"))


@pytest.mark.parametrize("tool", TOOLS)
def test_compiler_and_mpi_modules_describe_themselves(site, tool):
    """`module whatis gcc`: the tool, its reported version, its commands; a package's help
    and whatis (and so Lmod's spider) say what it was built with, with its artifact."""
    use = f"module use {core(site, tool)}"
    run = module_shell(tool, f"{use}; module whatis gcc/12.2.0 2>&1", capture_env=False)
    assert (
        "compiler gcc-12 12.2.0" in run.err + run.out and "cc /usr/bin/gcc-12" in run.err + run.out
    )
    assert "reports: " in run.err + run.out
    run = module_shell(tool, f"{use}; module load gcc/12.2.0; module whatis openmpi 2>&1",
                       capture_env=False)  # fmt: skip
    assert "mpi openmpi-4.1.4 4.1.4" in run.err + run.out and "mpicc " in run.err + run.out
    run = module_shell(
        tool, f"{use}; module load gcc/12.2.0; module help app 2>&1", capture_env=False
    )
    text = run.err + run.out
    assert "Built with: gcc 12.2.0" in text and "Artifact: app/" in text
    if tool == "lmod":
        spider = module_shell(tool, f"{use}; module spider app/1.0 2>&1", capture_env=False)
        text = spider.err + spider.out  # each variant's compiler, and one variant's help
        assert "gcc/11.3.0" in text and "gcc/12.2.0" in text and "Built with: gcc " in text


@pytest.mark.parametrize("tool", TOOLS)
def test_a_package_over_an_mpi_library_sits_at_that_mpis_level(tools, tmp_path, tool):
    """`solver` has no MPI of its own but links `mpilib`, which is built with the MPI: its
    module goes to the MPI's level, once per MPI, so `module load gcc mpich solver` loads the
    solver built against MPICH, and with only gcc loaded there is no solver to load."""
    stacks = (
        "  ompi:\n    compiler: gcc-12\n    mpi: OMPI\n    packages: [mpilib, solver]\n"
        "  mpich:\n    compiler: gcc-12\n    mpi: MPICH\n    packages: [mpilib, solver]\n"
    )
    site = demo_site(tmp_path, stacks)
    ext = site.parent / "externals.yaml"
    names = [line.split(":")[0].strip() for line in ext.read_text().splitlines()
             if line.startswith("  ") and not line.startswith("   ")]  # fmt: skip
    ompi = next(n for n in names if n.startswith("openmpi-"))
    mpich = next(n for n in names if n.startswith("mpich-"))
    text = site.read_text().replace("OMPI", ompi).replace("MPICH", mpich)
    text = text.replace(
        "externals: [gcc-12, gcc-11, openmpi-4.1.4]", f"externals: [gcc-12, {ompi}, {mpich}]"
    )
    site.write_text(text)
    pkgs = site.parent / "pkgs"
    (pkgs / "mpilib.yaml").write_text(
        'version: "1"\ntoolchain: [mpi]\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n'
        '  basename "$MPICC" > "$ARTIFACT/share/mpicc"\n'
    )
    (pkgs / "solver.yaml").write_text(
        'version: "1"\ndependencies: [mpilib]\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n'
        '  cat "$MPILIB_DIR/share/mpicc" > "$ARTIFACT/share/mpi"\n'
    )
    root = tmp_path / "root"
    hdmod("build", str(site), "--root", str(root))
    core = root / "modules" / tool / "Core"
    bare = module_shell(tool, f"module use {core}; module load gcc/12.2.0; module -t avail 2>&1")
    assert "solver" not in bare.out
    for mpi in (ompi, mpich):
        mod = mpi.rpartition("-")[0] + "/" + mpi.rpartition("-")[2]
        run = module_shell(tool, f"module use {core}; module load gcc/12.2.0 {mod} solver")
        assert run.code == 0, run.err
        wrapper = Path(run.env["SOLVER_ROOT"], "share", "mpi").read_text()
        assert ("openmpi" in wrapper) == mpi.startswith("openmpi"), (mpi, wrapper)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_users_modules_appear_after_their_first_build(site, tool, tmp_path):
    """A shell loads the site's compiler before the user has any module of their own; the
    user's first `hit build` then writes one at the compiler's level: it shows in avail and
    loads in that same shell, and unloading the compiler takes the level away again."""
    user = tmp_path / "hit-home"
    leaf = "1.0.lua" if tool == "lmod" else "1.0"
    body = 'setenv("MINE", "yes")\n' if tool == "lmod" else "#%Module1.0\nsetenv MINE yes\n"
    folder = user / "modules" / tool / "Compiler" / "gcc" / "12.2.0" / "mine"
    script = (
        f"export HIT_HOME={user}; module use {core(site, tool)}; module load gcc/12.2.0; "
        f"mkdir -p {folder}; printf '%s' '{body}' > {folder / leaf}; "
        "module -t avail 2>&1 | grep -c '^mine/1.0'; module load mine && echo MINE=$MINE; "
        'module unload mine gcc; echo "PATH_HAS=$(echo $MODULEPATH | grep -c hit-home)"'
    )
    run = module_shell(tool, script, capture_env=False)
    assert run.code == 0, run.err
    lines = run.out.split()
    assert lines[0] == "1" and "MINE=yes" in lines and "PATH_HAS=0" in lines, run.out + run.err


@pytest.mark.parametrize("tool", TOOLS)
def test_a_projection_with_the_name_first_loads(tools, tmp_path, tool):
    """`{name}/{compiler}{compiler_version}/{version}` gives `libcore/gcc12.2.0/1.0`: the
    version is the last part, the name all before it, as both tools read it."""
    site_yaml = _demo_site(tmp_path, "  naming: '{name}/{compiler}{compiler_version}/{version}'\n")
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    use = f"module use {root / 'modules' / tool / 'Core'}; module load gcc/12.2.0"
    assert "libcore/gcc12.2.0/1.0" in module_shell(tool, f"{use}; module -t avail 2>&1").out
    run = module_shell(tool, f"{use}; module load libcore/gcc12.2.0/1.0")
    assert run.code == 0 and run.env["LIBCORE_ROOT"].startswith(str(root)), run.err


@pytest.mark.parametrize(
    "naming, layout",
    [
        ("{compiler}/{compiler_version}/{name}/{version}", "flat"),
        ("{compiler}/{name}/{version}", "flat"),
    ],
)
def test_a_projection_that_nests_module_names_is_refused_before_building(tmp_path, naming, layout):
    site_yaml = _demo_site(tmp_path, f"  naming: '{naming}'\n  layout: {layout}\n")
    line = next(i for i, t in enumerate(site_yaml.read_text().splitlines(), 1) if "naming:" in t)
    root = tmp_path / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and f"{site_yaml}:{line}: modules naming" in r.stderr, r.stderr
    assert "may not nest" in r.stderr and not (root / "bld" / "libcore").exists()


@pytest.mark.parametrize("default", [False, True])
def test_a_package_module_beside_an_external_s_in_one_folder(tmp_path, default):
    """A core package named `gcc`: its module `gcc/99.0` would sit beside the compiler's
    `gcc/12.2.0` in Core and be what `module load gcc` loads (the newest; the fourth trial:
    written, silently). Refused before anything builds, unless `defaults:` names the
    folder's default, which then loads the compiler."""
    extra = "  defaults: {gcc: 12.2.0}\n" if default else ""
    stacks = (
        "  gcc12:\n    compiler: gcc-12\n    packages: [libcore]\n"
        "  tools:\n    compiler: gcc-12\n    core: true\n    packages: [gcc]\n"
    )
    site_yaml = demo_site(tmp_path, stacks)
    site_yaml.write_text(site_yaml.read_text().replace("modules:\n", f"modules:\n{extra}", 1))
    (site_yaml.parent / "pkgs" / "gcc.yaml").write_text(
        'version: "99.0"\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n'
    )
    root = tmp_path / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
    if not default:
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        said = "the package module gcc/99.0 and the module gcc/12.2.0 of compiler gcc-12 12.2.0"
        assert said in r.stderr, r.stderr
        assert not (root / "bld" / "gcc").exists()
        return
    assert r.returncode == 0, r.stderr
    use = f"module use {root / 'modules' / 'lmod' / 'Core'}; module load gcc; module -t list 2>&1"
    assert "gcc/12.2.0" in module_shell("lmod", use).out


@pytest.mark.parametrize(
    "extra, where, said",
    [
        ("  hide:\n    - libcore\n    - libcor\n", "- libcor", "modules hide: libcor is no"),
        ("  env:\n    aap:\n      X: y\n", "aap:", "modules env: aap is no package with a"),
    ],
    ids=["hide", "env"],
)
def test_a_hidden_or_env_name_no_stack_has_is_refused_at_its_line(tmp_path, extra, where, said):
    """`hide: [libcor]` (a typo) or `env: {aap: ...}` was ignored, while `off_for:` refuses
    a name in no stack (the fourth trial); one error at the name's line, before building."""
    site_yaml = _demo_site(tmp_path, extra)
    lines = site_yaml.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if t.strip() == where)
    root = tmp_path / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and f"{site_yaml}:{line}: {said}" in r.stderr, r.stderr
    assert not (root / "bld" / "libcore").exists()


def test_a_root_variable_a_module_tool_manages_is_refused(tmp_path):
    """`root_variable: "{NAME}"` with a package named `path`: its module would set PATH to
    its prefix (the fourth trial: written, both formats); refused, no module tree."""
    site_yaml = _demo_site(tmp_path, "  root_variable: '{NAME}'\n")
    (site_yaml.parent / "pkgs" / "path.yaml").write_text(
        'version: "1.0"\nbuild: |\n  mkdir -p "$ARTIFACT/share"\n'
    )
    text = site_yaml.read_text().replace("[libcore, liba, libb, app]", "[libcore, path]", 1)
    site_yaml.write_text(text)
    root = tmp_path / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "root_variable:" in t)
    said = "modules root_variable '{NAME}' makes PATH for path, which the module tools manage"
    assert f"{site_yaml}:{line}: {said}" in r.stderr, r.stderr
    assert not list(root.glob("modules/**/path/1.0*")) and not (root / "bld" / "path").exists()


def test_a_projection_with_a_field_empty_for_a_package_is_refused_at_its_line(tmp_path):
    """`{name}/{mpi}/{version}` in a flat tree: a package of a stack without an MPI would be
    `libcore//1.0`; one error at `naming:` says the part is empty (it said `''` may hold
    letters..., with no line), and nothing is built."""
    where, said = _refused_naming(tmp_path, "'{name}/{mpi}/{version}'\n  layout: flat")
    assert f"{where}modules naming '{{name}}/{{mpi}}/{{version}}' makes '" in said
    assert "an empty part: {mpi} is empty for it" in said, said


def _refused_naming(tmp_path: Path, naming: str) -> tuple[str, str]:
    """`hdmod build` of the demo site with `naming: NAMING`, refused: the `file:line: ` of
    `naming:` and the one line it said; nothing was built, no traceback."""
    site_yaml = _demo_site(tmp_path, f"  naming: {naming}\n")
    line = next(i for i, t in enumerate(site_yaml.read_text().splitlines(), 1) if "naming:" in t)
    root = tmp_path / "root"
    r = hdmod("build", str(site_yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (root / "bld" / "libcore").exists()
    return f"{site_yaml}:{line}: ", r.stderr


def test_a_naming_that_leaves_a_dangling_separator_is_refused_at_its_line(tmp_path):
    """`{name}/{version}-{mpi}{mpi_version}` gave the serial packages `libcore/1.0-` (the
    third trial of the twelfth stop): one error at `naming:` says the MPI fields are empty
    for them and how to name MPI builds apart; nothing is built."""
    where, said = _refused_naming(tmp_path, "'{name}/{version}-{mpi}{mpi_version}'")
    assert f"{where}modules naming '{{name}}/{{version}}-{{mpi}}{{mpi_version}}' makes" in said
    assert "'1.0-' ends, starts or doubles a separator" in said, said
    assert "{mpi}, {mpi_version} are empty for it (built without an MPI)" in said, said
    assert "naming: {all:" in said, said


def test_a_naming_for_what_is_built_with_an_mpi_names_those_alone(tools, tmp_path):
    """`naming: {all: ..., mpi: ...}` (Spack's projections keyed `all` and `^mpi`): the
    package built with Open MPI is `mpi-hello/1.0-openmpi4.1.4` and loads by that name,
    the serial ones keep `name/version`, in both tools' trees."""
    naming = '{all: "{name}/{version}", mpi: "{name}/{version}-{mpi}{mpi_version}"}'
    site_yaml = _demo_site(tmp_path, f"  naming: '{naming}'\n".replace("'", ""))
    root = tmp_path / "root"
    hdmod("build", str(site_yaml), "--root", str(root))
    for tool in ("lmod", "tcl"):
        run = module_shell(
            tool,
            f"module use {root / 'modules' / tool / 'Core'}; module load gcc/12.2.0 openmpi/4.1.4"
            " && module -t avail && module load mpi-hello/1.0-openmpi4.1.4",
        )
        assert run.code == 0, run.err
        names = set(run.err.split())
        assert {"mpi-hello/1.0-openmpi4.1.4", "libcore/1.0", "app/1.0"} <= names, run.err
        assert not any(n.endswith("-") for n in names), run.err


@pytest.mark.parametrize(
    "tool, text, line, fragment",
    [
        ("lmod", 'whatis("{{ m.name }}")\n{% if %}\n', 2, "Expected an expression"),
        ("lmod", '-- mine\n\nwhatis("{{ m.no_such_field }}")\n', 3, "no_such_field"),
        ("tcl", "#%Module1.0\n{{ m.name + 1 }}\n", 2, "can only concatenate str"),
        ("tcl", "#%Module1.0\n{% include 'tcl/nothing-here.tcl' %}\n", 2, "nothing-here.tcl"),
        ("tcl", "#%Module1.0\n{% include 'tcl/module.tcl' %}\n", 2, "maximum recursion depth"),
        ("tcl", b"#%Module1.0\n# caf\xe9\n", 2, "not UTF-8 text (byte 0xe9)"),
    ],
)
def test_a_broken_site_template_is_one_error_naming_its_line(tmp_path, tool, text, line, fragment):
    """A site's template override with a syntax error, an unknown field, a type error, a
    missing include, an include of itself or text that is not UTF-8 (Latin-1): `hdmod
    build` says so in one `file:line:` line and exits 1, never a traceback, and publishes
    no module tree (whichever process renders that format)."""
    site_yaml = _demo_site(tmp_path, "  templates: mytemplates\n")
    name = {"lmod": "module.lua", "tcl": "module.tcl"}[tool]
    mine = site_yaml.parent / "mytemplates" / tool / name
    mine.parent.mkdir(parents=True)
    mine.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = hdmod("build", str(site_yaml), "--root", str(tmp_path / "root"), check=False)
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert f"{mine}:{line}:" in errors[0] and fragment in errors[0], r.stderr
    assert not (tmp_path / "root" / "modules").exists()


def test_a_refresh_of_a_root_nothing_was_built_at_leaves_it_untouched(tmp_path):
    """`hdmod modules refresh --root NEWDIR` before any build there: one error saying to
    build first, and NEWDIR as it was (the twelfth stop's third trial: a store was laid out
    there, config.yaml, bld/, gcroots/, then the refresh refused; this stop's trial: a
    user's hit home given as the root got a resolve cache)."""
    site_yaml = demo_site(tmp_path)
    new = tmp_path / "new"
    for exists in (False, True, "home"):
        if exists is True:
            new.mkdir()
        if exists == "home":  # a user's hit home: config.yaml, store, no site's stack links
            (new / "config.yaml").write_text("private: true\n")
            (new / "bld").mkdir()
        before = sorted(new.rglob("*")) if new.exists() else None
        r = hdmod("modules", "refresh", str(site_yaml), "--root", str(new), check=False)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"nothing is built at {new}: run `hdmod build site.yaml`" in r.stderr, r.stderr
        assert (sorted(new.rglob("*")) if new.exists() else None) == before


@pytest.mark.parametrize(
    "naming, said",
    [
        ("{all: 3}", "'naming: all' needs {name} and a /"),
        ('{all: "{name}/{version}", mpi: ""}', "'naming: mpi' needs {name} and a /"),
        ('{all: "{name}/{version}", mpi: null}', "naming: mpi: is empty: give a shape"),
        ('{mpi: "{name}/{version}"}', "modules naming needs the key 'all'"),
        ('{all: "{name}/{version}", serial: "{name}/{version}"}', "unknown key 'serial'"),
    ],
    ids=["a-number", "empty", "null", "no-all", "unknown-key"],
)
def test_a_bad_naming_mapping_is_one_error_naming_its_key(tmp_path, naming, said):
    """The naming mapping's values are said with their key, at their line (this stop's
    attack trial: `all: 3` and `mpi: ""` said `'naming' needs ...`, `mpi: null` was taken
    for no `mpi:`); nothing is built."""
    where, told = _refused_naming(tmp_path, naming)
    assert where in told and said in told, told
