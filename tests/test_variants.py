"""Variants and versions (issue 15, items 1 and 2), on small packages made here.

- One recipe, `vfft`, with an MPI variant (`parameters: {mpi: auto}`, `when: +mpi:
  toolchain: [mpi]`): serial in a stack without an MPI, built with Open MPI in a stack with
  one, both under the one module name `vfft/1.0`: at the compiler's level and at the MPI's.
  `module load gcc vfft` gives the serial build, `module load gcc openmpi vfft` the MPI one,
  in Lmod and in Environment Modules; the variant is in the build spec and in `whatis`.
- One recipe, `vlib`, offering two versions (`versions:`), each chosen by a stack: both are
  modules, the newest is the default unless the site's `modules: defaults:` names another; a
  version no recipe offers is refused naming the ones that exist.
- One recipe, `vcalc` (build_system: make), whose `+mpi` block adds `make_args` with
  `{MPICC}` and a define, and whose `~mpi` block adds another: built in a profile with and
  without Open MPI, the two programs, scripts and ids differ as the arguments say. Version
  conditions (`@1.10:1.12`) as Spack reads them, and every contradiction refused at load.
  (Patches under a version condition: tests/test_patches.py.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from hdmodules.errors import ConfigError
from hdmodules.publish.modulefiles import Entry
from hdmodules.publish.moduletree import render_tree
from hdmodules.spec.recipes import load_recipe
from hdmodules.spec.site import ModuleConfig, Site
from hdmodules.spec.variants import Term, When, describe, effects, parse_condition
from hdmodules.spec.versions import Range, by_newest, newest
from tests.conftest import (
    demo_site,
    need,
    run_clean,
    run_hdmod,
    run_hit,
    write_profile,
    write_recipe,
)
from tests.module_tools import module_shell

TOOLS = ("lmod", "tcl")

VFFT_C = r"""
#include <stdio.h>
#ifdef WITH_MPI
#include <mpi.h>
#endif
int main(void) {
#ifdef WITH_MPI
    int major = 0, minor = 0;
    MPI_Get_version(&major, &minor); /* allowed before MPI_Init */
    printf("vfft mpi %d.%d\n", major, minor);
#else
    printf("vfft serial\n");
#endif
    return 0;
}
"""

VFFT = """
version: "1.0"
description: A tiny FFT stand-in, serial
sources:
  - path: ../src/vfft
parameters:
  mpi: auto   # built with the stack's MPI when it has one
when:
  +mpi:
    toolchain: [mpi]
    description: A tiny FFT stand-in, with the stack's MPI
    environment: {VFFT_PARALLEL: "yes"}
build: |
  if [ "$MPI" = 1 ]; then cc=("$MPICC" -DWITH_MPI); kind=mpi; else cc=("$CC"); kind=serial; fi
  "${cc[@]}" $CPPFLAGS -O2 -o vfft vfft.c $LDFLAGS
  install -Dm755 vfft "$ARTIFACT/bin/vfft"
  mkdir -p "$ARTIFACT/share/vfft"
  echo "$kind" > "$ARTIFACT/share/vfft/kind"
"""

VLIB = """
version: "2.0"       # the default version
description: A library offered in two versions
versions:
  "2.0": {path: ../src/vlib-2.0}
  "1.0":
    - path: ../src/vlib-1.0
build: |
  install -Dm755 vlib-version "$ARTIFACT/bin/vlib-version"
