"""A scientist's day one (issue 14), with real packages: a site builds parallel HDF5 1.10.8,
netCDF-C 4.9.0 and FFTW with its MPI interface with gcc-12 + Open MPI 4.1.4 from the upstream
tarballs (seeded offline from Debian's orig tarballs), and a scientist compiles and runs a
parallel netCDF writer through the site's modules. The same recipes (issue 15: one recipe,
an MPI variant) build serial HDF5 and netCDF-C in a second stack of gcc-12 without an MPI.

The tests share one site build (the slow lane: `python -m pytest -m slow`):
- test_site_builds_parallel_netcdf_hdf5_fftw checks the artifacts themselves (no module
  tool involved): parallel HDF5, netCDF-4 with parallel I/O, libfftw3_mpi, and a two-rank
  netCDF write compiled with explicit flags.
- test_serial_stack_builds_the_same_recipes_serial: the serial stack's HDF5 and netCDF-C.
- test_one_module_name_per_variant: `module load gcc netcdf-c` loads the serial build,
  `module load gcc openmpi netcdf-c` the parallel one, with the variant in whatis.
- test_scientist_day_one_through_modules is the scientist's flow through the real Lmod and
  Environment Modules: `module load gcc openmpi netcdf-c`, then `mpicc prog.c -lnetcdf` with
  no other flag, and the program runs after `module purge` with an empty environment. It
  depends on what the modules give a scientist who compiles (README "Compiling against
  loaded modules": compiler and MPI wrappers first on PATH, CPATH, LIBRARY_PATH, RUNPATH).

Sources (tests/upstream_sources.py): Debian repacks HDF5 and zlib, so they are not
byte-identical to the releases the recipes name. Without those releases in HDMOD_UPSTREAM,
the site's copies of hdf5.yaml and zlib.yaml are given Debian's repacks as their sources
(URL and sha256; the build scripts are the recipes' own), and the build test says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from hdmodules.store.home import init_home
from tests.conftest import REPO, need, run_clean, run_hdmod, run_hit
from tests.module_tools import module_shell
from tests.upstream_sources import seed_sources, upstream_folder

pytestmark = pytest.mark.slow

SEEDED = ("zlib", "hdf5", "netcdf-c", "fftw")  # the recipes whose sources the site needs
STACK = "gcc12-openmpi"
PACKAGES = ("hdf5", "netcdf-c", "fftw")
SERIAL_STACK = "gcc12"  # the same recipes, their serial variant
SERIAL_PACKAGES = ("hdf5", "netcdf-c")
MPIRUN = ("mpirun.openmpi", "--allow-run-as-root", "--oversubscribe", "-n", "2")

NC_PAR_WRITE = r"""
/* Every MPI rank writes its own slice of one netCDF-4 variable, in parallel (MPI-IO). */
#include <mpi.h>
#include <netcdf.h>
#include <netcdf_par.h>
#include <stdio.h>

