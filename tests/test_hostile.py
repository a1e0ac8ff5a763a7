"""Hostile text in every field that reaches a modulefile, a `.modulerc`, a build script or a
path: refused at load with file:line where it is a name, a version or a variable name; escaped
and inert everywhere else. Checked through the real Lmod and Environment Modules (`module
avail` evaluates `.modulerc` as Tcl for every user; `module load` evaluates shell code), each
time asserting that a file the hostile text tries to create does not appear.

The end-to-end `hdmod build` with hostile description, homepage and variable values loaded by
both tools is test_modules.py's `site` (see test_hostile_values_load_byte_exact there)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.names import LONG_BRACKET_CLOSE
from hdmodules.publish.modulefiles import Entry, _external_entry
from hdmodules.publish.moduletree import MODULERC, MODULERC_LUA, render_tree, write_tree
from hdmodules.spec.externals import External
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.recipes import load_recipe
from hdmodules.spec.site import ModuleConfig, Site, load_site
from hdmodules.templating import render, tcl_quote
from tests.conftest import run_hdmod, run_hit, write_profile, write_recipe
from tests.module_tools import ModuleRun, module_shell

TOOLS = ("lmod", "tcl")


def payloads(x: Path) -> list[str]:
    """Text that creates the file `x` if Tcl, Lua or a shell ever evaluates it (no line breaks:
    these are exported values too)."""
    return [
        f"[exec touch {x}]",
        f"$(touch {x})",
        f"`touch {x}`",
        f'"; touch {x}; "',
        f"'; touch {x}; '",
        f'"; exec touch {x}; set y "',
        f'") os.execute("touch {x}") print("',
        f"]] os.execute('touch {x}') --[[",
        f"]==] os.execute('touch {x}') --[==[",
        f"}} ; exec touch {x} ; {{",
        "back\\slash ends in a backslash \\",
        '\\" a quote after a backslash',
        "$HOME ${HOME} $::env(HOME) %s %d {}",
    ]


def tool_run(tool: str, x: Path, commands: str, **kw) -> ModuleRun:
    """module_shell, then: the hostile text created nothing."""
    run = module_shell(tool, commands, **kw)
    assert not x.exists(), f"{tool} ran hostile text ({commands}):\n{run.err}"
    return run


def _site(tmp: Path, **cfg) -> Site:
    return Site(tmp / "site.yaml", tmp, (), {}, ModuleConfig(tmp / "modules", **cfg))


# --- escaping: hand-made entries, loaded by the real tools ---------------------------------


@pytest.fixture
def hostile_tree(tmp_path):
    """A compiler module and a package under it, every free-text field hostile, written as
    render_tree makes them; plus a user's own module at the level the compiler opens."""
    x = tmp_path / "X"
    bad = payloads(x)
    # help and whatis text keep their line breaks; Lua long-bracket closers are refused
    # there (names.text_problem, tested below), so the text holds every other payload
    plain = [b for b in bad if not LONG_BRACKET_CLOSE.search(b)]
    text = "\n".join(plain)
    gcc = Entry(
        "compiler", "gcc", "12.2.0", ("Core",), description=text, homepage=text,
        prefix=" ".join(plain), family="compiler", modulepath=("Compiler", "gcc", "12.2.0"),
        setenv=[("CC", bad[0]), ("GCC_ROOT", " ".join(bad))],
    )  # fmt: skip
    app = Entry(
        "package", "app", "1.0", ("Compiler", "gcc", "12.2.0"), description=text,
        homepage=" ".join(plain) + "\nsecond line", artifact_id="app/" + "a" * 32,
        prefix=" ".join(plain), parents=["gcc/12.2.0"],
        setenv=[(f"HOSTILE_{i}", p) for i, p in enumerate(bad)],
        prepend=[("PATH", bad[1]), ("MANPATH", bad[0])],
    )  # fmt: skip
    site = _site(tmp_path)
    write_tree(site, render_tree(site, [gcc, app]))  # as hdmod publishes it
    user = tmp_path / "user-hit-home"
    for tool, leaf, line in (("lmod", "1.0.lua", 'setenv("MINE", "yes")\n'),
                             ("tcl", "1.0", "#%Module1.0\nsetenv MINE yes\n")):  # fmt: skip
        mine = user / "modules" / tool / "Compiler" / "gcc" / "12.2.0" / "mine"
        mine.mkdir(parents=True)
        (mine / leaf).write_text(line)
    return {"modules": site.modules.path, "x": x, "bad": bad, "text": text, "user": user}


