"""A scientist's day one (issue 14): compile against loaded modules with no flags, and the
program runs with no environment; loading a compiler gives that compiler. Through the real
Lmod and Environment Modules, the real gcc-11/gcc-12, gfortran and Open MPI wrappers and
`mpirun`."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import demo_site, need, write_recipe
from tests.conftest import run_hdmod as hdmod
from tests.module_tools import module_shell

TOOLS = ("lmod", "tcl")
STACKS = """\
  gcc12:
    compiler: gcc-12
    packages: [libcore, liba, fmod]
  gcc12-openmpi:
    compiler: gcc-12
    mpi: openmpi-4.1.4
    packages: [mpilib]
  gcc11:
    compiler: gcc-11
    packages: [libcore, liba]
  gcc11-openmpi:
    compiler: gcc-11
    mpi: openmpi-4.1.4
    packages: [mpilib]
"""
MPILIB = r"""
version: "1.0"
description: A library over MPI (its header includes mpi.h) and liba
toolchain: [mpi]
dependencies: [liba]
build: |
  cat > mpilib.h <<'EOF'
  #include <mpi.h>
  int mpilib_size(MPI_Comm comm);
  EOF
  cat > mpilib.c <<'EOF'
  #include "mpilib.h"
  int mpilib_size(MPI_Comm comm) { int n; MPI_Comm_size(comm, &n); return n; }
  EOF
  "$MPICC" -O2 -fPIC -shared -Wl,-soname,libmpilib.so -o libmpilib.so mpilib.c $LDFLAGS
  install -Dm644 mpilib.h "$ARTIFACT/include/mpilib.h"
  install -Dm755 libmpilib.so "$ARTIFACT/lib/libmpilib.so"
  mkdir -p "$ARTIFACT/lib/pkgconfig"
  printf '%s\n' "prefix=$ARTIFACT" 'Name: mpilib' 'Description: test' 'Version: 1.0' \
      'Libs: -L${prefix}/lib -lmpilib' 'Cflags: -I${prefix}/include' \
      > "$ARTIFACT/lib/pkgconfig/mpilib.pc"
"""
FMOD = r"""
version: "2.0"
description: A Fortran library with a module file
build: |
  cat > fmod.f90 <<'EOF'
  module fmod
  contains
    integer function fmod_answer()
      fmod_answer = 42
    end function
  end module
  EOF
  mkdir -p "$ARTIFACT/include" "$ARTIFACT/lib"
  "$FC" -O2 -fPIC -shared -J "$ARTIFACT/include" -o "$ARTIFACT/lib/libfmod.so" fmod.f90 $LDFLAGS
"""
PROG_C = r"""
#include <stdio.h>
#include <mpilib.h>
#include <a.h>
int main(int argc, char **argv) {
    int rank;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    printf("rank %d of %d: %s\n", rank, mpilib_size(MPI_COMM_WORLD), a_describe());
    MPI_Finalize();
    return 0;
}
"""
PROG_F90 = """\
program p
  use fmod
  print '(a,i0)', 'fmod says ', fmod_answer()
