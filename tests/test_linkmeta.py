"""The link-metadata check (hdmodules.linkmeta): pkg-config files, libtool archives, `*-config`
scripts and CMake package files naming host libraries or folders outside the store, on small
artifacts the tests lay out; and `hit build` refusing one whose library links a host library
with --as-needed (NEEDED has none, its .pc names it), as netCDF-C 4.9.0 did."""

from __future__ import annotations

import os
import random
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from hdmodules.elf import host_search_dirs
from hdmodules.linkmeta import (
    check_metadata,
    cmake_words,
    find_library,
    lib_stem,
    requires_modules,
    script_words,
    words_of,
)
from hdmodules.spec.externals import External
from hdmodules.spec.toolfolders import own_folders
from hdmodules.store.home import BASE_HOST_LIBS
from tests.conftest import need, run_clean, write_profile, write_recipe

MULTIARCH = "/usr/lib/x86_64-linux-gnu"
BASE = set(BASE_HOST_LIBS)


def host_dev_lib() -> tuple[str, str]:
    """A host library with its development link (`-lNAME` finds it): bz2 when the host has
    libbz2's, else the first other one in the multiarch folder. (NAME, where the host's
    library search finds it: /lib/x86_64-linux-gnu/... on a merged /usr)."""
    base = {lib_stem(b) for b in BASE}
    names = sorted(os.listdir(MULTIARCH)) if os.path.isdir(MULTIARCH) else []
    names = [e[3:-3] for e in names if e.startswith("lib") and e.endswith(".so")]
    for name in ["bz2"] * ("bz2" in names) + [n for n in names if f"lib{n}" not in base]:
        found = find_library(name, host_search_dirs())
        if found:
            return name, found
    if os.environ.get("CI") == "true":
        pytest.fail(f"no development library in {MULTIARCH}")
    pytest.skip(f"no development library in {MULTIARCH}")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def store(tmp_path: Path) -> tuple[Path, Path]:
    """An artifact and one dependency with a library (`libdep.so`) and a header folder."""
    art, dep = tmp_path / "bld" / "foo" / "1-aaaa", tmp_path / "bld" / "dep" / "1-bbbb"
    for d in ("lib", "include"):
        (dep / d).mkdir(parents=True)
        (art / d).mkdir(parents=True)
    (dep / "lib" / "libdep.so").write_bytes(b"\x7fELF not really")
    (art / "lib" / "libfoo.so").write_bytes(b"\x7fELF not really")
    return art, dep


def messages(art: Path, dep: Path, allowed=BASE) -> list[str]:
    """The check's messages for `art` over `dep`, sorted."""
    return sorted(p.message(art) for p in check_metadata(art, [dep], allowed))


def pc(art: Path, body: str, name: str = "foo.pc") -> Path:
    head = f"prefix={art}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n"
    return write(art / "lib" / "pkgconfig" / name, head + textwrap.dedent(body).lstrip())


# --- a host library in Libs.private, and its allow_host_libs escape --------------------------


def test_a_pc_naming_a_host_library_is_caught_with_the_escape(tmp_path):
    name, path = host_dev_lib()
    art, dep = store(tmp_path)
    pc(art, f"Name: foo\nLibs: -L${{libdir}} -lfoo\nLibs.private: -ldep -lm -l{name}\n")
    assert messages(art, dep) == [
        f"lib/pkgconfig/foo.pc (Libs.private) names -l{name}: found on the host at {path},"
        f" which is not a declared dependency (declare it, or allow it with"
        f" allow_host_libs: [lib{name}])"
    ]
    soname = next((e for e in os.listdir(MULTIARCH) if e.startswith(f"lib{name}.so.")), None)
    for entry in [f"lib{name}", f"lib{name}.so", soname]:  # any spelling the ELF check takes
        if entry:
            assert messages(art, dep, BASE | {entry}) == [], entry