def test_lmod_reading_the_tcl_tree_runs_nothing(tools, hostile_tree):
    """Lmod reads Tcl modulefiles too (tcl2lua.tcl turns them into Lua, wrapping whatis and
    help text in `[===[...]===]`): the Tcl tree, hostile text and all, through Lmod."""
    t = hostile_tree
    x, home = t["x"], t["user"].parent / "home-lmod-tcl"
    home.mkdir()
    use = f"module use {t['modules'] / 'tcl' / 'Core'}"
    for cmd in (
        "module avail",
        "module whatis gcc",
        "module help gcc",
        "module load gcc; module whatis app; module help app",
        "module spider app",
    ):
        run = tool_run(
            "lmod", x, f"export LMOD_SHORT_TIME=0; {use}; {cmd}", home=home, capture_env=False
        )
        assert run.code == 0, f"{cmd}: {run.err}"
    run = tool_run("lmod", x, f"{use}; module load gcc app", home=home)
    assert run.code == 0 and run.env["HOSTILE_0"] == t["bad"][0], run.err


@pytest.mark.parametrize("control", ["\\x1b]0;title\\x07", "\\x1b[8m", "\\r", "\\x9b2J", "\\x7f"])
def test_control_characters_in_help_text_are_refused(tmp_path, control):
    """An ESC, BEL, CR, C1 or DEL in a description or homepage: the modulefile escaped it,
    but `module help` and `module whatis` print the text back raw (Lmod and Environment
    Modules alike), so it retitled, cleared or hid the user's terminal (the last trial).
    Refused at load, with file:line, and by the renderer; line breaks and tabs stay."""
    f = tmp_path / "spy.yaml"
    for key in ("description", "homepage"):
        f.write_text(f'version: "1.0"\n{key}: "d {control} x"\nbuild: |\n  true\n')
        with pytest.raises(HitError, match=rf"spy.yaml:2: the {key} holds the control char"):
            load_recipe(f)
    f.write_text('version: "1.0"\ndescription: "two\\nlines\\tand a tab"\nbuild: |\n  true\n')
    assert load_recipe(f).description == "two\nlines\tand a tab"
    raw = control.encode().decode("unicode_escape")  # as YAML reads the escape
    entry = Entry("package", "spy", "1.0", (), description="a" + raw)
    with pytest.raises(HitError, match="the description holds the control character"):
        render_tree(_site(tmp_path), [entry])


@pytest.mark.parametrize("closer", ["]]", "]===]", "]=]", "]========]"])
def test_lua_long_bracket_closers_in_help_text_are_refused(tmp_path, closer):
    """`]===]` in a description ended the long bracket Lmod's tcl2lua wraps whatis text in;
    any `]=*]` could end the one its spider cache picks: refused at load, with file:line,
    and by the renderer whatever made the entry."""
    x = tmp_path / "X"
    bad = f"ok{closer}) os.execute('touch {x}') whatis([===[ok"
    f = tmp_path / "spy.yaml"
    f.write_text(f'version: "1.0"\ndescription: "{bad}"\nbuild: |\n  true\n')
    with pytest.raises(HitError, match=r"spy.yaml:2: the description holds"):
        load_recipe(f)
    f.write_text(f'version: "1.0"\nhomepage: "{bad}"\nbuild: |\n  true\n')
    with pytest.raises(HitError, match=r"spy.yaml:2: the homepage holds"):
        load_recipe(f)
    entry = Entry("package", "spy", "1.0", (), description="a\n" + bad)
    with pytest.raises(HitError, match="the description holds"):
        render_tree(_site(tmp_path), [entry])


def test_no_module_file_becomes_a_control_file(tmp_path):
    """A hidden module keeps its own file name (its folder's rc file hides it), and no
    version may start with a dot: no module file can be a folder's `.modulerc`,
    `.modulerc.lua` or `.version`, which both tools read as rc files."""
    for version in ("modulerc", "modulerc.lua", "version"):
        entry = Entry("package", "rc", version, (), hidden=True)
        files = render_tree(_site(tmp_path), [entry])
        assert {f"tcl/rc/{version}", f"lmod/rc/{version}.lua"} <= set(files)
        assert f'module-hide "rc/{version}"' in files["tcl/rc/" + MODULERC].decode()
    for version in (".modulerc", ".modulerc.lua", ".version"):
        with pytest.raises(HitError, match="may hold letters"):
            render_tree(_site(tmp_path), [Entry("package", "rc", version, (), hidden=True)])