end program
"""
MPIRUN = "mpirun --allow-run-as-root --oversubscribe -np 2"


@pytest.fixture(scope="module")
def site(tools, tmp_path_factory):
    need(bool(shutil.which("gfortran-12") and shutil.which("gfortran-11")), "gfortran-11/12")
    need(bool(shutil.which("mpicc.openmpi")), "Open MPI")
    tmp = tmp_path_factory.mktemp("compiling")
    site_yaml = demo_site(tmp, STACKS)
    write_recipe(site_yaml.parent / "pkgs", "mpilib", MPILIB)
    write_recipe(site_yaml.parent / "pkgs", "fmod", FMOD)
    root = tmp / "root"
    hdmod("build", str(site_yaml), "--root", str(root), "-j", "2")
    src = tmp / "src"
    src.mkdir()
    (src / "prog.c").write_text(PROG_C)
    (src / "prog.f90").write_text(PROG_F90)
    return {"yaml": site_yaml, "root": root, "src": src, "tmp": tmp}


def _shell(site, tool: str, commands: str, cwd: Path):
    core = site["root"] / "modules" / tool / "Core"
    return module_shell(tool, f"cd {shlex.quote(str(cwd))} && module use {core} && {commands}")


def _runpath(binary: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True).stdout
    found = re.search(r"\(RUNPATH\)\s+Library runpath: \[([^]]*)\]", out)
    return found[1].split(":") if found else []


def _env_i(binary: Path, *args: str) -> subprocess.CompletedProcess:
    """Run with no environment at all but PATH (mpirun needs to find orted)."""
    return subprocess.run(
        ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", *args, str(binary)],
        capture_output=True, text=True, cwd=binary.parent, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("tool", TOOLS)
def test_compile_with_no_flags_and_run_with_no_environment(site, tool, tmp_path):
    """`module load gcc openmpi mpilib fmod` (mpilib, at the MPI's level, loads the
    compiler-level liba it depends on), then the plain wrappers with only `-l`: mpicc links
    an MPI library and a C library, gfortran finds the Fortran module; both run with the
    modules loaded, after `module purge`, and under `env -i`; ldd shows the store."""
    work = tmp_path / tool
    shutil.copytree(site["src"], work)
    run = _shell(
        site, tool,
        "module load gcc/12.2.0 openmpi/4.1.4 mpilib fmod"  # mpilib loads liba
        " && mpicc prog.c -o prog -lmpilib -la"
        " && gfortran prog.f90 -o fprog -lfmod"
        f" && {MPIRUN} ./prog && ./fprog"
        " && mpicc prog.c -o rprog -lmpilib -la -Wl,--disable-new-dtags"
        f" && module purge && {MPIRUN} ./prog && ./fprog && ldd ./prog",
        work,
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    assert run.out.count("rank ") == 4 and "of 2: liba" in run.out, run.out
    assert run.out.count("fmod says 42") == 2
    store = str(site["root"] / "bld")
    assert re.search(rf"libmpilib\.so => {re.escape(store)}/mpilib/", run.out), run.out
    runpath = _runpath(work / "prog")
    assert any(p.startswith(f"{store}/mpilib/") for p in runpath), runpath
    assert any(p.startswith(f"{store}/liba/") for p in runpath), runpath
    assert "LD_LIBRARY_PATH" not in run.env
    dynamic = subprocess.run(["readelf", "-d", str(work / "rprog")], capture_output=True, text=True)
    assert "(RPATH)" in dynamic.stdout and "(RUNPATH)" not in dynamic.stdout  # asked for
    alone = _env_i(work / "prog", "mpirun.openmpi", "--allow-run-as-root", "-np", "2")
    assert alone.returncode == 0 and alone.stdout.count("of 2: liba") == 2, alone.stderr
    alone = _env_i(work / "fprog")
    assert alone.returncode == 0 and "fmod says 42" in alone.stdout, alone.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_loading_a_compiler_gives_that_compiler_and_swapping_swaps_it(site, tool):
    """gcc/11.3.0 loaded: gcc, cc, g++, c++, gfortran and mpicc are 11.3.0; swapping to
    gcc/12.2.0 (Lmod: load; Environment Modules: switch) makes them all 12.2.0."""
    tools = "gcc cc g++ c++ gfortran cpp mpicc mpifort"
    versions = f'for c in {tools}; do echo "$c=$($c -dumpfullversion)"; done'
    swap = "module load gcc/12.2.0" if tool == "lmod" else "module switch gcc/11.3.0 gcc/12.2.0"
    run = _shell(
        site, tool,
        f"module load gcc/11.3.0 openmpi/4.1.4 && {versions}"
        f" && echo SWAP && {swap} && {versions}",
        site["tmp"],
    )  # fmt: skip
    assert run.code == 0, run.err
    before, _, after = run.out.partition("SWAP\n")
    for name in ("gcc", "cc", "g++", "c++", "gfortran", "cpp", "mpicc", "mpifort"):
        assert f"{name}=11.3.0" in before, before
        assert f"{name}=12.2.0" in after, after
    assert "openmpi/4.1.4" in run.env["LOADEDMODULES"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_says_how_to_compile_against_a_library(site, tool):
    """`module help` of a library: the one-line compile command and what it sets."""
    run = _shell(
        site, tool, "module load gcc/12.2.0 openmpi/4.1.4 && module help mpilib fmod 2>&1",
        site["tmp"],
    )  # fmt: skip
    assert run.code == 0, run.err
    text = " ".join(run.out.split())
    assert "Compile against it: mpicc prog.c -lmpilib" in text, text
    assert "gfortran prog.f90 -lfmod" in text, text
    assert "Prepends to: " in text and "CPATH" in text and "LIBRARY_PATH" in text


def test_a_site_turns_each_part_off(site, tmp_path):
    """`modules: compile:` off switches, written to another tree from the same builds: no
    wrappers (gcc stays the host's), no CPATH at all, no LIBRARY_PATH for one package; bad
    values are refused at their line."""
    text = site["yaml"].read_text()
    off = site["yaml"].with_name("site-off.yaml")
    off.write_text(
        text.replace(
            "modules:\n",
            "modules:\n  compile: {wrappers: false, cpath: false, off_for: [liba]}\n",
        )
    )
    mods = tmp_path / "mods"
    hdmod("modules", "refresh", str(off), "--root", str(site["root"]), "--modules", str(mods))
    for tool in TOOLS:
        run = module_shell(
            tool,
            f"module use {mods / tool / 'Core'} && module load gcc/11.3.0 liba openmpi/4.1.4"
            " && module load mpilib && gcc -dumpfullversion && mpicc.openmpi -dumpfullversion"
            " && module help liba mpilib 2>&1",
        )
        assert run.code == 0, run.err
        versions = run.out.split()[:2]
        assert versions == ["12.2.0", "11.3.0"]  # /usr/bin/gcc: no wrapper; mpicc: OMPI_CC
        assert run.env["OMPI_CC"] == "/usr/bin/gcc-11"
        assert "CPATH" not in run.env and "/liba/" not in run.env.get("LIBRARY_PATH", "")
        assert "/mpilib/" in run.env["LIBRARY_PATH"] and "/mpilib/" in run.env["LD_RUN_PATH"]
        assert "Compile against it" not in run.out  # without CPATH the hint would not work
    bad = site["yaml"].with_name("site-bad.yaml")
    line = text.partition("modules:\n")[0].count("\n") + 3
    for setting, message in (
        ("rpath: yes please", "'rpath' must be true or false"),
        ("off_for: [nosuch]", "off_for: nosuch is in no stack"),
    ):
        bad.write_text(text.replace("modules:\n", f"modules:\n  compile:\n    {setting}\n"))
        r = hdmod("modules", "refresh", str(bad), "--root", str(site["root"]), check=False)
        assert r.returncode == 1 and f"{bad}:{line}: {message}" in r.stderr, r.stderr


@pytest.mark.parametrize("root", ["with space", "with$dollar"])
def test_a_site_root_mpi_wrappers_or_module_tools_would_split_is_refused(site, tmp_path, root):
    """OMPI_CC/MPICH_CC name the compiler wrappers under the site root, and both MPIs split
    them at whitespace; Environment Modules expands `$` in MODULEPATH: such a root is refused
    before anything is built, in one line, naming the --root it came from."""
    r = hdmod("build", str(site["yaml"]), "--root", str(tmp_path / root), check=False)
    assert r.returncode == 1 and f"--root {tmp_path / root} holds" in r.stderr, r.stderr
    assert not (tmp_path / root).exists()


CMAKELISTS = """\
cmake_minimum_required(VERSION 3.18)
project(prog C)
find_package(MPI REQUIRED COMPONENTS C)
find_library(MPILIB mpilib REQUIRED)
find_path(MPILIB_INCLUDE mpilib.h REQUIRED)
find_library(LIBA a REQUIRED)
add_executable(prog prog.c)
target_include_directories(prog PRIVATE ${MPILIB_INCLUDE})
target_link_libraries(prog PRIVATE ${MPILIB} ${LIBA} MPI::MPI_C)
install(TARGETS prog)
"""


@pytest.mark.parametrize("tool", TOOLS)
def test_pkg_config_and_cmake_keep_working(site, tool, tmp_path):
    """With the same modules loaded, `pkg-config --cflags --libs mpilib` and a CMake project
    (find_package(MPI), find_library through CMAKE_PREFIX_PATH) build the program, and the
    installed program runs under `env -i`: CMake's install-time RUNPATH rewrite keeps the
    store folders."""
    need(bool(shutil.which("cmake") and shutil.which("pkg-config")), "cmake and pkg-config")
    work = tmp_path / tool
    shutil.copytree(site["src"], work)
    (work / "CMakeLists.txt").write_text(CMAKELISTS)
    run = _shell(
        site, tool,
        "module load gcc/12.2.0 openmpi/4.1.4 mpilib"
        " && mpicc prog.c -o pkgprog $(pkg-config --cflags --libs mpilib) -la"
        " && cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$PWD/inst > cmake.log"
        " && cmake --build build > build.log && cmake --install build > install.log"
        " && grep -E '^CMAKE_C_COMPILER:' build/CMakeCache.txt",
        work,
    )  # fmt: skip
    assert run.code == 0, run.out + run.err
    assert "/wrappers/gcc/12.2.0/bin/" in run.out  # CMake found the compiler module's cc
    for binary in (work / "pkgprog", work / "inst" / "bin" / "prog"):
        alone = _env_i(binary, "mpirun.openmpi", "--allow-run-as-root", "-np", "2")
        assert alone.returncode == 0 and alone.stdout.count("of 2: liba") == 2, alone.stderr


def test_a_batch_job_that_loads_nothing_runs_the_program(site, slurm_cluster, tmp_path):
    """Compiled against loaded modules, the program runs on two ranks in a Slurm batch job
    that loads no module and exports nothing (`sbatch --export=NONE`): its RUNPATH is all it
    needs."""
    from tests.slurm_cluster import wait_jobs

    work = tmp_path / "job"
    shutil.copytree(site["src"], work)
    run = _shell(
        site, "lmod",
        "module load gcc/12.2.0 openmpi/4.1.4 mpilib && mpicc prog.c -o prog -lmpilib -la", work,
    )  # fmt: skip
    assert run.code == 0, run.err
    (work / "job.sh").write_text(
        "#!/bin/sh\nexport PATH=/usr/bin:/bin\nenv | grep -c LD_LIBRARY_PATH\n"
        "exec mpirun.openmpi --allow-run-as-root --oversubscribe -np 2 ./prog\n"
    )
    sub = subprocess.run(
        ["sbatch", "--parsable", "--export=NONE", f"--chdir={work}", "-o", str(work / "out"),
         str(work / "job.sh")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip().split(";")[0]
    states = wait_jobs([job], timeout=120)
    out = (work / "out").read_text()
    assert states[job] == "COMPLETED", (states, out)
    assert out.startswith("0\n") and out.count("of 2: liba") == 2, out