"""


def add_packages(pkgs: Path) -> None:
    """vfft and vlib (two versions) beside the recipes in `pkgs`, sources in ../src."""
    src = pkgs.parent / "src"
    (src / "vfft").mkdir(parents=True, exist_ok=True)
    (src / "vfft" / "vfft.c").write_text(VFFT_C)
    for v in ("1.0", "2.0"):
        (src / f"vlib-{v}").mkdir(parents=True, exist_ok=True)
        (src / f"vlib-{v}" / "vlib-version").write_text(f"#!/bin/sh\necho vlib {v}\n")
    write_recipe(pkgs, "vfft", VFFT)
    write_recipe(pkgs, "vlib", VLIB)


# --- the rules, at the unit level ----------------------------------------------------------


def test_conditions_are_written_as_spack_writes_them():
    assert parse_condition("+mpi") == (Term("mpi", True),)
    assert parse_condition("~mpi") == (Term("mpi", False),)
    both = (Term("mpi", True), Term("shared", False))
    assert parse_condition("+mpi ~shared") == parse_condition("+mpi~shared") == both
    assert parse_condition("precision=single") == (Term("precision", "single"),)
    for bad in ("mpi", "+", "+mpi !x", "", "a=b=c", "+1x"):
        assert parse_condition(bad) is None, bad


def test_version_conditions_are_written_as_spack_writes_them():
    assert parse_condition("@1.10") == (Range("1.10", "1.10"),)
    assert parse_condition("@1.10:1.12") == (Range("1.10", "1.12"),)
    assert parse_condition("@1.12:") == (Range("1.12", None),)
    assert parse_condition("@:1.10") == (Range(None, "1.10"),)
    mixed = (Term("mpi", True), Range("1.14", None), Term("shared", False))
    assert parse_condition("+mpi @1.14: ~shared") == parse_condition("+mpi@1.14:~shared") == mixed
    for bad in ("@", "@:", "@1.0:2.0:3.0", "@.1", "@1,2", "1.0"):
        assert parse_condition(bad) is None, bad
    shown = [str(r) for r in (Range("1.10", "1.10"), Range("1", "2"), Range(None, "2"))]
    assert shown == ["@1.10", "@1:2", "@:2"]


@pytest.mark.parametrize(
    "condition, inside, outside",
    [  # Spack's examples (package.py `when="@..."`): the upper bound takes its extensions
        ("@1.10", ["1.10", "1.10.8", "1.10.0.1"], ["1.1", "1.100", "1.9.9", "1.11", "10"]),
        ("@1.10.8", ["1.10.8", "1.10.8.2"], ["1.10", "1.10.9", "1.10.80"]),
        ("@1.10:1.12", ["1.10", "1.11.5", "1.12", "1.12.3"], ["1.9.9", "1.13", "1.100"]),
        ("@1.12:", ["1.12", "1.12.0", "1.13", "2.0", "10"], ["1.11.99", "1.1", "1.9"]),
        ("@:1.10", ["0.9", "1.9", "1.10", "1.10.8"], ["1.11", "1.100", "2"]),
        # unlike Spack, version_key puts 2.0rc1 after 2.0 (it extends it): README "Versions"
        ("@2.0rc1:2.0", ["2.0rc1", "2.0rc2"], ["2.0", "1.9"]),
    ],
)
def test_version_ranges_as_spack_reads_them(condition, inside, outside):
    (r,) = parse_condition(condition)
    assert [v for v in inside if v not in r] == []
    assert [v for v in outside if v in r] == []


def test_an_empty_version_range():
    assert Range("2", "1").empty and Range("1.11", "1.10").empty
    assert not Range("1.10.2", "1.10").empty  # 1.10.2 and later 1.10.x
    assert not Range("1", "2").empty and not Range(None, "1").empty and not Range("1", None).empty


def test_versions_sort_as_release_numbers():
    assert newest(["1.10.8", "1.14.3", "1.9.2"]) == "1.14.3"
    assert by_newest(["1.0", "10.0", "2.0", "2.0.1"]) == ["10.0", "2.0.1", "2.0", "1.0"]


def test_the_variant_as_modules_show_it():
    conditions = ("+mpi", "precision=single", "+mpi @1.14:", "@:1.10")
    blocks = tuple(When(c, parse_condition(c)) for c in conditions)
    assert describe(blocks, {"mpi": True, "precision": "double"}) == "mpi=on precision=double"
    assert describe(blocks, {"mpi": False, "precision": "single"}) == "mpi=off precision=single"
    assert describe((), {"simd": True}) == ""
    assert describe((When("@1", parse_condition("@1")),), {}) == ""  # the version is not shown


BLOCKS = """\
version: "1.14"
versions: {"1.14": {path: .}, "1.10.8": {path: .}}
parameters: {mpi: true, shared: true}
build_system: autotools
configure_args: [--own]
when:
  +mpi:
    toolchain: [mpi]
    configure_args: ["CC={MPICC}", "--mpi={MPI_DIR}"]
  +mpi ~shared:
    dependencies: [zlib]
    configure_args: ["--static-mpi={MPICXX}", "--z={ZLIB_DIR}"]
  "@1.14:":
    make_args: [V=new]
    patches: [a.patch]
  "+mpi @:1.10":
    patches: [{path: b.patch, strip: 0}]
    configure_args: [--old-mpi]
"""


def test_what_the_blocks_that_hold_add_in_block_order(tmp_path):
    """Argument lists after the recipe's own, in block order; patches in block order; a
    block may use the placeholders of what it adds (`{MPICC}` with `toolchain: [mpi]`, a
    dependency's `{ZLIB_DIR}`) and of the blocks its condition implies (`+mpi ~shared` is
    under `+mpi`), though the recipe itself has no MPI."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.patch").write_text(f"--- x\n+++ x\n@@ -0,0 +1 @@\n+{name}\n")
    recipe = load_recipe(write_recipe(tmp_path, "p", BLOCKS))
    assert recipe.build_system is not None  # its own list stays; resolve.py appends
    assert recipe.build_system.args["configure_args"] == ("--own",)
    new = effects(recipe.when, {"mpi": True, "shared": False}, "1.14.2")
    assert new.args == {
        "configure_args": (
            "CC={MPICC}",
            "--mpi={MPI_DIR}",
            "--static-mpi={MPICXX}",
            "--z={ZLIB_DIR}",
        ),
        "make_args": ("V=new",),
    }
    assert [p.path.name for p in new.patches] == ["a.patch"] and new.dependencies == ("zlib",)
    old = effects(recipe.when, {"mpi": True, "shared": True}, "1.10.8")
    assert old.args == {"configure_args": ("CC={MPICC}", "--mpi={MPI_DIR}", "--old-mpi")}
    assert [(p.path.name, p.strip) for p in old.patches] == [("b.patch", 0)]
    assert effects(recipe.when, {"mpi": False, "shared": False}, "1.10.8").args == {}