@pytest.mark.parametrize("tool", TOOLS)
def test_hostile_text_and_values_run_nothing_and_load_byte_exact(tools, hostile_tree, tool):
    t = hostile_tree
    x, home = t["x"], t["user"].parent / f"home-{tool}"
    home.mkdir()
    use = f"module use {t['modules'] / tool / 'Core'}"
    commands = ("module avail", "module -t avail", "module whatis gcc", "module help gcc",
                "module load gcc; module avail", "module load gcc; module whatis app",
                "module load gcc; module help app", "module load gcc app; module list")  # fmt: skip
    for cmd in commands:
        run = tool_run(tool, x, f"{use}; {cmd}", home=home, capture_env=False)
        assert run.code == 0, f"{cmd}: {run.err}"
    helped = tool_run(tool, x, f"{use}; module load gcc; module help app 2>&1", home=home)
    assert t["text"] in helped.out  # the description, line breaks included
    if tool == "lmod":  # spider, and the user cache Lmod writes and reads back
        for _ in range(2):
            run = tool_run(tool, x, f"export LMOD_SHORT_TIME=0; {use}; module spider app; "
                                    "module avail", home=home, capture_env=False)  # fmt: skip
            assert run.code == 0, run.err
    run = tool_run(tool, x, f"{use}; module load gcc app", home=home)
    assert run.code == 0, run.err
    for i, value in enumerate(t["bad"]):
        assert run.env[f"HOSTILE_{i}"] == value
    assert run.env["CC"] == t["bad"][0] and run.env["GCC_ROOT"] == " ".join(t["bad"])
    assert run.env["PATH"].split(":")[0] == t["bad"][1]
    # the compiler opens the same level of the user's own tree ($HIT_HOME/modules/...)
    run = tool_run(tool, x, f"export HIT_HOME={t['user']}; {use}; module load gcc mine")
    assert run.code == 0 and run.env["MINE"] == "yes", run.err


@pytest.mark.parametrize("tool", TOOLS)
def test_external_module_and_prefix_are_escaped(tools, tmp_path, tool):
    """An external's `module:` (a site module its module loads) and `prefix` are free text:
    escaped. Loading a module of that hostile name fails, and runs nothing."""
    x = tmp_path / "X"
    bad = payloads(x)
    loads = External("vendor-mpi", "mpi", "9.9", module=bad[0] + bad[6], prefix=bad[1])
    sets = External("other-mpi", "mpi", "9.8", {"mpicc": bad[2]}, prefix=" ".join(bad))
    entries = [_external_entry(e, (), None) for e in (loads, sets)]
    site = _site(tmp_path, layout="flat")
    write_tree(site, render_tree(site, entries))
    use = f"module use {tmp_path / 'modules' / tool}"
    run = tool_run(tool, x, f"{use}; module avail; module load vendor-mpi", capture_env=False)
    assert run.code != 0  # no module has that name
    run = tool_run(tool, x, f"{use}; module load other-mpi")
    assert run.code == 0, run.err
    assert run.env["MPI_DIR"] == " ".join(bad) and run.env["MPICC"] == bad[2]


@pytest.mark.parametrize("tool", TOOLS)
def test_modulerc_words_are_quoted(tools, tmp_path, tool):
    """The rc templates (Tcl `.modulerc`, Lmod `.modulerc.lua`) quote module and version
    names, defaults, aliases and hidden modules through tcl_quote / lua_quote: even a hostile
    word (which names.py never lets through) stays a word on `module avail` and load."""
    x = tmp_path / "X"
    site = _site(tmp_path)
    files = render_tree(site, [Entry("package", "app", "1.0", ("Core",))])
    versions = [("app/1.0", p) for p in payloads(x)] + [(f"app/{payloads(x)[0]}", "default")]
    hidden = [f"app/{p}" for p in payloads(x)]
    rcs = {"lmod": (MODULERC_LUA, "lmod/modulerc.lua"), "tcl": (MODULERC, "tcl/modulerc.tcl")}
    for fmt, (name, template) in rcs.items():
        text = render(template, versions=versions, hidden=hidden)
        files[f"{fmt}/Core/app/{name}"] = text.encode()
    write_tree(site, files)
    use = f"module use {site.modules.path / tool / 'Core'}"
    for cmd in ("module avail", "module -t avail", "module load app"):
        tool_run(tool, x, f"{use}; {cmd}", capture_env=False)