def test_every_kind_of_file_naming_only_the_store_passes(tmp_path):
    art, dep = store(tmp_path)
    pc(art, f"Libs: -L${{libdir}} -lfoo -L{dep}/lib -ldep -lm\nCflags: -I${{includedir}}\n")
    pc(art, "Requires: foo\nRequires.private: dep >= 1.0, foo\nLibs: -lfoo\n", "bar.pc")
    write(dep / "lib" / "pkgconfig" / "dep.pc", "Libs: -ldep\n")
    write(
        art / "lib" / "libfoo.la",
        f"""
        # libfoo.la - a libtool library file
        dlname='libfoo.so.1'
        dependency_libs=' -L{dep}/lib {dep}/lib/libdep.la -ldep -lstdc++ -ldl -lm -lpthread'
        libdir='{art}/lib'
        """,
    )
    write(
        art / "bin" / "foo-config",
        f"""
        #!/bin/sh
        prefix="{art}"
        exec_prefix="${{prefix}}"
        libdir="${{exec_prefix}}/lib"
        cflags="-I${{prefix}}/include -I{dep}/include"
        libs="-L${{libdir}} -lfoo"
        libsprivate="-ldep -lm"
        if [ $# -lt 1 ]; then echo "usage: foo-config --libs"; fi
        case "$1" in
          -L*|-I/usr/include) echo "patterns are not flags" ;;
          --libs) echo "$libs" ;;
        esac
        """,
    )
    cmake = art / "lib" / "cmake" / "foo"
    write(
        cmake / "fooTargets.cmake",
        f"""
        set_target_properties(foo::foo PROPERTIES
          INTERFACE_INCLUDE_DIRECTORIES "${{_IMPORT_PREFIX}}/include;{dep}/include"
          INTERFACE_LINK_LIBRARIES "{dep}/lib/libdep.so;\\$<LINK_ONLY:m>;dl;foo::core"
        )
        """,
    )
    write(cmake / "fooConfig.cmake", f'set(foo_LIBRARIES "foo;{dep}/lib/libdep.so")\n')
    assert messages(art, dep) == []


# --- folders outside the store --------------------------------------------------------------


def test_host_folders_are_caught_in_every_kind_of_file(tmp_path):
    art, dep = store(tmp_path)
    pc(art, "Libs: -L${libdir} -lfoo\nCflags: -I${includedir} -I/usr/include/libxml2\n")
    write(art / "bin" / "foo-config", f'#!/bin/sh\nlibs="-L{MULTIARCH} -lfoo"\necho $libs\n')
    write(art / "lib" / "libfoo.la", "dependency_libs=' -L/opt/vendor/lib -lm'\n")
    write(
        art / "lib" / "cmake" / "foo-config.cmake",
        'set_property(TARGET foo PROPERTY INTERFACE_INCLUDE_DIRECTORIES "/usr/include/libxml2")\n',
    )
    found = messages(art, dep)
    assert found == [
        "bin/foo-config names -L/usr/lib/x86_64-linux-gnu: a folder outside the artifact and"
        " its declared dependencies, searched for libraries by every consumer (declare the"
        " package providing them, or allow it with allow_host_libs: [/usr/lib/x86_64-linux-gnu])",
        "lib/cmake/foo-config.cmake (INTERFACE_INCLUDE_DIRECTORIES) names /usr/include/libxml2:"
        " a folder outside the artifact and its declared dependencies, searched for headers"
        " by every consumer (declare the package providing them, or allow it with"
        " allow_host_libs: [/usr/include/libxml2])",
        "lib/libfoo.la (dependency_libs) names -L/opt/vendor/lib: a folder outside the artifact"
        " and its declared dependencies, searched for libraries by every consumer (declare"
        " the package providing them, or allow it with allow_host_libs: [/opt/vendor/lib])",
        "lib/pkgconfig/foo.pc (Cflags) names -I/usr/include/libxml2: a folder outside the"
        " artifact and its declared dependencies, searched for headers by every consumer"
        " (declare the package providing them, or allow it with"
        " allow_host_libs: [/usr/include/libxml2])",
    ]
    allowed = BASE | {"/usr/include/libxml2", MULTIARCH, "/opt/vendor"}  # a folder and below
    assert messages(art, dep, allowed) == []


