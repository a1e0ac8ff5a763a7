"""`build_system:` in recipes (issue 15, item 3): each system builds a small project the test
writes, against a library another system built, and what it installs runs under `env -i`;
arguments reach the build byte-exact; `hit show script` is the script that runs; the
rendered phases are what the build spec hashes; bad input stops with file:line."""

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from hdmodules.errors import HitError
from tests import pypi_index
from tests.conftest import need, run_clean, run_hit, write_profile, write_recipe

# --- the projects ------------------------------------------------------------------------

GREET = {  # a plain Makefile project: a library, its header, a .pc file and a program
    "greet.h": "const char *greet(void);\n",
    "greet.c": '#include "greet.h"\nconst char *greet(void) { return "and greet"; }\n',
    "main.c": '#include <stdio.h>\n#include "greet.h"\n'
    'int main(void) { printf("%s %s\\n", GREETING, greet()); return 0; }\n',
    "Makefile": textwrap.dedent(
        """\
        PREFIX ?= /usr/local
        GREETING ?= unset
        all: libgreet.so greet-make
        libgreet.so: greet.c greet.h
        \t$(CC) $(CPPFLAGS) -fPIC -shared -o $@ greet.c $(LDFLAGS)
        greet-make: main.c libgreet.so
        \t$(CC) $(CPPFLAGS) -DGREETING='"$(GREETING)"' -o $@ main.c -L. -lgreet $(LDFLAGS)
        install: all
        \tmkdir -p $(PREFIX)/bin $(PREFIX)/lib/pkgconfig $(PREFIX)/include
        \tcp libgreet.so $(PREFIX)/lib/ && cp greet-make $(PREFIX)/bin/
        \tcp greet.h $(PREFIX)/include/
        \tsed 's|@PREFIX@|$(PREFIX)|' greet.pc.in > $(PREFIX)/lib/pkgconfig/greet.pc
        """
    ),
    "greet.pc.in": "prefix=@PREFIX@\nName: greet\nDescription: greet\nVersion: 1.0\n"
    "Libs: -L${prefix}/lib -lgreet\nCflags: -I${prefix}/include\n",
}

AUTOTOOLS = {  # a configure written by hand: it records its arguments one per line
    "configure": textwrap.dedent(
        """\
        #!/bin/sh
        test -f pre.txt || { echo "pre_configure did not run first" >&2; exit 1; }
        : > args.txt
        for a in "$@"; do
          printf '%s\\n' "$a" >> args.txt
          case "$a" in --prefix=*) echo "PREFIX=${a#--prefix=}" > config.mk ;; esac
        done
        """
    ),
    "hello.c": '#include <stdio.h>\n#include "greet.h"\n'
    'int main(void) { printf("hello from autotools %s\\n", greet()); return 0; }\n',
    "Makefile": textwrap.dedent(
        """\
        include config.mk
        hello-auto: hello.c
        \t$(CC) $(CPPFLAGS) -o $@ hello.c -lgreet $(LDFLAGS)
        install: hello-auto
        \tmkdir -p $(PREFIX)/bin $(PREFIX)/share
        \tcp hello-auto $(PREFIX)/bin/ && cp args.txt pre.txt $(PREFIX)/share/
        """
    ),
}

CMAKE = {  # a shared library of its own over greet, and a program linking it
    "CMakeLists.txt": textwrap.dedent(
        """\
        cmake_minimum_required(VERSION 3.18)
        project(hellocmake C)
        find_library(GREET_LIB greet REQUIRED)
        find_path(GREET_INC greet.h REQUIRED)
        add_library(hellocm SHARED hellocm.c)
        target_include_directories(hellocm PRIVATE ${GREET_INC})
        target_link_libraries(hellocm PRIVATE ${GREET_LIB})
        add_executable(hello-cmake main.c)
        target_compile_definitions(hello-cmake PRIVATE "MSG=\\"${MSG}\\"")
        target_link_libraries(hello-cmake PRIVATE hellocm)
        install(TARGETS hellocm hello-cmake)
        """
    ),
    "hellocm.c": '#include "greet.h"\nconst char *hellocm(void) { return greet(); }\n',
    "main.c": "#include <stdio.h>\nconst char *hellocm(void);\n"
    'int main(void) { printf("%s %s\\n", MSG, hellocm()); return 0; }\n',
}