@pytest.mark.parametrize("tool", TOOLS)
def test_templates_quote_every_word_even_past_the_guard(tools, tmp_path, tool):
    """The module templates quote every word (name, version, family, load, depends, parents,
    the user-level MODULEPATH) through lua_quote / tcl_quote, even for words render_tree's
    guard would refuse: rendered here directly, then evaluated by the real tools."""
    x = tmp_path / "X"
    bad = payloads(x)
    evil = Entry(
        "compiler", bad[0], bad[6], (), description=bad[7], family="compiler", prefix=bad[3],
        # a level each language would run, were it not quoted
        modulepath={"tcl": (bad[0], "x"), "lmod": (bad[6],)}[tool], artifact_id=bad[9],
    )  # fmt: skip
    needs = Entry("package", "needs", "1.0", (), load=bad[4], depends=[bad[2]], parents=[bad[1]])
    ext = {"lmod": ".lua", "tcl": ""}[tool]
    template = {"lmod": "lmod/module.lua", "tcl": "tcl/module.tcl"}[tool]
    for e in (evil, needs):
        target = tmp_path / "modules" / e.kind / f"1.0{ext}"
        target.parent.mkdir(parents=True)
        target.write_text(render(template, m=e, modulepath=bad[1] if e.modulepath else None))
    use = f"module use {tmp_path / 'modules'}"
    for cmd in ("module avail", "module whatis compiler", "module help compiler",
                "module load compiler", "module load package"):  # fmt: skip
        tool_run(tool, x, f"export HIT_HOME={tmp_path}; {use}; {cmd}", capture_env=False)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_default_with_plus_and_tilde_names_the_mapped_module(tools, tmp_path, tool):
    """`defaults: {jdk: 17.0.2+8~rc1}` names the module jdk/17.0.2_8_rc1 (names.module_word:
    Environment Modules 5 reads + and ~ as variants); the renderer refuses an unmapped one."""
    version, mapped = "17.0.2+8~rc1", "17.0.2_8_rc1"
    entries = [Entry("package", "jdk", v, ("Core",)) for v in (mapped, "18.0")]
    site = _site(tmp_path, defaults={"jdk": version})
    files = render_tree(site, entries)
    rc = files["tcl/Core/jdk/" + MODULERC].decode()
    assert f"module-version {tcl_quote('jdk/' + mapped)} {tcl_quote('default')}\n" in rc
    write_tree(site, files)
    run = module_shell(tool, f"module use {site.modules.path / tool / 'Core'}; module load jdk")
    assert run.code == 0 and run.env["LOADEDMODULES"] == f"jdk/{mapped}", run.err
    with pytest.raises(HitError, match=r"'17.0.2\+8~rc1' holds \+ or ~.*use '17.0.2_8_rc1'"):
        render_tree(site, [Entry("package", "jdk", version, ("Core",))])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": "1.0[exec touch X]"}, "'1.0[exec touch X]' may hold letters"),
        ({"version": "../../x"}, "'../../x' may hold"),
        ({"name": "gcc/../app"}, "'..' may hold"),
        ({"level": ("Compiler", "gcc", "$(x)")}, "'$(x)' may hold"),
        ({"setenv": [("X;touch Y;Z", "v")]}, "variable name 'X;touch Y;Z' must be a shell"),
        ({"setenv": [("X", "a\nrm -rf ~")]}, "the value of X holds a line break"),
    ],
)
def test_render_tree_refuses_what_cannot_be_escaped(tmp_path, change, message):
    """The last guard, whatever made the entries (names.py's rules again)."""
    fields = {"kind": "package", "name": "app", "version": "1.0", "level": ("Core",), **change}
    with pytest.raises(HitError, match=rf"site.yaml: module .*{_re(message)}"):
        render_tree(_site(tmp_path), [Entry(**fields)])


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_comments_cannot_be_broken_out_of(tmp_path):
    """Values in comments (build.sh, modulefile headers, develop files) lose their line
    breaks: nothing after one can become a line of code. (names.py keeps line breaks out of
    names and versions anyway; this is the second line of defence.)"""
    x = tmp_path / "X"
    evil = f"1.0\ntouch {x}\r\n-- \\"
    context = dict(id="a/b", toolbin=tmp_path / "bin", tool_links=[], tool_stubs=[], jobs=1,
                   env=[], srcdir=tmp_path, script="true")  # fmt: skip
    script = render("build.sh.j2", name=evil, version=evil, **context)
    assert len(script.splitlines()) == len(
        render("build.sh.j2", name="a", version="1", **context).splitlines()
    )
    (tmp_path / "build.sh").write_text(script)
    assert subprocess.run(["bash", str(tmp_path / "build.sh")]).returncode == 0
    assert not x.exists()
    for template in ("lmod/module.lua", "tcl/module.tcl"):
        lines = [
            render(template, m=Entry("package", "app", v, (), prefix=v, artifact_id=f"a/{v}"),
                   modulepath=None).splitlines()
            for v in (evil, "1.0")
        ]  # fmt: skip
        assert len(lines[0]) == len(lines[1]) and "\\x0atouch" in lines[0][1]
    for template in ("develop/develop.lua.j2", "develop/develop.tcl.j2"):
        lines = [render(template, dir=tmp_path / v, venv=True).splitlines() for v in (evil, "d")]
        assert len(lines[0]) == len(lines[1])


