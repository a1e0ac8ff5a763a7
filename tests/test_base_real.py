"""The curated base (issue 15, item 7), for real: zlib, xz, zstd, m4, libpng, gsl, OpenBLAS
and netcdf-fortran from site-configs/pkgs, built from their upstream sources seeded offline
(Debian's orig tarballs, tests/tools/fetch-upstream-sources.sh) with gcc-12 + Open MPI
4.1.4, as the gcc12-openmpi stack of site-configs/hpc/site.yaml builds them.

The slow lane (`python -m pytest -m slow`): one profile build, then each package's programs
and libraries used with an empty environment (`env -i`): the programs themselves, and small
C and Fortran programs compiled here against the artifacts (a PNG written and read back, GSL
with its own CBLAS and with OpenBLAS's, a BLAS dgemm and a LAPACK dgesv/dsyev through
OpenBLAS on two of its run-time kernels, a netCDF-4 file written and read from Fortran).
The build prints each package's build time (README, "Real packages, offline").

Sources: xz, m4, libpng and netcdf-c are Debian's orig tarballs byte for byte. zlib, zstd,
gsl, OpenBLAS, netcdf-fortran and hdf5 are Debian repacks, not byte-identical to the releases
the recipes name (each recipe says what Debian removed): a release in HDMOD_UPSTREAM is used
as it is; else the copy of the recipe given to the build names the repack instead (only
`sources:` changes), and the test says so. OpenBLAS's repack has no LAPACK (lapack-netlib/
is removed), so from it the build sets `lapack: false` and the LAPACK checks are skipped
with a warning: put the release OpenBLAS-0.3.21.tar.gz in HDMOD_UPSTREAM to test LAPACK.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from hdmodules.spec.resolve import resolve
from hdmodules.spec.site import load_site
from tests.conftest import REPO, need, run_clean, run_hit
from tests.upstream_sources import SOURCES, seed_sources, upstream_folder

PKGS = REPO / "site-configs" / "pkgs"
SITE = REPO / "site-configs" / "hpc" / "site.yaml"
BASE = ("zlib", "xz", "zstd", "m4", "libpng", "gsl", "openblas", "netcdf-fortran")
# built as dependencies of BASE: lz4 (zstd), hdf5 and netcdf-c (netcdf-fortran)
DEPENDENCIES = ("lz4", "hdf5", "netcdf-c")


@pytest.fixture(scope="module")
def upstream() -> Path:
    return upstream_folder()


def detect_externals(dest: Path) -> str:
    run_hit("externals", "detect", "--write", str(dest))
    text = dest.read_text()
    need("  gcc-12:" in text and "  openmpi-4.1.4:" in text, "gcc-12 and Open MPI 4.1.4")
    return text


def test_hpc_site_offers_the_base(tmp_path):
    """site-configs/hpc/site.yaml loads and both stacks resolve over site-configs/pkgs (no
    build), each with the whole base: gcc-12 + Open MPI with the MPI variants of fftw, hdf5,
    netcdf-c and netcdf-fortran, gcc-11 with every package serial; no recipe asks for an
    exception to the library check (allow_host_libs)."""
    for tool in ("gcc-11", "gcc-12", "mpicc.openmpi"):
        need(shutil.which(tool) is not None, tool)
    (tmp_path / "hpc").mkdir()
    shutil.copy(SITE, tmp_path / "hpc" / "site.yaml")
    shutil.copytree(PKGS, tmp_path / "pkgs")
    externals = detect_externals(tmp_path / "hpc" / "externals.yaml")
    need("  gcc-11:" in externals, "gcc-11")
    site = load_site(tmp_path / "hpc" / "site.yaml")
    stacks = {s.name: s for s in site.stacks}
    assert set(stacks) == {"gcc12-openmpi", "gcc11"}
    for name, stack in stacks.items():
        resolved = resolve(stack.profile)
        assert set(BASE) <= set(resolved.packages), name
        with_mpi = {n for n, node in resolved.nodes.items() if "mpi" in node.toolchain}
        # the library check passes with no host library beyond the base set (issue 15, 7)
        excepted = {n: node.recipe.allow_host_libs for n, node in resolved.nodes.items()}
        assert not any(excepted.values()), excepted
        if name == "gcc11":
            assert not with_mpi, with_mpi
        else:
            assert with_mpi == {"fftw", "hdf5", "netcdf-c", "netcdf-fortran"}, with_mpi


@pytest.fixture(scope="module")
def base(tmp_path_factory, upstream):
    """The base, built once with gcc-12 + Open MPI 4.1.4 (the site's gcc12-openmpi stack's
    toolchain) into a fresh home. Returns a namespace of paths."""
    for tool in ("gcc-12", "gfortran-12", "mpicc.openmpi", "readelf"):
        need(shutil.which(tool) is not None, tool)
    work = tmp_path_factory.mktemp("base")
    shutil.copytree(PKGS, work / "pkgs")
    used = seed_sources(work / "pkgs", upstream)
    lapack = "Debian's repack" not in used["openblas"]
    detect_externals(work / "externals.yaml")
    packages = "".join(
        f"  {name}:\n"
        + ("" if lapack or name != "openblas" else "    parameters: {lapack: false}\n")
        for name in BASE
    )
    profile = work / "base.yaml"
    profile.write_text(
        "extends: [externals.yaml]\n"
        "package_dirs: [pkgs]\n"
        "toolchain: {compiler: gcc-12, mpi: openmpi-4.1.4}\n"
        f"packages:\n{packages}"
    )
    home = work / "home"
    env = {**os.environ, "HIT_HOME": str(home)}
    run_hit("fetch", "--from", str(upstream), env=env, timeout=600)
    start = time.monotonic()
    r = run_hit("build", "-j", "2", str(profile), env=env, timeout=5000)
    wall = time.monotonic() - start
    times = dict(re.findall(r"([\w.+-]+)/\w+\s+built in ([\d.]+) s", r.err))
    print("\nsources:")
    for name, what in used.items():
        print(f"  {name}: {what}")
    print(f"hit build of {', '.join(BASE)} with gcc-12 + Open MPI 4.1.4: {wall:.0f} s wall, -j 2")
    for name, seconds in times.items():
        print(f"  {name}: built in {seconds} s")
    for name, what in used.items():
        if "repack" in what:
            warnings.warn(f"{name} built from {what}", stacklevel=1)
    if not lapack:
        warnings.warn(
            f"OpenBLAS built without LAPACK (Debian's repack has no lapack-netlib/): put "
            f"{SOURCES['openblas'].release} in {upstream} to build and test it",
            stacklevel=1,
        )
    assert set(times) == set(BASE) | set(DEPENDENCIES), r.err
    gcc = re.search(r'"cc": "([^"]+gcc-12)"', (work / "externals.yaml").read_text()).group(1)
    return SimpleNamespace(
        home=home, env=env, profile=work / "base", lapack=lapack, gcc=gcc, work=work
    )


def artifact(base, name: str) -> Path:
    (prefix,) = (base.home / "bld" / name).iterdir()
    return prefix


def dynamic(path: Path) -> tuple[list[str], list[str]]:
    """NEEDED entries and RUNPATH folders of an ELF file."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    runpath = re.findall(r"\(RUNPATH\).*\[(.+)\]", out)
    return re.findall(r"\(NEEDED\).*\[(.+)\]", out), runpath[0].split(":") if runpath else []