MESON = {  # greet found through pkg-config
    "meson.build": textwrap.dedent(
        """\
        project('hellomeson', 'c')
        greet = dependency('greet')
        lib = shared_library('hellome', 'hellome.c', dependencies: greet, install: true)
        executable('hello-meson', 'main.c', link_with: lib, install: true,
                   c_args: ['-DMSG="' + get_option('msg') + '"'])
        """
    ),
    "meson_options.txt": "option('msg', type: 'string', value: 'unset')\n",
    "hellome.c": "const char *greet(void);\nconst char *hellome(void) { return greet(); }\n",
    "main.c": "#include <stdio.h>\nconst char *hellome(void);\n"
    'int main(void) { printf("%s %s\\n", MSG, hellome()); return 0; }\n',
}

PYPROJECT = {
    "pyproject.toml": textwrap.dedent(
        """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "hellopy"
        version = "1.0"
        """
    ),
    "src/hellopy/__init__.py": "def hello():\n    return 'hello from python'\n",
}

# what each recipe says besides its sources
RECIPES = {
    "greet": """\
        build_system: make
        make_args: ["GREETING=hello from make"]
        """,
    "hello-auto": """\
        dependencies: [greet]
        build_system: autotools
        pre_configure: |
          echo pre > pre.txt
        configure_args: {args}
        build: |
          cp "$0" "$ARTIFACT/share/build.sh"
        """,
    "hello-cmake": """\
        dependencies: [greet]
        build_system: cmake
        cmake_args: ["-DMSG=hello from cmake"]
        """,
    "hello-meson": """\
        dependencies: [greet]
        build_system: meson
        meson_args: ["-Dmsg=hello from meson"]
        """,
    # a python for the tests: a venv over the host's (a site builds its own)
    "python": """\
        build: |
          /usr/bin/python3 -m venv --without-pip --system-site-packages "$ARTIFACT"
        """,
    "hellopy": """\
        dependencies: [python, py-setuptools, py-wheel]
        build_system: python
        """,
}
RECIPES |= {  # build requirements are recipes (wheels on the tests' package index)
    f"py-{name}": f"sources:\n  - pypi: {d.requirement}\n    sha256: {d.sha256}\n"
    "dependencies: [python]\nbuild_system: python\n"
    for name, d in pypi_index.DISTS.items()
    if name in ("setuptools", "wheel")
}
PROJECTS = {"greet": GREET, "hello-auto": AUTOTOOLS, "hello-cmake": CMAKE}
PROJECTS |= {"hello-meson": MESON, "hellopy": PYPROJECT}


def pkgs(tmp: Path, args: list[str] | None = None) -> Path:
    """Every recipe of RECIPES in tmp/pkgs, with its project in tmp/pkgs/src/<name>;
    `args` are hello-auto's configure_args. Returns tmp/pkgs."""
    pkgdir = tmp / "pkgs"
    for name, files in PROJECTS.items():
        for rel, text in files.items():
            path = pkgdir / "src" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (pkgdir / "src" / "hello-auto" / "configure").chmod(0o755)
    for name, body in RECIPES.items():
        source = f"sources:\n  - path: src/{name}\n" if name in PROJECTS else ""
        body = textwrap.dedent(body).replace("{args}", json.dumps(args or []))
        write_recipe(pkgdir, name, f'version: "1.0"\n{source}{body}')
    return pkgdir


def profile(tmp: Path, *packages: str, name: str = "default.yaml") -> Path:
    pkgs(tmp)
    return write_profile(tmp / name, f"package_dirs: [pkgs]\npackages: {list(packages)}\n")