@pytest.mark.parametrize("tool", TOOLS)
def test_develop_modulefile_with_a_hostile_folder_name(tools, tmp_path, tool):
    x = tmp_path / "X"
    folder = tmp_path / f"dev \"$(touch {x})\" [exec touch {x}] ') os.execute('touch {x}"
    for fmt, name, leaf in (
        ("lmod", "develop.lua.j2", "dev.lua"),
        ("tcl", "develop.tcl.j2", "dev"),
    ):
        target = folder / "modulefiles" / fmt / "develop" / leaf
        target.parent.mkdir(parents=True)
        target.write_text(render(f"develop/{name}", dir=folder, venv=False))
    modules = folder / "modulefiles" / tool
    run = tool_run(tool, x, f"module use {_sh(modules)}; module avail; module whatis develop; "
                            "module load develop")  # fmt: skip
    assert run.code == 0 and run.env["HIT_DEVELOP"] == str(folder), run.err
    for d in (folder, tmp_path / "line\nbreak\ntouch X\n$(touch X)"):  # X: relative
        d.mkdir(exist_ok=True)
        (d / "activate").write_text(render("develop/activate.sh.j2", dir=d, venv=False))
        script = f'source {_sh(d / "activate")} && printf %s "$HIT_DEVELOP"'
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)
        assert out.stdout == str(d) and not x.exists(), out.stderr


@pytest.mark.parametrize("name", ["dev]]x", "dev]==]x", "line\nbreak"])
def test_hit_develop_refuses_a_folder_its_modulefiles_cannot_hold(home, demo, name):
    """The folder's path is written into its modulefiles' whatis text and values: a Lua
    long-bracket closer (Lmod copies whatis text into long brackets) or a line break (both
    tools export values unquoted) is refused before anything is built."""
    r = run_hit("develop", "--no-python", str(demo / name), cwd=demo, check=False)
    assert r.code == 1 and "the folder's path holds" in r.err, r.err
    assert not (demo / name).exists() and "built in" not in r.err


