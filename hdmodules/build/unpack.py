"""Unpacking sources into a build folder without ever writing outside it.

Builds run as root at sites, so this is a security boundary, and it does not lean on the
`tarfile` data filter (PEP 706): 3.11.2 lacks it, and CVE-2025-4517 bypasses it (a symlink
chain longer than PATH_MAX stops `os.path.realpath` from checking). One reader per format (tar,
zip, a folder) feeds one `Writer`, which checks every member itself:

- names are relative and free of `..` (GNU tar skips such members too); a single top folder
  shared by every member is stripped;
- folders are opened one component at a time with O_NOFOLLOW, files created with
  O_CREAT|O_EXCL|O_NOFOLLOW: a symlink, from the archive or from an earlier source, is never
  written through;
- symlinks are made last; each relative target must stay inside the build folder by a
  confined resolver (not `realpath`); hard links name a file the same archive wrote before;
- devices, FIFOs and other special members are refused; modes lose setuid/setgid/sticky and
  group/world write; owners in the archive are ignored.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import HitError

MAX_HOPS = 40  # symlinks followed in one lookup, as the Linux kernel allows
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
THROUGH = "sources are never unpacked through a symlink"
Parts = tuple[str, ...]


def _parts(name: str) -> list[str]:
    return [p for p in name.split("/") if p not in ("", ".")]


def _top_folder(names: list[str]) -> str | None:
    """The single top folder shared by every member, which unpacking strips."""
    tops = {parts[0] for parts in map(_parts, names) if parts}
    if len(tops) != 1:
        return None
    top = tops.pop()
    return top if any(len(_parts(n)) > 1 for n in names) else None


def safe_mode(mode: int) -> int:
    """A member's permission bits as unpacked: the owner's and the x bits kept, setuid, setgid,
    sticky and group/world write dropped, the owner always able to read and write (as the data
    filter of PEP 706 does, without relying on it)."""
    return (mode & 0o755) | 0o600


def _outside(label: str, member: str, what: str = "") -> HitError:
    return HitError(
        f"{label}: member {member!r}{what} would land outside the build folder; refusing to unpack"
    )


def damaged(label: str, e: BaseException | str) -> HitError:
    """The one-line error for an archive that cannot be read to its end."""
    detail = " ".join((str(e) or type(e).__name__).split())  # zlib and lzma: one line
    return HitError(f"cannot unpack {label}: truncated or damaged archive ({detail})")


class Writer:
    """Writes the members of one source under `root` (a trusted folder, created if missing),
    in the folder `into` (relative, reached and created without following symlinks).

    Member paths are given as lists of components relative to `into`; `member` is the name
    shown in messages. Use as a context manager: symlinks are created when it closes cleanly.
    Every refusal and every OS error is raised as a one-line HitError naming `label`."""

    def __init__(self, root: Path, label: str, into: str = ".") -> None:
        self.label = label
        if into.startswith("/") or ".." in _parts(into):
            raise HitError(f"{label}: dest {into!r} must be a relative path inside the folder")
        self.base: Parts = tuple(_parts(into))
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise self._oserror(str(root), e) from None
        self.files: set[Parts] = set()  # regular files this source wrote (hard link targets)
        self.pending: dict[Parts, tuple[str, str, bool]] = {}  # symlinks, created last
        try:
            os.close(self._folder(self.base, f"dest {into!r}", create=True))
        except BaseException:
            os.close(self.root_fd)
            raise

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                self._make_symlinks()
        finally:
            os.close(self.root_fd)

    # --- walking folders without symlinks ----------------------------------------------------

    def _oserror(self, what: str, e: OSError) -> HitError:
        return HitError(f"cannot unpack {self.label}: {what}: {e.strerror or e}")

    def _folder(self, parts: Parts, what: str, create: bool) -> int:
        """An fd of the folder `parts` (relative to the root), opened one component at a time
        with O_NOFOLLOW; missing folders are made when `create`. The caller closes it."""
        fd = os.dup(self.root_fd)
        try:
            for i, name in enumerate(parts):
                try:
                    try:
                        new = os.open(name, DIR_FLAGS, dir_fd=fd)
                    except FileNotFoundError:
                        if not create:
                            raise
                        os.mkdir(name, 0o755, dir_fd=fd)
                        new = os.open(name, DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    raise self._explain(fd, name, parts[: i + 1], what, e) from None
                os.close(fd)
                fd = new
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _explain(self, fd: int, name: str, path: Parts, what: str, e: OSError) -> HitError:
        """Why `name` (at `path`) could not be opened as a folder, as a HitError."""
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        shown = "/".join(path)
        if stat.S_ISLNK(mode):
            return HitError(f"{self.label}: {what} runs through the symlink {shown!r}; {THROUGH}")
        if mode and not stat.S_ISDIR(mode):
            return HitError(f"{self.label}: {what} needs {shown!r} to be a folder, not a file")
        return self._oserror(what, e)

    def _check_pending(self, full: Parts, member: str) -> None:
        """Refuse a member under a symlink of this archive (they are created only at the end);
        a member at the very path of one replaces it, as later members do in tar."""
        if len(full) == len(self.base) or any(
            p in ("", ".", "..") or "/" in p or "\0" in p for p in full
        ):
            raise _outside(self.label, member)
        for i in range(len(self.base) + 1, len(full)):
            if full[:i] in self.pending:
                sym = "/".join(full[:i])
                raise HitError(
                    f"{self.label}: member {member!r} runs through the symlink {sym!r}; {THROUGH}"
                )
        self.pending.pop(full, None)

    def _clear(self, fd: int, name: str, full: Parts, member: str) -> None:
        """Make room for a file or hard link: an earlier regular file goes, a folder or a
        symlink (never followed, never replaced) is a refusal."""
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        shown = "/".join(full)
        if stat.S_ISREG(mode):
            os.unlink(name, dir_fd=fd)
            self.files.discard(full)
        elif stat.S_ISDIR(mode):
            raise HitError(f"{self.label}: member {member!r} would replace the folder {shown!r}")
        elif stat.S_ISLNK(mode):
            raise HitError(
                f"{self.label}: member {member!r} would replace the symlink {shown!r}; {THROUGH}"
            )
        else:
            raise HitError(f"{self.label}: member {member!r} would replace the special {shown!r}")

    # --- members -----------------------------------------------------------------------------

    def directory(self, parts: list[str], member: str) -> None:
        """A folder (and the folders above it); one already there is kept, its mode too."""
        full = self.base + tuple(parts)
        self._check_pending(full, member)
        os.close(self._folder(full, f"member {member!r}", create=True))

    def file(
        self, parts: list[str], member: str, data: BinaryIO, mode: int, mtime: float | None = None
    ) -> int:
        """Write a regular file from the stream `data` with `safe_mode(mode)` and, when given,
        `mtime` (make compares them: autotools trees must not look out of date). An earlier
        regular file there is replaced. Returns the number of bytes written; errors of reading
        `data` are the reader's and pass through unchanged."""
        full = self.base + tuple(parts)
        self._check_pending(full, member)
        what = f"member {member!r}"
        parent = self._folder(full[:-1], what, create=True)
        written = 0
        try:
            try:
                self._clear(parent, full[-1], full, member)
                fd = os.open(full[-1], FILE_FLAGS, 0o600, dir_fd=parent)
            except OSError as e:
                raise self._oserror(what, e) from None
            with open(fd, "wb", closefd=True) as out:
                self.files.add(full)
                while chunk := data.read(1 << 20):
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise self._oserror(what, e) from None
                    written += len(chunk)
                try:
                    out.flush()
                    os.fchmod(fd, safe_mode(mode))
                    if mtime is not None:
                        with contextlib.suppress(OverflowError, ValueError, OSError):
                            os.utime(fd, (mtime, mtime))
                except OSError as e:
                    raise self._oserror(what, e) from None
        finally:
            os.close(parent)
        return written

    def hardlink(self, parts: list[str], member: str, target: list[str]) -> None:
        """A hard link to `target`, which must be a regular file this source wrote before."""
        full, goal = self.base + tuple(parts), self.base + tuple(target)
        self._check_pending(full, member)
        if goal not in self.files:
            raise HitError(
                f"{self.label}: member {member!r} is a hard link to {'/'.join(target)!r}, "
                f"which is not a file unpacked before it; refusing to unpack"
            )
        if goal == full:
            return
        what = f"member {member!r}"
        src = self._folder(goal[:-1], what, create=False)
        try:
            dst = self._folder(full[:-1], what, create=True)
            try:
                if not stat.S_ISREG(os.stat(goal[-1], dir_fd=src, follow_symlinks=False).st_mode):
                    raise HitError(f"{self.label}: {what} links to something not a file")
                self._clear(dst, full[-1], full, member)
                os.link(goal[-1], full[-1], src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
                self.files.add(full)
            except OSError as e:
                raise self._oserror(what, e) from None
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def symlink(self, parts: list[str], member: str, target: str, confined: bool = True) -> None:
        """Record a symlink, made when the writer closes, after every other member. A confined
        one (from an archive) must have a relative target that resolves inside the root;
        `confined=False` copies a folder source's own link as it is, like copytree does."""
        full = self.base + tuple(parts)
        self._check_pending(full, member)
        what = f" (a symlink to {target!r})"
        if "\0" in target or not target:
            raise HitError(f"{self.label}: member {member!r} is a symlink with an empty target")
        if confined and target.startswith("/"):
            raise _outside(self.label, member, what)
        if full in self.files:  # a file of this archive that the symlink replaces, as in tar
            parent = self._folder(full[:-1], f"member {member!r}", create=False)
            try:
                os.unlink(full[-1], dir_fd=parent)
            except OSError as e:
                raise self._oserror(f"member {member!r}", e) from None
            finally:
                os.close(parent)
            self.files.discard(full)
        self.pending[full] = (member, target, confined)

    def _make_symlinks(self) -> None:
        made: list[tuple[Parts, str, str, bool]] = []
        try:
            for full, (member, target, confined) in self.pending.items():
                what = f"member {member!r}"
                parent = self._folder(full[:-1], what, create=True)
                try:
                    try:
                        os.stat(full[-1], dir_fd=parent, follow_symlinks=False)
                    except FileNotFoundError:
                        pass
                    else:
                        shown = "/".join(full)
                        raise HitError(
                            f"{self.label}: {what} would replace {shown!r} by a symlink; "
                            f"a symlink never replaces what an earlier source unpacked"
                        )
                    if confined and not self.inside(full[:-1], target):
                        raise _outside(self.label, member, f" (a symlink to {target!r})")
                    os.symlink(target, full[-1], dir_fd=parent)
                    made.append((full, member, target, confined))
                except OSError as e:
                    raise self._oserror(what, e) from None
                finally:
                    os.close(parent)
            # every link again, now that all exist: a later one cannot have redirected another
            for full, member, target, confined in made:
                if confined and not self.inside(full[:-1], target):
                    raise _outside(self.label, member, f" (a symlink to {target!r})")
        except BaseException:
            for full, *_ in made:
                with contextlib.suppress(OSError):
                    os.unlink("/".join(full), dir_fd=self.root_fd)
            raise

    def inside(self, start: Parts, target: str) -> bool:
        """Whether `target`, read from the folder `start`, stays inside the root: a resolver
        confined to the root (never `os.path.realpath`). Symlinks on disk are followed with
        readlink, at most MAX_HOPS; missing components are taken as written, but a `..` after
        a missing or non-folder component is refused (what it would mean depends on what is
        created later); going above the root, an absolute link, or any error is False."""
        if target.startswith("/"):
            return False
        todo = target.split("/")[::-1]
        cur: list[str] = list(start)
        solid, hops = True, 0
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not cur or not solid:
                    return False
                cur.pop()
                continue
            if not solid:
                cur.append(name)
                continue
            path = "/".join([*cur, name])
            try:
                mode = os.stat(path, dir_fd=self.root_fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                solid = False
                cur.append(name)
                continue
            except (OSError, ValueError):
                return False
            if stat.S_ISLNK(mode):
                hops += 1
                try:
                    link = os.readlink(path, dir_fd=self.root_fd)
                except OSError:
                    return False
                if hops > MAX_HOPS or link.startswith("/"):
                    return False
                todo.extend(link.split("/")[::-1])
                continue
            cur.append(name)
            solid = stat.S_ISDIR(mode)
        return True


# --- readers -------------------------------------------------------------------------------


def _damage_types() -> tuple[type[BaseException], ...]:
    import lzma
    import tarfile
    import zipfile
    import zlib

    formats = (
        tarfile.TarError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        lzma.LZMAError,
    )
    return (*formats, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)


@contextlib.contextmanager
def _reading(label: str) -> Iterator[None]:
    """Errors of reading an archive (bz2 raises OSError, an encrypted zip RuntimeError, an
    unknown zip compression NotImplementedError) become one line naming it. The Writer's own
    errors are HitErrors already and pass through."""
    try:
        yield
    except HitError:
        raise
    except _damage_types() as e:
        raise damaged(label, e) from None


def member_parts(label: str, name: str, top: str | None) -> list[str] | None:
    """A member's path as components, its top folder stripped; None for the top itself.
    Absolute names and `..` anywhere are refused (GNU tar skips them too)."""
    if "\0" in name:
        raise _outside(label, name)
    parts = _parts(name)
    if name.startswith("/") or ".." in parts:
        raise _outside(label, name)
    if top is not None:
        parts = parts[1:]
    return parts or None


def _placed(label: str, names: list[str], strip: bool) -> tuple[str | None, list]:
    """The single top folder that unpacking strips (None when `strip` is off or there is
    none), and `(index, parts)` of each member that lands somewhere (see member_parts)."""
    top = _top_folder(names) if strip else None
    placed = [(i, parts) for i, n in enumerate(names) if (parts := member_parts(label, n, top))]
    return top, placed


def _special(label: str, member: str) -> HitError:
    return HitError(
        f"{label}: member {member!r} is a device, FIFO or other special file; sources hold "
        f"only files, folders and links, refusing to unpack"
    )


def unpack_tar(file: Path, dest: Path, label: str, strip: bool = True, into: str = ".") -> None:
    """Unpack the tarball `file` (any compression `tarfile` reads) into `dest`/`into`.

    `label` names the archive in messages; `strip` removes a single top folder shared by every
    member (off for git exports). Hard links must name a file unpacked before them; symlinks
    must stay inside `dest`. Raises HitError for a refused member and for a truncated or
    damaged archive. Every member is checked and written here, not by `extractall`."""
    import tarfile

    with _reading(label), tarfile.open(file, "r:*") as tf:
        members = tf.getmembers()
        top, placed = _placed(label, [m.name for m in members], strip)
        with Writer(dest, label, into) as w:
            for i, parts in placed:
                _tar_member(w, tf, members[i], parts, top)


def _tar_member(w: Writer, tf, m, parts: list[str], top: str | None) -> None:
    """Write one tar member (a tarfile.TarInfo of `tf`) at `parts` below the destination."""
    label = w.label
    if m.isdir():
        w.directory(parts, m.name)
    elif m.isreg():
        data = tf.extractfile(m)
        assert data is not None
        if w.file(parts, m.name, data, m.mode, m.mtime) != m.size:
            raise damaged(label, f"member {m.name!r} is cut short")
    elif m.issym():
        w.symlink(parts, m.name, m.linkname)
    elif m.islnk():
        if m.linkname.startswith("/") or ".." in _parts(m.linkname):
            raise _outside(label, m.name, f" (a hard link to {m.linkname!r})")
        link = _parts(m.linkname)
        w.hardlink(parts, m.name, link[1:] if top and link[:1] == [top] else link)
    else:
        raise _special(label, m.name)


def unpack_zip(file: Path, dest: Path, label: str, strip: bool = True, into: str = ".") -> None:
    """Unpack the zip `file` into `dest`/`into`, a single top folder stripped.

    A member whose Unix mode (external_attr >> 16) says symlink becomes a real symlink, as
    Info-ZIP makes it, under the same checks as a tar symlink; other special modes are refused;
    the x bits are kept. Raises HitError for a refused member and for a truncated or damaged
    archive (including encrypted members and compressions Python cannot read)."""
    import zipfile

    with _reading(label), zipfile.ZipFile(file) as zf:
        infos = zf.infolist()
        _top, placed = _placed(label, [i.filename for i in infos], strip)
        with Writer(dest, label, into) as w:
            for i, parts in placed:
                _zip_member(w, zf, infos[i], parts)


def _zip_member(w: Writer, zf, info, parts: list[str]) -> None:
    """Write one zip member (a zipfile.ZipInfo of `zf`) at `parts` below the destination."""
    label = w.label
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    kind = stat.S_IFMT(mode)
    if info.is_dir() or kind == stat.S_IFDIR:
        w.directory(parts, info.filename)
    elif kind == stat.S_IFLNK:
        if info.file_size > 4096:
            raise damaged(label, f"symlink {info.filename!r} is too long")
        w.symlink(parts, info.filename, os.fsdecode(zf.read(info)))
    elif kind in (0, stat.S_IFREG):
        try:
            mtime = time.mktime((*info.date_time, 0, 0, -1))
        except (OverflowError, ValueError):
            mtime = None
        with zf.open(info) as data:
            if w.file(parts, info.filename, data, mode or 0o644, mtime) != info.file_size:
                raise damaged(label, f"member {info.filename!r} is cut short")
    else:
        raise _special(label, info.filename)


def copy_folder(folder: Path, dest: Path, label: str, into: str = ".") -> None:
    """Copy a folder source into `dest`/`into` through the same Writer: nothing is merged into
    or through a symlink already there. Its own symlinks are copied as they are (it is the
    user's tree, hashed with its link targets, like copytree(symlinks=True)); `.git` is left
    out, as the tree hash leaves it out. Raises HitError for special files and refusals."""

    def unreadable(e: OSError) -> None:
        raise HitError(f"cannot copy {label}: {e.filename}: {e.strerror or e}")

    with Writer(dest, label, into) as w:
        for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
            rel = _parts(os.path.relpath(dirpath, folder))
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in sorted(dirnames + filenames):
                if name == ".git":
                    continue
                path = os.path.join(dirpath, name)
                shown = "/".join([*rel, name])
                try:
                    st = os.stat(path, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode):
                        w.symlink([*rel, name], shown, os.readlink(path), confined=False)
                    elif stat.S_ISDIR(st.st_mode):
                        w.directory([*rel, name], shown)
                    elif stat.S_ISREG(st.st_mode):
                        with open(path, "rb") as data:
                            w.file([*rel, name], shown, data, st.st_mode, st.st_mtime)
                    else:
                        raise _special(label, shown)
                except OSError as e:
                    raise HitError(f"cannot copy {label}: {shown}: {e.strerror or e}") from None
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