def run(link: Path, program: str) -> str:
    out = run_clean([str(link / "bin" / program)])
    assert out.returncode == 0, out.stderr
    return out.stdout


# --- each build system --------------------------------------------------------------------


def test_make_and_autotools_with_byte_exact_arguments(hit, tmp_path):
    need(shutil.which("make") is not None, "make")
    marker = tmp_path / "ran"
    args = [
        "--with-msg=a b  $HOME `id` ; 'q' \"dq\" \\ * {{x}}",
        f"--evil=$(touch {marker})",
        "--in={ARTIFACT}/x y",
        "--dep={GREET_DIR}",
        "",
    ]
    pkgs(tmp_path, args)
    yaml = write_profile(
        tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [greet, hello-auto]\n"
    )
    hit("build", str(yaml))
    link = tmp_path / "default"
    assert run(link, "greet-make") == "hello from make and greet\n"
    assert run(link, "hello-auto") == "hello from autotools and greet\n"
    auto = Path(os.path.realpath(link / "bin" / "hello-auto")).parent.parent
    greet = Path(os.path.realpath(link / "bin" / "greet-make")).parent.parent
    recorded = (auto / "share" / "args.txt").read_text().split("\n")[:-1]
    assert recorded == [
        f"--prefix={auto}",
        "--with-msg=a b  $HOME `id` ; 'q' \"dq\" \\ * {x}",
        f"--evil=$(touch {marker})",
        f"--in={auto}/x y",
        f"--dep={greet}",
        "",
    ]
    assert not marker.exists()  # nothing of an argument ran as shell
    assert (auto / "share" / "pre.txt").read_text() == "pre\n"
    # `hit show script` is the script that ran (the recipe's `build:` copied it after install)
    shown = hit("show", "script", "hello-auto", "-p", str(yaml)).out
    assert shown == (auto / "share" / "build.sh").read_text()
    assert "# ---- build_system: autotools (build_systems/autotools.sh.j2) ----" in shown
    # and its build part is what the build spec hashes
    spec = json.loads(hit("show", "buildspec", "hello-auto", "-p", str(yaml)).out)
    assert shown.endswith(spec["build"]) and spec["id"].startswith(f"hello-auto/{auto.name[4:]}")


def test_cmake_with_a_library_and_rpath(hit, tmp_path):
    need(shutil.which("cmake") is not None, "cmake")
    yaml = profile(tmp_path, "hello-cmake")
    hit("build", str(yaml))
    assert run(tmp_path / "default", "hello-cmake") == "hello from cmake and greet\n"
    script = hit("show", "script", "hello-cmake", "-p", str(yaml)).out
    assert "-DCMAKE_INSTALL_RPATH=" in script and "'-DMSG=hello from cmake'" in script


def test_meson_through_pkg_config(hit, tmp_path):
    need(shutil.which("meson") is not None, "meson (apt-get install meson)")
    need(shutil.which("pkg-config") is not None, "pkg-config")
    yaml = profile(tmp_path, "hello-meson")
    hit("build", str(yaml))
    assert run(tmp_path / "default", "hello-meson") == "hello from meson and greet\n"


def test_python_package_with_the_python_dependency(hit, tmp_path, monkeypatch):
    """An sdist (a source folder) built by setuptools, which comes from the py-setuptools
    recipe, not from the host (the build sees none of the host's packages)."""
    need(os.system("/usr/bin/python3 -m pip --version >/dev/null 2>&1") == 0, "python3's pip")
    dists = pypi_index.ensure(["setuptools", "wheel"])
    yaml = profile(tmp_path, "python", "hellopy")
    with pypi_index.serve(dists) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        hit("build", str(yaml))
    link = tmp_path / "default"
    code = "import hellopy, sys; print(hellopy.hello(), sys.prefix)"
    out = run_clean([str(link / "bin" / "python3"), "-c", code])
    assert out.returncode == 0 and out.stdout == f"hello from python {link}\n", out.stderr


