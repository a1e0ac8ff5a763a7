"""Sources: a cache keyed by content hash, mirrors, downloads, and putting them in a build folder.

The cache (and every mirror) holds `sha256/<hex>`: once the bytes are known, the URL they came
from no longer matters, so a site without internet seeds the cache from a folder of tarballs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
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


CHUNK = 1 << 20  # bytes read at a time; a stopped download ends within one


class FetchFailed(HitError):
    """A source no candidate gave: `url` (its own URL), `attempts` ((where, what went wrong)
    for each mirror candidate and the URL, in the order tried). `str()` is one line."""

    def __init__(self, url: str, attempts: tuple[tuple[str, str], ...]) -> None:
        super().__init__(url, attempts)
        self.url = url
        self.attempts = attempts

    def __str__(self) -> str:
        tried = "; ".join(f"{where}: {what}" for where, what in self.attempts)
        return f"cannot fetch {self.url}: {tried or 'not found in any mirror'}"


class Stopped(HitError):
    """A download given up because another one failed (fetching first stops at once)."""


def _download(url: str, dest: Path, stop: threading.Event | None = None) -> None:
    """`url` into the file `dest`. Raises HitError with the reason (the URL's own problem:
    refused, unknown host, 404), Stopped when `stop` is set while it runs."""
    import http.client
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r, open(dest, "wb") as f:
            while chunk := r.read(CHUNK):
                if stop is not None and stop.is_set():
                    raise Stopped(f"{url}: stopped")
                f.write(chunk)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        raise HitError(failure_reason(e)) from None


def failure_reason(e: BaseException) -> str:
    """Why a URL could not be read, on one line: urllib's reason (refused, unknown host,
    404), an OSError's strerror, else the exception's text."""
    reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
    return " ".join(str(reason).split())


def candidates(url: str, sha256: str, mirrors: tuple[str, ...]) -> list[str]:
    """Where a source is looked for, in order: each mirror (a folder or a URL) by hash
    (`sha256/<hex>`), then by the URL's file name, then the URL itself."""
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name
    out = []
    for m in mirrors:
        base = m.rstrip("/")
        out += [f"{base}/sha256/{sha256}"] + ([f"{base}/{name}"] if name else [])
    return out + [url]


def fetch(cache: Path, url: str, sha256: str | None, mirrors: tuple[str, ...] = ()) -> Path:
    """Make sure the source is in the cache, trying each mirror before its URL. Returns its
    file in the cache. Raises FetchFailed naming every candidate tried and why it failed."""
    return fetch_from(cache, url, sha256, mirrors)[0]


def fetch_from(
    cache: Path,
    url: str,
    sha256: str | None,
    mirrors: tuple[str, ...] = (),
    stop: threading.Event | None = None,
) -> tuple[Path, str]:
    """`fetch`, also saying where the bytes came from: (the file in the cache, the candidate
    that gave it, "" when it was cached already). Raises FetchFailed, or Stopped when `stop`
    is set during a download."""
    if sha256 and cache_file(cache, sha256).exists():
        return cache_file(cache, sha256), ""
    attempts: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=_ensure(cache), prefix=".fetch-") as tmp:
        for cand in candidates(url, sha256 or "", mirrors) if sha256 else [url]:
            if stop is not None and stop.is_set():
                raise Stopped(f"{url}: stopped")
            local = None if is_url(cand) else Path(cand)
            if local is not None and not local.is_file():
                attempts.append((cand, "not there"))
                continue
            dl = Path(tmp, "download")
            try:
                if local is not None:
                    shutil.copyfile(local, dl)
                else:
                    _download(cand, dl, stop)
            except Stopped:
                raise
            except (HitError, OSError) as e:
                attempts.append((cand, str(e) if isinstance(e, HitError) else e.strerror or ""))
                continue
            got = sha256_file(dl)
            if sha256 and got != sha256:
                attempts.append((cand, f"sha256 mismatch: expected {sha256}, got {got}"))
                continue
            return cache_file(cache, add_file(cache, dl)), cand
    raise FetchFailed(url, tuple(attempts))