def _sh(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


# --- refused at load, with file:line -------------------------------------------------------

HOSTILE_VERSIONS = ["1.0[exec touch X]", "1.0;touch X", "$(touch X)", "../../x", "1.0\nrm -rf"]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("version", HOSTILE_VERSIONS)
def test_hit_build_refuses_a_hostile_recipe_version(tmp_path, version):
    version = version.replace("X", str(tmp_path / "X"))
    recipe = write_recipe(tmp_path / "pkgs", "hello", f"version: {json.dumps(version)}\n"
                          'build: |\n  mkdir -p "$ARTIFACT/bin"\n')  # fmt: skip
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [hello]\n")
    home = tmp_path / "home"
    before = _files(tmp_path)
    env = {"HIT_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = run_hit("build", str(profile), cwd=tmp_path, check=False, env=env)
    assert r.code == 1, r.both
    assert f"{recipe}:1: hello: version {version!r} may hold letters, digits and ._+~-" in r.err
    assert not (tmp_path / "X").exists() and not (home / "bld" / "hello").exists()
    assert not (tmp_path / "p").exists()  # no profile link
    assert {p for p in _files(tmp_path) - before if not p.is_relative_to(home)} == set()


def test_hdmod_build_refuses_a_hostile_version_and_writes_nothing(tmp_path):
    write_recipe(tmp_path / "pkgs", "hello", 'version: "../../../x"\nbuild: "true"\n')
    site = tmp_path / "site.yaml"
    compiler = "  gcc-12: {kind: compiler, version: '12', commands: {cc: /usr/bin/gcc}}\n"
    stacks = "stacks:\n  s: {compiler: gcc-12, packages: [hello]}\nmodules: {layout: flat}\n"
    site.write_text(f"root: root\npackage_dirs: [pkgs]\nexternals:\n{compiler}{stacks}")
    before = _files(tmp_path)
    r = run_hdmod("build", str(site), check=False)
    assert r.returncode == 1 and "hello.yaml:1: hello: version '../../../x' may hold" in r.stderr
    assert _files(tmp_path) == before


SITE = """\
root: root
stacks:
  s: {compiler: gcc-12, packages: [hello]}
modules:
"""


@pytest.mark.parametrize(
    "modules, line, message",
    [
        (
            '  env: {hello: {"X;touch Y;Z": v}}\n',
            5,
            "modules env: hello: variable name 'X;touch Y;Z' must be a shell variable name",
        ),
        ('  env:\n    hello:\n      OK: "a\\nrm -rf ~"\n', 7, "the value of OK holds a line break"),
        ('  env: {"../h": {A: b}}\n', 5, "modules env: package name '../h' may hold"),
        (
            '  defaults: {hello: "1.0[exec touch X]"}\n',
            5,
            "modules defaults: hello: version '1.0[exec touch X]' may hold",
        ),
        ('  defaults: {"he;llo": "1.0"}\n', 5, "modules defaults: module name 'he;llo' may hold"),
        ("  hide: [a, ../b]\n", 5, "modules hide: package name '../b' may hold"),
        (
            '  root_variable: "{NAME}_ROOT;touch X"\n',
            5,
            "root_variable 'NAME_ROOT;touch X' must be a shell variable name",
        ),
        ('  naming: "{name}/{version}$(touch X)"\n', 5, "the text around the fields may hold"),
        ('  naming: "{name}/{version!r}"\n', 5, "fields take no !conversion nor :format"),
        ('  naming: "{name}/{ver}"\n', 5, "unknown field {ver}"),
        ('  path: ""\n', 5, "'path' is empty: give the module tree's folder"),
        ("  root_variable: X\n", 5, "'root_variable' must hold {NAME}"),
        (
            "  env: {hello: {PATH: /evil}}\n",
            5,
            "modules env: hello: variable PATH is the module tools' own",
        ),
        (
            "  env:\n    hello:\n      OK: v\n      MODULEPATH: /evil\n",
            8,
            "modules env: hello: variable MODULEPATH is the module tools' own",
        ),
        ('  naming: "{name}/../{version}"\n', 5, "makes a part '..' (fields as x1): each part"),
        ('  naming: "{name}//{version}"\n', 5, "makes an empty part: each part between"),
        ('  naming: "/{name}/{version}"\n', 5, "makes an empty part: each part between"),
        ('  naming: "{name}/.{version}"\n', 5, "makes a part '.x1' (fields as x1)"),
        ("  externals: [gcc-12, '$(x)']\n", 5, "modules externals: external name '$(x)' may"),
    ],
)
def test_site_module_settings_are_checked_at_load(tmp_path, modules, line, message):
    site = tmp_path / "site.yaml"
    site.write_text(SITE + modules)
    with pytest.raises(HitError, match=rf"^{site}:{line}: .*{_re(message)}"):
        load_site(site)


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("stacks:\n  ../s: {compiler: c, packages: [a]}\n", 3, "stack name '../s' may hold"),
        ("stacks:\n  s: {compiler: c, packages: [a, ../../b]}\n", 3,
         "package name '../../b' may hold"),
        ('permissions: {mode: "0755\\n"}\nstacks: {s: {compiler: c, packages: [a]}}\n', 2,
         "mode '0755\\n' must be three octal digits"),
        ("permissions: {mode: 0755}\nstacks: {s: {compiler: c, packages: [a]}}\n", 2,
         "write the mode in quotes, \"0755\" (YAML reads it as the number 493)"),
        ('stacks:\n  s:\n    compiler: c\n    core: "false"\n    packages: [a]\n', 5,
         "'core' must be true or false, not 'false'"),
        ("stacks:\n  s:\n    compiler: c\n    packages:\n      -x: {}\n", 6,
         "package name '-x' may hold"),
        ("externals:\n  gcc:\n    kind: compiler\n    version: 1.0 [exec touch X]\n"
         "stacks: {s: {compiler: gcc, packages: [a]}}\n", 5,
         "external gcc: version '1.0 [exec touch X]' may hold"),
        ('externals:\n  "gcc\\n":\n    kind: compiler\nstacks: {s: {compiler: c, packages: [a]}}\n',
         3, "external name 'gcc\\n' may hold"),
        ('externals:\n  gcc:\n    kind: "compiler\\n"\n'
         "stacks: {s: {compiler: gcc, packages: [a]}}\n",
         4, "external gcc: kind 'compiler\\n' may hold"),
        ('externals:\n  gcc:\n    kind: compiler\n    module: ""\n'
         "stacks: {s: {compiler: gcc, packages: [a]}}\n", 5, "module '' must be one module's name"),
        ('externals:\n  m:\n    kind: mpi\n    prefix: "rel dir/-x"\n'
         "stacks: {s: {compiler: gcc, packages: [a]}}\n", 5,
         "prefix 'rel dir/-x' must be an absolute path"),
        ('externals:\n  gcc:\n    kind: compiler\n    module: "gcc/12\\nmodule load x"\n'
         "stacks: {s: {compiler: gcc, packages: [a]}}\n", 5,
         "module 'gcc/12\\nmodule load x' holds a line break"),
    ],
)  # fmt: skip
def test_site_names_are_checked_at_load(tmp_path, text, line, message):
    site = tmp_path / "site.yaml"
    site.write_text("root: root\n" + text)
    with pytest.raises(HitError, match=rf"^{site}:{line}: .*{_re(message)}"):
        load_site(site)


