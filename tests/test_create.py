"""`hit create URL_OR_FILE`: a starting recipe from a real archive made here, for each build
system and for Python sdists and wheels; what it writes loads with the recipe loader (and, for
autotools, builds); a damaged archive and an existing output stop with one line."""

import hashlib
import io
import os
import shutil
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from hdmodules.spec.create import clean_name, guess_from_name, python_name
from hdmodules.spec.recipes import load_recipe
from tests.conftest import need, run_clean, run_hit, write_profile


def make_tar(path: Path, files: dict[str, str], executable: tuple[str, ...] = ()) -> Path:
    """A .tar.gz at `path` holding `files` (member name -> text); `executable` get mode 755."""
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name in executable else 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create(tmp_path: Path, archive: Path, *args: str):
    """Run `hit create ARCHIVE` in tmp_path; the loaded recipe it wrote, and the run."""
    r = run_hit("create", str(archive), *args, cwd=tmp_path)
    written = Path(r.out.split(":")[0])
    return load_recipe(tmp_path / written), r


@pytest.mark.parametrize(
    "top_file, system",
    [
        ("configure", "autotools"),
        ("CMakeLists.txt", "cmake"),
        ("meson.build", "meson"),
        ("Makefile", "make"),
    ],
)
def test_each_build_system_is_detected(home, tmp_path, top_file, system):
    archive = make_tar(
        tmp_path / "libthing-1.2.3.tar.gz",
        {f"libthing-1.2.3/{top_file}": "# x\n", "libthing-1.2.3/src/a.c": "int a;\n"},
    )
    recipe, r = create(tmp_path, archive)
    assert r.out.startswith("libthing.yaml:")
    assert (recipe.name, recipe.version) == ("libthing", "1.2.3")
    assert recipe.build_system is not None and recipe.build_system.system == system
    [source] = recipe.sources
    assert source.sha256 == sha256(archive)
    assert source.url == archive.absolute().as_uri()
    assert recipe.dependencies == ()
    assert 'version: "1.2.3"' in (tmp_path / "libthing.yaml").read_text()


def test_precedence_meson_over_cmake_over_configure(home, tmp_path):
    top = "multi-0.9/"
    files = {top + f: "x\n" for f in ("configure", "CMakeLists.txt", "meson.build", "Makefile")}
    recipe, _ = create(tmp_path, make_tar(tmp_path / "multi-0.9.tar.gz", files))
    assert recipe.build_system.system == "meson"


