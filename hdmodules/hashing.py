"""Canonical JSON and the hashes that name artifacts and sources.

An artifact id is `name/<hash>`: SHA-256 over `doctype|canonical-json`, cut to 160 bits and
written in lower-case base32 (32 characters), as HashDist did: short enough for paths, long
enough that a collision is not a practical concern.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HASH_CHARS = 32
SHORT = 12  # characters of the hash shown to people and used in store paths


def canonical_json(doc: Any) -> str:
    """One spelling per document: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_doc(doctype: str, doc: Any) -> str:
    """THE hash of the project: SHA-256 over `doctype|canonical_json(doc)`, cut to 160 bits,
    lower-case base32 (HASH_CHARS = 32 characters). Doctypes in use: "build" (a build spec,
    naming an artifact) and "profile" (a profile document). Raises TypeError for a document
    that is not JSON."""
    digest = hashlib.sha256(f"{doctype}|{canonical_json(doc)}".encode()).digest()[:20]
    return base64.b32encode(digest).decode("ascii").lower()


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, 64 hex characters, read in 1 MiB chunks. Raises
    OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree_entries(root: Path) -> Iterator[tuple[str, str, str]]:
    """What a folder's content hash covers, in the order it is hashed: `(relative path,
    kind, value)` with kind "L" for a symlink (value: its target), "X" for an executable
    file and "F" for another file (value: the file's path). `.git` folders are left out
    (VCS metadata is not source), and so is anything but files and symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(
            filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        ):
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                yield rel, "L", os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                yield rel, "X" if st.st_mode & 0o100 else "F", path
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def tree_hash(root: Path) -> str:
    """Content hash of a folder: relative paths, file bytes, the executable bit, link targets
    (tree_entries).

    Timestamps and owners are left out on purpose: they do not change what a build makes.
    """
    h = hashlib.sha256()
    for rel, kind, value in tree_entries(root):
        content = value if kind == "L" else sha256_file(Path(value))
        h.update(f"{kind} {rel}\0{content}\0".encode())
    return h.hexdigest()