# --- what is hashed -----------------------------------------------------------------------


def ids(yaml: Path) -> dict[str, str]:
    from hdmodules.spec.resolve import resolve_file

    return {n.name: n.ref.id for n in resolve_file(yaml).nodes.values()}


def test_a_phase_template_rehashes_only_the_recipes_of_its_system(hit, tmp_path):
    names = ["greet", "hello-auto", "hello-cmake", "hello-meson", "python", "hellopy"]
    yaml = profile(tmp_path, *names)
    before = ids(yaml)
    override = tmp_path / "pkgs" / "build_systems" / "cmake.sh.j2"
    override.parent.mkdir()
    builtin = Path(__file__).parent.parent / "templates" / "build_systems" / "cmake.sh.j2"
    override.write_text(builtin.read_text() + "echo a site's extra step\n")
    after = ids(yaml)
    assert [n for n in names if before[n] != after[n]] == ["hello-cmake"]
    spec = json.loads(hit("show", "buildspec", "hello-cmake", "-p", str(yaml)).out)
    assert spec["build"].endswith("echo a site's extra step\n")
    # a recipe with `build:` alone hashes that script, as before build systems
    from hdmodules.spec.resolve import resolve_file

    python = resolve_file(yaml).nodes["python"]
    assert python.spec.build == python.recipe.build


def test_the_no_op_build_sees_a_phase_template_appear(hit, tmp_path):
    need(shutil.which("make") is not None, "make")
    yaml = profile(tmp_path, "greet")
    hit("build", str(yaml))
    assert "(up to date)" in hit("build", str(yaml)).out
    override = tmp_path / "pkgs" / "build_systems" / "make.sh.j2"
    override.parent.mkdir()
    override.write_text('make PREFIX="$ARTIFACT"{{ make_args|args }} install\n')
    r = hit("build", str(yaml))
    assert "built in" in r.err and "(up to date)" not in r.out


def test_show_script_of_a_recipe_file(hit, tmp_path):
    pkgdir = pkgs(tmp_path)
    r = hit("show", "script", str(pkgdir / "hello-cmake.yaml"), cwd=tmp_path)
    assert "cmake --build _build" in r.out and "GREET_DIR=" in r.out
    spec = json.loads(hit("show", "buildspec", str(pkgdir / "greet.yaml"), cwd=tmp_path).out)
    assert spec["build"].startswith("# ---- build_system: make")


# --- tools --------------------------------------------------------------------------------


def test_a_missing_tool_stops_before_anything_builds(home, tmp_path, monkeypatch):
    from hdmodules.progress import Progress
    from hdmodules.publish.profilebuild import build_profile
    from hdmodules.spec import buildsystems
    from hdmodules.spec.resolve import resolve_file
    from hdmodules.store.home import load_home

    fake = buildsystems.System("make", ("make_args", "install_args"), (("no-such-tool-x",),))
    monkeypatch.setitem(buildsystems.SYSTEMS, "make", fake)
    yaml = profile(tmp_path, "hello-auto")
    with pytest.raises(HitError) as e:
        build_profile(resolve_file(yaml), load_home(), 1, Progress(2, quiet=True))
    recipe = tmp_path / "pkgs" / "greet.yaml"
    assert str(e.value).startswith(f"{recipe}:4: build_system: make needs no-such-tool-x")
    assert "Nothing was built" in str(e.value) and not (home / "bld" / "greet").exists()
    # a dependency that provides the tool: checked when the build starts, and found there
    write_recipe(tmp_path / "pkgs", "no-such-tool-x", """\
        version: "1"
        build: |
          mkdir -p "$ARTIFACT/bin" && ln -s /usr/bin/make "$ARTIFACT/bin/no-such-tool-x"
        """)  # fmt: skip
    text = (recipe.read_text()).replace(
        "build_system:", "dependencies: [no-such-tool-x]\nbuild_system:"
    )
    recipe.write_text(text)
    build_profile(resolve_file(yaml), load_home(), 1, Progress(3, quiet=True))


