"""Check that the ELF files of a built artifact link only against what was declared.

Why: configure scripts silently pick up the host's libz/libjpeg instead of the declared
dependency; the artifact then works on the build machine and breaks anywhere else.  For
every DT_NEEDED entry we emulate the lookup of ld.so (the file's own DT_RUNPATH, or its
DT_RPATH when it has no RUNPATH, then the host's default directories) and report any
library that resolves outside the artifact and its dependency prefixes, unless it is an
explicitly allowed host library.  The ELF parsing is a few ``struct`` reads, so no
pyelftools/readelf is needed and scanning large prefixes stays fast.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
_MULTIARCH = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")
HOST_DEFAULT_DIRS = (*_MULTIARCH, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
# ld.so's dynamic string tokens, x86_64 values ($LIB is "lib" on Debian's multiarch layout).
_TOKENS = (("${ORIGIN}", ""), ("$ORIGIN", ""), ("${LIB}", "lib"), ("$LIB", "lib"))
_TOKENS += (("${PLATFORM}", "x86_64"), ("$PLATFORM", "x86_64"))


@dataclass(frozen=True)
class DynamicInfo:
    """What ld.so looks at in a file's dynamic section to find its libraries."""

    needed: list[str]  # DT_NEEDED in order
    runpath: list[str]  # DT_RUNPATH split on ':' (unexpanded)
    rpath: list[str]  # DT_RPATH split on ':' (unexpanded)
    soname: str | None


class _BadElf(Exception):
    """Internal: the file has the ELF magic but is truncated or inconsistent."""


# Everything a truncated or garbage ELF can make the parser raise; read_dynamic maps it to None.
_PARSE_ERRORS = (_BadElf, struct.error, IndexError, KeyError)


def _read(f: BinaryIO, size: int, offset: int, length: int) -> bytes:
    """Read exactly ``length`` bytes at ``offset``; bounds come from garbage-prone headers."""
    if offset < 0 or length < 0 or offset + length > size:
        raise _BadElf
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise _BadElf
    return data


def _key(ident: bytes) -> tuple[int, int, int] | None:
    """(class, byte order, e_machine) from the first 20 bytes, or None if not ELF."""
    if len(ident) < 20 or ident[:4] != b"\x7fELF" or not {ident[4], ident[5]} <= {1, 2}:
        return None
    return ident[4], ident[5], struct.unpack_from("<H" if ident[5] == 1 else ">H", ident, 18)[0]


def _header_key(path: str | Path) -> tuple[int, int, int] | None:
    with open(path, "rb") as f:
        return _key(f.read(20))


# Complexity (radon D): one linear pass over an ELF file's header, program headers and
# dynamic section, each branch a case of the format (class, byte order, entry kinds); split
# up, the offsets and sizes read in one step would have to be passed to the next.
MIN_ELF_BYTES = 52  # the ELF header of a 32-bit file; a 64-bit one is 64 bytes (ELF spec)


