"""The no-op fast path of `hdmod build` and `hdmod modules refresh` (publish/sitememo.py,
issue 18 goal 4): on an unchanged site it publishes exactly what the full path publishes, and
every change (a recipe edit, a new package, a removed stack, an artifact gone from the store,
other options, a replaced tree that stops being kept) still goes the full way. The real
`hdmod`, the real compilers, the real Lmod and Environment Modules."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import demo_site, run_hdmod
from tests.module_tools import avail, module_shell

TOOLS = ("lmod", "tcl")
STACKS = (
    "  gcc12:\n    compiler: gcc-12\n    packages: [libcore, liba, libb, app]\n"
    "  gcc11:\n    compiler: gcc-11\n    packages: [libcore, liba]\n"
)
NO_OP = "nothing changed since the last build"


@pytest.fixture
def site(tools, tmp_path):
    """The demo site with two stacks, built once (the full path, which saves the memo)."""
    site_yaml = demo_site(tmp_path, STACKS)
    root = tmp_path / "root"
    first = build(site_yaml, root)
    assert NO_OP not in first.stderr
    return site_yaml, root


def build(site_yaml: Path, root: Path, *extra) -> subprocess.CompletedProcess:
    """`hdmod build SITE --root ROOT EXTRA...` (must succeed)."""
    return run_hdmod("build", str(site_yaml), "--root", str(root), *map(str, extra))


def refresh(site_yaml: Path, root: Path) -> subprocess.CompletedProcess:
    """`hdmod modules refresh SITE --root ROOT` (must succeed)."""
    return run_hdmod("modules", "refresh", str(site_yaml), "--root", str(root))


def forget(root: Path) -> None:
    """Remove the site's memos: the next command takes the full path."""
    for memo in (root / ".cache").glob("site-*.memo"):
        memo.unlink()


def tree(root: Path) -> str:
    return os.readlink(root / "modules")


def listing(root: Path, tool: str) -> list[str]:
    """`module -t avail` over Core and gcc 12's level: what users see."""
    base = root / "modules" / tool
    return sorted(avail(tool, [base / "Core", base / "Compiler" / "gcc" / "12.2.0"]))


def test_a_no_op_build_publishes_what_the_full_path_publishes(site):
    site_yaml, root = site
    before = tree(root)
    fast = build(site_yaml, root)
    assert NO_OP in fast.stderr
    assert "[1/" not in fast.stderr  # nothing resolved: no per-artifact lines
    seen = {tool: listing(root, tool) for tool in TOOLS}
    forget(root)
    full = build(site_yaml, root)
    assert NO_OP not in full.stderr and "[1/" in full.stderr
    assert fast.stdout == full.stdout  # "N modulefiles in ... (unchanged)", each stack's link
    assert "(unchanged)" in full.stdout
    assert tree(root) == before  # the same tree, byte for byte (its id is its content)
    for tool in TOOLS:
        assert listing(root, tool) == seen[tool]
        assert "app/1.0" in seen[tool] and "gcc/12.2.0" in seen[tool]
    again = refresh(site_yaml, root)
    assert again.stdout == full.stdout.splitlines(keepends=True)[0]


def test_a_recipe_edit_is_rebuilt_and_published(site):
    site_yaml, root = site
    recipe = site_yaml.parent / "pkgs" / "app.yaml"
    recipe.write_text(recipe.read_text().replace("greeting: Hello", "greeting: Ahoy"))
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr and "built in" in r.stderr
    core = root / "modules" / "lmod" / "Core"
    run = module_shell("lmod", f"module use {core}; module load gcc/12.2.0 app; app")
    assert run.code == 0, run.err
    assert "Ahoy" in run.out
    # the next build removes the copy of the recipes the old stack file named (kept for one
    # build: publishedstacks.publish), so it is no no-op; the one after it is
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr and "no stack has been published from it" in r.stderr
    assert NO_OP in build(site_yaml, root).stderr  # and the new state is remembered


def test_a_new_package_in_a_stack_appears_in_both_trees(site):
    site_yaml, root = site
    pkgs = site_yaml.parent / "pkgs"
    (pkgs / "extra.yaml").write_text(
        'version: "2.0"\nbuild: |\n  mkdir -p "$ARTIFACT/share" && echo x > "$ARTIFACT/share/x"\n'
    )
    text = site_yaml.read_text()
    site_yaml.write_text(
        text.replace("[libcore, liba, libb, app]", "[libcore, liba, libb, app, extra]")
    )
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr
    for tool in TOOLS:
        assert "extra/2.0" in listing(root, tool), tool