def test_a_build_folder_or_an_undeclared_store_artifact_is_outside(tmp_path):
    art, dep = store(tmp_path)
    other = tmp_path / "bld" / "other" / "1-cccc"
    pc(art, f"Libs: -L{tmp_path}/tmp/foo-aaaa/src/.libs -L{other}/lib -lfoo\n")
    found = messages(art, dep)
    assert len(found) == 2 and any(f"names -L{other}/lib: a folder outside" in m for m in found)
    # told the build folder, the check says what that path is, and no escape for it
    build = tmp_path / "tmp" / "foo-aaaa"
    problems = check_metadata(art, [dep], BASE, build_dir=build)
    said = {p.word.text: p.message(art) for p in problems}
    assert "names -L" in said[f"-L{build}/src/.libs"]
    assert (
        "a path inside the build folder, which is deleted after the build"
        in said[f"-L{build}/src/.libs"]
    )
    assert "allow_host_libs" not in said[f"-L{build}/src/.libs"]
    assert "build folder" not in said[f"-L{other}/lib"]


# --- host libraries by path, in archives, scripts and CMake files ---------------------------


def test_host_libraries_by_name_or_path_in_la_script_and_cmake(tmp_path):
    name, path = host_dev_lib()
    art, dep = store(tmp_path)
    write(art / "lib" / "libfoo.la", f"dependency_libs=' -ldep {path} -lm'\n")
    write(art / "bin" / "foo-config", f'#!/bin/sh\nstatic="-lfoo -l{name}"\n')
    write(
        art / "lib" / "cmake" / "FooTargets-release.cmake",
        f'set_target_properties(foo PROPERTIES INTERFACE_LINK_LIBRARIES "\\$<LINK_ONLY:{name}>")\n',
    )
    found = messages(art, dep)
    assert [m.split(":")[0] for m in found] == [
        f"bin/foo-config names -l{name}",
        f"lib/cmake/FooTargets-release.cmake (INTERFACE_LINK_LIBRARIES) names {name}",
        f"lib/libfoo.la (dependency_libs) names {path}",
    ]
    assert all(f"allow_host_libs: [lib{name}]" in m for m in found)
    assert messages(art, dep, BASE | {f"lib{name}.so"}) == []


def test_a_required_module_only_the_host_provides(tmp_path):
    host_pc = next(
        (
            d
            for d in (f"{MULTIARCH}/pkgconfig", "/usr/share/pkgconfig")
            if os.path.isfile(f"{d}/zlib.pc")
        ),
        None,
    )
    if host_pc is None:
        pytest.skip("no zlib.pc on the host")
    art, dep = store(tmp_path)
    pc(art, "Libs: -lfoo\nRequires.private: zlib >= 1.2, nosuchmodule\n")
    assert messages(art, dep) == [
        f"lib/pkgconfig/foo.pc (Requires.private) names zlib: found on the host at"
        f" {host_pc}/zlib.pc, which is not a declared dependency (declare it, or allow it"
        f" with allow_host_libs: [libz])"
    ]
    assert messages(art, dep, BASE | {"libz.so.1"}) == []
    write(dep / "lib" / "pkgconfig" / "zlib.pc", "Libs: -lz\n")  # the store's zlib wins
    assert messages(art, dep) == []


# --- what is and is not read ----------------------------------------------------------------


def test_links_binaries_metadata_and_other_files_are_skipped(tmp_path):
    name, _ = host_dev_lib()
    art, dep = store(tmp_path)
    outside = write(tmp_path / "elsewhere.pc", f"Libs: -l{name}\n")
    (art / "lib" / "pkgconfig").mkdir()
    (art / "lib" / "pkgconfig" / "link.pc").symlink_to(outside)  # its target is checked there
    write(art / ".hit" / "lib" / "pkgconfig" / "x.pc", f"Libs: -l{name}\n")
    write(art / "share" / "doc" / "notes.pc", f"Libs: -l{name}\n")  # not in a pkgconfig folder
    write(art / "bin" / "data-config", f"not a script -l{name}\n")  # no #!
    (art / "bin" / "elf-config").write_bytes(b"\x7fELF\0\0-l" + name.encode())
    write(art / "lib" / "pkgconfig" / "broken.pc", 'Libs: "-lfoo\nCflags: ${undefined}/x\n')
    assert messages(art, dep) == []
    skipped = check_metadata(art, [dep], BASE, skip=lambda rel: rel.name == "foo.pc")
    assert skipped == []