def _parse(path: Path) -> tuple[tuple[int, int, int], DynamicInfo | None] | None:
    """None if not ELF, else (ABI key, dynamic info or None). Raises OSError or _PARSE_ERRORS."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        ident = f.read(20)
        key = _key(ident)
        if key is None:
            return None
        is64, end = key[0] == 2, "<" if key[1] == 1 else ">"
        hdr_fmt = end + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
        hdr = struct.unpack(hdr_fmt, _read(f, size, 16, struct.calcsize(hdr_fmt)))
        phoff, phentsize, phnum = hdr[4], hdr[8], hdr[9]
        ph_fmt = end + ("IIQQQQQQ" if is64 else "IIIIIIII")
        if phnum and phentsize < struct.calcsize(ph_fmt):
            raise _BadElf
        table = _read(f, size, phoff, phentsize * phnum)
        loads, dynamic = [], None
        for i in range(phnum):
            p = struct.unpack_from(ph_fmt, table, i * phentsize)
            ptype, offset, vaddr, filesz = (p[i] for i in ((0, 2, 3, 5) if is64 else (0, 1, 2, 4)))
            if ptype == PT_LOAD:
                loads.append((vaddr, offset, filesz))
            elif ptype == PT_DYNAMIC:
                dynamic = (offset, filesz)
        if dynamic is None:
            return key, None
        dyn_fmt = end + ("qQ" if is64 else "iI")
        raw = _read(f, size, dynamic[0], dynamic[1] - dynamic[1] % struct.calcsize(dyn_fmt))
        entries = []
        for tag, val in struct.iter_unpack(dyn_fmt, raw):
            if tag == DT_NULL:
                break
            entries.append((tag, val))
        if not any(tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH) for tag, _ in entries):
            return key, DynamicInfo([], [], [], None)
        tags = dict(entries)
        strtab_addr, strsz = tags[DT_STRTAB], tags[DT_STRSZ]
        # DT_STRTAB is a virtual address: map it to a file offset through the PT_LOAD segments.
        offset = next((o + strtab_addr - v for v, o, n in loads if v <= strtab_addr < v + n), None)
        if offset is None:
            raise _BadElf
        strtab = _read(f, size, offset, min(strsz, size - offset))

    def string(index: int) -> str:
        if index >= len(strtab):
            raise _BadElf
        stop = strtab.find(b"\0", index)
        return os.fsdecode(strtab[index : stop if stop >= 0 else len(strtab)])

    def paths(tag: int) -> list[str]:
        return [d for t, v in entries if t == tag for d in string(v).split(":")]

    sonames = [string(v) for t, v in entries if t == DT_SONAME]
    needed = [string(v) for t, v in entries if t == DT_NEEDED]
    return key, DynamicInfo(
        needed, paths(DT_RUNPATH), paths(DT_RPATH), sonames[0] if sonames else None
    )


def read_dynamic(path: Path) -> DynamicInfo | None:
    """None for non-ELF or ELF without a dynamic section (static binaries, .o files).

    A file with the ELF magic that is truncated or inconsistent (anything that would raise
    struct.error/IndexError/KeyError while parsing) also gives None: it is not an ELF we can
    read, and ld.so could not load it either.  OSError (unreadable file) is propagated.
    """
    try:
        parsed = _parse(Path(path))
    except _PARSE_ERRORS:
        return None
    return parsed[1] if parsed else None


@functools.cache
def host_search_dirs(conf: str = "/etc/ld.so.conf") -> tuple[str, ...]:
    """Directories ld.so searches on the host: ld.so.conf (with ``include`` globs), then defaults.

    Computed once; ld.so.cache is built from exactly these directories.
    """
    dirs: list[str] = []

    def parse(path: str, depth: int) -> None:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            return
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] == "hwcap" or depth > 8:
                continue
            if words[0] == "include":
                for pattern in words[1:]:
                    for inc in sorted(glob.glob(os.path.join(os.path.dirname(path), pattern))):
                        parse(inc, depth + 1)
            else:
                dirs.extend(w.split("=", 1)[0] for w in words)

    parse(conf, 0)
    return tuple(
        dict.fromkeys(os.path.normpath(d) for d in [*dirs, *HOST_DEFAULT_DIRS] if os.path.isabs(d))
    )


@functools.cache
def _host_real_dirs() -> frozenset[str]:
    return frozenset(os.path.realpath(d) for d in host_search_dirs())


@functools.cache
def _host_abi() -> tuple[int, int, int] | None:
    """ABI key of the running interpreter: ELF files of another class/machine are skipped."""
    try:
        return _header_key("/proc/self/exe")
    except OSError:
        return None


def is_allowed(library: str, allowed: set[str] | frozenset[str]) -> bool:
    """Whether a NEEDED name may come from the host.

    Rule: an entry equal to the basename allows it; an entry without a version, i.e. the
    part before ``.so`` (``libz``) or that part plus ``.so`` (``libz.so``), allows every
    version (``libz.so.1``).  A versioned entry (``libz.so.1``) only allows that exact name.
    """
    name = os.path.basename(library)
    match = re.match(r"^(.+?)\.so(\..*)?$", name)
    stem = match.group(1) if match else name
    return name in allowed or stem in allowed or f"{stem}.so" in allowed


def inside(path: str, root: str) -> bool:
    """True when the absolute `path` is `root` or lies under it (string test, no I/O)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def artifact_files(
    prefix: Path,
    skip: Callable[[Path], bool] | None = None,
    wanted: Callable[[str, str], bool] | None = None,
) -> Iterator[tuple[Path, os.stat_result]]:
    """(path, lstat) of every regular file under `prefix`, in sorted order, skipping the
    metadata folder `prefix/.hit`; symlinks and non-regular files are skipped and a file
    with several hard links is given once. `wanted(filename, parent folder name)` picks
    files by name before they are looked at; `skip` gets the path relative to `prefix`
    and returns True to leave that file out. Unreadable entries are left out silently."""
    seen: set[tuple[int, int]] = set()
    for root, dirnames, filenames in os.walk(prefix):
        dirnames.sort()
        if Path(root) == prefix and ".hit" in dirnames:
            dirnames.remove(".hit")
        for filename in sorted(filenames):
            path = Path(root, filename)
            if wanted is not None and not wanted(filename, path.parent.name):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if skip is None or not skip(path.relative_to(prefix)):
                yield path, st


