"""Sources: a cache keyed by content hash, mirrors, downloads, and safe unpacking.

The cache (and every mirror) holds `sha256/<hex>`: once the bytes are known, the URL they came
from no longer matters, so a site without internet seeds the cache from a folder of tarballs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath

from .errors import HitError
from .hashing import sha256_file, tree_hash
from .recipes import Source

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
TIMEOUT = 60


def cache_file(cache: Path, sha256: str) -> Path:
    return cache / "sha256" / sha256


def source_hash(source: Source) -> str:
    """What of a source enters the build spec: the bytes, never where they came from."""
    if source.sha256:
        return source.sha256
    if source.commit:
        return "git:" + source.commit
    assert source.path is not None
    if source.path.is_dir():
        return "tree:" + tree_hash(source.path)
    if source.path.is_file():
        return sha256_file(source.path)
    raise HitError(f"source path {source.path} does not exist")


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
            local = Path(cand) if "://" not in cand else None
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
    if "://" not in url_or_file:
        if not path.is_file():
            raise HitError(f"{url_or_file}: no such file")
        return add_file(cache, path), path.absolute().as_uri()
    found = fetch(cache, url_or_file, None, mirrors)
    return found.name, url_or_file


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def _ensure(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- materialising sources in a build folder -----------------------------------------------


def materialize(source: Source, cache: Path, dest_root: Path) -> None:
    """Put one source in the build folder: unpack an archive, copy a folder or a file."""
    import tarfile
    import zipfile

    dest = _ensure(dest_root / source.dest)
    if source.git is not None:
        from .gitsources import export

        export(cache, source.git, source.commit, dest)
        return
    if source.path is not None and source.path.is_dir():
        shutil.copytree(source.path, dest, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git"))  # fmt: skip
        return
    if source.path is not None:
        file, name = source.path, source.path.name
    else:
        assert source.url and source.sha256
        file = cache_file(cache, source.sha256)
        name = PurePosixPath(urllib.parse.urlsplit(source.url).path).name or source.sha256
    if tarfile.is_tarfile(file):
        unpack_tar(file, dest, name)
    elif zipfile.is_zipfile(file):
        unpack_zip(file, dest, name)
    else:
        shutil.copyfile(file, dest / name)


def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


def _top_folder(names: list[str]) -> str | None:
    """The single top folder shared by every member, which unpacking strips."""
    tops = {parts[0] for parts in map(_parts, names) if parts}
    if len(tops) != 1:
        return None
    top = tops.pop()
    return top if any(len(_parts(n)) > 1 for n in names) else None


def _outside(archive: str, member: str) -> HitError:
    return HitError(
        f"{archive}: member {member!r} would land outside the build folder; refusing to unpack"
    )


def unpack_tar(file: Path, dest: Path, label: str, strip: bool = True) -> None:
    import tarfile

    with tarfile.open(file, "r:*") as tf:
        members = tf.getmembers()
        top = _top_folder([m.name for m in members]) if strip else None
        safe: list[tarfile.TarInfo] = []
        for m in members:
            if m.name.startswith("/") or ".." in _parts(m.name):
                raise _outside(label, m.name)
            parts = _parts(m.name)[1:] if top else _parts(m.name)
            if not parts:
                continue
            changes: dict = {"name": "/".join(parts)}
            if m.islnk():
                if m.linkname.startswith("/") or ".." in _parts(m.linkname):
                    raise _outside(label, f"{m.name} (a hard link to {m.linkname})")
                link = _parts(m.linkname)
                changes["linkname"] = "/".join(link[1:] if top and link[:1] == [top] else link)
            try:
                safe.append(tarfile.data_filter(m.replace(**changes, deep=False), str(dest)))
            except tarfile.FilterError:
                raise _outside(label, m.name) from None
        try:
            tf.extractall(dest, members=safe, filter="data")
        except tarfile.FilterError as e:
            raise _outside(label, getattr(e, "tarinfo", None) and e.tarinfo.name or "?") from None
        except (tarfile.TarError, EOFError, OSError, KeyError) as e:
            raise HitError(f"{label}: cannot unpack: {e}") from None


def unpack_zip(file: Path, dest: Path, label: str) -> None:
    import zipfile

    with zipfile.ZipFile(file) as zf:
        names = zf.namelist()
        top = _top_folder(names)
        for info in zf.infolist():
            if info.filename.startswith("/") or ".." in _parts(info.filename):
                raise _outside(label, info.filename)
        for info in zf.infolist():
            parts = _parts(info.filename)[1:] if top else _parts(info.filename)
            if not parts:
                continue
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            if (info.external_attr >> 16) & 0o111:
                target.chmod(0o755)
