"""Lmod's spider cache, written inside the module tree (`modules: spider_cache: true`) and read
by the real Lmod 8.6 through the module path link, the way a site points Lmod at it (LMOD_RC
naming the tree's `lmod-cache/lmodrc.lua`, or its line in /etc/lmod/lmodrc.lua)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.conftest import need, run_hdmod, write_recipe
from tests.module_tools import available, ensure_installed, module_shell

EMPTY_BUILD = 'build: |\n  mkdir -p "$ARTIFACT/bin"\n'


@pytest.fixture(scope="module")
def externals(tmp_path_factory) -> Path:
    """Real Lmod, gcc-12 and Open MPI, and this machine's externals file (detected)."""
    try:
        ensure_installed()
    except RuntimeError as e:
        need(False, f"Lmod ({e})")
    need(available("lmod"), "Lmod")
    need(bool(shutil.which("gcc-12") and shutil.which("mpicc.openmpi")), "gcc-12 and Open MPI")
    ext = tmp_path_factory.mktemp("externals") / "externals.yaml"
    run_hdmod("externals", "detect", "--write", str(ext))
    return ext


def make_site(tmp: Path, externals: Path, modules: str, deep: tuple[str, ...] = ("deep",)) -> Path:
    """A small site: `tool` at gcc-12's level, the `deep` packages at Open MPI's (visible
    only after `module load gcc openmpi`), `modules` added under `modules:`."""
    pkgs = tmp / "pkgs"
    write_recipe(pkgs, "tool", 'version: "1.0"\n' + EMPTY_BUILD)
    for name in deep:
        write_recipe(pkgs, name, 'version: "2.0"\ntoolchain: [mpi]\n' + EMPTY_BUILD)
    site = tmp / "site.yaml"
    site.write_text(
        f"root: root\npackage_dirs: [pkgs]\nexternals_from: [{externals}]\nstacks:\n"
        "  base:\n    compiler: gcc-12\n    packages: [tool]\n"
        f"  par:\n    compiler: gcc-12\n    mpi: openmpi-4.1.4\n    packages: [{', '.join(deep)}]\n"
        f"modules:\n  externals: [gcc-12, openmpi-4.1.4]\n{modules}"
    )
    return site


def spider(modules: Path, cached: bool) -> list[str]:
    """`module -t spider` from Core in a clean shell: every module spider finds, with the
    tree's cache configured as an admin would (LMOD_RC) when `cached`."""
    rc = f"export LMOD_RC={modules}/lmod-cache/lmodrc.lua\n" if cached else ""
    run = module_shell("lmod", f"{rc}module use {modules}/lmod/Core\nmodule -t spider 2>&1")
    assert run.code == 0, run.out + run.err
    return [line for line in run.out.split() if not line.endswith("/")]


