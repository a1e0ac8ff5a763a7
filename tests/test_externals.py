"""Host compilers and MPIs as pinned externals, with the real gcc-11, gcc-12, Open MPI, MPICH."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hdmodules.errors import HitError
from hdmodules.spec.externals import External, rewrite_pin
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.resolve import resolve
from tests.conftest import need, run_clean, run_hdmod, run_hit, write_profile

TOOLS = ("gcc-11", "gcc-12", "mpicc.openmpi", "mpicc.mpich", "mpirun.openmpi", "mpirun.mpich")


@pytest.fixture(scope="module")
def detected(tmp_path_factory) -> dict:
    """`hdmod externals detect` once: the real tools on this machine."""
    from tests.conftest import need

    missing = [t for t in TOOLS if not shutil.which(t)]
    need(not missing, f"gcc-11, Open MPI and MPICH ({', '.join(missing)})")
    out = tmp_path_factory.mktemp("detect") / "externals.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "hdmodules.cli.hdmod", "externals", "detect", "--write", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return {"file": out, "doc": yaml.safe_load(out.read_text())["externals"]}


def _named(detected, prefix):
    return next(k for k in detected["doc"] if k.startswith(prefix))


def test_detect_finds_both_gccs_and_both_mpis(detected):
    doc = detected["doc"]
    assert doc["gcc-11"]["version"].startswith("11.") and doc["gcc-12"]["version"].startswith("12.")
    assert doc["gcc-11"]["commands"]["cc"] == "/usr/bin/gcc-11"
    assert "Debian 11." in doc["gcc-11"]["pin"]["version"]
    ompi, mpich = doc[_named(detected, "openmpi-")], doc[_named(detected, "mpich-")]
    assert ompi["kind"] == mpich["kind"] == "mpi"
    assert ompi["pin"]["version"].startswith("Open MPI 4.") and ompi["version"].startswith("4.")
    assert mpich["pin"]["version"].startswith("MPICH 4.")
    assert ompi["commands"]["mpicc"] == "/usr/bin/mpicc.openmpi"  # not the alternatives link
    assert "libmpi" in ompi["libs"] and "libmpich" in mpich["libs"]
    assert "libmpi.so" in ompi["pin"]["library"] and "@" in ompi["pin"]["compiler"]


def _stack(demo: Path, detected, name: str, toolchain: str, packages: str) -> Path:
    shutil.copy(detected["file"], demo / "externals.yaml")
    return write_profile(
        demo / f"{name}.yaml",
        f"extends: [externals.yaml, default.yaml]\ntoolchain: {toolchain}\npackages: {packages}\n",
    )


def test_two_compilers_give_two_artifacts_per_package(hit, home, demo, detected):
    _stack(demo, detected, "gcc11", "{compiler: gcc-11}", "[app]")
    _stack(demo, detected, "gcc12", "{compiler: gcc-12}", "[app]")
    hit("build", "gcc11.yaml", cwd=demo)
    hit("build", "gcc12.yaml", cwd=demo)
    for pkg in ("libcore", "liba", "libb", "app"):
        assert len(list((home / "bld" / pkg).iterdir())) == 2, pkg
    for name, version in (("gcc11", "11."), ("gcc12", "12.")):
        app = demo / name / "bin" / "app"
        comment = subprocess.run(["readelf", "-p", ".comment", str(app)], capture_output=True)
        assert f"GCC: (Debian {version}" in comment.stdout.decode()
        assert run_clean([str(app)]).stdout.startswith("Hello from app")
    spec = run_hit("show", "buildspec", "libcore", "-p", "gcc11.yaml", cwd=demo).out
    assert '"pin"' in spec and "gcc-11" in spec


def test_same_external_under_two_names_hashes_the_same(demo, detected):
    _stack(demo, detected, "one", "{compiler: gcc-12}", "[app]")
    renamed = (demo / "externals.yaml").read_text().replace("  gcc-12:", "  sysgcc:")
    (demo / "renamed.yaml").write_text(renamed)
    write_profile(
        demo / "two.yaml",
        "extends: [renamed.yaml, default.yaml]\ntoolchain: {compiler: sysgcc}\npackages: [app]\n",
    )
    one = resolve(load_profile(demo / "one.yaml"))
    two = resolve(load_profile(demo / "two.yaml"))
    assert one.nodes["app"].ref == two.nodes["app"].ref


@pytest.mark.parametrize(
    "mpi, mpirun", [("openmpi-", "mpirun.openmpi"), ("mpich-", "mpirun.mpich")]
)
def test_mpi_hello_builds_and_runs_on_two_ranks(hit, demo, detected, mpi, mpirun):
    name = _named(detected, mpi)
    _stack(demo, detected, "mpi", f"{{compiler: gcc-12, mpi: {name}}}", "[mpi-hello]")
    r = hit("build", "mpi.yaml", cwd=demo)
    assert "mpi-hello" in r.err and "built in" in r.err
    flags = ["--allow-run-as-root", "--oversubscribe"] if "openmpi" in mpirun else []
    run = subprocess.run(
        [
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            mpirun,
            *flags,
            "-np",
            "2",
            str(demo / "mpi" / "bin" / "mpi-hello"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(line for line in run.stdout.splitlines() if line.startswith("hello")) == [
        "hello from rank 0 of 2",
        "hello from rank 1 of 2",
    ]
    assert ("Open MPI" if "openmpi" in mpi else "MPICH") in run.stdout


def test_mpi_is_only_reachable_when_declared(hit, demo, detected):
    recipe = demo / "pkgs" / "mpi-hello.yaml"
    recipe.write_text(
        recipe.read_text().replace("toolchain: [mpi]\n", "").replace('"$MPICC"', "mpicc")
    )
    _stack(demo, detected, "nompi", "{compiler: gcc-12}", "[mpi-hello]")
    r = hit("build", "nompi.yaml", cwd=demo, check=False)
    assert r.code == 1 and "mpicc: this package does not declare toolchain: [mpi]" in r.err


def test_toolchain_errors_name_the_line(demo, detected):
    _stack(demo, detected, "bad", "{compiler: gcc-99}", "[app]")
    with pytest.raises(HitError, match=r"bad.yaml:2: toolchain compiler: no external 'gcc-99'"):
        resolve(load_profile(demo / "bad.yaml"))
    _stack(demo, detected, "bad", f"{{compiler: {_named(detected, 'mpich-')}}}", "[app]")
    with pytest.raises(HitError, match=r"is a mpi, not a compiler"):
        resolve(load_profile(demo / "bad.yaml"))
    _stack(demo, detected, "bad", "{compiler: gcc-12}", "[mpi-hello]")
    said = r"mpi-hello.yaml:5: package mpi-hello needs an external mpi, but the profile bad.yaml"
    with pytest.raises(HitError, match=said):  # at the recipe's toolchain: (it had no line)
        resolve(load_profile(demo / "bad.yaml"))


FAKE_CC = """#!/bin/sh
if [ "$1" = --version ]; then echo "fakecc {version}"; exit 0; fi
exec /usr/bin/gcc "$@"
"""


def _fake_cc(demo: Path, version: str = "1.0") -> Path:
    """A compiler for externals: says `fakecc VERSION` to --version, else runs gcc."""
    fake = demo / "fakecc-prefix" / "bin" / "fakecc"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(FAKE_CC.format(version=version))
    fake.chmod(0o755)
    return fake


def test_a_changed_compiler_stops_the_build_until_repinned(home, demo):
    fake = _fake_cc(demo)
    write_profile(
        demo / "fake.yaml",
        f"""
        extends: [default.yaml]
        externals:
          fake:
            kind: compiler   # a comment that must survive re-pinning
            version: "1.0"
            commands: {{cc: {fake}}}
        toolchain: {{compiler: fake}}
        packages: [libcore]
        """,
    )
    r = run_hit("build", "fake.yaml", cwd=demo, check=False)
    assert r.code == 1 and "external fake has no pin" in r.err
    r = run_hit("build", "--repin", "fake.yaml", cwd=demo)
    assert "re-pinned external fake in" in r.err and "built in" in r.err
    text = (demo / "fake.yaml").read_text()
    assert '"version": "fakecc 1.0"' in text and "a comment that must survive" in text
    run_hit("build", "fake.yaml", cwd=demo)  # unchanged: a no-op (and the memo is written)

    fake.write_text(FAKE_CC.format(version="2.0"))  # the host tool changes under its pin
    r = run_hit("build", "fake.yaml", cwd=demo, check=False)
    assert r.code == 1
    assert "external fake (compiler) is not what it was pinned as" in r.err
    assert "version: pinned 'fakecc 1.0', found 'fakecc 2.0'" in r.err
    assert "Nothing was built" in r.err and "building" not in r.err
    assert "--repin" in r.err and "hit externals detect" in r.err
    before = os.readlink(demo / "fake")

    r = run_hit("build", "--repin", "fake.yaml", cwd=demo)
    assert "re-pinned external fake" in r.err and r.err.count("built in") == 4  # every package
    assert '"version": "fakecc 2.0"' in (demo / "fake.yaml").read_text()
    assert os.readlink(demo / "fake") != before  # a new artifact, the old one untouched


def test_a_compiler_named_by_its_bare_name_switched_elsewhere_stops_the_next_build(
    home, demo, tmp_path, monkeypatch
):
    """`commands: {cc: fakecc}` is found on PATH; an alternatives switch points the link
    PATH finds at another compiler. The next `hit build` says so, as for a compiler named
    by its path, and is never answered as a no-op (the memo stamped only absolute command
    paths and the old compiler's file, which the switch leaves unchanged)."""
    for version in ("1.0", "2.0"):
        fake = tmp_path / version / "fakecc"
        fake.parent.mkdir()
        fake.write_text(FAKE_CC.format(version=version))
        fake.chmod(0o755)
    alternatives = tmp_path / "alternatives"
    alternatives.mkdir()
    os.symlink(tmp_path / "1.0" / "fakecc", alternatives / "fakecc")
    monkeypatch.setenv("PATH", f"{alternatives}:{os.environ['PATH']}")
    write_profile(
        demo / "fake.yaml",
        """
        extends: [default.yaml]
        externals:
          fake: {kind: compiler, version: "1.0", commands: {cc: fakecc}}
        toolchain: {compiler: fake}
        packages: [libcore]
        """,
    )
    run_hit("build", "--repin", "fake.yaml", cwd=demo)
    assert "(up to date)" in run_hit("build", "fake.yaml", cwd=demo).out  # the no-op
    os.unlink(alternatives / "fakecc")
    os.symlink(tmp_path / "2.0" / "fakecc", alternatives / "fakecc")  # the switch
    r = run_hit("build", "fake.yaml", cwd=demo, check=False)
    assert r.code == 1 and "(up to date)" not in r.out, r.out
    assert "version: pinned 'fakecc 1.0', found 'fakecc 2.0'" in r.err, r.err


def test_a_compiler_without_a_version_is_refused_before_anything_builds(home, demo):
    """A site-style profile's modules go under Compiler/<name>/<version>: a compiler external
    without `version:` is one clear error naming its file, before any build (it was a
    `module one/1: '' may hold letters...` error after the build, and the memo never saved)."""
    fake = _fake_cc(demo)
    write_profile(
        demo / "nover.yaml",
        f"""
        extends: [default.yaml]
        externals:
          fake:
            kind: compiler
            commands: {{cc: {fake}}}
        toolchain: {{compiler: fake}}
        packages: [libcore]
        """,
    )
    r = run_hit("build", "--repin", "nover.yaml", cwd=demo, check=False)
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert f"{demo / 'nover.yaml'}: external fake (compiler) has no `version:`" in r.err, r.err
    assert "building" not in r.err and not (demo / "nover").exists()
    text = (
        (demo / "nover.yaml")
        .read_text()
        .replace("kind: compiler", 'kind: compiler\n    version: "1.0"')
    )
    (demo / "nover.yaml").write_text(text)
    r = run_hit("build", "--repin", "nover.yaml", cwd=demo)
    assert "module written: libcore/" in r.err and (demo / "nover").is_symlink(), r.err


def test_rewrite_pin_replaces_only_the_pin(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(
        "externals:\n  x:\n    kind: compiler  # keep\n    pin:\n      version: old\n"
        "      cc: old\n  y:\n    kind: mpi\n"
    )
    rewrite_pin(External("x", "compiler", "", file=f, line=4), {"version": "new"})
    assert f.read_text() == (
        'externals:\n  x:\n    kind: compiler  # keep\n    pin: {"version": "new"}\n'
        "  y:\n    kind: mpi\n"
    )


def test_repin_in_a_site_rewrites_the_pin_and_builds(home, demo, tmp_path):
    """`hdmod build site.yaml --repin` with a drifted pin re-pins in site.yaml itself (never
    reading it as a profile), builds, and the next build without --repin is a no-op."""
    fake = _fake_cc(demo)
    site = demo / "fake-site.yaml"
    site.write_text(
        "root: r\npackage_dirs: [pkgs]\n"
        f"externals:\n  fake:\n    kind: compiler  # kept\n    commands: {{cc: {fake}}}\n"
        "stacks:\n  s:\n    compiler: fake\n    packages: [libcore]\nmodules: {layout: flat}\n"
    )
    args = ("build", str(site), "--root", str(tmp_path / "root"))
    r = run_hdmod(*args, "--repin")
    assert (
        "re-pinned external fake in" in r.stderr and '"version": "fakecc 1.0"' in site.read_text()
    )
    fake.write_text(FAKE_CC.format(version="2.0"))  # the host tool changes under its pin
    r = run_hdmod(*args, check=False)
    assert r.returncode == 1 and "version: pinned 'fakecc 1.0', found 'fakecc 2.0'" in r.stderr
    r = run_hdmod(*args, "--repin")
    assert f"re-pinned external fake in {site}:" in r.stderr and "built in" in r.stderr
    text = site.read_text()
    assert '"version": "fakecc 2.0"' in text and "kind: compiler  # kept" in text
    r = run_hdmod(*args)
    assert "built in" not in r.stderr and "re-pinned" not in r.stderr


def test_a_second_compiler_of_one_version_under_a_prefix_is_a_second_external(tmp_path):
    """`externals detect --prefix DIR` with a gcc-12 under DIR and another on PATH lists
    both (the prefix's first, searched first), never one in place of the other."""
    need(bool(shutil.which("gcc-12")), "gcc-12")
    (tmp_path / "opt" / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("gcc-12"), tmp_path / "opt" / "bin" / "gcc-12")  # another file
    out = tmp_path / "ext.yaml"
    run_hdmod("externals", "detect", "--prefix", str(tmp_path / "opt"), "--write", str(out))
    doc = yaml.safe_load(out.read_text())["externals"]
    assert doc["gcc-12"]["commands"]["cc"] == str(tmp_path / "opt" / "bin" / "gcc-12")
    assert doc["gcc-12-2"]["commands"]["cc"] == "/usr/bin/gcc-12"


@pytest.mark.parametrize(
    ("text", "after"),
    [
        (  # one line, a comment with braces after it: the pin goes in the mapping
            "externals:\n  x: {kind: python, commands: {python: /p}}  # note {x} }\n",
            'externals:\n  x: {kind: python, commands: {python: /p}, pin: {"version": "new"}}'
            "  # note {x} }\n",
        ),
        (  # one line with a pin already: replaced
            'externals:\n  x: {kind: python, pin: {"version": "old"}}\n',
            'externals:\n  x: {kind: python, pin: {"version": "new"}}\n',
        ),
        (  # a block: the pin line inserted at the first key's indentation
            "externals:\n  x:\n    # c\n    kind: python\n",
            'externals:\n  x:\n    # c\n    pin: {"version": "new"}\n    kind: python\n',
        ),
    ],
)
def test_rewrite_pin_forms(tmp_path, text, after):
    f = tmp_path / "e.yaml"
    f.write_text(text)
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "kind" in s or "pin" in s)
    line = 2 if "x: {" in text else line
    rewrite_pin(External("x", "python", "", file=f, line=line), {"version": "new"})
    assert f.read_text() == after


@pytest.mark.parametrize(
    "text",
    [
        "externals: {x: {kind: python, commands: {python: /p}}}\n",  # inside another mapping
        "externals:\n  x: {kind: python,\n    commands: {python: /p}}\n",  # over two lines
        "externals:\n  x:\n    {kind: python, commands: {python: /p}}\n",  # on the next line
    ],
)
def test_rewrite_pin_refuses_forms_it_cannot_edit(tmp_path, text):
    """Refused at the line, the file left as it was (before: a new external named `pin`)."""
    f = tmp_path / "e.yaml"
    f.write_text(text)
    line = 1 if text.startswith("externals: {") else (2 if "x: {" in text else 3)
    with pytest.raises(HitError, match=rf"{f}:{line}: cannot write the pin of external x"):
        rewrite_pin(External("x", "python", "", file=f, line=line), {"version": "new"})
    assert f.read_text() == text
