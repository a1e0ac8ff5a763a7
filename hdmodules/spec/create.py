"""`hit create`: a starting recipe from a source archive, as `spack create` writes one.

The archive (a .tar, .tar.gz/.bz2/.xz, .zip or a wheel) is read, never unpacked: its members
are listed and only a few small files are read (PKG-INFO, pyproject.toml, a wheel's
METADATA), by their names only, so a hostile member path is never used as a path. From the
top folder the build system is guessed, in this order: pyproject.toml or setup.py (python),
meson.build, CMakeLists.txt, configure (autotools), Makefile (make); from the metadata of a
Python distribution its name, version and dependencies; else name and version come from the
file name (`foo-1.2.3.tar.gz` -> foo, 1.2.3) or the top folder's.

This module only reads the file it is given (through archiveinfo) and returns the recipe's
text; fetching it into the source cache and writing the recipe is publish.create's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path

from ..errors import HitError
from ..names import name_problem, text_problem, version_problem
from .archiveinfo import Contents, read_archive
from .pythonenv import project_name
from .recipes import PYPI_RE

SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip", ".whl")
NAME_VERSION = re.compile(r"(?P<name>.+?)[-_]v?(?P<version>[0-9][A-Za-z0-9.+~_-]*)")
REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# the environment a Python package's markers are read in: the store's CPython (python.yaml)
STORE_PYTHON = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "extra": "",
}
EXTRA_MARKER = re.compile(r"\bextra\b")  # `extra == "test"`, `"test" == extra`
# top-level file -> build system, in order of precedence
SYSTEM_FILES = (
    ("pyproject.toml", "python"),
    ("setup.py", "python"),
    ("meson.build", "meson"),
    ("CMakeLists.txt", "cmake"),
    ("configure", "autotools"),
    ("Makefile", "make"),
    ("GNUmakefile", "make"),
    ("makefile", "make"),
)
ARGS_HINT = {
    "autotools": "# configure_args: [--disable-static]   (also make_args:, install_args:)",
    "cmake": "# cmake_args: [-DBUILD_TESTING=OFF]   (also build_args:, install_args:)",
    "meson": "# meson_args: [-Dtests=false]   (also build_args:, install_args:)",
    "make": '# make_args: ["PREFIX={ARTIFACT}"]   (also install_args:)',
}


@dataclass(frozen=True)
class Created:
    """A starting recipe: `name` and `version` (both valid, names.py), `build_system` (a key
    of buildsystems.SYSTEMS, or None when none was recognised), `dependencies` (recipe
    names) and `text` (the YAML file to write, comments included)."""

    name: str
    version: str
    build_system: str | None
    dependencies: tuple[str, ...]
    text: str


def python_name(project: str) -> str:
    """The recipe name of a Python project: `py-` and its normalized name (lowercase, runs of
    `-_.` as one `-`): `Flit_Core` -> `py-flit-core`."""
    return "py-" + project_name(project)


def _requirement(text: str) -> str | None:
    """A PEP 508 requirement's recipe name, or None for one with an `extra ==` marker or
    one whose environment marker does not hold for a Python 3.11 on Linux, the store's
    (`python_version < "3.11"`, `os_name == "nt"`), as pip would skip it there; a marker
    that cannot be read is kept (the comment says to check)."""
    from packaging.markers import InvalidMarker, Marker, UndefinedComparison

    spec, _, marker = text.partition(";")
    if EXTRA_MARKER.search(marker):
        return None
    if marker.strip():
        try:
            if not Marker(marker).evaluate(STORE_PYTHON):
                return None
        except (InvalidMarker, UndefinedComparison, ValueError):
            pass
    m = REQUIREMENT_NAME.match(spec)
    return python_name(m.group(1)) if m else None


def _stem(file_name: str) -> str:
    for suffix in SUFFIXES:
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def guess_from_name(file_name: str) -> tuple[str, str] | None:
    """(name, version) from an archive's file name (`foo-1.2.3.tar.gz`, `foo_2.0.zip`, a
    wheel's `foo-1.0-py3-none-any.whl`), raw as written, or None when it names no version."""
    stem = _stem(file_name)
    if file_name.endswith(".whl") and stem.count("-") >= 2:
        name, version = stem.split("-")[:2]
        return name, version
    m = NAME_VERSION.fullmatch(stem)
    return (m.group("name"), m.group("version")) if m else None


def clean_name(raw: str) -> str:
    """`raw` as a valid package name: lowercase, each run of other characters than
    `a-z0-9_.+-` as one `-`, no `..`, no leading or trailing punctuation. May be ""."""
    name = re.sub(r"[^a-z0-9_.+-]+", "-", raw.lower())
    return re.sub(r"\.{2,}", ".", name).strip("-._+")


def _pyproject(c: Contents) -> dict:
    """pyproject.toml as a mapping ({} when there is none or it does not parse)."""
    import tomllib

    try:
        data = tomllib.loads(c.pyproject.decode()) if c.pyproject else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _names(requirements: object) -> list[str]:
    """The recipe names of a list of PEP 508 requirements (anything else: none)."""
    items = requirements if isinstance(requirements, list) else []
    return [n for r in items if isinstance(r, str) and (n := _requirement(r))]


def _python_deps(c: Contents, meta: Message | None, pyproject: dict) -> list[str]:
    """`python`, the build requirements ([build-system] requires; py-setuptools for a
    setup.py-only project, which pip builds with it; none for a wheel), then the run-time
    ones (Requires-Dist of the metadata, else [project] dependencies)."""
    deps = ["python"]
    build = pyproject.get("build-system")
    if isinstance(build, dict) and "requires" in build:
        deps += _names(build["requires"])
    elif not c.wheel:
        deps.append("py-setuptools")
    if meta is not None:
        deps += _names([str(r) for r in meta.get_all("Requires-Dist") or []])
    else:
        project = pyproject.get("project")
        deps += _names(project.get("dependencies") if isinstance(project, dict) else None)
    return list(dict.fromkeys(deps))