def compile_against(base, tmp: Path, source: str, text: str, *deps: str, libs: str = "") -> Path:
    """Compile `text` (C with gcc-12, Fortran with gfortran-12) against the artifacts of
    `deps`, RUNPATH to their lib folders; the program's path."""
    (tmp / source).write_text(text)
    prefixes = [artifact(base, d) for d in deps]
    compiler = base.gcc if source.endswith(".c") else base.gcc.replace("gcc-12", "gfortran-12")
    out = tmp / source.rsplit(".", 1)[0]
    cmd = [compiler, "-Wall", "-o", str(out), str(tmp / source)]
    cmd += [f"-I{p}/include" for p in prefixes] + [f"-L{p}/lib" for p in prefixes]
    cmd += [f"-Wl,-rpath,{':'.join(f'{p}/lib' for p in prefixes)}", *libs.split()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return out


@pytest.mark.slow
def test_base_builds_and_verifies(base):
    """Every artifact passed the library check on its ELF files and link metadata (or it
    would not be built) and re-hashes to its manifest."""
    assert run_hit("verify", env=base.env).code == 0
    # the optimised BLAS links the compiler's Fortran runtime (the compiler external's
    # libs), never OpenMP (pthreads), and nothing of the host's beyond the base set
    needed, _ = dynamic(Path(os.path.realpath(base.profile / "lib" / "libopenblas.so")))
    assert "libgomp.so.1" not in needed, needed
    if base.lapack:
        assert "libgfortran.so.5" in needed, needed
    # zstd's programs read gzip, xz and lz4 through the store's zlib, liblzma and liblz4
    needed, runpath = dynamic(Path(os.path.realpath(base.profile / "bin" / "zstd")))
    assert {"libz.so.1", "liblzma.so.5", "liblz4.so.1"} <= set(needed), needed
    for dep in ("zlib", "xz", "lz4"):
        assert f"{artifact(base, dep)}/lib" in runpath, (dep, runpath)
    # libpng links the zlib artifact, not the host's zlib1g
    _, runpath = dynamic(Path(os.path.realpath(base.profile / "lib" / "libpng16.so")))
    assert f"{artifact(base, 'zlib')}/lib" in runpath, runpath


@pytest.mark.slow
def test_compression_tools_run_with_empty_environment(base, tmp_path):
    prof = base.profile / "bin"
    assert run_clean([str(prof / "xz"), "--version"]).stdout.startswith("xz (XZ Utils) 5.4.1")
    assert "v1.5.4" in run_clean([str(prof / "zstd"), "-V"]).stdout
    data = tmp_path / "data.txt"
    data.write_text("hdmodules curated base " * 5000)
    # xz round trip
    assert run_clean([str(prof / "xz"), "-k", str(data)]).returncode == 0
    assert run_clean([str(prof / "xz"), "-dc", f"{data}.xz"]).stdout == data.read_text()
    # zstd: its own format, and gzip/xz/lz4 through the dependencies' libraries, each read
    # back by another tool
    for fmt, suffix, check in (
        ("zstd", "zst", [str(prof / "zstd"), "-dc"]),
        ("gzip", "gz", ["gzip", "-dc"]),
        ("xz", "xz2", [str(prof / "xz"), "-dc", "--format=xz"]),
        ("lz4", "lz4", [str(prof / "zstd"), "-dc", "--format=lz4"]),
    ):
        out = tmp_path / f"data.{suffix}"
        r = run_clean([str(prof / "zstd"), "-q", f"--format={fmt}", str(data), "-o", str(out)])
        assert r.returncode == 0, (fmt, r.stderr)
        back = subprocess.run([*check, str(out)], capture_output=True, text=True)
        assert back.stdout == data.read_text(), (fmt, back.stderr)
    # m4
    r = run_clean([str(prof / "m4")], input="define(`greet', `hello $1')greet(`world')\n")
    assert r.stdout == "hello world\n", r
    assert run_clean([str(prof / "m4"), "--version"]).stdout.startswith("m4 (GNU M4) 1.4.19")


PNG_ROUNDTRIP = r"""
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

int main(int argc, char **argv) {
    png_byte pixels[8] = {0, 32, 64, 96, 128, 160, 192, 255}, back[8];
    png_image out, in;
    memset(&out, 0, sizeof out);
    out.version = PNG_IMAGE_VERSION;
    out.width = 4;
    out.height = 2;
    out.format = PNG_FORMAT_GRAY;
    if (!png_image_write_to_file(&out, argv[1], 0, pixels, 0, NULL)) return 1;
    memset(&in, 0, sizeof in);
    in.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&in, argv[1])) return 2;
    in.format = PNG_FORMAT_GRAY;
    if (!png_image_finish_read(&in, NULL, back, 0, NULL)) return 3;
    printf("libpng %s zlib %s %ux%u same %d\n", png_get_libpng_ver(NULL), zlibVersion(),
           (unsigned)in.width, (unsigned)in.height, memcmp(pixels, back, 8) == 0);
    return 0;
}
"""


@pytest.mark.slow
def test_libpng_writes_and_reads_a_png(base, tmp_path):
    prog = compile_against(base, tmp_path, "png.c", PNG_ROUNDTRIP, "libpng", "zlib",
                           libs="-lpng16 -lz")  # fmt: skip
    r = run_clean([str(prog), str(tmp_path / "gray.png")])
    assert r.stdout == "libpng 1.6.39 zlib 1.2.13 4x2 same 1\n", r
    assert (tmp_path / "gray.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        run_clean([str(base.profile / "bin" / "pngfix"), str(tmp_path / "gray.png")]).returncode
        == 0
    )


GSL_PROG = r"""
#include <gsl/gsl_blas.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_version.h>
#include <stdio.h>

int main(void) {
    double a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8}, c[] = {0, 0, 0, 0};
    gsl_matrix_view A = gsl_matrix_view_array(a, 2, 2), B = gsl_matrix_view_array(b, 2, 2),
                    C = gsl_matrix_view_array(c, 2, 2);
    gsl_blas_dgemm(CblasNoTrans, CblasNoTrans, 1.0, &A.matrix, &B.matrix, 0.0, &C.matrix);
    printf("gsl %s J0(5) %.6f dgemm %g %g %g %g\n", gsl_version, gsl_sf_bessel_J0(5.0), c[0],
           c[1], c[2], c[3]);
    return 0;
}
"""


@pytest.mark.slow
def test_gsl_with_its_cblas_and_with_openblas(base, tmp_path):
    """gsl-randist and gsl-histogram run; a program links GSL with GSL's own CBLAS, and
    with OpenBLAS's CBLAS instead (the usual way to make GSL fast)."""
    bin_ = base.profile / "bin"
    r = run_clean([str(bin_ / "gsl-randist"), "0", "4", "gaussian", "1.0"])
    assert r.returncode == 0 and len(r.stdout.split()) == 4, r
    hist = run_clean([str(bin_ / "gsl-histogram"), "0", "10", "2"], input="1\n2\n7\n")
    assert hist.returncode == 0 and len(hist.stdout.splitlines()) == 2, hist
    expected = "gsl 2.7.1 J0(5) -0.177597 dgemm 19 22 43 50\n"
    own = compile_against(base, tmp_path, "gsl_own.c", GSL_PROG, "gsl", libs="-lgsl -lgslcblas -lm")
    assert run_clean([str(own)]).stdout == expected
    fast = compile_against(base, tmp_path, "gsl_fast.c", GSL_PROG, "gsl", "openblas",
                           libs="-lgsl -lopenblas -lm")  # fmt: skip
    assert run_clean([str(fast)]).stdout == expected
    needed, _ = dynamic(fast)
    assert "libopenblas.so.0" in needed and "libgslcblas.so.0" not in needed, needed


BLAS_PROG = r"""
#include <cblas.h>
#include <stdio.h>
#ifdef WITH_LAPACK
#include <lapacke.h>
#endif

int main(void) {
    /* C = A B with A 2x3, B 3x2 (row major) */
    double a[] = {1, 2, 3, 4, 5, 6}, b[] = {7, 8, 9, 10, 11, 12}, c[4] = {0};
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1.0, a, 3, b, 2, 0.0, c, 2);
    printf("dgemm %g %g %g %g\n", c[0], c[1], c[2], c[3]);
#ifdef WITH_LAPACK
    /* 2x + y + z = 4, x + 3y + 2z = 5, x = 6: dgesv (OpenBLAS's own LU) */
    double m[] = {2, 1, 1, 1, 3, 2, 1, 0, 0}, rhs[] = {4, 5, 6};
    lapack_int ipiv[3];
    lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, 3, 1, m, 3, ipiv, rhs, 1);
    printf("dgesv %d %g %g %g\n", (int)info, rhs[0], rhs[1], rhs[2]);
    /* eigenvalues of [[2,1],[1,2]]: dsyev, from the Fortran LAPACK OpenBLAS bundles */
    double s[] = {2, 1, 1, 2}, w[2];
    info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', 2, s, 2, w);
    printf("dsyev %d %g %g\n", (int)info, w[0], w[1]);
#endif
    printf("core %s\n", openblas_get_corename());
    return 0;
}
"""


@pytest.mark.slow
def test_openblas_dgemm_dgesv_on_two_kernels(base, tmp_path):
    """A dgemm through CBLAS and a dgesv and dsyev through LAPACKE, run with an empty
    environment on the kernel DYNAMIC_ARCH picks for this CPU, and again with
    OPENBLAS_CORETYPE=Prescott (the oldest x86-64 kernels): the same answers, so one
    artifact serves every x86-64 node."""
    config = (base.profile / "lib" / "pkgconfig" / "openblas.pc").read_text()
    assert "DYNAMIC_ARCH=1" in config and "USE_OPENMP=0" in config and "MAX_THREADS=256" in config
    flags = "-DWITH_LAPACK " if base.lapack else ""
    prog = compile_against(base, tmp_path, "blas.c", BLAS_PROG, "openblas",
                           libs=f"{flags}-lopenblas")  # fmt: skip
    here = run_clean([str(prog)])
    old = run_clean(["OPENBLAS_CORETYPE=Prescott", str(prog)])
    for r in (here, old):
        assert r.returncode == 0, r
        assert "dgemm 58 64 139 154\n" in r.stdout, r.stdout
        if base.lapack:
            assert "dgesv 0 6 15 -23\n" in r.stdout, r.stdout
            assert "dsyev 0 1 3\n" in r.stdout, r.stdout
    assert old.stdout.splitlines()[-1].lower() == "core prescott", old.stdout
    print(f"\nOpenBLAS on this CPU: {here.stdout.splitlines()[-1]}")
    if not base.lapack:
        pytest.skip("OpenBLAS without LAPACK (built from Debian's repack): dgesv not tested")


NF_PROG = """
program nf_roundtrip
  use netcdf
  implicit none
  character(len=256) :: path
  integer :: ncid, dimid, varid, i
  integer :: squares(5), back(5)
  call get_command_argument(1, path)
  squares = [(i * i, i = 1, 5)]
  call check(nf90_create(trim(path), ior(NF90_CLOBBER, NF90_NETCDF4), ncid))
  call check(nf90_def_dim(ncid, "x", 5, dimid))
  call check(nf90_def_var(ncid, "squares", NF90_INT, [dimid], varid))
  call check(nf90_enddef(ncid))
  call check(nf90_put_var(ncid, varid, squares))
  call check(nf90_close(ncid))
  call check(nf90_open(trim(path), NF90_NOWRITE, ncid))
  call check(nf90_inq_varid(ncid, "squares", varid))
  call check(nf90_get_var(ncid, varid, back))
  call check(nf90_close(ncid))
  print '(a, 5i3)', 'read back', back
contains
  subroutine check(status)
    integer, intent(in) :: status
    if (status /= nf90_noerr) then
      print *, trim(nf90_strerror(status))
      stop 2
    end if
  end subroutine check
end program nf_roundtrip
"""


@pytest.mark.slow
def test_netcdf_fortran_writes_netcdf4_from_fortran(base, tmp_path):
    """nf-config runs with an empty environment, and a Fortran 90 program compiled against
    the netcdf module writes a netCDF-4 file that it and ncdump read back."""
    nf_config = base.profile / "bin" / "nf-config"
    assert run_clean([str(nf_config), "--version"]).stdout.strip() == "netCDF-Fortran 4.5.4"
    assert run_clean([str(nf_config), "--has-nc4"]).stdout.strip() == "yes"
    assert run_clean([str(nf_config), "--fc"]).stdout.strip() == "/usr/bin/mpifort.openmpi"
    prog = compile_against(base, tmp_path, "nf.f90", NF_PROG, "netcdf-fortran",
                           libs="-lnetcdff")  # fmt: skip
    r = run_clean([str(prog), str(tmp_path / "squares.nc")])
    assert r.stdout.strip() == "read back  1  4  9 16 25", r
    ncdump = artifact(base, "netcdf-c") / "bin" / "ncdump"
    assert run_clean([str(ncdump), "-k", str(tmp_path / "squares.nc")]).stdout.strip() == "netCDF-4"
    dump = run_clean([str(ncdump), "-v", "squares", str(tmp_path / "squares.nc")]).stdout
    assert "squares = 1, 4, 9, 16, 25 ;" in dump, dump
    # libnetcdff links the stack's netCDF-C (parallel, on Open MPI) through RUNPATH
    needed, runpath = dynamic(Path(os.path.realpath(base.profile / "lib" / "libnetcdff.so")))
    assert "libnetcdf.so.19" in needed, needed
    assert f"{artifact(base, 'netcdf-c')}/lib" in runpath, runpath
