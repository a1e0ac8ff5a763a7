"""Module planning and rendering at the unit level (the real tools load them in test_modules)."""

from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.names import module_word
from hdmodules.publish.compiling import scan
from hdmodules.publish.modulefiles import Entry, _package_env
from hdmodules.publish.moduletree import render_tree
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.resolve import resolve
from hdmodules.spec.site import ModuleConfig, Site
from hdmodules.templating import lua_quote, tcl_quote
from tests.conftest import DEMO


def _site(tmp_path: Path, **cfg) -> Site:
    return Site(tmp_path / "site.yaml", tmp_path, (), {}, ModuleConfig(tmp_path / "m", **cfg))


def test_package_env_covers_the_usual_variables(tmp_path):
    prefix = tmp_path / "prefix"
    for d in ("bin", "share/man", "lib/pkgconfig", "share/pkgconfig", "lib"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    node = resolve(load_profile(DEMO / "default.yaml")).nodes["app"]
    setenv, prepend = _package_env(
        node, scan(prefix), ModuleConfig(tmp_path, root_variable="{NAME}_HOME")
    )
    assert ("APP_HOME", str(prefix)) in setenv
    assert prepend == [
        ("PATH", f"{prefix}/bin"),
        ("MANPATH", f"{prefix}/share/man"),
        ("PKG_CONFIG_PATH", f"{prefix}/lib/pkgconfig"),
        ("PKG_CONFIG_PATH", f"{prefix}/share/pkgconfig"),
        ("CMAKE_PREFIX_PATH", str(prefix)),
    ]
    _s, with_ld = _package_env(node, scan(prefix), ModuleConfig(tmp_path, ld_library_path=True))
    assert ("LD_LIBRARY_PATH", f"{prefix}/lib") in with_ld


def test_package_env_takes_links_to_folders_and_never_files(tmp_path):
    """What the prefix holds, as the module sees it: a link to a folder is a folder (a
    `share` pointing elsewhere still gives MANPATH), a file named like a folder is not."""
    prefix, elsewhere = tmp_path / "prefix", tmp_path / "elsewhere"
    (elsewhere / "man").mkdir(parents=True)
    prefix.mkdir()
    (prefix / "bin").write_text("not a folder\n")
    (prefix / "share").symlink_to(elsewhere)
    (prefix / "lib").symlink_to(tmp_path / "missing")  # dangling: no folder
    node = resolve(load_profile(DEMO / "default.yaml")).nodes["app"]
    _s, prepend = _package_env(node, scan(prefix), ModuleConfig(tmp_path, ld_library_path=True))
    assert prepend == [("MANPATH", f"{prefix}/share/man"), ("CMAKE_PREFIX_PATH", str(prefix))]
    _s, none = _package_env(node, scan(tmp_path / "not-built"), ModuleConfig(tmp_path))
    assert none == [("CMAKE_PREFIX_PATH", str(tmp_path / "not-built"))]


def test_explicit_defaults_go_to_modulerc(tmp_path):
    entries = [Entry("package", "app", v, ("Core",)) for v in ("1.0", "2.0")]
    files = render_tree(_site(tmp_path, defaults={"app": "1.0"}), entries)
    rc = files["tcl/Core/app/.modulerc"].decode()
    assert 'module-version "app/1.0" "default"' in rc and "2.0" not in rc
    lua = files["lmod/Core/app/.modulerc.lua"].decode()
    assert 'module_version("app/1.0", "default")' in lua and "2.0" not in lua
    assert "lmod/Core/app/.modulerc" not in files  # Lmod reads the Lua one, without tclsh


def _suffixed(*hashes: str) -> list[Entry]:
    """Entries as modulenames.settle_names leaves two artifacts of app 1.0 in one folder."""
    return [
        Entry("package", "app", f"1.0-{h}", ("Core",), artifact_id=f"app/{h}", alias="1.0")
        for h in hashes
    ]


def test_one_default_per_folder_and_the_admins_wins(tmp_path):
    entries = _suffixed("aaaaaaa", "bbbbbbb")
    rc = render_tree(_site(tmp_path), entries)["tcl/Core/app/.modulerc"].decode()
    assert rc.count('"default"') == 1 and 'module-version "app/1.0-aaaaaaa" "default"' in rc
    assert 'module-version "app/1.0-aaaaaaa" "1.0"' in rc
    site = _site(tmp_path, defaults={"app": "1.0-bbbbbbb"})
    files = render_tree(site, entries)
    rc = files["tcl/Core/app/.modulerc"].decode()
    assert rc.count('"default"') == 1 and 'module-version "app/1.0-bbbbbbb" "default"' in rc
    assert 'module-version "app/1.0-bbbbbbb" "1.0"' in rc and "aaaaaaa" not in rc
    lua = files["lmod/Core/app/.modulerc.lua"].decode()
    assert lua.count('"default"') == 1 and 'module_version("app/1.0-bbbbbbb", "1.0")' in lua


def test_a_default_that_names_no_module_is_refused(tmp_path):
    cases = [({"app": "1.0-ccccccc"}, "1.0-aaaaaaa, 1.0-bbbbbbb"), ({"nope": "1.0"}, "none")]
    for defaults, written in cases:
        with pytest.raises(HitError, match=rf"site.yaml: modules: defaults: .*{written}"):
            render_tree(_site(tmp_path, defaults=defaults), _suffixed("aaaaaaa", "bbbbbbb"))


def test_hidden_modules_keep_their_names_and_get_a_default(tmp_path):
    entries = [Entry("package", "lib", v, ("Core",), hidden=True) for v in ("2.0", "1.0")]
    files = render_tree(_site(tmp_path), entries)
    assert {"tcl/Core/lib/1.0", "tcl/Core/lib/2.0", "lmod/Core/lib/1.0.lua"} <= set(files)
    rc = files["tcl/Core/lib/.modulerc"].decode()
    assert 'module-hide "lib/1.0"' in rc and 'hide-version "lib/2.0"' in rc
    assert 'module-version "lib/2.0" "default"' in rc  # the first in site.yaml order
    lua = files["lmod/Core/lib/.modulerc.lua"].decode()
    assert 'hide_version("lib/1.0")' in lua and 'module_version("lib/2.0", "default")' in lua


def test_module_words_map_plus_and_tilde():
    assert module_word("17.0.2+8") == "17.0.2_8" and module_word("1.0~rc1") == "1.0_rc1"
    assert module_word("g++") == "g++" and module_word("1.0+") == "1.0+"
    assert module_word("a+b+") == "a_b+" and module_word("1.0-x_y") == "1.0-x_y"


def test_rendering_is_byte_identical(tmp_path):
    entries = [Entry("package", "app", "1.0", (), description="x", depends=["lib/1"])]
    site = _site(tmp_path)
    assert render_tree(site, entries) == render_tree(site, entries)


def test_quoting_round_trips_through_lua_and_tcl():
    import shutil
    import subprocess

    value = "q\"uote's $HOME [x] {y} back\\slash; `id`\ttab\nline"
    if shutil.which("tclsh"):
        out = subprocess.run(["tclsh"], input=f"puts -nonewline {tcl_quote(value)}",
                             capture_output=True, text=True)  # fmt: skip
        assert out.stdout == value
    lua = shutil.which("lua5.3") or shutil.which("lua5.1") or shutil.which("lua")
    if lua:
        out = subprocess.run(
            [lua, "-e", f"io.write({lua_quote(value)})"], capture_output=True, text=True
        )
        assert out.stdout == value
    assert shutil.which("tclsh") or lua  # at least one interpreter really read it back


def test_depends_on_none_direct_all(tmp_path):
    from dataclasses import replace

    from hdmodules.publish.modulefiles import plan
    from hdmodules.spec.site import Stack
    from hdmodules.store.layout import Store

    profile = load_profile(DEMO / "default.yaml")
    resolved = resolve(profile)
    stack = Stack("s", replace(profile, toolchain={"compiler": "host"}))
    site = Site(tmp_path / "s.yaml", tmp_path, (stack,), {}, ModuleConfig(tmp_path, layout="flat"))
    expected = {
        "none": [],
        "direct": ["liba/1.0", "libb/1.0", "libcore/1.0"],
        "all": ["libcore/1.0", "liba/1.0", "libb/1.0"],
    }
    for mode, deps in expected.items():
        site = replace(site, modules=replace(site.modules, depends_on=mode))
        app = next(e for e in plan(site, [(stack, resolved)], Store(tmp_path)) if e.name == "app")
        assert app.depends == deps, mode
    liba = next(e for e in plan(site, [(stack, resolved)], Store(tmp_path)) if e.name == "liba")
    assert liba.depends == ["libcore/1.0"]
