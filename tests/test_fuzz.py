"""Random and mutated YAML fed to every loader, hostile archives fed to the unpacker: a HitError
or a result, never anything else."""

import os
import re
import stat
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hdmodules.errors import HitError
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.recipes import load_recipe
from hdmodules.spec.resolve import resolve
from hdmodules.spec.site import load_site
from hdmodules.store.home import load_home
from tests.conftest import DEMO

EXTERNALS = (
    "externals:\n"
    "  gcc-12: {kind: compiler, version: 12.2.0, commands: {cc: /usr/bin/gcc}}\n"
    "  gcc-11: {kind: compiler, version: 11.3.0, commands: {cc: /usr/bin/gcc}}\n"
    "  openmpi-4.1.4: {kind: mpi, version: 4.1.4, commands: {mpicc: /usr/bin/mpicc}}\n"
)
SEEDS = [
    (DEMO / "pkgs" / "app.yaml").read_text(),
    (DEMO / "pkgs" / "libcore.yaml").read_text(),
    (DEMO / "default.yaml").read_text(),
    "extends: [a.yaml]\nparameters: {x: 1}\npackages:\n  a: {parameters: {y: [1, 2]}}\n",
    "store: bld\nmirrors: [a, 'http://x']\njobs: 2\nhost_libs: [libz.so.1]\n",
    (DEMO / "site.yaml").read_text(),
    EXTERNALS,
    "&a [*a]\n",
    # variants and versions (issue 15)
    'version: "2.0"\nparameters: {mpi: auto, q: false, p: x}\nwhen:\n  +mpi ~q:\n'
    "    toolchain: [mpi]\n    dependencies: [liba]\n  p=y: {environment: {A: b}, description: d}\n"
    'versions:\n  "2.0": {path: .}\n  "1.0": [{path: .}]\nbuild: "true"\n',
    'package_dirs: [pkgs]\ntoolchain: {mpi: openmpi-4.1.4}\npackages:\n  app: {version: "1.0"}\n',
    # what a block adds (arguments, patches) and version conditions
    'version: "2.0"\nparameters: {mpi: true}\nbuild_system: make\nwhen:\n  "+mpi @1.0:2":\n'
    '    toolchain: [mpi]\n    make_args: ["CC={MPICC}"]\n    patches: [{path: liba.yaml}]\n'
    '  "~mpi @:2.0": {install_args: [a]}\n',
    "a: &x {b: *x}\n",
]

settings.register_profile("hd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hd")


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for pos, cut, insert in edits:
        pos %= len(text) + 1
        text = text[:pos] + insert + text[pos + cut :]
    return text


yaml_chars = st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \n\t") + ["  ", "\n  ", "a", "1", "null"])
insertions = st.lists(yaml_chars, max_size=3).map("".join)
mutations = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 5), insertions), max_size=6)


def _try_all(tmp: Path, text: str) -> None:
    (tmp / "pkgs").mkdir(exist_ok=True)
    for f in ("app", "liba", "libb", "libcore"):
        (tmp / "pkgs" / f"{f}.yaml").write_text((DEMO / "pkgs" / f"{f}.yaml").read_text())
    (tmp / "fuzz.yaml").write_text(text, encoding="utf-8")
    (tmp / "pkgs" / "app.yaml").write_text(text, encoding="utf-8")
    (tmp / "config.yaml").write_text(text, encoding="utf-8")
    (tmp / "site.yaml").write_text(text, encoding="utf-8")
    (tmp / "externals.yaml").write_text(EXTERNALS)
    for load in (
        lambda: load_recipe(tmp / "pkgs" / "app.yaml"),
        lambda: resolve(load_profile(tmp / "fuzz.yaml")),
        lambda: load_home(tmp),
        lambda: load_site(tmp / "site.yaml"),
    ):
        try:
            load()
        except HitError as e:
            assert str(e) and "\n" not in str(e).strip()


# every loader sees each example: >= 2,000 cases per loader by default, more in a long run
LOADER_EXAMPLES = settings(max_examples=int(os.environ.get("HDMOD_FUZZ_EXAMPLES", "2000")))


@LOADER_EXAMPLES
@given(st.sampled_from(SEEDS), mutations)
def test_mutated_yaml_never_crashes(tmp_path_factory, seed, edits):
    _try_all(tmp_path_factory.mktemp("fz"), _mutate(seed, edits))


@LOADER_EXAMPLES
@given(st.text(max_size=200))
def test_random_text_never_crashes(tmp_path_factory, text):
    _try_all(tmp_path_factory.mktemp("fz"), text)


# --- hostile archives fed to the unpacker ---------------------------------------------------

