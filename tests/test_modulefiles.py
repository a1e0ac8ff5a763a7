"""Module planning and rendering at the unit level (the real tools load them in test_modules)."""

from pathlib import Path

from hdmodules.publish.modulefiles import Entry, _package_env, render_tree
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
        node, prefix, ModuleConfig(tmp_path, root_variable="{NAME}_HOME")
    )
    assert ("APP_HOME", str(prefix)) in setenv
    assert prepend == [
        ("PATH", f"{prefix}/bin"),
        ("MANPATH", f"{prefix}/share/man"),
        ("PKG_CONFIG_PATH", f"{prefix}/lib/pkgconfig"),
        ("PKG_CONFIG_PATH", f"{prefix}/share/pkgconfig"),
        ("CMAKE_PREFIX_PATH", str(prefix)),
    ]
    _s, with_ld = _package_env(node, prefix, ModuleConfig(tmp_path, ld_library_path=True))
    assert ("LD_LIBRARY_PATH", f"{prefix}/lib") in with_ld


def test_explicit_defaults_go_to_modulerc(tmp_path):
    entries = [Entry("package", "app", v, ("Core",)) for v in ("1.0", "2.0")]
    files = render_tree(_site(tmp_path, defaults={"app": "1.0"}), entries)
    rc = files["lmod/Core/app/.modulerc"].decode()
    assert 'module-version "app/1.0" "default"' in rc and "2.0" not in rc
    assert files["tcl/Core/app/.modulerc"] == files["lmod/Core/app/.modulerc"]


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