PKG_INFO = """\
Metadata-Version: 2.1
Name: Fancy_Lib.Core
Version: 2.4.0rc1
Summary: A fancy library
Requires-Dist: numpy>=1.20
Requires-Dist: typing_extensions; python_version < "3.11"
Requires-Dist: pytest ; extra == "test"
Provides-Extra: test
"""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61", "wheel", "Cython>=3.0"]
build-backend = "setuptools.build_meta"
"""


def test_python_sdist_with_pyproject(home, tmp_path):
    top = "fancy_lib.core-2.4.0rc1/"
    files = {
        top + "PKG-INFO": PKG_INFO,
        top + "pyproject.toml": PYPROJECT,
        top + "CMakeLists.txt": "",
    }
    archive = make_tar(tmp_path / "fancy_lib.core-2.4.0rc1.tar.gz", files)
    recipe, r = create(tmp_path, archive)
    assert r.out.startswith("py-fancy-lib-core.yaml:")
    assert (recipe.name, recipe.version) == ("py-fancy-lib-core", "2.4.0rc1")
    assert recipe.build_system.system == "python"
    assert recipe.dependencies == (
        "python",
        "py-setuptools",
        "py-wheel",
        "py-cython",
        "py-numpy",
    )  # typing_extensions only before 3.11; pytest only for the extra "test"
    assert recipe.description == "A fancy library"
    assert recipe.sources[0].sha256 == sha256(archive)
    text = (tmp_path / "py-fancy-lib-core.yaml").read_text()
    assert "metadata" in text and "pypi: Fancy_Lib.Core==2.4.0rc1" in text


def test_setup_py_only_sdist(home, tmp_path):
    top = "Old.Pkg-1.0/"
    info = "Metadata-Version: 1.0\nName: Old.Pkg\nVersion: 1.0\n"
    files = {top + "PKG-INFO": info, top + "setup.py": "from setuptools import setup\n"}
    recipe, _ = create(tmp_path, make_tar(tmp_path / "Old.Pkg-1.0.tar.gz", files))
    assert (recipe.name, recipe.version) == ("py-old-pkg", "1.0")
    assert recipe.build_system.system == "python"
    assert recipe.dependencies == ("python", "py-setuptools")


def test_wheel_reads_its_metadata(home, tmp_path):
    wheel = tmp_path / "tiny_tool-0.3.1-py3-none-any.whl"
    meta = "Metadata-Version: 2.1\nName: tiny-tool\nVersion: 0.3.1\nRequires-Dist: click\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tiny_tool/__init__.py", "")
        zf.writestr("tiny_tool-0.3.1.dist-info/METADATA", meta)
        zf.writestr("tiny_tool-0.3.1.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    recipe, _ = create(tmp_path, wheel)
    assert (recipe.name, recipe.version) == ("py-tiny-tool", "0.3.1")
    assert recipe.build_system.system == "python"
    assert recipe.dependencies == ("python", "py-click")
    assert recipe.sources[0].sha256 == sha256(wheel)


def test_nothing_detected_writes_a_failing_build_script(home, tmp_path):
    archive = make_tar(tmp_path / "odd_5.0.tar.gz", {"odd-5.0/README": "read me\n"})
    (tmp_path / "pkgs").mkdir()
    recipe, r = create(tmp_path, archive, "-o", "pkgs/odd.yaml")
    assert r.out.startswith("pkgs/odd.yaml:")
    assert (recipe.name, recipe.version) == ("odd", "5.0")
    assert recipe.build_system is None and "TODO" in recipe.build and "exit 1" in recipe.build


def test_hostile_member_paths_are_only_names(home, tmp_path):
    files = {"../configure": "x", "/abs/CMakeLists.txt": "x", "ok-1.0/Makefile": "all:\n"}
    recipe, _ = create(tmp_path, make_tar(tmp_path / "ok-1.0.tar.gz", files))
    assert recipe.build_system.system == "make"
    assert not (tmp_path.parent / "configure").exists() and not Path("/abs").exists()


def test_damaged_archive_is_one_line(home, tmp_path):
    good = make_tar(tmp_path / "good-1.0.tar.gz", {"good-1.0/configure": "x" * 20000})
    for name, data in [
        ("junk-1.0.tar.gz", b"not an archive at all\n"),
        ("cut-1.0.tar.gz", good.read_bytes()[:60]),
        ("broken-1.0.zip", b"PK\x03\x04" + b"\x00" * 40),
    ]:
        (tmp_path / name).write_bytes(data)
        r = run_hit("create", name, cwd=tmp_path, check=False)
        assert r.code != 0
        assert r.out == "" and len(r.err.strip().splitlines()) == 1, r.err
        assert name in r.err and "not a readable archive" in r.err
        assert not list(tmp_path.glob("*.yaml"))


def test_existing_output_is_refused_unless_force(home, tmp_path):
    archive = make_tar(tmp_path / "foo-1.0.tar.gz", {"foo-1.0/configure": "x"})
    (tmp_path / "foo.yaml").write_text("mine\n")
    r = run_hit("create", str(archive), cwd=tmp_path, check=False)
    assert r.code != 0 and "exists" in r.err and "--force" in r.err
    assert (tmp_path / "foo.yaml").read_text() == "mine\n"
    r = run_hit("create", str(archive), "-o", "foo.yaml", cwd=tmp_path, check=False)
    assert r.code != 0 and (tmp_path / "foo.yaml").read_text() == "mine\n"
    run_hit("create", str(archive), "--force", cwd=tmp_path)
    assert load_recipe(tmp_path / "foo.yaml").version == "1.0"


def test_no_version_in_the_name_asks_for_one(home, tmp_path):
    archive = make_tar(tmp_path / "snapshot.tar.gz", {"snapshot/Makefile": "all:\n"})
    r = run_hit("create", str(archive), cwd=tmp_path, check=False)
    assert r.code != 0 and "--version" in r.err and len(r.err.strip().splitlines()) == 1
    recipe, _ = create(tmp_path, archive, "--version", "2024.1", "--name", "snap")
    assert (recipe.name, recipe.version) == ("snap", "2024.1")
    r = run_hit(
        "create", str(archive), "--name", "../x", "--version", "1", cwd=tmp_path, check=False
    )
    assert r.code != 0 and "--name" in r.err


def test_from_a_file_url(home, tmp_path):
    (tmp_path / "dl").mkdir()
    archive = make_tar(tmp_path / "dl" / "zap-3.1.tar.gz", {"zap-3.1/CMakeLists.txt": ""})
    recipe, _ = create(tmp_path, archive.as_uri())
    assert recipe.sources[0].url == archive.as_uri()
    assert recipe.sources[0].sha256 == sha256(archive)
    assert any(home.rglob(sha256(archive)))  # in the source cache


def test_guesses():
    assert guess_from_name("foo-bar-1.2.3.tar.gz") == ("foo-bar", "1.2.3")
    assert guess_from_name("foo_2.0-rc1.zip") == ("foo", "2.0-rc1")
    assert guess_from_name("Python-3.11.2.tar.xz") == ("Python", "3.11.2")
    assert guess_from_name("pkg-1.0-py3-none-any.whl") == ("pkg", "1.0")
    assert guess_from_name("snapshot.tar.gz") is None
    assert clean_name("My Lib!") == "my-lib" and clean_name("..a..b") == "a.b"
    assert python_name("Flit_Core") == "py-flit-core"


HELLO = {
    "hello-0.1/configure": textwrap.dedent(
        """\
        #!/bin/sh
        for a in "$@"; do
          case "$a" in --prefix=*) echo "PREFIX=${a#--prefix=}" > config.mk ;; esac
        done
        """
    ),
    "hello-0.1/hello.c": "#include <stdio.h>\n"
    'int main(void) { puts("hello created"); return 0; }\n',
    "hello-0.1/Makefile": textwrap.dedent(
        """\
        include config.mk
        hello: hello.c
        \t$(CC) -o $@ hello.c
        install: hello
        \tmkdir -p $(PREFIX)/bin && cp hello $(PREFIX)/bin/
        """
    ),
}


def test_the_created_autotools_recipe_builds(home, tmp_path):
    need(shutil.which("make") is not None and shutil.which("cc") is not None, "make and cc")
    archive = make_tar(tmp_path / "hello-0.1.tar.gz", HELLO, executable=("hello-0.1/configure",))
    (tmp_path / "pkgs").mkdir()
    recipe, _ = create(tmp_path, archive, "-o", "pkgs/hello.yaml")
    assert recipe.build_system.system == "autotools"
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [hello]\n")
    run_hit("build", str(profile))
    out = run_clean([os.path.realpath(tmp_path / "default" / "bin" / "hello")])
    assert out.stdout == "hello created\n"


def test_pyproject_without_pkg_info_reads_its_project_table(home, tmp_path):
    pyproject = PYPROJECT + '\n[project]\nname = "git_snap"\nversion = "0.5"\n'
    pyproject += 'dependencies = ["requests>=2", "rich[jupyter]"]\n'
    files = {"git-snap-main/pyproject.toml": pyproject, "git-snap-main/configure.ac": ""}
    recipe, _ = create(tmp_path, make_tar(tmp_path / "main.tar.gz", files))
    assert (recipe.name, recipe.version) == ("py-git-snap", "0.5")
    assert recipe.dependencies == (
        "python",
        "py-setuptools",
        "py-wheel",
        "py-cython",
        "py-requests",
        "py-rich",
    )


def test_from_an_http_url(home, tmp_path):
    from tests.test_fetch_first import Upstream

    (tmp_path / "up").mkdir()
    archive = make_tar(tmp_path / "up" / "web_lib-4.2.tar.gz", {"web_lib-4.2/meson.build": ""})
    server = Upstream(tmp_path / "up")
    try:
        url = f"{server.url}/web_lib-4.2.tar.gz"
        recipe, _ = create(tmp_path, url)
    finally:
        server.stop()
    assert (recipe.name, recipe.version) == ("web_lib", "4.2")
    assert recipe.sources[0].url == url and recipe.sources[0].sha256 == sha256(archive)
    assert recipe.build_system.system == "meson"


def test_requirements_whose_markers_do_not_hold_for_the_store_python_are_left_out():
    """As pip would skip them on the store's CPython 3.11 on Linux (meson-python's
    colorama for Windows, tomli before 3.11); a marker it cannot read is kept."""
    from hdmodules.spec.create import _requirement

    assert _requirement('colorama; os_name == "nt"') is None
    assert _requirement('tomli>=1.0.0; python_version < "3.11"') is None
    assert _requirement('pytest; extra == "test"') is None
    assert _requirement('typing-extensions; python_version >= "3.8"') == "py-typing-extensions"
    assert _requirement("odd; no_such_marker == '1'") == "py-odd"
    assert _requirement("Flit_Core>=3") == "py-flit-core"


def test_a_file_given_through_dot_dot_gets_a_url_without_it(home, tmp_path):
    """`hit create sub/../libthing-1.2.3.tar.gz`: the recipe's file URL names the archive
    itself (the trial: `file:///.../sub/../libthing-1.2.3.tar.gz`)."""
    archive = make_tar(tmp_path / "libthing-1.2.3.tar.gz", {"libthing-1.2.3/Makefile": "x:\n"})
    (tmp_path / "sub").mkdir()
    recipe, _r = create(tmp_path, Path("sub") / ".." / archive.name)
    assert recipe.sources[0].url == archive.as_uri() and "/../" not in recipe.sources[0].url