# --- bad input ----------------------------------------------------------------------------

AUTO = "build_system: autotools\n"
BAD = [
    ("build_system: scons\n", 2, "build_system 'scons': use one of autotools, cmake"),
    (AUTO + "cmake_args: [-DX=1]\n", 3, "build_system autotools takes no cmake_args"),
    (AUTO + "configure_args: --a --b\n", 3, "must be a list of strings, one item"),
    ("build_system: cmake\ncmake_args: [1]\n", 3, "must be a list of strings"),
    ("build_system: make\nmake_args: ['X={HOME}']\n", 3, "placeholder {HOME} (this recipe"),
    ("build_system: make\nmake_args: ['X={']\n", 3, "write a literal brace as {{ or }}"),
    ("build_system: make\nmake_args: ['{ARTIFACT!r}']\n", 3, "takes no !conversion nor :format"),
    ("pre_configure: echo\nbuild: make\n", 2, "'pre_configure' goes with 'build_system:'"),
    ("install_args: [x]\nbuild: make\n", 2, "'install_args' goes with 'build_system:'"),
    ("build_system: python\n", 2, "add python to dependencies:"),
    ("build_system: make\npre_configure: [x]\n", 3, "'pre_configure' must be a script"),
    ("description: nothing to do\n", 1, "needs the key 'build' (a script) or 'build_system'"),
]  # fmt: skip


@pytest.mark.parametrize("body,line,message", BAD)
def test_bad_build_system_input_is_one_line_with_its_place(home, tmp_path, body, line, message):
    write_recipe(tmp_path / "pkgs", "p", f'version: "1"\n{body}')
    yaml = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [p]\n")
    r = run_hit("show", "script", "p", "-p", str(yaml), check=False)
    assert r.code == 1 and r.out == ""
    assert r.err.startswith(f"hit: error: {tmp_path / 'pkgs' / 'p.yaml'}:{line}: "), r.err
    assert message in r.err and len(r.err.splitlines()) == 1, r.err


@pytest.mark.parametrize(
    "template,line,message",
    [
        ("make {% if %}\n", 1, "Expected an expression"),
        ("make\nmake {{ cmake_args|args }}\n", None, "'cmake_args' is undefined"),
    ],
)
def test_a_broken_phase_template_is_one_line_with_its_place(
    home, tmp_path, template, line, message
):
    pkgdir = pkgs(tmp_path)
    (pkgdir / "build_systems").mkdir()
    (pkgdir / "build_systems" / "make.sh.j2").write_text(template)
    yaml = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [greet]\n")
    r = run_hit("build", str(yaml), check=False)
    where = str(pkgdir / "build_systems" / "make.sh.j2") + (f":{line}" if line else "")
    assert r.code == 1 and r.err.startswith(f"hit: error: {where}: the phase template"), r.err
    assert f"(for {pkgdir / 'greet.yaml'}:4)" in r.err and message in r.err


def test_placeholders_a_recipe_may_use(tmp_path):
    from hdmodules.spec.recipes import load_recipe

    f = write_recipe(tmp_path, "p", """\
        version: "1"
        dependencies: [gnu-make, 4ti2]
        parameters: {with_x: true}
        toolchain: [mpi]
        build_system: cmake
        cmake_args: ["-DA={GNU_MAKE_DIR}", "-DB={_4TI2_DIR}", "-DC={WITH_X}", "-DD={MPICC}"]
        """)  # fmt: skip
    steps = load_recipe(f).build_system
    assert steps is not None and steps.args["cmake_args"][3] == "-DD={MPICC}"
    from hdmodules.spec.buildsystems import body

    text = body(steps, "")
    assert '-DA="${GNU_MAKE_DIR}" -DB="${_4TI2_DIR}" -DC="${WITH_X}" -DD="${MPICC}"' in text
