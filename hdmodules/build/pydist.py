"""Python release files (a wheel, an sdist) as `pypi:` sources: what they are by their own
metadata, never by the name they were fetched under."""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from pathlib import Path

from ..errors import HitError
from ..spec.pythonenv import project_name


def wheel_name(file: Path) -> str | None:
    """The file name pip needs for the wheel `file` (`Cython-3.0.10-py2.py3-none-any.whl`:
    its dist-info folder's name and the tags of its WHEEL file), or None when `file` is no
    wheel (an sdist). Raises HitError for a wheel whose name or tags could not be a file
    name."""
    import zipfile  # imported when needed: startup time of every command

    try:
        with zipfile.ZipFile(file) as zf:
            names = zf.namelist()
            info = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/WHEEL", n)), None)
            if info is None:
                return None
            tags = [
                line.split(":", 1)[1].strip()
                for line in zf.read(info).decode("utf-8", "replace").splitlines()
                if line.startswith("Tag:")
            ]
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    stem = info.split("/")[0][: -len(".dist-info")]
    parts = [t.split("-") for t in tags if t.count("-") == 2] or [["py3", "none", "any"]]
    # the compressed tag set of the wheel's file name (PEP 425): py2.py3-none-any
    tag = "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))
    if not re.fullmatch(r"[A-Za-z0-9_.+!-]+", stem + tag) or stem.count("-") != 1:
        raise HitError(f"wheel {file}: unusable name {stem!r} or tag {tag!r}")
    return f"{stem}-{tag}.whl"


def release_of(file: Path, wheel: str | None) -> tuple[str, str]:
    """(project, version) of a release file by its own metadata: a wheel's dist-info name
    (`wheel`, its file name from wheel_name), else an sdist's PKG-INFO. Raises HitError for
    an archive that has neither."""
    if wheel is not None:
        name, version = wheel.split("-")[:2]
        return name, version
    from ..spec.archiveinfo import read_archive

    meta = read_archive(file, file.name).metadata
    headers = BytesHeaderParser().parsebytes(meta) if meta else None
    if headers is None or not headers.get("Name") or not headers.get("Version"):
        raise HitError(f"{file}: neither a wheel nor an sdist with PKG-INFO")
    return str(headers["Name"]).strip(), str(headers["Version"]).strip()


def check_release(file: Path, requirement: str, wheel: str | None) -> None:
    """Refuse (HitError) a file that is not the release `requirement` (`name==version`)
    names: its sha256 chose it, so a recipe naming one project with another's hash would
    otherwise install the other, silently."""
    want_name, want_version = requirement.split("==", 1)
    name, version = release_of(file, wheel)
    if project_name(name) != project_name(want_name) or version != want_version:
        raise HitError(
            f"source pypi: {requirement}: the file with that sha256 is {name} {version} "
            "(by its own metadata), not that release: correct the sha256 or the release"
        )