def _python_identity(meta: Message | None, pyproject: dict) -> tuple[str, str] | None:
    """(project name, version) from the metadata, else from pyproject.toml's [project]."""
    if meta is not None and meta.get("Name"):
        return str(meta["Name"]).strip(), str(meta.get("Version", "")).strip()
    project = pyproject.get("project")
    if isinstance(project, dict) and isinstance(project.get("name"), str):
        version = project.get("version")
        return project["name"], version if isinstance(version, str) else ""
    return None


def recipe_for(
    file: Path,
    file_name: str,
    url: str,
    sha256: str,
    name: str | None = None,
    version: str | None = None,
) -> Created:
    """The starting recipe for the archive `file` (named `file_name`, fetched from `url`,
    whose content hash is `sha256`); `name` and `version` replace the guessed ones. Raises
    HitError for a file that is not a readable archive, for a given name or version that is
    not valid, and when no valid name or version can be guessed."""
    c = read_archive(file, file_name)
    system = next((s for f, s in SYSTEM_FILES if f in c.files), None)
    meta = BytesHeaderParser().parsebytes(c.metadata) if c.metadata else None
    pyproject = _pyproject(c)
    identity = _python_identity(meta, pyproject)
    if meta is not None and identity is not None:
        system = "python"  # an sdist's PKG-INFO or a wheel's METADATA
    guessed = guess_from_name(file_name) or (guess_from_name(c.top) if c.top else None)
    g_name, g_version = clean_name(c.top or _stem(file_name)), ""
    if guessed:
        g_name, g_version = clean_name(guessed[0]), guessed[1]
    project = None
    if system == "python":
        project = identity[0] if identity else g_name
        g_name = python_name(project)
        if identity and identity[1]:
            g_version = identity[1]
    name = _checked("name", name, g_name, file_name, name_problem)
    version = _checked("version", version, g_version, file_name, version_problem)
    deps = _python_deps(c, meta, pyproject) if system == "python" else []
    deps = [d for d in deps if d != name]
    text = _render(name, version, system, deps, url, sha256, file_name, c, meta, project)
    return Created(name, version, system, tuple(deps), text)


def _checked(
    what: str,
    given: str | None,
    guessed: str,
    file_name: str,
    problem: Callable[[object], str | None],
) -> str:
    """`given` if valid (else HitError naming --what), else `guessed` if valid (else HitError
    asking for --what)."""
    if given is not None:
        why = problem(given)
        if why:
            raise HitError(f"--{what} {given!r} {why}")
        return given
    why = problem(guessed) if guessed else "could not be guessed"
    if why:
        shown = f" {guessed!r}" if guessed else ""
        raise HitError(f"{file_name}: the {what}{shown} {why}; give it with --{what}")
    return guessed


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when YAML reads it back as that string, else quoted."""
    import yaml

    try:
        plain = yaml.safe_load(value) == value and "\n" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value)


def _render(
    name: str,
    version: str,
    system: str | None,
    deps: list[str],
    url: str,
    sha256: str,
    file_name: str,
    c: Contents,
    meta: Message | None,
    project: str | None,
) -> str:
    """The recipe's YAML text, with comments saying what to check."""
    lines = [
        f"# Written by `hit create` from {file_name}: a starting point, check every line.",
        f"name: {_scalar(name)}",
        f"version: {json.dumps(version)}",
    ]
    summary = str(meta.get("Summary", "")).strip() if meta is not None else ""
    if summary and "\n" not in summary and text_problem(summary) is None:
        lines.append(f"description: {json.dumps(summary)}")
    else:
        lines.append("# description: what the package is, in one line")
    lines.append("sources:")
    requirement = f"{project}=={version}"
    if system == "python" and url.startswith("file:") and PYPI_RE.fullmatch(requirement):
        lines += [  # a local copy of a release file: found on the package index by its hash
            f"  # {file_name} as the package index has it (if it does not: url: {url})",
            f"  - pypi: {requirement}",
        ]
    else:
        if system == "python":
            lines += [
                "  # a Python distribution on the package index: the source kind",
                f"  # `- pypi: {requirement}` (same sha256) names no download host",
            ]
        lines.append(f"  - url: {_scalar(url)}")
    lines.append(f"    sha256: {sha256}")
    if system == "python":
        lines += [
            "# from the package's metadata (Requires-Dist, extras left out) and pyproject.toml",
            "# ([build-system] requires), names only: check each (versions, markers, a recipe)",
        ]
    elif not deps:
        lines.append("# the recipes this one needs, each a pkgs/NAME.yaml: [zlib, ...]")
    lines.append("dependencies:" + ("".join(f"\n  - {_scalar(d)}" for d in deps) or " []"))
    if "configure.ac" in c.files and system in (None, "make"):
        lines.append("# configure.ac without configure: build_system: autotools with a")
        lines.append("# `pre_configure: autoreconf -fi` (autoconf, automake on the build's PATH)")
    if system is None:
        looked = ", ".join(f for f, _ in SYSTEM_FILES[:6])
        lines += [
            "# no build system recognised: none of",
            f"# {looked} at the top",
            "build: |",
            "  # TODO: the build steps, installing into $ARTIFACT",
            f'  echo "TODO: write the build steps of {name}" >&2',
            "  exit 1",
        ]
    else:
        if c.wheel:
            lines.append("# a wheel: pip installs it as it is, nothing is compiled")
        lines.append(f"build_system: {system}")
        if system in ARGS_HINT:
            lines.append(ARGS_HINT[system])
    return "\n".join(lines) + "\n"