def test_site_refusals_through_hdmod_build(tmp_path):
    site = tmp_path / "site.yaml"
    for modules, message in (
        ('  env: {hello: {"X;touch Y;Z": v}}\n', f"{site}:5: modules env: hello: variable name"),
        ('  defaults: {hello: "1.0[exec touch X]"}\n', f"{site}:5: modules defaults: hello"),
    ):
        site.write_text(SITE + modules)
        r = run_hdmod("build", str(site), check=False)
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('name: "a b"\nversion: "1"\n', 1, "package name 'a b' may hold"),
        ('version: "1.0 "\n', 1, "a: version '1.0 ' may hold"),
        ('version: "-1"\n', 1, "a: version '-1' may hold"),
        ('version: ".1"\n', 1, "a: version '.1' may hold"),
        ('version: "1..2"\n', 1, "a: version '1..2' may hold"),
        ('version: "1\\t2"\n', 1, "a: version '1\\t2' may hold"),
        ('version: "1"\ndependencies: [../x]\n', 2, "dependency '../x' may hold"),
        (
            'version: "1"\nenvironment: {"X;touch Y": 1}\n',
            2,
            "module variable name 'X;touch Y' must be a shell variable name",
        ),
        ('version: "1"\nenvironment: {"X\\u00b2": 1}\n', 2, "module variable name 'X²' must"),
        ('version: "1"\nenvironment:\n  OK: "a\\nb"\n', 3, "the value of OK holds a line break"),
        ('version: "1"\nparameters: {"a-b": 1}\n', 2, "parameter name 'a-b' must be"),
        ('version: "1"\nresources: {mem: "8G\\nrm -rf ~"}\n', 2, "'mem' must be a number"),
    ],
)
def test_recipe_names_versions_and_variables_are_checked_at_load(tmp_path, text, line, message):
    f = write_recipe(tmp_path, "a", text + 'build: "true"\n')
    with pytest.raises(HitError, match=rf"^{f}:{line}: {_re(message)}"):
        load_recipe(f)


@pytest.mark.parametrize(
    "version",
    ["1.2.3", "8.2", "3.4.4", "1.0-rc1", "2024.1", "12.2.0", "4.1.4", "1.14.3", "17.0.2+8",
     "1.0_beta", "2.0~rc1", "v1", "1", "1.0.post1+local.7"],
)  # fmt: skip
def test_usual_versions_stay_valid(tmp_path, version):
    f = write_recipe(tmp_path, "a-b_c.d+e", f'version: "{version}"\nbuild: "true"\n')
    assert load_recipe(f).version == version


