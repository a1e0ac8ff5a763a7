"""Archives made by the tests: tar and zip files of any members, hostile ones included."""

import io
import stat
import tarfile
import zipfile


def tar_bytes(members, mode: str = "w") -> bytes:
    """members: (name, kind, data) with kind file/dir/sym/hard/fifo/chr/blk; data is the bytes
    of a file, the target of a link, or for a file a (bytes, mode) pair."""
    types = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data, info.mode = data if isinstance(data, tuple) else (data, 0o644)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = types[kind]
            info.mode = 0o755
            if kind in ("sym", "hard"):
                info.linkname = data
            tf.addfile(info)
    return buf.getvalue()


def zip_bytes(members) -> bytes:
    """members: (name, kind, data) with kind file/dir/sym/fifo; data as for tar_bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, kind, data in members:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            mode = {"dir": stat.S_IFDIR | 0o755, "sym": stat.S_IFLNK | 0o777,
                    "fifo": stat.S_IFIFO | 0o644, "file": stat.S_IFREG | 0o644}[kind]  # fmt: skip
            if kind == "file" and isinstance(data, tuple):
                data, perm = data
                mode = stat.S_IFREG | perm
            info.external_attr = mode << 16
            zf.writestr(info, data if kind != "dir" else b"")
    return buf.getvalue()
