"""The unpacker (hdmodules.build.unpack) against hostile tar and zip files, on any Python."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from hdmodules.build.unpack import unpack_tar, unpack_zip
from hdmodules.errors import HitError
from tests.archive_tools import tar_bytes, zip_bytes
from tests.conftest import REPO, need

SYSTEM_PYTHON = Path("/usr/bin/python3")
Z = ("z", "file", b"a second top entry, so that nothing is stripped")


@pytest.fixture
def box(tmp_path):
    """A destination inside a parent folder that also holds a sentinel file."""
    parent = tmp_path / "parent"
    (parent / "dest").mkdir(parents=True)
    (tmp_path / "sentinel").write_text("safe\n")
    return tmp_path


def untouched(box: Path) -> bool:
    return (box / "sentinel").read_text() == "safe\n" and sorted(os.listdir(box / "parent")) == [
        "dest"
    ]


def unpack(box: Path, data: bytes, name: str = "x.tar") -> Path:
    archive = box / name
    archive.write_bytes(data)
    dest = box / "parent" / "dest"
    (unpack_zip if name.endswith(".zip") else unpack_tar)(archive, dest, name)
    return dest


def cve_2025_4517(depth: int = 16) -> bytes:
    """Nested folders and short symlinks making a path longer than PATH_MAX (so realpath stops
    checking), a symlink through it to two levels above the destination (the sentinel's folder
    here, `/` in the original), then a hard link and a file written through that."""
    comp, steps, members, path = "d" * 247, "abcdefghijklmnop"[:depth], [], ""
    for s in steps:
        members += [(f"{path}{comp}", "dir", None), (f"{path}{s}", "sym", comp)]
        path += comp + "/"
    linkpath = "/".join(steps) + "/" + "l" * 254
    members += [
        (linkpath, "sym", "../" * depth),
        ("escape", "sym", linkpath + "/../../"),
        ("sentinel_link", "hard", "escape/sentinel"),
        ("sentinel_link", "file", b"pwned\n"),
    ]
    return tar_bytes(members)


def test_cve_2025_4517_chain_is_refused(box):
    with pytest.raises(HitError, match=r"runs through the symlink 'a'; sources are never unpacked"):
        unpack(box, cve_2025_4517())
    assert untouched(box)


@pytest.mark.parametrize(
    "members, message",
    [
        ([("a", "sym", "sub"), ("a/x", "file", b"1"), Z], "runs through the symlink 'a'"),
        ([("up", "sym", ".."), ("up/x", "file", b"1"), Z], "runs through the symlink 'up'"),
        ([("r", "sym", "../" * 9), ("h", "hard", "r/etc/passwd")], "not a file unpacked"),
        ([Z, ("r", "sym", "../" * 9), ("r/h", "hard", "z")], "through the symlink 'r'"),
        ([("r", "sym", "/"), ("h", "hard", "r/etc/passwd")], r"\(a symlink to '/'\) would land"),
        ([("a", "sym", "b/.."), ("b", "sym", ".")], r"'a' \(a symlink to 'b/..'\) would land"),
        ([("b", "sym", "."), ("a", "sym", "b/..")], r"'a' \(a symlink to 'b/..'\) would land"),
        ([("f", "file", b"x"), ("a", "sym", "f/../..")], "would land outside"),
        ([("a", "sym", "b"), ("b", "sym", "a")], "would land outside"),
        ([("d", "dir", None), ("d/l", "sym", "../../x")], "would land outside"),
        ([("h", "hard", "nothing")], "not a file unpacked before it"),
        ([("s", "sym", "t"), ("t", "file", b"1"), ("h", "hard", "s")], "not a file unpacked"),
        ([("d", "dir", None), ("d", "file", b"1")], "would replace the folder 'd'"),
        ([("f", "file", b"1"), ("f/x", "file", b"1"), Z], "needs 'f' to be a folder"),
        ([("d/x", "file", b"1"), ("d", "sym", "e"), Z], "would replace 'd' by a symlink"),
        ([("a/../../x", "file", b"1")], "would land outside"),
        ([("/abs", "file", b"1")], "would land outside"),
    ],
    ids=["through-sym", "through-dotdot-sym", "hard-from-root-sym", "hard-into-root-sym",
         "root-sym", "redirected-later", "redirected-earlier", "dotdot-after-file", "loop",
         "nested-out", "hard-missing", "hard-to-sym", "file-over-dir", "file-as-dir",
         "sym-over-dir", "dotdot", "absolute"],
)  # fmt: skip
def test_hostile_tar_members_are_refused(box, members, message):
    with pytest.raises(HitError, match=message) as e:
        unpack(box, tar_bytes(members))
    assert "\n" not in str(e.value) and str(e.value).startswith("x.tar: ")
    assert untouched(box)
    _links_stay_inside(box / "parent" / "dest")


def _links_stay_inside(dest: Path) -> None:
    for link in (p for p in dest.rglob("*") if p.is_symlink()):
        assert Path(os.path.realpath(link)).is_relative_to(os.path.realpath(dest)), link


def test_a_later_source_cannot_redirect_an_earlier_symlink(box):
    """`a -> b/..` is harmless while `b` is missing, and leaves once `b -> .` exists: a `..`
    after a missing component is refused, and a symlink never replaces one already there."""
    dest = box / "parent" / "dest"
    with pytest.raises(HitError, match=r"'a' \(a symlink to 'b/..'\) would land outside"):
        unpack(box, tar_bytes([("a", "sym", "b/.."), Z]))
    unpack(box, tar_bytes([("b", "sym", "."), ("y", "file", b"")]))
    _links_stay_inside(dest)
    unpack(box, tar_bytes([("L", "sym", "sub/deep"), ("sub/deep/x", "file", b""),
                           ("S", "sym", "L/..")]))  # fmt: skip
    assert os.path.realpath(dest / "S") == os.path.realpath(dest / "sub")
    with pytest.raises(HitError, match=r"would replace 'L' by a symlink"):
        unpack(box, tar_bytes([("L", "sym", "."), Z]))
    with pytest.raises(HitError, match=r"would replace the symlink 'L'"):
        unpack(box, zip_bytes([("L", "file", b"x"), Z]), "x.zip")
    _links_stay_inside(dest)
    assert untouched(box)


@pytest.mark.parametrize("kind", ["fifo", "chr", "blk"])
def test_special_members_are_refused(box, kind):
    with pytest.raises(HitError, match="'pkg/dev' is a device, FIFO or other special file"):
        unpack(box, tar_bytes([("pkg/a", "file", b"1"), ("pkg/dev", kind, None)]))
    assert untouched(box)


def test_modes_lose_setuid_and_group_write_and_owner_is_never_set(box):
    members = [
        (name, "file", (b"#!/bin/sh\n", mode))
        for name, mode in [
            ("suid", 0o4755),
            ("sgid", 0o2775),
            ("all", 0o777),
            ("ro", 0o400),
            ("own", 0o700),
            ("sticky", 0o1644),
        ]  # fmt: skip
    ]
    buf = io.BytesIO(tar_bytes(members))
    out = io.BytesIO()
    with tarfile.open(fileobj=buf) as src, tarfile.open(fileobj=out, mode="w") as tf:
        for m in src.getmembers():
            m.uid = m.gid = 4242
            m.uname = m.gname = "nobody"
            tf.addfile(m, src.extractfile(m))
    dest = unpack(box, out.getvalue())
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in dest.iterdir()}
    assert modes == {"suid": 0o755, "sgid": 0o755, "all": 0o755, "ro": 0o600, "own": 0o700,
                     "sticky": 0o644}  # fmt: skip
    assert {p.stat().st_uid for p in dest.iterdir()} == {os.getuid()}


def test_links_inside_work_and_top_folder_is_stripped(box):
    dest = unpack(
        box,
        tar_bytes(
            [
                ("pkg-1/", "dir", None),
                ("pkg-1/lib/libx.so.1", "file", b"elf"),
                ("pkg-1/lib/libx.so", "sym", "libx.so.1"),
                ("pkg-1/include/sub/h.h", "file", b"h"),
                ("pkg-1/inc", "sym", "include/sub"),
                ("pkg-1/dangling", "sym", "not/yet"),
                ("pkg-1/copy", "hard", "pkg-1/lib/libx.so.1"),
                ("pkg-1/run", "file", (b"#!/bin/sh\n", 0o755)),
            ],
            mode="w:gz",
        ),
        "pkg-1.tar.gz",
    )
    assert (dest / "lib" / "libx.so").read_bytes() == b"elf"
    assert os.readlink(dest / "inc") == "include/sub" and (dest / "inc" / "h.h").exists()
    assert os.readlink(dest / "dangling") == "not/yet"
    assert (dest / "copy").stat().st_ino == (dest / "lib" / "libx.so.1").stat().st_ino
    assert os.access(dest / "run", os.X_OK)
    assert untouched(box)


def test_duplicates_the_later_member_wins(box):
    dest = unpack(
        box,
        tar_bytes(
            [
                ("f", "file", b"old"),
                ("f", "file", b"new"),
                ("g", "file", b"file"),
                ("g", "sym", "f"),
                ("h", "sym", "f"),
                ("h", "file", b"plain"),
                ("d", "sym", "f"),
                ("d", "dir", None),
                ("d/x", "file", b"in d"),
            ]
        ),
    )
    assert (dest / "f").read_bytes() == b"new"
    assert os.readlink(dest / "g") == "f"
    assert not (dest / "h").is_symlink() and (dest / "h").read_bytes() == b"plain"
    assert (dest / "d" / "x").read_bytes() == b"in d"


def test_a_symlink_left_by_an_earlier_source_is_never_written_through(box):
    dest = box / "parent" / "dest"
    os.symlink("../../", dest / "out")  # what a folder source may hold
    for members in ([("out/sentinel", "file", b"pwned\n"), Z], [("out", "file", b"x")]):
        with pytest.raises(HitError, match="symlink 'out'; sources are never unpacked"):
            unpack(box, tar_bytes(members))
    with pytest.raises(HitError, match="symlink 'out'; sources are never unpacked"):
        unpack(box, zip_bytes([("out/sentinel", "file", b"pwned\n"), Z]), "x.zip")
    assert (box / "sentinel").read_text() == "safe\n"


def test_zip_symlinks_modes_and_refusals(box):
    dest = unpack(
        box,
        zip_bytes(
            [
                ("top/bin/tool", "file", (b"#!/bin/sh\n", 0o4755)),
                ("top/lib/libx.so.1", "file", b"elf"),
                ("top/lib/libx.so", "sym", b"libx.so.1"),
                ("top/empty", "dir", None),
            ]
        ),
        "x.zip",
    )
    assert stat.S_IMODE((dest / "bin" / "tool").stat().st_mode) == 0o755
    assert os.readlink(dest / "lib" / "libx.so") == "libx.so.1"
    assert (dest / "empty").is_dir()
    bad = [
        ([("l", "sym", b"/etc"), ("m", "file", b"1")], "would land outside"),
        ([("l", "sym", b"../x")], "would land outside"),
        ([("l", "sym", b"d"), ("l/x", "file", b"1"), Z], "runs through the symlink 'l'"),
        ([("p", "fifo", b"")], "is a device, FIFO or other special file"),
        ([("../x", "file", b"1")], "would land outside"),
    ]
    for members, message in bad:
        with pytest.raises(HitError, match=message):
            unpack(box, zip_bytes(members), "y.zip")
    assert untouched(box)


def _truncated_tgz() -> bytes:
    data = tar_bytes([("pkg/big", "file", os.urandom(200_000))], mode="w:gz")
    return data[: len(data) // 2]


def _unsupported_zip() -> bytes:
    data = bytearray(zip_bytes([("a/b", "file", b"hello")]))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # compression method of local and central header
        at = data.index(sig)
        at += 8 if sig == b"PK\x03\x04" else 10
        data[at : at + 2] = (99).to_bytes(2, "little")
    return bytes(data)


def _encrypted_zip() -> bytes:
    data = bytearray(zip_bytes([("a/b", "file", b"hello")]))
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(sig) + off
        data[at] |= 1
    return bytes(data)


def _bad_crc_zip() -> bytes:
    data = zip_bytes([("a/b", "file", b"hello world")])
    return data.replace(b"hello world", b"hellO world")


@pytest.mark.parametrize(
    "name, data",
    [
        ("p.tar.gz", _truncated_tgz()),
        ("p.tar.gz", tar_bytes([("a", "file", b"x" * 5000)], "w:gz")[:-30]),
        ("p.tar.bz2", tar_bytes([("a", "file", os.urandom(5000))], "w:bz2")[:-200]),
        ("p.tar.xz", tar_bytes([("a", "file", os.urandom(5000))], "w:xz")[:-200]),
        ("p.tar", tar_bytes([("a/b", "file", os.urandom(5000))])[:2000]),
        ("p.zip", zip_bytes([("a/b", "file", os.urandom(5000))])[:3000]),
        ("p.zip", _unsupported_zip()),
        ("p.zip", _encrypted_zip()),
        ("p.zip", _bad_crc_zip()),
    ],
    ids=["tgz-half", "tgz-tail", "bz2", "xz", "tar", "zip", "zip-method", "zip-crypt", "zip-crc"],
)
def test_damaged_archives_are_one_line(box, name, data):
    with pytest.raises(HitError, match=rf"cannot unpack {name}: truncated or damaged archive") as e:
        unpack(box, data, name)
    assert "\n" not in str(e.value)


def test_unpacks_under_the_system_python_too(tmp_path):
    """Debian's python3 (3.11.2) has no tarfile data filter: the unpacker must not need it."""
    need(SYSTEM_PYTHON.exists(), str(SYSTEM_PYTHON))  # run even if it is this Python's version
    (tmp_path / "ok.tgz").write_bytes(
        tar_bytes([("p/a", "file", b"A"), ("p/l", "sym", "a"), ("p/h", "hard", "p/a")], "w:gz")
    )
    (tmp_path / "cve.tar").write_bytes(cve_2025_4517())
    (tmp_path / "sentinel").write_text("safe\n")
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from hdmodules.errors import HitError
from hdmodules.build.unpack import unpack_tar
t = Path({str(tmp_path)!r})
unpack_tar(t / "ok.tgz", t / "out", "ok.tgz")
print((t / "out" / "l").read_text(), (t / "out" / "h").read_text())
try:
    unpack_tar(t / "cve.tar", t / "p" / "dest", "cve.tar")
except HitError as e:
    print("refused:", e)
print("heavy:", sorted(m for m in ("yaml", "jinja2", "click") if m in sys.modules))
"""
    r = subprocess.run([SYSTEM_PYTHON, "-I", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "A A"
    assert "refused: cve.tar: member 'a/b/" in r.stdout and "heavy: []" in r.stdout
    assert (tmp_path / "sentinel").read_text() == "safe\n"