#define PER_RANK 4
#define CHECK(call)                                                                   \
    do {                                                                              \
        int status_ = (call);                                                         \
        if (status_ != NC_NOERR) {                                                    \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, nc_strerror(status_)); \
            MPI_Abort(MPI_COMM_WORLD, 2);                                             \
        }                                                                             \
    } while (0)

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "ranks.nc";
    int rank, size, ncid, dimid, varid, data[PER_RANK];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK(nc_create_par(path, NC_NETCDF4 | NC_CLOBBER, MPI_COMM_WORLD, MPI_INFO_NULL, &ncid));
    CHECK(nc_def_dim(ncid, "x", (size_t)size * PER_RANK, &dimid));
    CHECK(nc_def_var(ncid, "written_by", NC_INT, 1, &dimid, &varid));
    CHECK(nc_put_att_int(ncid, NC_GLOBAL, "ranks", NC_INT, 1, &size));
    CHECK(nc_enddef(ncid));
    /* NC_ENOPAR unless the file really was opened for parallel I/O */
    CHECK(nc_var_par_access(ncid, varid, NC_COLLECTIVE));
    for (int i = 0; i < PER_RANK; i++)
        data[i] = 100 * rank + i;
    size_t start = (size_t)rank * PER_RANK, count = PER_RANK;
    CHECK(nc_put_vara_int(ncid, varid, &start, &count, data));
    CHECK(nc_close(ncid));
    printf("rank %d of %d wrote x[%zu..%zu] of %s (collective MPI-IO)\n", rank, size, start,
           start + count - 1, path);
    MPI_Finalize();
    return 0;
}
"""

FFTW_MPI_2D = r"""
/* A distributed 8x8 complex DFT: each rank owns a block of rows. */
#include <fftw3-mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
    const ptrdiff_t n0 = 8, n1 = 8;
    ptrdiff_t local_n0, local_start, i;
    int rank;
    MPI_Init(&argc, &argv);
    fftw_mpi_init();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ptrdiff_t alloc = fftw_mpi_local_size_2d(n0, n1, MPI_COMM_WORLD, &local_n0, &local_start);
    fftw_complex *data = fftw_alloc_complex(alloc);
    fftw_plan plan = fftw_mpi_plan_dft_2d(n0, n1, data, data, MPI_COMM_WORLD, FFTW_FORWARD,
                                          FFTW_ESTIMATE);
    for (i = 0; i < local_n0 * n1; i++) {
        data[i][0] = 1.0;
        data[i][1] = 0.0;
    }
    fftw_execute(plan);
    printf("rank %d rows %td..%td", rank, local_start, local_start + local_n0 - 1);
    if (local_start == 0)
        printf(" dc %g", data[0][0]);
    printf("\n");
    fftw_destroy_plan(plan);
    fftw_free(data);
    fftw_mpi_cleanup();
    MPI_Finalize();
    return 0;
}
"""


def nc_config(prof: Path, flag: str) -> str:
    """What the profile's `nc-config FLAG` prints, stripped (run in a clean environment)."""
    r = run_clean([str(prof / "bin" / "nc-config"), flag])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def upstream() -> Path:
    return upstream_folder()


@pytest.fixture(scope="module")
def site(tmp_path_factory, upstream):
    """The site, built once: site-configs/pkgs + the stacks gcc12-openmpi and gcc12 (serial),
    Lmod and Tcl trees with modules for gcc-12 and openmpi-4.1.4. Returns a namespace of
    paths."""
    for tool in ("gcc-12", "mpicc.openmpi", "mpirun.openmpi", "readelf"):
        need(shutil.which(tool) is not None, tool)
    base = tmp_path_factory.mktemp("scientist")
    site_dir, root = base / "site", base / "root"
    shutil.copytree(REPO / "site-configs" / "pkgs", site_dir / "pkgs")
    used = seed_sources(site_dir / "pkgs", upstream, SEEDED)
    run_hdmod("externals", "detect", "--write", str(site_dir / "externals.yaml"))
    externals = (site_dir / "externals.yaml").read_text()
    need("  gcc-12:" in externals and "  openmpi-4.1.4:" in externals, "gcc-12 and Open MPI 4.1.4")
    (site_dir / "site.yaml").write_text(
        "package_dirs: [pkgs]\n"
        "externals_from: [externals.yaml]\n"
        "stacks:\n"
        f"  {STACK}:\n"
        "    compiler: gcc-12\n"
        "    mpi: openmpi-4.1.4\n"
        f"    packages: [{', '.join(PACKAGES)}]\n"
        f"  {SERIAL_STACK}:\n"
        "    compiler: gcc-12\n"
        f"    packages: [{', '.join(SERIAL_PACKAGES)}]\n"
        "modules:\n"
        "  formats: [lmod, tcl]\n"
        "  externals: [gcc-12, openmpi-4.1.4]\n"
    )
    # the site root as hdmod makes it (a shared, not private, home), its source cache
    # seeded offline the way a site without internet does: hit fetch --from DIR
    init_home(root, private=False)
    env = {**os.environ, "HIT_HOME": str(root)}
    run_hit("fetch", "--from", str(upstream), env=env, timeout=600)
    start = time.monotonic()
    r = run_hdmod("build", str(site_dir / "site.yaml"), "--root", str(root), "-j", "2",
                  timeout=2700)  # fmt: skip
    wall = time.monotonic() - start
    times = re.findall(r"([\w.+-]+)/(\w+)\s+built in ([\d.]+) s", r.stderr)
    print("\nsources:")
    for name, what in used.items():
        print(f"  {name}: {what}")
        if "repack" in what:
            warnings.warn(f"{name} built from {what}", stacklevel=1)
    stacks = f"{STACK} ({', '.join(PACKAGES)}), {SERIAL_STACK} ({', '.join(SERIAL_PACKAGES)})"
    print(f"hdmod build of {stacks}: {wall:.0f} s wall, -j 2")
    for name, short, seconds in times:
        print(f"  {name}/{short}: built in {seconds} s")
    built = sorted(name for name, _short, _s in times)
    # zlib, a dependency of hdf5 and netcdf-c, is one artifact for both gcc-12 stacks
    assert built == sorted((*PACKAGES, *SERIAL_PACKAGES, "zlib")), r.stderr
    profile = root / "profiles" / STACK
    return SimpleNamespace(
        root=root, profile=profile, serial=root / "profiles" / SERIAL_STACK, env=env,
        externals=externals,
    )  # fmt: skip