def test_a_removed_stack_is_retired(site):
    site_yaml, root = site
    assert (root / "stacks" / "gcc11.yaml").exists()
    text = site_yaml.read_text()
    site_yaml.write_text(
        text.replace("  gcc11:\n    compiler: gcc-11\n    packages: [libcore, liba]\n", "")
    )
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr
    assert not (root / "stacks" / "gcc11.yaml").exists()
    assert not (root / "profiles" / "gcc11").is_symlink()
    assert "stack gcc11" not in r.stdout


def test_an_artifact_gone_from_the_store_is_built_again(site):
    site_yaml, root = site
    app = next((root / "bld" / "app").iterdir())
    writable(app)
    shutil.rmtree(app)
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr and "built in" in r.stderr
    assert (app / ".hit" / "manifest.json").exists()


def writable(folder: Path) -> None:
    """Make a read-only artifact removable."""
    for dirpath, _dirs, _files in os.walk(folder):
        os.chmod(dirpath, 0o755)


def test_other_options_take_the_full_path(site, tmp_path):
    site_yaml, root = site
    elsewhere = tmp_path / "other-modules"
    r = build(site_yaml, root, "--modules", elsewhere)
    assert NO_OP not in r.stderr
    assert (elsewhere / "lmod" / "Core").is_dir() and (elsewhere / "tcl" / "Core").is_dir()
    assert NO_OP in build(site_yaml, root, "--modules", elsewhere).stderr
    default = build(site_yaml, root)  # the other one's tree is not this one's
    assert f"modulefiles in {root / 'modules'} (unchanged)" in default.stdout


def test_a_tree_that_stops_being_kept_takes_its_ghosts_along(site):
    """A removed package leaves a ghost in the new tree while the tree that had it is kept
    (`keep_days`); once that tree is older than that, a refresh writes a tree without the
    ghost, though no input changed: the memo is not trusted past that moment."""
    site_yaml, root = site
    text = site_yaml.read_text()
    site_yaml.write_text(text.replace("[libcore, liba, libb, app]", "[libcore, liba, libb]"))
    build(site_yaml, root)
    ghost = root / "modules" / "lmod" / "Compiler" / "gcc" / "12.2.0" / "app" / "1.0.lua"
    assert ghost.exists()  # hidden, for shells that loaded app from the earlier tree
    assert "(unchanged)" in refresh(site_yaml, root).stdout
    current = tree(root)
    old = time.time() - 31 * 86400
    for kept in Path(current).parent.iterdir():
        if not kept.name.startswith(".") and str(kept) != current:
            os.utime(kept, (old, old))
    r = refresh(site_yaml, root)
    assert "(updated)" in r.stdout
    assert not ghost.exists()
    assert "app/1.0" not in listing(root, "lmod")


def test_a_tree_written_with_the_resolve_cache_is_the_one_written_without(site, tmp_path):
    """The site's resolution keeps loaded recipes and source hashes in ROOT/.cache
    (spec/resolvecache.py): a module tree written from scratch with that cache warm is, byte
    for byte and mode for mode, the tree written without it; and Lmod reads it."""
    site_yaml, root = site
    settle(site_yaml.parent)  # (the cache keeps only files older than a clock tick or two)
    cache = root / ".cache" / "resolve.pickle"
    cache.unlink(missing_ok=True)
    out = tmp_path / "fresh"
    args = ("modules", "refresh", str(site_yaml), "--root", str(root), "--modules", str(out))
    run_hdmod(*args)
    assert cache.is_file()  # the cold run filled it
    cold, cold_tree = contents(out), os.readlink(out)
    writable(out.parent / f".{out.name}-trees")
    shutil.rmtree(out.parent / f".{out.name}-trees")
    out.unlink()
    forget(root)
    filled = cache.stat().st_mtime_ns
    run_hdmod(*args)
    assert cache.stat().st_mtime_ns == filled  # warm: everything came from the cache
    assert os.readlink(out) == cold_tree  # the id is the content's
    assert contents(out) == cold
    assert "app/1.0" in avail("lmod", [out / "lmod" / "Compiler" / "gcc" / "12.2.0"])


def settle(folder: Path) -> None:
    """Wait until every file below `folder` was last changed over 2.1 s ago."""
    newest = max(max(p.lstat().st_mtime, p.lstat().st_ctime) for p in folder.rglob("*"))
    time.sleep(max(0.0, newest + 2.1 - time.time()))