@dataclass(frozen=True)
class LinkProblem:
    """One NEEDED library of one file that will not load from where it should."""

    file: Path  # the ELF file in the artifact
    library: str  # the NEEDED name
    kind: str  # "leak" or "unresolved"
    found_at: Path | None
    searched: tuple[str, ...] = ()  # the file's expanded RUNPATH (or RPATH) dirs, for the message

    def message(self, prefix: Path) -> str:
        """One line for the build log, the file shown relative to ``prefix``."""
        try:
            rel = self.file.relative_to(prefix)
        except ValueError:
            rel = self.file
        head = f"{rel} needs {self.library}: "
        if self.kind == "unresolved" or self.found_at is None:
            where = ":".join(self.searched) or "none"
            return f"{head}not found in its RUNPATH ({where}) nor on the host"
        if os.path.realpath(self.found_at.parent) in _host_real_dirs():
            return head + (
                f"found on the host at {self.found_at}, which is not a declared dependency"
                f" (declare it, or allow it with allow_host_libs: [{self.library}])"
            )
        return head + (
            f"found at {self.found_at} through its RUNPATH, outside the artifact and its declared"
            " dependencies (declare the package providing it as a dependency)"
        )


def _expand(entries: list[str], origin: str) -> list[str]:
    """Expand ld.so tokens; empty or relative entries (cwd-relative at run time) are dropped."""
    out = []
    for entry in entries:
        for token, value in _TOKENS:
            entry = entry.replace(token, value or origin)
        if os.path.isabs(entry):
            out.append(os.path.normpath(entry))
    return out


def _lookup(name: str, dirs: list[str] | tuple[str, ...], abi: tuple[int, int, int]) -> str | None:
    """First ``dir/name`` that exists, skipping ELF files of another ABI as ld.so does."""
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate):
            try:
                other = _header_key(candidate)
            except OSError:
                continue
            if other is None or other == abi:
                return candidate
    return None


def _check_file(
    path: Path, abi: tuple, info: DynamicInfo, own: list[str], allowed: frozenset[str]
) -> list[LinkProblem]:
    dirs = _expand(info.runpath or info.rpath, str(path.parent))
    problems = []
    for name in info.needed:
        if "/" in name:  # a path: ld.so opens it as is (relative makes no sense: check as absolute)
            candidate = os.path.join("/", name)
            found = candidate if os.path.isfile(candidate) else None
        else:
            found = _lookup(name, dirs, abi) or _lookup(name, host_search_dirs(), abi)
        ok = is_allowed(name, allowed)
        if found is None:
            if not ok:
                problems.append(LinkProblem(path, name, "unresolved", None, tuple(dirs)))
            continue
        # Classify by the real path of the directory it was found in (not of the file itself).
        real_dir = os.path.realpath(os.path.dirname(found))
        if any(inside(real_dir, root) for root in own) or (ok and real_dir in _host_real_dirs()):
            continue
        problems.append(LinkProblem(path, name, "leak", Path(found), tuple(dirs)))
    return problems


def check_artifact(
    prefix: Path,
    dependencies: list[Path],
    allowed_host: set[str] | frozenset[str],
    skip: Callable[[Path], bool] | None = None,
) -> list[LinkProblem]:
    """Walk prefix (skipping the metadata folder prefix/'.hit'), check every ELF file.

    Symlinks, non-regular files and extra hard links are skipped (the real file is checked
    once); so are unreadable files, non-ELF files, ELF files without PT_DYNAMIC, garbage ELF
    and ELF of another class/machine than the host.  ``skip`` gets the path relative to
    ``prefix`` and returns True to ignore that file.  Never raises for file contents.
    A library is provided when the real path of the directory it was found in lies inside
    the real path of ``prefix`` or of a dependency (a symlinked dependency prefix is fine; a
    file in a dependency's lib dir that links elsewhere still counts as the dependency's).
    """
    prefix = Path(prefix)
    own: list[str] | None = None  # real paths, found once an ELF file needs them
    allowed = frozenset(allowed_host)
    host_abi, problems = _host_abi(), []
    for path, st in artifact_files(prefix, skip):
        if st.st_size < MIN_ELF_BYTES:  # cannot be ELF: not even opened
            continue
        try:
            parsed = _parse(path)
        except (OSError, *_PARSE_ERRORS):
            continue
        if parsed and parsed[1] and host_abi in (None, parsed[0]):
            if own is None:
                own = [os.path.realpath(p) for p in [prefix, *dependencies]]
            problems += _check_file(path, parsed[0], parsed[1], own, allowed)
    return problems
