"""Sources: a cache keyed by content hash, mirrors, downloads, and putting them in a build folder.

The cache (and every mirror) holds `sha256/<hex>`: once the bytes are known, the URL they came
from no longer matters, so a site without internet seeds the cache from a folder of tarballs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath

from ..errors import HitError
from ..hashing import sha256_file
from ..spec.recipes import Source
from ..urls import is_url
from .unpack import Writer, copy_folder, unpack_tar, unpack_zip

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
TIMEOUT = 60


def cache_file(cache: Path, sha256: str) -> Path:
    """Where the source with this sha256 (hex) lives in the cache `cache`."""
    return cache / "sha256" / sha256


def add_file(cache: Path, file: Path, expect: str | None = None) -> str:
    """Copy a file into the cache under its sha256 (atomically); return the sha256."""
    target_dir = cache / "sha256"
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".in-")
    os.close(fd)
    try:
        shutil.copyfile(file, tmp)
        sha = sha256_file(Path(tmp))
        if expect and sha != expect:
            raise HitError(f"{file}: sha256 mismatch: expected {expect}, got {sha}")
        os.chmod(tmp, 0o444)
        os.replace(tmp, target_dir / sha)
        return sha
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download(url: str, dest: Path) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise HitError(f"{url}: {reason}") from None


def _candidates(url: str, sha256: str, mirrors: tuple[str, ...]) -> list[str]:
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name
    out = []
    for m in mirrors:
        base = m.rstrip("/")
        out += [f"{base}/sha256/{sha256}"] + ([f"{base}/{name}"] if name else [])
    return out + [url]


def fetch(cache: Path, url: str, sha256: str | None, mirrors: tuple[str, ...] = ()) -> Path:
    """Make sure the source is in the cache, trying each mirror before its URL."""
    if sha256 and cache_file(cache, sha256).exists():
        return cache_file(cache, sha256)
    problems = []
    with tempfile.TemporaryDirectory(dir=_ensure(cache), prefix=".fetch-") as tmp:
        for cand in _candidates(url, sha256 or "", mirrors) if sha256 else [url]:
            local = None if is_url(cand) else Path(cand)
            if local is not None and not local.is_file():
                continue
            dl = Path(tmp, "download")
            try:
                if local is not None:
                    shutil.copyfile(local, dl)
                else:
                    _download(cand, dl)
            except HitError as e:
                problems.append(str(e))
                continue
            got = sha256_file(dl)
            if sha256 and got != sha256:
                problems.append(f"{cand}: sha256 mismatch: expected {sha256}, got {got}")
                continue
            return cache_file(cache, add_file(cache, dl))
    tried = "; ".join(problems) or "not found in any mirror"
    raise HitError(f"cannot fetch {url}: {tried}")


def fetch_any(cache: Path, url_or_file: str, mirrors: tuple[str, ...] = ()) -> tuple[str, str]:
    """`hit fetch`: a URL or a local file into the cache; returns (sha256, url for the recipe)."""
    path = Path(url_or_file)
    if not is_url(url_or_file):
        if not path.is_file():
            raise HitError(f"{url_or_file}: no such file")
        return add_file(cache, path), path.absolute().as_uri()
    found = fetch(cache, url_or_file, None, mirrors)
    return found.name, url_or_file


def seed_from(cache: Path, folder: Path) -> list[tuple[str, str]]:
    """`hit fetch --from DIR`: every archive directly in `folder` into the cache (a site
    without internet copies the upstream tarballs there). Returns (sha256, file name) each."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_archive(p.name))
    return [(add_file(cache, f), f.name) for f in files]


def is_archive(name: str) -> bool:
    """Whether a file name ends like an archive hit unpacks (.tar, .tar.gz, .tgz, .zip ...)."""
    return name.endswith(ARCHIVE_SUFFIXES)


def archive_kind(file: Path, named_like_one: bool) -> str | None:
    """ "tar", "zip" or None (a plain file). A file named like an archive is recognised by its
    first bytes too, so that a damaged one is reported as damaged rather than copied."""
    import tarfile  # imported when needed: startup time of every command
    import zipfile

    with open(file, "rb") as f:
        head = f.read(512)
    compressed = head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"))
    if (named_like_one and compressed) or head[257:262] == b"ustar":
        return "tar"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    for kind, test in (("tar", tarfile.is_tarfile), ("zip", zipfile.is_zipfile)):
        try:
            if test(file):
                return kind
        except Exception:  # noqa: BLE001 - a sniff that fails means "not this kind"
            continue
    return None


def _ensure(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- materialising sources in a build folder -----------------------------------------------


def materialize(source: Source, cache: Path, dest_root: Path) -> None:
    """Put one source in the build folder `dest_root`, under its `dest`: unpack an archive,
    copy a folder or a file, export a git commit.

    Everything goes through hdmodules.unpack, which never writes through a symlink (one left by
    an earlier source included) nor outside `dest_root`. Raises HitError naming the source for
    a refused member, a damaged archive, or a file named like an archive that is not one."""
    if source.git is not None:
        from .gitsources import export

        assert source.commit is not None
        export(cache, source.git, source.commit, dest_root, source.dest)
        return
    if source.path is not None and source.path.is_dir():
        copy_folder(source.path, dest_root, str(source.path), source.dest)
        return
    if source.path is not None:
        file, name = source.path, source.path.name
    else:
        assert source.url and source.sha256
        file = cache_file(cache, source.sha256)
        name = PurePosixPath(urllib.parse.urlsplit(source.url).path).name or source.sha256
    try:
        kind = archive_kind(file, is_archive(name))
    except OSError as e:
        raise HitError(f"cannot read source {name}: {e.strerror or e}") from None
    if kind == "tar":
        unpack_tar(file, dest_root, name, into=source.dest)
    elif kind == "zip":
        unpack_zip(file, dest_root, name, into=source.dest)
    elif is_archive(name):
        raise HitError(f"source {name} is named like an archive but is not one ({file})")
    else:
        # the bytes are what is hashed, not the mode: a plain file is never executable
        with open(file, "rb") as data, Writer(dest_root, name, source.dest) as w:
            w.file([name], name, data, 0o644)