def test_word_readers():
    assert requires_modules("zlib >= 1.2.3, libxml-2.0 bzip2=1.0 ${x}") == [
        "zlib",
        "libxml-2.0",
        "bzip2=1.0",
    ]
    words = script_words('#!/bin/sh\n# -lcomment\np=/x\n[ $# -le 2 ] && echo "-L$p/lib -lz"\n')
    assert [w.text for w in words] == ["-L/x/lib", "-lz"]
    words = cmake_words(
        'INTERFACE_LINK_LIBRARIES "\\$<\\$<CONFIG:Debug>:m>;\\$<BUILD_INTERFACE:/build/x.so>"\n'
    )
    assert [(w.kind, w.value) for w in words] == [("lib", "m")]
    assert lib_stem("libz.so.1.2.13") == lib_stem("libz.a") == lib_stem("libz") == "libz"
    assert find_library("definitely-not-a-library-xyz", [MULTIARCH]) is None


def test_garbage_and_pathological_files_give_no_error_and_stay_fast():
    kinds = [Path(f"x/{n}") for n in ("lib/pkgconfig/a.pc", "lib/a.la", "bin/a-config")]
    kinds.append(Path("x/lib/cmake/aTargets.cmake"))
    pieces = ["-l", "-L", "-I", "/usr/lib/", "libz.so", " ", '"', "'", "$", "${a}", "$a", "a="]
    pieces += ["=", ":", "\n", "#", "\\", "$<", ">", ";", "LIBRARIES ", "Libs:", "Requires:"]
    pieces += [">=", ",", "*", ")", "(", "`", "dependency_libs='", "#!/bin/sh\n", "x", "/"]
    rnd = random.Random(15)
    for _ in range(500):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 200)))
        for kind in kinds:
            words_of(kind, text)
    start = time.monotonic()
    doubling = "".join(f"v{i + 1}=${{v{i}}}${{v{i}}}\n" for i in range(60))
    assert words_of(kinds[0], f"v0=xxxxxxxx\n{doubling}Libs: ${{v60}} -lz\n")[-1].text == "-lz"
    shell = doubling.replace("{", "").replace("}", "")
    assert words_of(kinds[2], f"#!/bin/sh\nv0=xxxxxxxx\n{shell}echo $v60 -lz\n")[-1].text == "-lz"
    assert words_of(kinds[2], "#!/bin/sh\n" + "/a" * 200_000 + "\n") == []
    assert time.monotonic() - start < 5


# --- the toolchain's own folders ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is required")
def test_the_compilers_own_folder_is_allowed_the_hosts_are_not(tmp_path):
    folders = own_folders(External("gcc", "compiler", "", {"cc": shutil.which("gcc")}))
    assert folders and all("/gcc/" in f for f in folders)
    assert MULTIARCH not in folders and "/usr" not in folders
    art, dep = store(tmp_path)
    pc(art, f"Libs: -L{folders[0]} -lgfortran -lgcc\n")
    assert messages(art, dep) != [] and messages(art, dep, BASE | set(folders)) == []
    mpich = shutil.which("mpicc.mpich")
    if mpich:  # its wrapper says -L/usr/lib/x86_64-linux-gnu: never an MPI's own folder
        assert MULTIARCH not in own_folders(External("m", "mpi", "", {"mpicc": mpich}))
    broken = own_folders(External("x", "compiler", "", {"cc": "/nonexistent/cc"}, prefix="/usr"))
    assert broken == ()


# --- hit build: the netCDF case, end to end ---------------------------------------------------