def test_a_top_level_mpi_placeholder_needs_the_recipes_toolchain(tmp_path):
    text = BLOCKS.replace("configure_args: [--own]", 'configure_args: ["CC={MPICC}"]')
    with pytest.raises(ConfigError) as e:
        load_recipe(write_recipe(tmp_path, "p", text))
    assert e.value.line == 5 and "unknown placeholder {MPICC} (this recipe's:" in e.value.message
    assert "the MPI's come with `toolchain: [mpi]`" in e.value.message


def test_an_unquoted_version_condition_says_to_quote_it(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_recipe(write_recipe(tmp_path, "p", 'version: "1"\nwhen:\n  @1: {}\n'))
    assert e.value.line == 3
    assert 'YAML reserves @, so quote a key that starts with it ("@1.10":)' in e.value.message


def test_a_folder_of_versions_defaults_to_the_newest(tmp_path):
    """Without the admin's choice the rc file names the newest (1.10 after 1.9), in both
    formats; with it, the admin's; one version alone needs no rc file."""
    entries = [Entry("package", "vlib", v, ("Core",)) for v in ("1.9", "1.10", "1.2")]
    site = Site(tmp_path / "site.yaml", tmp_path, (), {}, ModuleConfig(tmp_path / "m"))
    files = render_tree(site, entries)
    assert 'module-version "vlib/1.10" "default"' in files["tcl/Core/vlib/.modulerc"].decode()
    assert (
        'module_version("vlib/1.10", "default")' in files["lmod/Core/vlib/.modulerc.lua"].decode()
    )
    admin = Site(
        site.file, tmp_path, (), {}, ModuleConfig(tmp_path / "m", defaults={"vlib": "1.2"})
    )
    assert '"vlib/1.2" "default"' in render_tree(admin, entries)["tcl/Core/vlib/.modulerc"].decode()
    alone = render_tree(site, entries[:1])
    assert "tcl/Core/vlib/.modulerc" not in alone


# --- a user's profile: hit ------------------------------------------------------------------


def _one_error(r, *fragments):
    assert r.code == 1, r.both
    lines = [line for line in r.err.splitlines() if line.startswith("hit: error:")]
    assert len(lines) == 1, r.err
    for f in fragments:
        assert f in r.err, r.err


def _profile(tmp_path: Path, packages: str = "[vfft, vlib]", extra: str = "") -> Path:
    add_packages(tmp_path / "pkgs")
    return write_profile(
        tmp_path / "default.yaml", f"package_dirs: [pkgs]\n{extra}packages: {packages}\n"
    )


def _spec(hit, profile: Path, package: str) -> dict:
    return json.loads(hit("show", "buildspec", package, "-p", str(profile)).out)


def test_without_an_mpi_the_auto_variant_is_serial(hit, tmp_path):
    """A profile without an MPI: `mpi: auto` is false, in the build spec and the build's
    environment (MPI=0); the `+mpi` block adds nothing (no MPI toolchain, no variable)."""
    profile = _profile(tmp_path)
    spec = _spec(hit, profile, "vfft")
    assert spec["parameters"] == {"mpi": False}
    assert set(spec["toolchain"]) == {"compiler"}
    script = hit("show", "script", "vfft", "-p", str(profile)).out
    assert "export MPI=0" in script
    hit("build", str(profile))
    prof = tmp_path / "default"
    assert (prof / "share" / "vfft" / "kind").read_text() == "serial\n"
    # forced on without an MPI: one error that names the variant
    forced = _profile(tmp_path, "{vfft: {parameters: {mpi: true}}}")
    r = hit("build", str(forced), check=False)
    _one_error(
        r,
        "default.yaml:2: package vfft needs an external mpi, but the profile",
        "`when: +mpi` asks for it, and mpi is on: set mpi: false",
    )
    # a variant is true or false
    text = _profile(tmp_path, "{vfft: {parameters: {mpi: maybe}}}")
    _one_error(hit("build", str(text), check=False), "default.yaml:2: package vfft: parameter")


VCALC_C = r"""
#include <stdio.h>
#ifdef WITH_MPI
#include <mpi.h>
#endif
int main(void) {
#ifdef WITH_MPI
    int major = 0, minor = 0;
    MPI_Get_version(&major, &minor); /* allowed before MPI_Init */
    printf("vcalc %s mpi %d.%d\n", MODE, major, minor);
#else
    printf("vcalc %s\n", MODE);
#endif
    return 0;
}
"""
VCALC_MAKEFILE = """\
PREFIX ?= /usr/local
MODE ?= unset
vcalc: vcalc.c
\t$(CC) $(CPPFLAGS) $(DEFS) -DMODE='"$(MODE)"' -o $@ vcalc.c $(LDFLAGS)
install: vcalc
\tinstall -Dm755 vcalc $(PREFIX)/bin/vcalc
"""
VCALC = """\
version: "1.0"
sources: [{path: ../src/vcalc}]
parameters: {mpi: auto}
build_system: make
make_args: [MODE=plain]        # the blocks' come after: make's last MODE= wins
when:
  +mpi:
    toolchain: [mpi]
    make_args: ["CC={MPICC}", DEFS=-DWITH_MPI, MODE=with-mpi]
  ~mpi:
    make_args: [MODE=serial]
"""


def test_a_variant_adds_arguments_to_the_build_system(hit, tmp_path):
    """`vcalc` (build_system: make): the `+mpi` block adds `CC={MPICC}` and a define, the
    `~mpi` block another MODE, both after the recipe's own make_args. Built without an MPI
    and with Open MPI: the programs say which arguments they were built with, `hit show
    script` shows the MPI's arguments in the MPI variant only, and the ids differ."""
    need(bool(shutil.which("mpicc.openmpi")), "Open MPI")
    src = tmp_path / "src" / "vcalc"
    src.mkdir(parents=True)
    (src / "vcalc.c").write_text(VCALC_C)
    (src / "Makefile").write_text(VCALC_MAKEFILE)
    write_recipe(tmp_path / "pkgs", "vcalc", VCALC)
    run_hdmod("externals", "detect", "--write", str(tmp_path / "externals.yaml"))
    serial = write_profile(tmp_path / "serial.yaml", "package_dirs: [pkgs]\npackages: [vcalc]\n")
    mpi = write_profile(
        tmp_path / "mpi.yaml",
        "extends: [externals.yaml]\npackage_dirs: [pkgs]\n"
        "toolchain: {mpi: openmpi-4.1.4}\npackages: [vcalc]\n",
    )
    scripts = {p: hit("show", "script", "vcalc", "-p", str(p)).out for p in (serial, mpi)}
    assert 'PREFIX="$ARTIFACT" MODE=plain MODE=serial\n' in scripts[serial]
    assert "MPICC" not in scripts[serial] and "WITH_MPI" not in scripts[serial]
    mpi_args = 'MODE=plain CC="${MPICC}" DEFS=-DWITH_MPI MODE=with-mpi\n'
    assert mpi_args in scripts[mpi] and "MODE=serial" not in scripts[mpi]
    specs = {p: _spec(hit, p, "vcalc") for p in (serial, mpi)}
    assert specs[serial]["id"] != specs[mpi]["id"]
    assert specs[serial]["build"] != specs[mpi]["build"] and "MPICC" in specs[mpi]["build"]
    for profile in (serial, mpi):
        hit("build", str(profile))
    out = {p: run_clean([str(tmp_path / p.stem / "bin" / "vcalc")]) for p in (serial, mpi)}
    assert out[serial].stdout == "vcalc serial\n", out[serial].stderr
    assert re.fullmatch(r"vcalc with-mpi mpi \d\.\d\n", out[mpi].stdout), out[mpi].stderr
    # an MPI external without a Fortran wrapper: `FC={MPIFC}` would reach make as `FC=`
    doc = yaml.safe_load((tmp_path / "externals.yaml").read_text())
    for table in ("commands", "pin"):
        del doc["externals"]["openmpi-4.1.4"][table]["mpifc"]
    (tmp_path / "externals.yaml").write_text(yaml.safe_dump(doc))
    recipe = tmp_path / "pkgs" / "vcalc.yaml"
    recipe.write_text(recipe.read_text().replace('"CC={MPICC}",', '"CC={MPICC}", "FC={MPIFC}",'))
    r = hit("build", str(mpi), check=False)
    line = VCALC.splitlines().index("build_system: make") + 1
    _one_error(
        r,
        f"vcalc.yaml:{line}: make_args: argument 'FC={{MPIFC}}' names {{MPIFC}}, but the mpi "
        "external openmpi-4.1.4 has no mpifc command",
    )


def test_a_version_condition_can_ask_for_a_toolchain(hit, tmp_path):
    """`when: "@2:": {toolchain: [mpi]}`: 2.0 needs an MPI (the error names the block and
    the version), 1.0 does not."""
    write_recipe(tmp_path / "pkgs", "vt", """\
        version: "2.0"
        versions: {"2.0": {path: .}, "1.0": {path: .}}
        when:
          "@2:": {toolchain: [mpi]}
        build: "true"
        """)  # fmt: skip
    new = write_profile(tmp_path / "new.yaml", "package_dirs: [pkgs]\npackages: [vt]\n")
    r = hit("build", str(new), check=False)
    _one_error(r, "vt.yaml:4: package vt needs an external mpi", "@2:` asks for it at version 2.0")
    old = 'package_dirs: [pkgs]\npackages: {vt: {version: "1.0"}}\n'
    spec = _spec(hit, write_profile(tmp_path / "old.yaml", old), "vt")
    assert spec["version"] == "1.0" and set(spec["toolchain"]) == {"compiler"}


def test_a_version_is_chosen_per_profile_and_hashed_exactly(hit, tmp_path):
    """`packages: {vlib: {version: "1.0"}}` builds 1.0 from 1.0's source only; without it the
    recipe's default (2.0). Both hashes differ in version and source, nothing else."""
    default = _spec(hit, _profile(tmp_path, "[vlib]"), "vlib")
    old = _spec(hit, _profile(tmp_path, '{vlib: {version: "1.0"}}'), "vlib")
    assert default["version"] == "2.0" and old["version"] == "1.0"
    assert default["sources"] != old["sources"] and len(old["sources"]) == 1
    same = {k: v for k, v in old.items() if k not in ("id", "version", "sources")}
    assert same == {k: v for k, v in default.items() if k not in ("id", "version", "sources")}
    hit("build", str(tmp_path / "default.yaml"))
    assert (tmp_path / "default" / "bin" / "vlib-version").read_text().endswith("vlib 1.0\n")


@pytest.mark.parametrize(
    "packages, fragments",
    [
        ('{vlib: {version: "3.0"}}',
         ["default.yaml:2: package vlib has no version '3.0'", "offers 2.0, 1.0"]),
        ('{vfft: {version: "2.0"}}',
         ["default.yaml:2: package vfft has no version '2.0'", "offers 1.0"]),
        ("{vlib: {version: 1.10}}", ["default.yaml:2: write the version in quotes"]),
        ('{vlib: {version: "../x"}}', ["default.yaml:2: vlib: version '../x' may hold"]),
    ],
    ids=["unknown", "single-version-recipe", "float", "bad-word"],
)  # fmt: skip
def test_a_version_no_recipe_offers_is_refused(hit, tmp_path, packages, fragments):
    _one_error(hit("build", str(_profile(tmp_path, packages)), check=False), *fragments)


BAD_RECIPES = {
    "condition": ("parameters: {mpi: true}\nwhen:\n  mpi: {toolchain: [mpi]}\n", 5,
                  "when mpi: a condition is +name, ~name, name=value or @version"),
    "unknown-parameter": ("parameters: {mpi: true}\nwhen:\n  +mpii: {}\n", 5,
                          "when +mpii: no parameter 'mpii' (parameters: mpi)"),
    "not-a-flag": ("parameters: {precision: double}\nwhen:\n  +precision: {}\n", 5,
                   "when +precision: +precision/~precision test true or false"),
    "flag-by-value": ("parameters: {mpi: true}\nwhen:\n  mpi=on: {}\n", 5,
                      "when mpi=on: mpi is true or false: test it with +mpi or ~mpi"),
    "unknown-key": ("parameters: {mpi: true}\nwhen:\n  +mpi: {build: x}\n", 5,
                    "unknown key 'build' in when +mpi"),
    "auto-without-toolchain": ("parameters:\n  mpi: auto\nwhen:\n  +mpi: {}\n", 4,
                               "parameter 'mpi' is auto"),
    "bad-dependency": ("parameters: {mpi: true}\nwhen:\n  +mpi: {dependencies: [../x]}\n", 5,
                       "dependency '../x' may hold"),
    "default-not-offered": ('versions:\n  "2.0": {path: .}\n', 1,
                            "the default version 1 is not under versions: (2.0)"),
    "versions-float": ("versions:\n  2.0: {path: .}\n", 4, "write the version in quotes"),
    "versions-shape": ('versions:\n  "1": [1]\n', 4,
                       "versions: 1: give its source (url:, sha256:)"),
    # what a block adds: argument lists and patches
    "block-placeholder": ("build_system: make\nparameters: {mpi: true}\nwhen:\n  +mpi:\n"
                          "    make_args: ['CC={MPICC}']\n", 7,
                          "make_args: argument 'CC={MPICC}': unknown placeholder {MPICC} "
                          "(under when +mpi: {ARTIFACT}, {CC}"),
    "block-args-not-taken": ("build_system: make\nparameters: {mpi: true}\nwhen:\n"
                             "  +mpi: {configure_args: [--with-mpi]}\n", 6,
                             "build_system make takes no configure_args (it takes make_args, "
                             "install_args)"),
    "block-args-without-system": ("parameters: {mpi: true}\nwhen:\n"
                                  "  +mpi: {configure_args: [--with-mpi]}\n", 5,
                                  "'configure_args' goes with 'build_system:' (autotools, "),
    "block-args-not-strings": ("build_system: make\nparameters: {mpi: true}\nwhen:\n"
                               "  +mpi: {make_args: [1]}\n", 6,
                               "'make_args' must be a list of strings"),
    "block-patch-missing": ("parameters: {mpi: true}\nwhen:\n  +mpi: {patches: [no.patch]}\n",
                            5, "patch file no.patch is not there"),
    # contradictions
    "both-ways": ("parameters: {mpi: true}\nwhen:\n  +mpi ~mpi: {}\n", 5,
                  "when +mpi ~mpi: never holds (+mpi and ~mpi: mpi has one value)"),
    "two-values": ("parameters: {a: x}\nwhen:\n  a=1 a=2: {}\n", 5,
                   "when a=1 a=2: never holds (a=1 and a=2: a has one value)"),
    "repeats": ("parameters: {mpi: true}\nwhen:\n  +mpi ~x +mpi: {}\n", 5,
                "when +mpi ~x +mpi: no parameter 'x'"),
    "repeats-term": ("parameters: {mpi: true}\nwhen:\n  +mpi +mpi: {}\n", 5,
                     "when +mpi +mpi: +mpi repeats (write it once)"),
    "two-ranges": ('when:\n  "@1: @:2": {}\n', 4,
                   "when @1: @:2: gives two version ranges (@1: and @:2): write one, @LOW:HIGH"),
    "range-repeats": ('when:\n  "@1 @1": {}\n', 4, "when @1 @1: @1 repeats"),
    "env-managed": ("environment: {PATH: /evil}\n", 3,
                    "module variable PATH is the module tools' own: a module setting it would "
                    "replace the user's value"),
    "block-env-managed": ("parameters: {mpi: true}\nwhen:\n  +mpi:\n    environment:\n"
                          "      LD_PRELOAD: /x.so\n", 7, "module variable LD_PRELOAD is the"),
    "auto-off-asks-for-it": ("parameters: {mpi: auto}\nwhen:\n  +mpi: {toolchain: [mpi]}\n"
                             "  ~mpi: {toolchain: [mpi]}\n", 6,
                             "when ~mpi: asks for toolchain mpi, but mpi is auto, which is off "
                             "exactly when the stack has no mpi"),
    "empty-range": ('when:\n  "@2:1": {}\n', 4, "when @2:1: never holds (@2:1: 2 comes after 1)"),
    "bad-kind": ("toolchain:\n  - mpi\n  - ../x\n", 5, "toolchain kind '../x' may hold"),
    "kind-twice": ("toolchain:\n  - mpi\n  - mpi\n", 5, "toolchain kind 'mpi' is listed twice"),
    "block-unknown-kind": ("parameters: {mpi: true}\nwhen:\n  +mpi:\n    toolchain:\n"
                           "      - mpi\n      - 'a b'\n", 8,
                           "toolchain kind 'a b' may hold"),
    "block-dependency-twice": ("parameters: {mpi: true}\nwhen:\n  +mpi:\n    dependencies:\n"
                               "      - a\n      - a\n", 8, "dependency 'a' is listed twice"),
    "block-bad-dependency-item": ("parameters: {mpi: true}\nwhen:\n  +mpi:\n"
                                  "    dependencies:\n      - a\n      - ../x\n", 8,
                                  "dependency '../x' may hold"),
    "block-repeats-a-dependency": ("dependencies: [a]\nparameters: {x: true}\nwhen:\n"
                                   "  +x:\n    dependencies: [a]\n", 7,
                                   "when +x: dependency 'a' is the recipe's own already"),
    "block-repeats-a-patch": ("patches: [p.patch]\nparameters: {x: true}\nwhen:\n"
                              "  +x:\n    patches:\n      - p.patch\n", 8,
                              "when +x: patch 'p.patch' is the recipe's own already"),
    "two-blocks-one-patch": ("parameters: {x: true, y: true}\nwhen:\n  +x: {patches: [p.patch]}\n"
                             "  +y:\n    patches:\n      - p.patch\n", 8,
                             "patch 'p.patch' is added by two when: blocks that hold"),
    "host-lib-root": ("allow_host_libs:\n  - libz.so.1\n  - /\n", 5,
                      "allow_host_libs: '/' is not a library's name (libz.so.1) or an absolute"),
    "host-lib-relative": ("allow_host_libs: [../x]\n", 3, "allow_host_libs: '../x' is not"),
    "host-lib-option": ("allow_host_libs: [-lz]\n", 3, "allow_host_libs: '-lz' is not"),
    "block-host-lib": ("parameters: {x: true}\nwhen:\n  +x: {allow_host_libs: [/usr/../etc]}\n",
                       5, "allow_host_libs: '/usr/../etc' is not"),
    "args-item-line": ("build_system: make\nmake_args:\n  - A=1\n  - 5\n", 6,
                       "'make_args' must be a list of strings"),
    "placeholder-item-line": ("build_system: make\nmake_args:\n  - A=1\n  - B={BOGUS}\n", 6,
                              "make_args: argument 'B={BOGUS}': unknown placeholder {BOGUS}"),
    "no-offered-version": ('versions:\n  "1": {path: .}\n  "1.5": {path: .}\nwhen:\n'
                           '  "+x @2:": {}\nparameters: {x: true}\n', 7,
                           "when +x @2:: no version this recipe offers is in @2: (it offers "
                           "1.5, 1)"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_variants_and_versions_in_a_recipe(hit, tmp_path, case):
    """Each mistake in `when:` or `versions:`: one error at its line (the recipe's first two
    lines are its version and build), nothing built."""
    text, line, fragment = BAD_RECIPES[case]
    write_recipe(tmp_path / "pkgs", "p", 'version: "1"\nbuild: "true"\n' + text)
    write_recipe(tmp_path / "pkgs", "a", 'version: "1"\nbuild: "true"\n')
    (tmp_path / "pkgs" / "p.patch").write_text("--- a/x\n+++ b/x\n")
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    _one_error(hit("build", str(profile), check=False), f"p.yaml:{line}: {fragment}")


# --- a site: both levels, both versions, through the real module tools ----------------------

STACKS = """\
  gcc12:
    compiler: gcc-12
    packages: [vfft, vlib]
  gcc12-openmpi:
    compiler: gcc-12
    mpi: openmpi-4.1.4
    packages: [vfft]
  gcc12-old:
    compiler: gcc-12
    packages:
      vlib: {version: "1.0"}
"""


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    """The demo site's externals with three stacks of gcc-12: serial vfft and vlib 2.0, vfft
    with Open MPI, vlib 1.0."""
    need(bool(shutil.which("gcc-12") and shutil.which("mpicc.openmpi")), "gcc-12 and Open MPI")
    tmp = tmp_path_factory.mktemp("variants")
    site_yaml = demo_site(tmp, STACKS)
    add_packages(site_yaml.parent / "pkgs")
    root = tmp / "root"
    run_hdmod("build", str(site_yaml), "--root", str(root), "-j", "2")
    return {"yaml": site_yaml, "root": root, "modules": root / "modules"}


def _use(site, tool: str) -> str:
    return f"module use {site['modules'] / tool / 'Core'}"


def test_one_name_at_both_levels(site):
    """vfft/1.0 twice: the serial build at gcc-12's level, the MPI build at Open MPI's."""
    lmod = site["modules"] / "lmod"
    serial = lmod / "Compiler" / "gcc" / "12.2.0" / "vfft" / "1.0.lua"
    parallel = lmod / "MPI" / "gcc" / "12.2.0" / "openmpi" / "4.1.4" / "vfft" / "1.0.lua"
    assert serial.is_file() and parallel.is_file()
    assert 'whatis("Variant: mpi=off")' in serial.read_text()
    assert 'whatis("Variant: mpi=on")' in parallel.read_text()
    tcl = site["modules"] / "tcl" / "MPI" / "gcc" / "12.2.0" / "openmpi" / "4.1.4" / "vfft"
    assert 'module-whatis "Variant: mpi=on"' in (tcl / "1.0").read_text()


@pytest.mark.parametrize("tool", TOOLS)
def test_module_load_picks_the_variant_of_the_loaded_stack(site, tool):
    """`module load gcc vfft` loads the serial build, `module load gcc openmpi vfft` the MPI
    one (its program calls MPI, its module sets the `+mpi` block's variable); whatis says
    which."""
    serial = module_shell(tool, f"{_use(site, tool)}; module load gcc vfft && vfft")
    assert serial.code == 0, serial.err
    assert serial.out.strip() == "vfft serial"
    root = Path(serial.env["VFFT_ROOT"])
    assert (root / "share" / "vfft" / "kind").read_text() == "serial\n"
    assert "VFFT_PARALLEL" not in serial.env
    mpi = module_shell(tool, f"{_use(site, tool)}; module load gcc openmpi vfft && vfft")
    assert mpi.code == 0, mpi.err
    assert re.fullmatch(r"vfft mpi \d\.\d", mpi.out.strip()), mpi.out
    other = Path(mpi.env["VFFT_ROOT"])
    assert other != root and (other / "share" / "vfft" / "kind").read_text() == "mpi\n"
    assert mpi.env["VFFT_PARALLEL"] == "yes"
    spec = json.loads((other / ".hit" / "build.json").read_text())
    assert spec["parameters"] == {"mpi": True} and "mpi" in spec["toolchain"]
    for load, said in (("gcc", "mpi=off"), ("gcc openmpi", "mpi=on")):
        cmd = f"{_use(site, tool)}; module load {load}; module whatis vfft 2>&1"
        whatis = module_shell(tool, cmd, capture_env=False)
        assert f"Variant: {said}" in whatis.out, whatis.out


@pytest.mark.parametrize("tool", TOOLS)
def test_loading_the_mpi_after_the_package(site, tool):
    """Lmod reloads vfft from the MPI's level when openmpi is loaded after it (and from the
    compiler's when openmpi is unloaded); Environment Modules 5.2 keeps the loaded serial
    vfft until it is loaded again (README, Module trees: Variants under one name)."""
    cmds = f"{_use(site, tool)}; module load gcc vfft; module load openmpi && vfft"
    run = module_shell(tool, cmds)
    expected = "vfft mpi" if tool == "lmod" else "vfft serial"
    assert run.code == 0 and run.out.strip().startswith(expected), run.out + run.err
    if tool == "lmod":
        run = module_shell(tool, cmds + "; module unload openmpi && vfft")
        assert run.code == 0 and run.out.strip().endswith("vfft serial"), run.err
    else:
        run = module_shell(tool, cmds + "; module unload vfft; module load vfft && vfft")
        assert run.code == 0 and re.search(r"vfft mpi \d\.\d$", run.out.strip()), run.err


@pytest.mark.parametrize("tool", TOOLS)
def test_two_versions_side_by_side_the_newest_by_default(site, tool):
    """vlib 1.0 (stack gcc12-old) and 2.0 (gcc12) in one folder: both load by version, and
    the bare name loads 2.0, the newest, named in the folder's rc file."""
    for version in ("1.0", "2.0"):
        run = module_shell(
            tool, f"{_use(site, tool)}; module load gcc vlib/{version} && vlib-version"
        )
        assert run.code == 0 and run.out.strip() == f"vlib {version}", run.err
    run = module_shell(tool, f"{_use(site, tool)}; module load gcc vlib && vlib-version")
    assert run.code == 0 and run.out.strip() == "vlib 2.0", run.err
    folder = site["modules"] / tool / "Compiler" / "gcc" / "12.2.0" / "vlib"
    rc = folder / (".modulerc.lua" if tool == "lmod" else ".modulerc")
    assert "vlib/2.0" in rc.read_text() and "default" in rc.read_text()


def test_the_admins_default_wins_over_the_newest(site, tmp_path):
    """`modules: defaults: {vlib: "1.0"}`: after `hdmod modules refresh` the bare name loads
    1.0 in both tools."""
    text = site["yaml"].read_text().replace("modules:\n", 'modules:\n  defaults: {vlib: "1.0"}\n')
    site_yaml = site["yaml"].with_name("site-default.yaml")
    site_yaml.write_text(text)
    run_hdmod("modules", "refresh", str(site_yaml), "--root", str(site["root"]))
    try:
        for tool in TOOLS:
            run = module_shell(tool, f"{_use(site, tool)}; module load gcc vlib && vlib-version")
            assert run.code == 0 and run.out.strip() == "vlib 1.0", run.err
    finally:  # the module's other tests expect the site's own tree
        run_hdmod("modules", "refresh", str(site["yaml"]), "--root", str(site["root"]))


def test_a_stack_asking_for_a_version_no_recipe_offers(site, tmp_path):
    """One error at the stack's request, naming the versions vlib.yaml offers; nothing built."""
    text = site["yaml"].read_text().replace('vlib: {version: "1.0"}', 'vlib: {version: "1.12"}')
    bad = site["yaml"].with_name("site-bad.yaml")
    bad.write_text(text)
    r = run_hdmod("build", str(bad), "--root", str(tmp_path / "root"), check=False)
    assert r.returncode == 1
    line = text.splitlines().index('      vlib: {version: "1.12"}') + 1
    assert f"site-bad.yaml:{line}: package vlib has no version '1.12'" in r.stderr, r.stderr
    assert "offers 2.0, 1.0" in r.stderr
    assert not (tmp_path / "root" / "bld").exists()


def test_a_stack_forcing_the_mpi_variant_without_an_mpi(site, tmp_path):
    """`vfft: {parameters: {mpi: true}}` in a stack without `mpi:`: one error at that line,
    in site.yaml's own words (the stack's `mpi: NAME`, not a profile's toolchain:)."""
    text = (
        site["yaml"]
        .read_text()
        .replace(
            "    packages: [vfft, vlib]", "    packages:\n      vfft: {parameters: {mpi: true}}", 1
        )
    )
    bad = site["yaml"].with_name("site-forced.yaml")
    bad.write_text(text)
    r = run_hdmod("build", str(bad), "--root", str(tmp_path / "root"), check=False)
    line = text.splitlines().index("      vfft: {parameters: {mpi: true}}") + 1
    expected = (
        f"site-forced.yaml:{line}: package vfft needs an external mpi, but stack gcc12 in "
        "site-forced.yaml has no `mpi: NAME`"
    )
    assert r.returncode == 1 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "root" / "bld").exists()


def test_users_extending_a_stack_get_its_version(site, tmp_path):
    """ROOT/stacks/gcc12-old.yaml, which users extend, asks for vlib 1.0 as the stack does
    (in the stack's published copy, which it extends): the same build spec, so the same
    artifact as the site's."""
    stack = site["root"] / "stacks" / "gcc12-old.yaml"
    published = re.search(r'^extends: \["(.+)"\]$', stack.read_text(), re.M).group(1)
    assert '"vlib": {"version": "1.0"}' in (stack.parent / published).read_text()
    env = {**os.environ, "HIT_HOME": str(tmp_path / "home")}
    shown = json.loads(run_hit("show", "buildspec", "vlib", "-p", str(stack), env=env).out)
    (built,) = (p for p in (site["root"] / "bld" / "vlib").iterdir() if p.name.startswith("1.0-"))
    assert shown["id"] == json.loads((built / ".hit" / "build.json").read_text())["id"]


def test_a_recipe_may_ask_for_a_vendor_kind_of_external(hit, tmp_path):
    """`toolchain: [blas]` with an external of `kind: blas` (the README: any other word, a
    vendor BLAS) builds; this stop's first check of toolchain kinds refused it (the third
    trial)."""
    write_recipe(tmp_path / "pkgs", "solver", 'version: "1"\ntoolchain: [blas]\nbuild: "true"\n')
    profile = write_profile(
        tmp_path / "default.yaml",
        "package_dirs: [pkgs]\npackages: [solver]\nexternals:\n"
        "  mkl: {kind: blas, version: '1', commands: {blas: /bin/true}}\n"
        "toolchain: {blas: mkl}\n",
    )
    r = hit("build", "--repin", str(profile), check=False)
    assert r.code == 0 and "solver/" in r.err, r.err


def test_a_host_library_folder_may_hold_a_space(hit, tmp_path):
    """`allow_host_libs: ["/opt/My Vendor/lib"]` is an absolute folder (the third trial: this
    stop's first shape check refused it); a library's name still may not hold one."""
    write_recipe(
        tmp_path / "pkgs",
        "p",
        'version: "1"\nallow_host_libs: ["/opt/My Vendor/lib"]\nbuild: "true"\n',
    )
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    assert hit("build", str(profile)).code == 0
    write_recipe(
        tmp_path / "pkgs", "p", 'version: "1"\nallow_host_libs: ["libz .so"]\nbuild: "true"\n'
    )
    _one_error(hit("build", str(profile), check=False), "p.yaml:2: allow_host_libs: 'libz .so'")