def artifact(site, name: str, profile: Path | None = None) -> Path:
    """The prefix of `name` in a stack's profile (the MPI stack's by default): the artifact
    its profile document lists (each package is built once per variant)."""
    profile = Path(os.path.realpath(profile or site.profile))
    listed = json.loads((profile / ".hit" / "build.json").read_text())["artifacts"][name]
    (prefix,) = (
        p
        for p in (site.root / "bld" / name).iterdir()
        if json.loads((p / ".hit" / "build.json").read_text())["id"] == listed
    )
    return prefix


def dynamic(path: Path) -> tuple[list[str], str]:
    """NEEDED entries and RUNPATH of an ELF file."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", out)
    runpath = re.findall(r"\(RUNPATH\).*\[(.+)\]", out)
    return needed, runpath[0] if runpath else ""


def mpicc_env(site) -> list[str]:
    """`env -i` plus what the pinned Open MPI's mpicc needs to call the pinned gcc-12."""
    gcc = re.search(r'"cc": "([^"]+gcc-12)"', site.externals).group(1)
    return ["env", "-i", "PATH=/usr/bin:/bin", f"OMPI_CC={gcc}"]


def test_site_builds_parallel_netcdf_hdf5_fftw(site, tmp_path):
    """The artifacts, without any module tool: what the site built is parallel HDF5,
    netCDF-4 with parallel I/O (no DAP, zlib from the store: no host library), FFTW's MPI
    library, and
    a program linked against them writes one netCDF-4 file from two ranks."""
    assert run_hit("verify", env=site.env).code == 0
    prof, hdf5, netcdf = site.profile, artifact(site, "hdf5"), artifact(site, "netcdf-c")

    # netCDF-C: version, netCDF-4 on HDF5, parallel I/O, nothing remote
    assert nc_config(prof, "--version") == "netCDF 4.9.0"
    assert nc_config(prof, "--has-nc4") == nc_config(prof, "--has-hdf5") == "yes"
    assert nc_config(prof, "--has-parallel4") == nc_config(prof, "--has-parallel") == "yes"
    assert nc_config(prof, "--has-dap") == "no"
    assert nc_config(prof, "--cc") == "/usr/bin/mpicc.openmpi"
    usage = run_clean([str(prof / "bin" / "ncdump")])  # usage, with the library version
    assert "netcdf library version 4.9.0" in usage.stdout + usage.stderr
    needed, runpath = dynamic(Path(os.path.realpath(prof / "lib" / "libnetcdf.so")))
    assert {"libhdf5_hl.so.100", "libhdf5.so.103", "libmpi.so.40"} <= set(needed), needed
    assert not [n for n in needed if re.match(r"lib(curl|xml2|bz2|zstd|blosc|sz|zip)\.", n)]
    assert str(hdf5 / "lib") in runpath.split(":")

    # HDF5: parallel, compiled with the stack's MPI, deflate from zlib
    settings = (prof / "lib" / "libhdf5.settings").read_text()
    assert re.search(r"Parallel HDF5: yes", settings), settings
    assert "deflate(zlib)" in settings
    (zlib,) = (site.root / "bld" / "zlib").iterdir()  # a dependency, one for both stacks
    for lib in (hdf5 / "lib" / "libhdf5.so", netcdf / "lib" / "libnetcdf.so"):
        needed, runpath = dynamic(Path(os.path.realpath(lib)))
        assert str(zlib / "lib") in runpath.split(":"), (lib, runpath)
    show = run_clean([str(prof / "bin" / "h5pcc"), "-show"])
    assert show.returncode == 0 and show.stdout.startswith("/usr/bin/mpicc.openmpi "), show
    assert "libmpi.so.40" in dynamic(Path(os.path.realpath(prof / "lib" / "libhdf5.so")))[0]
    assert (prof / "bin" / "ph5diff").exists()

    # FFTW +mpi: its MPI interface beside libfftw3, in the one fftw artifact
    fftw = artifact(site, "fftw")
    needed, runpath = dynamic(fftw / "lib" / "libfftw3_mpi.so")
    assert {"libfftw3.so.3", "libmpi.so.40"} <= set(needed), needed
    assert str(fftw / "lib") in runpath.split(":")
    assert (prof / "include" / "fftw3-mpi.h").exists() and (prof / "include" / "fftw3.h").exists()
    spec = json.loads((fftw / ".hit" / "build.json").read_text())
    assert spec["parameters"] == {"mpi": True, "simd": True} and "mpi" in spec["toolchain"]

    # Two ranks through the artifacts, flags spelt out (the module flow is the next test)
    (tmp_path / "nc_par_write.c").write_text(NC_PAR_WRITE)
    (tmp_path / "fftw_mpi_2d.c").write_text(FFTW_MPI_2D)
    cc = [*mpicc_env(site), "/usr/bin/mpicc.openmpi", "-Wall", "-Werror"]
    subprocess.run(
        [*cc, "nc_par_write.c", "-o", "nc_par_write", f"-I{netcdf}/include",
         f"-L{netcdf}/lib", f"-Wl,-rpath,{netcdf}/lib", "-lnetcdf"],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    subprocess.run(
        [*cc, "fftw_mpi_2d.c", "-o", "fftw_mpi_2d", f"-I{fftw}/include", f"-L{fftw}/lib",
         f"-Wl,-rpath,{fftw}/lib", "-lfftw3_mpi", "-lfftw3"],
        cwd=tmp_path, check=True,
    )  # fmt: skip
    run = ["env", "-i", "PATH=/usr/bin:/bin", *MPIRUN]  # MPI_Init looks ssh/rsh up on PATH
    r = subprocess.run([*run, "./nc_par_write", "ranks.nc"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rank 0 of 2 wrote x[0..3]" in r.stdout and "rank 1 of 2 wrote x[4..7]" in r.stdout
    dump = run_clean([str(prof / "bin" / "ncdump"), "-v", "written_by", str(tmp_path / "ranks.nc")])
    assert dump.returncode == 0, dump.stderr
    assert "written_by = 0, 1, 2, 3, 100, 101, 102, 103 ;" in dump.stdout, dump.stdout
    kind = run_clean([str(prof / "bin" / "ncdump"), "-k", str(tmp_path / "ranks.nc")])
    assert kind.stdout.strip() == "netCDF-4"
    r = subprocess.run([*run, "./fftw_mpi_2d"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rank 0 rows 0..3 dc 64" in r.stdout and "rank 1 rows 4..7" in r.stdout, r.stdout


def test_serial_stack_builds_the_same_recipes_serial(site):
    """The gcc12 stack (no MPI) builds hdf5.yaml and netcdf-c.yaml as their serial variant
    (`mpi: auto` is off): other artifacts than the MPI stack's, no libmpi, no parallel I/O,
    built with gcc-12 itself; the variant is in each build spec."""
    prof = site.serial
    for name in SERIAL_PACKAGES:
        serial, parallel = artifact(site, name, prof), artifact(site, name)
        assert serial != parallel
        spec = json.loads((serial / ".hit" / "build.json").read_text())
        assert spec["parameters"] == {"mpi": False} and "mpi" not in spec["toolchain"], spec

    assert nc_config(prof, "--version") == "netCDF 4.9.0"
    assert nc_config(prof, "--has-nc4") == nc_config(prof, "--has-hdf5") == "yes"
    assert nc_config(prof, "--has-parallel4") == nc_config(prof, "--has-parallel") == "no"
    assert "mpicc" not in nc_config(prof, "--cc") and "gcc-12" in nc_config(prof, "--cc")
    needed, runpath = dynamic(Path(os.path.realpath(prof / "lib" / "libnetcdf.so")))
    assert {"libhdf5_hl.so.100", "libhdf5.so.103"} <= set(needed), needed
    assert not [n for n in needed if n.startswith("libmpi")], needed
    assert str(artifact(site, "hdf5", prof) / "lib") in runpath.split(":")
    settings = (prof / "lib" / "libhdf5.settings").read_text()
    assert re.search(r"Parallel HDF5: no", settings), settings
    assert (prof / "bin" / "h5cc").exists() and not (prof / "bin" / "h5pcc").exists()


# A serial and a parallel netcdf-c under one name: which one a shell gets follows the MPI.
VARIANTS = """
module use {core} || exit 10
module load gcc netcdf-c || exit 11
echo "serial=$(nc-config --has-parallel4) root=$NETCDF_C_ROOT"
module whatis netcdf-c 2>&1
module load openmpi {reload} || exit 12
echo "parallel=$(nc-config --has-parallel4) root=$NETCDF_C_ROOT"
module whatis netcdf-c 2>&1
"""


@pytest.mark.parametrize("tool", ["lmod", "tcl"])
def test_one_module_name_per_variant(site, tools, tool):
    """`module load gcc netcdf-c` loads the serial build (the compiler's level), and with
    openmpi loaded the parallel one (the MPI's level): one name, `netcdf-c/4.9.0`, and the
    variant in whatis. Lmod reloads netcdf-c from the MPI's level when openmpi is loaded;
    Environment Modules does not reload it (it is loaded again by name)."""
    core = site.root / "modules" / tool / "Core"
    reload = "" if tool == "lmod" else "&& module unload netcdf-c && module load netcdf-c"
    r = module_shell(tool, VARIANTS.format(core=core, reload=reload), capture_env=False)
    assert r.code == 0, f"{tool}: step {r.code}\n{r.out}\n{r.err}"
    serial, _, parallel = r.out.partition("parallel=")
    assert "serial=no" in serial and "Variant: mpi=off" in serial, r.out
    assert parallel.startswith("yes") and "Variant: mpi=on" in parallel, r.out
    assert f"root={artifact(site, 'netcdf-c', site.serial)}" in serial
    assert f"root={artifact(site, 'netcdf-c')}" in parallel


# Each step exits with its own code, so a failure names the step.
DAY_ONE = """
module use {core} || exit 10
module load gcc openmpi netcdf-c || exit 11
cd {work} || exit 12
mpicc nc_par_write.c -o nc_par_write -lnetcdf || exit 13
mpirun.openmpi --allow-run-as-root --oversubscribe -n 2 ./nc_par_write ranks.nc || exit 14
echo "== ncdump"
ncdump ranks.nc || exit 15
module load fftw || exit 19
mpicc fftw_mpi_2d.c -o fftw_mpi_2d -lfftw3_mpi -lfftw3 -lm || exit 20
module purge || exit 16
echo "== after purge"
env -i PATH=/usr/bin:/bin ./nc_par_write alone.nc || exit 17
env -i PATH=/usr/bin:/bin mpirun.openmpi --allow-run-as-root --oversubscribe -n 2 \\
    ./nc_par_write purged.nc || exit 18
env -i PATH=/usr/bin:/bin mpirun.openmpi --allow-run-as-root --oversubscribe -n 2 \\
    ./fftw_mpi_2d || exit 21
"""
STEPS = {
    10: "module use",
    11: "module load gcc openmpi netcdf-c",
    12: "cd",
    13: "mpicc nc_par_write.c -o nc_par_write -lnetcdf (no other flag)",
    14: "mpirun -n 2 ./nc_par_write",
    15: "ncdump ranks.nc",
    16: "module purge",
    17: "env -i PATH=/usr/bin:/bin ./nc_par_write (RUNPATH only)",
    18: "env -i mpirun -n 2 ./nc_par_write after module purge",
    19: "module load fftw (its MPI variant, at openmpi's level)",
    20: "mpicc fftw_mpi_2d.c -lfftw3_mpi -lfftw3 -lm (no other flag)",
    21: "env -i mpirun -n 2 ./fftw_mpi_2d after module purge",
}


@pytest.mark.parametrize("tool", ["lmod", "tcl"])
def test_scientist_day_one_through_modules(site, tools, tool, tmp_path):
    """Through the modules only (README "Compiling against loaded modules", issue 14): in a
    clean shell with the real module tool, `module load gcc openmpi netcdf-c`,
    compile with `mpicc ... -lnetcdf` and nothing else, run on two ranks, read the file back
    with ncdump; `module load fftw` (the MPI variant) and `mpicc ... -lfftw3_mpi -lfftw3 -lm`; after
    `module purge` the programs still run with an empty environment
    (`env -i`: its RUNPATH finds libnetcdf and libhdf5). Open MPI's MPI_Init looks its
    launcher (ssh/rsh) up on PATH even for a local run, so the runs after the purge get
    PATH=/usr/bin:/bin and nothing else: no library path."""
    work = tmp_path / "day-one"
    work.mkdir()
    (work / "nc_par_write.c").write_text(NC_PAR_WRITE)
    (work / "fftw_mpi_2d.c").write_text(FFTW_MPI_2D)
    core = site.root / "modules" / tool / "Core"
    r = module_shell(tool, DAY_ONE.format(core=core, work=work), capture_env=False)
    assert r.code == 0, (
        f"{tool}: step failed ({r.code}): {STEPS.get(r.code, '?')}\n"
        f"--- stdout\n{r.out}\n--- stderr\n{r.err}"
    )
    ranks, _, after = r.out.partition("== ncdump")
    assert "rank 0 of 2 wrote x[0..3]" in ranks and "rank 1 of 2 wrote x[4..7]" in ranks, r.out
    assert "written_by = 0, 1, 2, 3, 100, 101, 102, 103 ;" in after, r.out
    assert ":ranks = 2 ;" in after, r.out
    _, _, purged = r.out.partition("== after purge")
    assert "rank 0 of 1 wrote x[0..3] of alone.nc" in purged, r.out
    assert "rank 1 of 2 wrote x[4..7] of purged.nc" in purged, r.out
    assert "rank 0 rows 0..3 dc 64" in purged and "rank 1 rows 4..7" in purged, r.out
    # linked against the stack's artifacts (Open MPI's libmpi, this netCDF), through RUNPATH
    needed, runpath = dynamic(work / "nc_par_write")
    assert "libmpi.so.40" in needed and "libnetcdf.so.19" in needed, needed
    assert str(artifact(site, "netcdf-c") / "lib") in runpath.split(":"), runpath
    dump = run_clean([str(site.profile / "bin" / "ncdump"), str(work / "purged.nc")])
    assert "written_by = 0, 1, 2, 3, 100, 101, 102, 103 ;" in dump.stdout, dump.stdout