@pytest.mark.parametrize(
    "packages, line, message",
    [
        ("packages: [ok, ../x]\n", 1, "package name '../x' may hold"),
        ("packages:\n  ok:\n  .hidden:\n", 3, "package name '.hidden' may hold"),
        ("packages:\n  a: {git: repo, branch: --upload-pack=touch}\n", 2,
         "branch '--upload-pack=touch' is not a branch name"),
        ("packages:\n  a: {git: repo, branch: 1.10}\n", 2, "write the branch in quotes"),
        ("packages:\n  a: {git: repo, branch: main..main}\n", 2,
         "branch 'main..main' is not a branch name"),
        ("packages:\n  a: {git: repo, branch: HEAD~0}\n", 2, "branch 'HEAD~0' is not a branch"),
        ("packages:\n  a: {git: repo, commit: 'v1.0~1'}\n", 2, "commit 'v1.0~1' is not a commit"),
        ("packages:\n  a:\n    git: repo\n    branch: main\n    commit: abcd\n", 5,
         "give `branch:` or `commit:`, not both"),
        ('packages:\n  a: {git: "", commit: abcd}\n', 2, "git repository '' is empty"),
        ('externals:\n  c:\n    kind: compiler\n    version: "$(touch X)"\n', 4,
         "external c: version '$(touch X)' may hold"),
    ],
)  # fmt: skip
def test_profile_names_are_checked_at_load(tmp_path, packages, line, message):
    p = write_profile(tmp_path / "p.yaml", packages)
    with pytest.raises(HitError, match=rf"^{p}:{line}: {_re(message)}"):
        load_profile(p)


def test_hit_build_refuses_a_hostile_external_version(tmp_path):
    """Externals normally come from `hit externals detect` (gcc --version: plain versions);
    a hand-edited one is checked like any version."""
    write_recipe(tmp_path / "pkgs", "hello", 'version: "1"\nbuild: "true"\n')
    p = write_profile(tmp_path / "p.yaml", textwrap.dedent("""\
        package_dirs: [pkgs]
        externals:
          gcc-12:
            kind: compiler
            version: "12.2.0 [exec touch X]"
            commands: {cc: /usr/bin/gcc-12}
        toolchain: {compiler: gcc-12}
        packages: [hello]
        """))  # fmt: skip
    env = {"HIT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = run_hit("build", str(p), cwd=tmp_path, check=False, env=env)
    assert r.code == 1 and f"{p}:5: external gcc-12: version '12.2.0 [exec touch X]'" in r.err


# --- words too long for a file name ---------------------------------------------------------


def test_a_name_or_version_too_long_for_a_file_name_is_refused_at_load(hit, home, tmp_path):
    """A package name of 250 characters passed the name check, then failed at its lock file
    ("File name too long", no file:line). Names and versions are capped (names.MAX_WORD, 100)
    so that every file name made of them fits in 255 bytes: one of 100 characters each
    builds, and its gc (the prefix moved to `.trash/<name>-<version>-<hash>-<pid>`) works."""
    build = 'build: |\n  mkdir -p "$ARTIFACT/bin"\n'
    name, version = "n" * 250, "1." + "0" * 98
    write_recipe(tmp_path / "pkgs", name, f'version: "1"\n{build}')
    p = write_profile(tmp_path / "p.yaml", f"package_dirs: [pkgs]\npackages: [{name}]\n")
    r = hit("build", str(p), cwd=tmp_path, check=False)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert f"{p}:2: package name '{name}' is 250 characters long (at most 100: " in r.err
    recipe = write_recipe(tmp_path / "pkgs", "hello", f'version: "{version}1"\n{build}')
    p.write_text("package_dirs: [pkgs]\npackages: [hello]\n")
    r = hit("build", str(p), cwd=tmp_path, check=False)
    assert r.code == 1 and f"{recipe}:1: hello: version '{version}1' is 101 characters" in r.err
    longest = "n" * 100
    write_recipe(tmp_path / "pkgs", longest, f'version: "{version}"\n{build}')
    p.write_text(f"package_dirs: [pkgs]\npackages: [{longest}]\n")
    hit("build", str(p), cwd=tmp_path)
    assert list((home / "bld" / longest).glob(f"{version}-*/bin"))
    p.write_text("package_dirs: [pkgs]\npackages: []\n")
    hit("build", str(p), cwd=tmp_path)
    assert hit("gc").out.startswith("removed 2 artifact(s)")  # the package and its profile
    assert not (home / "bld" / longest).exists()


def test_a_key_longer_than_yaml_allows_gets_a_clear_message(hit, tmp_path):
    """PyYAML and libyaml give up on a key of more than 1,024 characters and said "mapping
    values are not allowed in this context" or "could not find expected ':'" at its `:`."""
    key = "k" * 1025
    for text, line in (
        (f"packages:\n  ok:\n  {key}: {{}}\n", 3),
        (f"packages:\n  {key}: {{}}\n", 2),
        (f"packages: {{{key}: {{}}}}\n", 1),
    ):
        p = write_profile(tmp_path / "p.yaml", text)
        r = hit("build", str(p), cwd=tmp_path, check=False)
        assert r.code == 1, r.both
        assert f"{p}:{line}: malformed YAML: a key longer than 1,024 characters" in r.err, r.err