def test_spider_reads_the_cache_through_the_link_and_it_is_never_stale(externals, tmp_path):
    site = make_site(tmp_path, externals, "  spider_cache: true\n")
    root = tmp_path / "root"
    modules = root / "modules"
    run_hdmod("build", str(site))
    cache = modules / "lmod-cache"
    assert (cache / "spiderT.lua").stat().st_mtime_ns == (cache / "timestamp").stat().st_mtime_ns
    text = (cache / "spiderT.lua").read_text()
    assert f'["{modules}/lmod/MPI/gcc/12.2.0/openmpi/4.1.4"]' in text  # keyed through the link
    assert ".modules-trees" not in text  # never the staging folder, nor the tree's own path
    assert spider(modules, cached=True) == spider(modules, cached=False)
    assert {"tool/1.0", "deep/2.0"} <= set(spider(modules, cached=True))
    run = module_shell(
        "lmod",
        f"export LMOD_RC={cache}/lmodrc.lua\nmodule use {modules}/lmod/Core\n"
        "module spider deep/2.0 2>&1; module -D spider deep/2.0 2>&1 | grep -a 'cacheFile\\|valid'",
    )
    assert "gcc/12.2.0  openmpi/4.1.4" in run.out, run.out  # the hierarchy, from the cache
    assert f"cacheFile found: {cache}/spiderT.lua" in run.out and "valid: true" in run.out

    # a rebuild adds a module deep in the hierarchy: the new tree has its own cache
    make_site(tmp_path, externals, "  spider_cache: true\n", deep=("deep", "newer"))
    old_tree = modules.resolve()
    run_hdmod("build", str(site))
    assert modules.resolve() != old_tree
    assert "newer/2.0" in spider(modules, cached=True)

    # spider answers from the cache: a module file gone from the tree is still listed
    folder = modules / "lmod/MPI/gcc/12.2.0/openmpi/4.1.4/newer"
    folder.chmod(folder.stat().st_mode | stat.S_IWUSR)
    (folder / "2.0.lua").unlink()
    assert "newer/2.0" in spider(modules, cached=True)
    assert "newer/2.0" not in spider(modules, cached=False)

    # a rebuild drops `deep`: the tree (and so the cache) has a hidden stand-in for shells
    # that loaded it, which the cache's spider still lists; loading it says it was removed
    make_site(tmp_path, externals, "  spider_cache: true\n", deep=("newer",))
    run_hdmod("build", str(site))
    assert (modules / "lmod/MPI/gcc/12.2.0/openmpi/4.1.4/deep/2.0.lua").exists()
    rc = f"export LMOD_RC={modules}/lmod-cache/lmodrc.lua\n"
    load = "module load gcc/12.2.0 openmpi/4.1.4 deep/2.0"
    run = module_shell("lmod", f"{rc}module use {modules}/lmod/Core\n{load}")
    assert run.code != 0 and "was removed by a rebuild" in " ".join(run.err.split()), run.err
    assert "newer/2.0" in spider(modules, cached=True)


def test_off_by_default_and_bad_values_are_refused(externals, tmp_path):
    site = make_site(tmp_path, externals, "")
    run_hdmod("build", str(site))
    tree = (tmp_path / "root" / "modules").resolve()
    assert "lmod-cache" not in [p.name for p in tree.iterdir()]
    for setting, message in [
        ("  spider_cache: yes please\n", "'spider_cache' must be true or false"),
        ("  formats: [tcl]\n  spider_cache: true\n", "add lmod to formats"),
    ]:
        make_site(tmp_path, externals, setting)
        r = run_hdmod("build", str(site), check=False)
        lines = site.read_text().splitlines()
        line = next(i for i, text in enumerate(lines, 1) if "spider_cache:" in text)
        assert r.returncode != 0 and f"site.yaml:{line}: " in r.stderr, r.stderr
        assert message in r.stderr


def test_without_lmod_or_with_a_failing_spider_nothing_is_published(externals, tmp_path):
    site = make_site(tmp_path, externals, "  spider_cache: true\n")
    modules = tmp_path / "root" / "modules"
    run_hdmod("build", str(site))
    published = modules.resolve()
    make_site(tmp_path, externals, "  spider_cache: true\n", deep=("deep", "newer"))

    broken = tmp_path / "lmod-libexec"
    broken.mkdir()
    (broken / "spider").write_text(
        "#!/bin/sh\necho 'spiderT = {'\necho 'out of memory' >&2\nexit 1\n"
    )
    (broken / "spider").chmod(0o755)
    for lmod_dir, message in [
        ("/nonexistent", "needs Lmod's spider tool, and there is none (looked in $LMOD_DIR="),
        (str(broken), "failed (exit 1): out of memory; the module tree was not published"),
    ]:
        r = run_hdmod("build", str(site), check=False, env={**os.environ, "LMOD_DIR": lmod_dir})
        errors = [line for line in r.stderr.splitlines() if "error:" in line]
        assert r.returncode == 1 and len(errors) == 1 and message in errors[0], r.stderr
        assert "spider_cache" in errors[0]
        assert modules.resolve() == published  # the link keeps the previous tree
        assert not list(modules.parent.glob(".modules-trees/.staging-*"))  # removed

    run_hdmod("build", str(site))  # the next refresh publishes
    assert "newer/2.0" in spider(modules, cached=True)