SAFE = ["a", "b", "top", "out"]
HOSTILE = SAFE + ["..", ".", "", "d" * 40]
safe_paths = st.lists(st.sampled_from(SAFE), min_size=1, max_size=3).map("/".join)
hostile_paths = st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=5).map("/".join)
names = st.one_of(  # mostly plausible names, so that the links among them get exercised
    *[safe_paths] * 3,
    *[safe_paths.map(lambda p: "top/" + p)] * 3,
    hostile_paths,
    hostile_paths.map(lambda p: "/" + p),
)
targets = st.one_of(
    hostile_paths,
    safe_paths,
    st.sampled_from(["/", "/etc", "..", "../..", "../../sentinel", ".", "top/a", "a/.."]),
)
COMMON = ["file"] * 3 + ["dir", "sym", "sym", "sym", "hard", "hard"]
KINDS = {"tar": COMMON + ["fifo", "chr", "blk"], "tgz": COMMON + ["fifo"], "zip": COMMON[:-2]}


@st.composite
def hostile_archive(draw) -> tuple[str, bytes]:
    """A tar, tar.gz or zip of up to 8 members: files, folders, symlinks, hard links and
    special files, with names and targets from a small alphabet (collisions, nesting, `..`,
    absolute), sometimes cut short or with a byte flipped. Returns (suffix, bytes)."""
    from tests.archive_tools import tar_bytes, zip_bytes

    fmt = draw(st.sampled_from(sorted(KINDS)))
    members = []
    for kind in draw(st.lists(st.sampled_from(KINDS[fmt]), max_size=8)):
        name = draw(names)
        if members and draw(st.booleans()):  # under, or at, an earlier member: links in the way
            name = draw(st.sampled_from(members))[0] + draw(st.sampled_from(["", "/a", "/b/a"]))
        data = draw(targets) if kind in ("sym", "hard") else b"data of " + name.encode()
        members.append((name.rstrip("/") or "x", kind, data if kind != "dir" else None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        mode = "w:gz" if fmt == "tgz" else "w"
        data = zip_bytes(members) if fmt == "zip" else tar_bytes(members, mode)
    damage = draw(st.sampled_from(["none"] * 8 + ["cut", "flip"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return ("zip" if fmt == "zip" else fmt), data


def _outside_state(top: Path, dest: Path) -> list:
    """Every entry under `top` but outside `dest`: path, type, size, mtime and file bytes."""
    state = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) != str(dest))
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            data = Path(path).read_bytes() if stat.S_ISREG(st_.st_mode) else b""
            state.append((path, stat.S_IFMT(st_.st_mode), st_.st_size, st_.st_mtime_ns, data))
    return state


@settings(
    max_examples=int(os.environ.get("HDMOD_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(hostile_archive(), min_size=1, max_size=2), st.booleans())
def test_hostile_archives_never_write_outside(archives, earlier_link):
    """A HitError or a clean unpack, never another exception; nothing outside the destination
    changes (a sentinel file, the listings and bytes around it), even through a symlink that an
    earlier source left (`out -> ../../outside`) or one archive left for the next; every
    symlink made stays inside. Runs as this
    process's user, root in CI, where permissions would stop nothing."""
    from hdmodules.build.unpack import unpack_tar, unpack_zip

    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        dest = top / "parent" / "dest"
        dest.mkdir(parents=True)
        (top / "sentinel").write_text("safe\n")
        (top / "outside").mkdir()
        for i, (suffix, data) in enumerate(archives):
            (top / f"x{i}.{suffix}").write_bytes(data)
        if earlier_link:  # as a folder source unpacked before may leave it
            os.symlink("../../outside", dest / "out")
        before = _outside_state(top, dest)
        for i, (suffix, _) in enumerate(archives):
            name = f"x{i}.{suffix}"
            try:
                (unpack_zip if suffix == "zip" else unpack_tar)(top / name, dest, name)
                event("unpacked")
            except HitError as e:
                assert str(e) and "\n" not in str(e)
                event(re.sub(r"'[^']*'", "_", str(e).replace(name, suffix).split(" (")[0])[:70])
        assert _outside_state(top, dest) == before
        assert (top / "sentinel").read_text() == "safe\n"
        real = os.path.realpath(dest)
        for dirpath, dirnames, filenames in os.walk(dest):
            for entry in dirnames + filenames:
                path = os.path.join(dirpath, entry)
                if os.path.islink(path) and not (earlier_link and path == str(dest / "out")):
                    assert os.path.realpath(path).startswith(real + os.sep) or (
                        os.path.realpath(path) == real
                    ), (path, os.readlink(path))
