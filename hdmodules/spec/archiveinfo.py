"""Reading a source archive without unpacking it: its member list and a few small files, for
`hit create` (spec.create).

Members are matched by name only and never written, so a hostile member path (absolute, with
`..`) is just a name that matches nothing. Every byte is read once, so that a damaged or cut
archive is reported here rather than at its build.
"""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import HitError

DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error,
           lzma.LZMAError)  # fmt: skip
MAX_READ = 1 << 20  # bytes: a metadata file larger than this is not read


@dataclass(frozen=True)
class Contents:
    """What was read of an archive: `top` (the single top folder, or None), `files` (the
    regular files directly in it), `metadata` (PKG-INFO or a wheel's METADATA, b"" if none),
    `pyproject` (its bytes, b"" if none), `wheel` (the metadata is a wheel's)."""

    top: str | None
    files: frozenset[str]
    metadata: bytes
    pyproject: bytes
    wheel: bool


def _parts(name: str) -> tuple[str, ...] | None:
    """A member name's components, or None for one that is absolute or climbs (`..`)."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return None if ".." in parts else parts


def read_archive(file: Path, label: str) -> Contents:
    """List `file` (zip or tar, any compression tarfile reads) and read what Contents holds.
    Every byte is read once (zip: each member's CRC; tar: the whole stream, which must hold
    every member listed), so a damaged or cut archive is found here, not at its build.
    Raises HitError naming `label` for a file that is not a readable archive."""
    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"member {bad!r} is damaged")
                members = {i.filename: i for i in zf.infolist()}
                regular = {n for n, i in members.items() if not i.is_dir()}

                def read(name: str) -> bytes:
                    info = members[name]
                    return zf.read(info) if info.file_size <= MAX_READ else b""

                return _contents(regular, set(members), read)
        with tarfile.open(file, "r:*") as tf:
            tmembers = {m.name: m for m in tf.getmembers()}
            end = max((m.offset_data + m.size for m in tmembers.values()), default=0)
            if _stream_length(file) < end:
                raise tarfile.ReadError("it ends before its last member")
            regular = {n for n, m in tmembers.items() if m.isfile()}

            def read_tar(name: str) -> bytes:
                m = tmembers[name]
                f = tf.extractfile(m) if m.size <= MAX_READ else None
                return f.read() if f is not None else b""

            return _contents(regular, set(tmembers), read_tar)
    except DAMAGED as e:  # bz2 reports a damaged stream as OSError
        why = str(e).splitlines()[0].rstrip(":") if str(e) else type(e).__name__
        if why.startswith("file could not be opened"):  # tarfile's multi-line "no format fits"
            why = "neither a tar (plain, gzip, bzip2, xz) nor a zip file"
        raise HitError(f"{label}: not a readable archive: {why}") from None


def _stream_length(file: Path) -> int:
    """The length of `file` once decompressed (gzip, bzip2, xz by their first bytes), read
    to its end so that a cut or damaged stream raises (EOFError, OSError, LZMAError)."""
    import bz2
    import gzip

    with open(file, "rb") as f:
        head = f.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}.get(head[:2])
    if opener is None:
        return file.stat().st_size
    total = 0
    with opener(file, "rb") as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    return total


def _contents(regular: set[str], names: set[str], read: Callable[[str], bytes]) -> Contents:
    parsed = {n: p for n in names if (p := _parts(n))}
    tops = {p[0] for p in parsed.values()}
    top = tops.pop() if len(tops) == 1 and any(len(p) > 1 for p in parsed.values()) else None
    depth = 2 if top else 1
    files = {p[-1]: n for n, p in parsed.items() if n in regular and len(p) == depth}
    meta = [n for n, p in parsed.items() if n in regular and _is_wheel_metadata(p)]
    wheel = top is None and len(meta) == 1
    metadata = read(meta[0]) if wheel else read(files["PKG-INFO"]) if "PKG-INFO" in files else b""
    pyproject = read(files["pyproject.toml"]) if "pyproject.toml" in files else b""
    return Contents(top, frozenset(files), metadata, pyproject, wheel)


def _is_wheel_metadata(parts: tuple[str, ...]) -> bool:
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"