def contents(tree: Path) -> dict[str, tuple[int, bytes]]:
    """Every file and folder below the tree link `tree`: relative path -> (mode, content)."""
    out = {}
    for path in sorted(tree.resolve().rglob("*")):
        data = b"" if path.is_dir() else path.read_bytes()
        out[str(path.relative_to(tree.resolve()))] = (path.lstat().st_mode, data)
    return out


def test_a_recipe_edited_while_the_site_builds_is_built_by_the_next_build(tools, tmp_path):
    """An admin fixes a recipe while a long `hdmod build` runs: the next `hdmod build`
    builds the fixed recipe, never answers "nothing changed" from stamps taken after the
    edit (the memo must hold what resolving saw, as the profile memo does)."""
    from tests.conftest import wait_for, write_recipe

    site_yaml = demo_site(tmp_path, "  gcc12:\n    compiler: gcc-12\n    packages: [slow]\n")
    pkgs, go = site_yaml.parent / "pkgs", tmp_path / "go"
    slow = f"""
        version: "1"
        build: |
          echo $$ > {tmp_path}/pid
          while [ ! -e {go} ]; do sleep 0.1; done
          mkdir -p "$ARTIFACT/bin"
          echo GREETING > "$ARTIFACT/bin/said"
        """
    write_recipe(pkgs, "slow", slow.replace("GREETING", "typo"))
    root = tmp_path / "root"
    hdmod = subprocess.Popen(
        [sys.executable, "-m", "hdmodules.cli.hdmod", "build", str(site_yaml), "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(tmp_path / "pid", 120)
    write_recipe(pkgs, "slow", slow.replace("GREETING", "fixed"))
    go.touch()
    _out, err = hdmod.communicate(timeout=300)
    # the published copy of the recipes is taken after the edit: that build may refuse it
    assert hdmod.returncode == 0 or "resolves slow differently" in err, err
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr, r.stderr
    said = list(root.glob("bld/slow/*/bin/said"))
    assert any(p.read_text() == "fixed\n" for p in said), said


def test_the_site_cache_is_the_admins_only(site):
    """ROOT/.cache holds the memos (the admin's paths and recipe names) and the resolve cache
    (unpickled by hdmod): no user may read it (home.cache_folder), and a root whose cache
    folder was left open (made before that rule) is closed again by the next full run."""
    site_yaml, root = site
    cache = root / ".cache"
    assert list(cache.glob("site-*.memo"))
    assert cache.stat().st_mode & 0o777 == 0o700
    cache.chmod(0o755)
    forget(root)
    refresh(site_yaml, root)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert list(cache.glob("site-*.memo"))


def test_a_site_yaml_edited_while_hdmod_resolves_is_built_by_the_next_build(tools, tmp_path):
    """site.yaml edited while `hdmod build` resolves (held here in its compiler's
    `--version`, which checks the pin): the next `hdmod build` builds the edit, never answers
    "nothing changed" from a stamp taken after it."""
    from tests.conftest import wait_for, write_recipe
    from tests.test_noop import EXTRA, HOLDING_CC

    cc = tmp_path / "holdcc"
    cc.write_text(HOLDING_CC.format(dir=tmp_path))
    cc.chmod(0o755)
    for name in ("one", "extra"):
        write_recipe(tmp_path / "pkgs", name, EXTRA.replace("extra", name))
    site_yaml = tmp_path / "site.yaml"
    site_yaml.write_text(
        "root: root\npackage_dirs: [pkgs]\n"
        f'externals:\n  hold: {{kind: compiler, version: "1.0", commands: {{cc: {cc}}}}}\n'
        "stacks:\n  s:\n    compiler: hold\n    packages: [one]\n"
        "modules:\n  formats: [lmod, tcl]\n  externals: [hold]\n"
    )
    root = tmp_path / "root"
    build(site_yaml, root, "--repin")
    build(site_yaml, root)
    assert NO_OP in build(site_yaml, root).stderr
    os.utime(site_yaml)  # the full path next
    (tmp_path / "hold").touch()
    args = [sys.executable, "-m", "hdmodules.cli.hdmod", "build", str(site_yaml), "--root", root]
    hdmod = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "asked", 120)  # resolving: site.yaml was read
    site_yaml.write_text(site_yaml.read_text().replace("[one]", "[one, extra]"))
    (tmp_path / "go").touch()
    _out, err = hdmod.communicate(timeout=300)
    assert hdmod.returncode == 0, err
    (tmp_path / "hold").unlink()
    r = build(site_yaml, root)
    assert NO_OP not in r.stderr, r.stderr
    assert (root / "profiles" / "s" / "bin" / "extra").exists()