def test_hit_build_refuses_a_hidden_host_library_and_commits_nothing(hit, home, tmp_path):
    """libfoo links the host library with --as-needed and uses nothing of it: NEEDED has no
    trace of it and the ELF check passes, but foo.pc's Libs.private names it."""
    name, path = host_dev_lib()
    src = write(tmp_path / "src" / "foo.c", "int foo(void) { return 7; }\n").parent
    recipe = write_recipe(
        tmp_path / "pkgs",
        "foo",
        f"""
        version: "1"
        sources: [{{path: ../src}}]
        build: |
          gcc -shared -fPIC -o libfoo.so foo.c -Wl,--as-needed -l{name}
          install -Dm755 libfoo.so "$ARTIFACT/lib/libfoo.so"
          mkdir -p "$ARTIFACT/lib/pkgconfig"
          printf 'libdir=%s/lib\\nName: foo\\nVersion: 1\\nDescription: foo\\n' "$ARTIFACT" \\
              > "$ARTIFACT/lib/pkgconfig/foo.pc"
          printf 'Libs: -L${{libdir}} -lfoo\\nLibs.private: -l{name}\\n' \\
              >> "$ARTIFACT/lib/pkgconfig/foo.pc"
        """,
    )
    assert src.is_dir()
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [foo]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1 and "library check failed" in r.err
    assert (
        f"lib/pkgconfig/foo.pc (Libs.private) names -l{name}: found on the host at {path},"
        f" which is not a declared dependency (declare it, or allow it with"
        f" allow_host_libs: [lib{name}])"
    ) in r.err
    assert "needs" not in r.err  # the ELF check had nothing to say
    assert not list((home / "bld" / "foo").iterdir())  # nothing committed
    assert not (tmp_path / "default").exists()
    recipe.write_text(recipe.read_text() + f"allow_host_libs: [lib{name}]\n")
    hit("build", str(p))
    pkg_config = shutil.which("pkg-config")
    if pkg_config:  # what a consumer's static link is given, now that the site allowed it
        pcdir = f"PKG_CONFIG_PATH={tmp_path}/default/lib/pkgconfig"
        out = run_clean([pcdir, pkg_config, "--libs", "--static", "foo"])
        assert f"-l{name}" in out.stdout, out.stdout + out.stderr


def test_hit_build_names_a_build_folder_path_in_link_metadata(hit, home, tmp_path):
    """An install that copies `-L$PWD/.libs` (a folder of the build tree) into foo.pc fails
    the check, saying it is the build folder, not suggesting an allow_host_libs entry."""
    recipe = write_recipe(
        tmp_path / "pkgs",
        "foo",
        r"""
        version: "1"
        build: |
          mkdir -p .libs "$ARTIFACT/lib/pkgconfig"
          printf 'Name: foo\nVersion: 1\nDescription: foo\nLibs: -L%s/.libs -lfoo\n' "$PWD" \
              > "$ARTIFACT/lib/pkgconfig/foo.pc"
        """,
    )
    assert recipe.is_file()
    p = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [foo]\n")
    r = hit("build", str(p), check=False)
    assert r.code == 1 and "library check failed" in r.err, r.err
    line = next(x for x in r.err.splitlines() if "lib/pkgconfig/foo.pc (Libs) names -L" in x)
    assert "a path inside the build folder, which is deleted after the build" in line, line
    assert "allow_host_libs" not in line
    assert not list((home / "bld" / "foo").iterdir())  # nothing committed


def test_allowing_a_host_library_folder_does_not_allow_its_libraries(tmp_path):
    """`allow_host_libs: [/usr/lib/x86_64-linux-gnu]` (the escape the message offers for an
    `-L` word) lets the `-L` word through, not every host library found there: `-lbz2` is
    still judged by name, as the ELF check judges it."""
    need(Path("/usr/lib/x86_64-linux-gnu/libbz2.so").exists(), "the host's libbz2.so")
    pc = tmp_path / "art" / "lib" / "pkgconfig"
    pc.mkdir(parents=True)
    (pc / "x.pc").write_text(
        "Name: x\nDescription: x\nVersion: 1\nLibs: -L/usr/lib/x86_64-linux-gnu -lbz2\n"
    )
    folder = "/usr/lib/x86_64-linux-gnu"
    problems = check_metadata(tmp_path / "art", [], frozenset({folder}))
    assert [p.word.text for p in problems] == ["-lbz2"]
    assert check_metadata(tmp_path / "art", [], frozenset({folder, "libbz2"})) == []