def fetch_any(cache: Path, url_or_file: str, mirrors: tuple[str, ...] = ()) -> tuple[str, str]:
    """`hit fetch`: a URL or a local file into the cache; returns (sha256, url for the recipe)."""
    path = Path(url_or_file)
    if not is_url(url_or_file):
        if not path.is_file():
            raise HitError(f"{url_or_file}: no such file")
        return add_file(cache, path), Path(os.path.abspath(path)).as_uri()  # no ..
    found = fetch(cache, url_or_file, None, mirrors)
    return found.name, url_or_file


SEED_SUFFIXES = (*ARCHIVE_SUFFIXES, ".whl", ".patch", ".diff")
INDEX = "SOURCES.txt"  # in a seed folder: `<sha256>  <file name>  <url>` per line, for people
HEX64 = re.compile(r"[0-9a-f]{64}")


def seed_from(cache: Path, folder: Path) -> list[tuple[str, str]]:
    """`hit fetch --from DIR`: into the cache, every archive or patch directly in `folder`
    (a site without internet copies upstream tarballs there), every file of `folder/sha256/`
    (a seed folder `hdmod fetch --to` wrote: each must hash to its name) and every bare git
    mirror in `folder/git/` the cache lacks. Returns (sha256, file name) for each file and
    ("git", folder name) for each mirror copied. Raises HitError for a file of `sha256/`
    whose content does not match its name."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SEED_SUFFIXES))
    out = [(add_file(cache, f), f.name) for f in files]
    names = _index_names(folder / INDEX)
    by_hash = folder / "sha256"
    if by_hash.is_dir():
        for f in sorted(by_hash.iterdir()):
            if not (f.is_file() and HEX64.fullmatch(f.name)):
                continue
            if not cache_file(cache, f.name).exists():
                add_file(cache, f, expect=f.name)
            out.append((f.name, names.get(f.name, f"sha256/{f.name}")))
    gits = folder / "git"
    if gits.is_dir():
        for repo in sorted(gits.glob("*.git")):
            target = cache / "git" / repo.name
            if repo.is_dir() and not target.exists():
                _copy_tree(repo, target)
                out.append(("git", repo.name))
    return out


def _index_names(index: Path) -> dict[str, str]:
    """sha256 -> file name, from a seed folder's SOURCES.txt (empty if it has none)."""
    try:
        lines = index.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    return {p[0]: p[1] for p in (line.split() for line in lines) if len(p) >= 2}


def write_index(folder: Path, entries: list[tuple[str, str, str]]) -> None:
    """A seed folder's SOURCES.txt: one `<key>  <name>  <origin>` line per entry (key the
    sha256, or `git/<mirror>`; name the file name; origin the URL), the lines of other keys
    already there kept, sorted by name."""
    from ..atomic import write_atomic

    index = folder / INDEX
    lines = {key: f"{key}  {name}  {origin}" for key, name, origin in entries}
    try:
        for line in index.read_text(errors="replace").splitlines():
            parts = line.split()
            if parts and parts[0] not in lines:
                lines[parts[0]] = line
    except OSError:
        pass
    ordered = sorted(lines.values(), key=lambda line: (line.split() + ["", ""])[1])
    write_atomic(index, "".join(line + "\n" for line in ordered))


def _copy_tree(src: Path, target: Path) -> None:
    """A folder copied next to `target`, then renamed into place: never half there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".in-"))
    try:
        shutil.copytree(src, tmp / "tree", symlinks=True)
        os.rename(tmp / "tree", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    elif source.pypi is not None:
        assert source.sha256
        file, name = cache_file(cache, source.sha256), source.pypi
    else:
        assert source.url and source.sha256
        file = cache_file(cache, source.sha256)
        name = PurePosixPath(urllib.parse.urlsplit(source.url).path).name or source.sha256
    if source.pypi is not None or name.endswith(".whl"):
        from .pydist import check_release, wheel_name  # email's parser: Python sources only

        wheel = wheel_name(file)
        if source.pypi is not None:
            check_release(file, source.pypi, wheel)
        if wheel is not None:  # pip installs a wheel by its file name, never unpacked
            with open(file, "rb") as data, Writer(dest_root, wheel, source.dest) as w:
                w.file([wheel], wheel, data, 0o644)
            return
    try:
        kind = archive_kind(file, is_archive(name) or source.pypi is not None)
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
