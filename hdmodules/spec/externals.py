"""Externals: host tools that are inputs of builds but are not built here (the system or
vendor compilers, a vendor MPI, a vendor BLAS).

An external is *pinned*: a fingerprint of what matters (the version line the tool reports and,
for each command, its real path and a content hash; for an MPI also the compiler its wrappers
call and the MPI library they link) is written in the YAML next to it. The pin enters every
build spec that uses the external, and before anything builds the tool is fingerprinted again:
a changed host tool stops the build with the pinned and the found values. Nothing is silently
rebuilt against a different compiler and nothing built with the old one is silently reused.

The pin is one line of flow YAML (JSON), so `--repin` rewrites exactly that line and keeps the
rest of the file, comments included.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_atomic
from ..errors import HitError
from ..names import WRAPPER_VARIABLES, one_word
from . import resolvecache, yamlfile
from .yamlfile import check_name, check_version

if TYPE_CHECKING:
    from ..runner import Output


def query(argv: list[str], env: dict[str, str] | None = None) -> Output:
    """runner.query of `argv` (in `env`; None: this process's), the runner imported when an
    external is probed (it imports subprocess: 4 ms of every `hit` that loads a profile,
    issue 18)."""
    from ..runner import query as run

    return run(argv, env)


EXTERNAL_KEYS = {"kind", "version", "prefix", "commands", "module", "libs", "pin"}
ROLES = {
    "compiler": ("cc", "cxx", "fc"),
    "mpi": ("mpicc", "mpicxx", "mpifc", "mpirun"),
    "python": ("python",),  # an interpreter for build_system: python (pythonenv.py)
}
ENV_OF_ROLE = {
    "cc": "CC",
    "cxx": "CXX",
    "fc": "FC",
    "mpicc": "MPICC",
    "mpicxx": "MPICXX",
    "mpifc": "MPIFC",
    "mpirun": "MPIRUN",
    "python": "PYTHON",
}
# names the build's toolchain/bin gives each role, so that a plain `gcc` or `mpicc` in a
# build script is the declared tool and never whatever comes first on the host's PATH
TOOL_NAMES = {
    "cc": ("cc", "gcc"),
    "cxx": ("c++", "g++"),
    "fc": ("gfortran", "f95"),
    "mpicc": ("mpicc",),
    "mpicxx": ("mpicxx", "mpic++", "mpiCC"),
    "mpifc": ("mpifort", "mpif90", "mpif77"),
    "mpirun": ("mpirun", "mpiexec"),
    "python": ("python3", "python"),
}
# the wrappers found beside an MPI's C wrapper: role -> names tried, first found wins
MPI_SIBLINGS = (
    ("mpicxx", ("mpicxx", "mpic++")),
    ("mpifc", ("mpifort", "mpif90")),
    ("mpirun", ("mpirun", "mpiexec")),
)
HASH_CHARS = 16


@dataclass(frozen=True)
class External:
    """A host tool declared in YAML: name, kind ("compiler", "mpi", ...), version, role ->
    command, optional prefix and module, the host libraries builds may link (`libs`), its
    pin (None until pinned), and where its `pin:` line is (or would go) for re-pinning."""

    name: str
    kind: str
    version: str
    commands: dict[str, str] = field(default_factory=dict)
    prefix: str | None = None
    module: str | None = None
    libs: tuple[str, ...] = ()
    pin: dict[str, str] | None = None
    file: Path | None = None
    line: int = 0  # the line of `pin:`, or where it would go

    def spec(self) -> dict:
        """What enters a build spec: not the name nor how the commands are spelled, so the
        same tool declared twice under two names gives the same hashes."""
        return {
            "kind": self.kind,
            "version": self.version,
            "prefix": self.prefix,
            "module": self.module,
            "pin": self.pin,
        }


def implicit_compiler() -> External:
    """The compiler of a profile that names none: the host's gcc/g++, pinned on the fly. An
    upgrade of them changes every hash (a rebuild, never a stale reuse)."""
    commands = {"cc": "/usr/bin/gcc", "cxx": "/usr/bin/g++"}
    ext = External("host-gcc", "compiler", "", commands)
    pin = fingerprint(ext)
    return External("host-gcc", "compiler", pin["version"], commands, pin=pin)


# --- loading ------------------------------------------------------------------------------


def load_externals(m: yamlfile.Mapping) -> dict[str, External]:
    """The `externals:` section of a profile, a site config or a file `detect --write` made.

    The name and version become module names and folders of the module hierarchy
    (`Compiler/gcc/12.2.0/`), so both follow names.py's rules (HitError with file:line);
    `module`, `prefix` and `commands` are free text, escaped wherever they are written."""
    out = {}
    for name, entry in m.items():
        check_name(m, name, name, "external name")
        if not isinstance(entry, yamlfile.Mapping):
            yamlfile.fail(m, name, f"external {name!r} must be a mapping (kind:, version:, ...)")
        yamlfile.check_keys(entry, EXTERNAL_KEYS, f"external {name!r}", required=("kind",))
        kind = check_name(entry, "kind", yamlfile.get_str(entry, "kind"), f"external {name}: kind")
        commands = yamlfile.get_mapping(entry, "commands")
        for role, cmd in commands.items():  # run as one word: no shell reads it
            if not isinstance(cmd, str) or not cmd or cmd.startswith("-"):
                yamlfile.fail(commands, role, f"command {role!r} must be a path or a name")
            if not one_word(cmd):
                problem = "holds whitespace or a control character: give one path or name"
                yamlfile.fail(commands, role, f"command {role!r} {cmd!r} {problem}")
        prefix, module = yamlfile.get_str(entry, "prefix"), yamlfile.get_str(entry, "module")
        for key, value in (("prefix", prefix), ("module", module)):  # one line each
            yamlfile.check_line(entry, key, value, key)
        if prefix is not None and not os.path.isabs(prefix):  # exported as MPI_DIR
            yamlfile.fail(entry, "prefix", f"prefix {prefix!r} must be an absolute path")
        if module is not None and (not module or module.startswith("-") or " " in module):
            yamlfile.fail(entry, "module", f"module {module!r} must be one module's name")
        known = ROLES.get(kind)
        if known:
            for role in commands:
                if role not in known:
                    roles = ", ".join(known)
                    yamlfile.fail(
                        commands, role, f"a {kind} has the commands {roles}, not {role!r}"
                    )
        if kind == "python" and not os.path.isabs(str(commands.get("python", ""))):
            problem = (
                f"external {name!r} (kind: python) needs `commands: {{python: PATH}}`, "
                "its interpreter by absolute path"
            )
            yamlfile.fail(entry, "kind", problem)
        pin = entry.get("pin")
        if pin is not None and (
            not isinstance(pin, dict) or not all(isinstance(v, str) for v in pin.values())
        ):
            yamlfile.fail(entry, "pin", "'pin' must be a mapping of strings (as detect writes it)")
        out[name] = External(
            name=name,
            kind=kind,
            version=_version(entry, name) or _python_version(kind, pin),
            commands=dict(commands),
            prefix=yamlfile.get_str(entry, "prefix"),
            module=yamlfile.get_str(entry, "module"),
            libs=tuple(yamlfile.get_str_list(entry, "libs")),
            pin=dict(pin) if pin is not None else None,
            file=m.file,
            line=entry.line_of("pin") if pin is not None else entry.line,
        )
    return out


def _python_version(kind: str, pin: object) -> str:
    """The version of a python external given none: its pin's (`Python 3.11.2` -> 3.11.2),
    as modules name it (python/3.11.2); "" for other kinds or without a pin."""
    line = pin.get("version", "") if kind == "python" and isinstance(pin, dict) else ""
    found = re.fullmatch(r"Python ([0-9][0-9A-Za-z.+]*)", str(line).strip())
    return found.group(1) if found else ""


def _version(entry: yamlfile.Mapping, name: str) -> str:
    version = yamlfile.get_str(entry, "version", "")
    return check_version(entry, "version", version, f"external {name}: version") if version else ""


# --- fingerprints ---------------------------------------------------------------------------


MODULE_WRAPPER_MARK = b"generated by hdmodules"  # templates/wrappers/*.sh, second line


def resolve_command(cmd: str) -> str | None:
    """An absolute path stays as it is; a bare name is looked up on this process's PATH,
    past a compiler or MPI module's wrappers (`command_paths`)."""
    if "/" in cmd:
        return cmd if os.path.exists(cmd) else None
    paths = command_paths(cmd)
    return paths[-1] if paths else None


def command_paths(cmd: str) -> list[str]:
    """The paths that say which file the command `cmd` of an external is, for the no-op
    memo (build/memo.inputs stamps them; fingerprint notes them before the command runs):
    an absolute path itself; a bare name, the file PATH finds (a link an alternatives
    switch points elsewhere: its stamp, os.stat's, follows the link) and each folder of
    PATH before it (one given a command of that name changes its stamp). PATH itself
    changed between two runs is not seen. [] for a bare name not found. A wrapper a site's
    compiler or MPI module put first on PATH (`module load gcc`: templates/wrappers) is
    passed over: it runs the external's real command, which is what a pin names (a
    scientist's shell with the module loaded pinned the wrapper, and every build there
    failed its check against the site's pin)."""
    if "/" in cmd:
        return [cmd]
    folders = []
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        folder = os.path.abspath(entry or ".")
        path = os.path.join(folder, cmd)
        if os.path.isfile(path) and os.access(path, os.X_OK) and not _module_wrapper(path):
            return [*folders, path]
        folders.append(folder)
    return []


def _module_wrapper(path: str) -> bool:
    """Whether the command at `path` is a wrapper a site's module tree holds (its second
    line says it was generated by hdmodules)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return head.startswith(b"#!/bin/sh\n") and MODULE_WRAPPER_MARK in head.split(b"\n", 2)[1]


@cache
def _file_id(path: str) -> str:
    real = os.path.realpath(path)
    resolvecache.note(real)  # for the no-op memo (it stamps what a pin names) before hashing
    h = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"{real}@{h.hexdigest()[:HASH_CHARS]}"


def _identify(ext: External, role: str, cmd: str) -> str:
    path = resolve_command(cmd)
    if path is None:
        raise HitError(f"external {ext.name}: its {role} command {cmd} does not exist")
    return _file_id(path)


@cache
def _version_line(cmd: str) -> str:
    """The first non-empty line the tool prints for --version (gcc's includes the Debian
    package revision, so a package upgrade shows even when the upstream version does not)."""
    out = query([cmd, "--version"])
    return next((line.strip() for line in out.out.splitlines() if line.strip()), "")


def fingerprint(ext: External) -> dict[str, str]:
    """What the tool is now, in the shape of a pin."""
    for cmd in ext.commands.values():  # for the no-op memo: stamped before they run
        for path in command_paths(cmd):
            resolvecache.note(path)
        path = resolve_command(cmd)
        if path is not None:
            resolvecache.note(os.path.realpath(path))
    pin: dict[str, str] = {}
    if ext.kind == "mpi":
        pin.update(_mpi_fingerprint(ext))
    else:
        main = next(iter(ext.commands.values()), None)
        if main is not None:
            pin["version"] = _version_line(resolve_command(main) or main)
    if ext.kind == "python" and not _python_version("python", pin):
        said = " ".join(pin.get("version", "").split())[:200] or "nothing"
        message = f"external {ext.name}: {ext.commands.get('python')} is not a Python "
        raise HitError(message + f"interpreter (its --version says: {said})")
    for role, cmd in sorted(ext.commands.items()):
        pin[role] = _identify(ext, role, cmd)
    return pin


@dataclass(frozen=True)
class MpiInfo:
    """What an MPI C wrapper says about itself (`mpi_info`)."""

    flavor: str  # "Open MPI" or "MPICH"
    version: str  # e.g. 4.1.4
    compiler: str  # the compiler the wrapper calls
    libs: tuple[str, ...]  # -l names of the C wrapper
    libdirs: tuple[str, ...]
    prefix: str | None


@cache
def mpi_info(mpicc: str) -> MpiInfo | None:
    """Ask an MPI C wrapper what it is (Open MPI's --showme, MPICH's -show/-v), without the
    variables that point it at another compiler (WRAPPER_VARIABLES: an MPI module's)."""
    env = {k: v for k, v in os.environ.items() if k not in WRAPPER_VARIABLES}
    ompi = query([mpicc, "--showme:version"], env)
    if ompi.code == 0 and "Open MPI" in ompi.out:
        version = re.search(r"Open MPI (\S+)", ompi.out)
        libdirs = tuple(query([mpicc, "--showme:libdirs"], env).out.split())
        prefix = str(Path(libdirs[0]).parent) if libdirs else None
        return MpiInfo(
            "Open MPI",
            version.group(1) if version else "",
            query([mpicc, "--showme:command"], env).out.strip(),
            tuple(query([mpicc, "--showme:libs"], env).out.split()),
            libdirs,
            prefix,
        )
    show = query([mpicc, "-show"], env)
    vers = query([mpicc, "-v"], env)
    m = re.search(r"MPICH version (\S+)", vers.out)
    if show.code == 0 and m:
        words = show.out.split()
        return MpiInfo(
            "MPICH",
            m.group(1),
            words[0] if words else "",
            tuple(w[2:] for w in words if w.startswith("-l")),
            tuple(w[2:] for w in words if w.startswith("-L")),
            None,
        )
    return None


def _find_lib(name: str, dirs: tuple[str, ...]) -> str | None:
    from ..elf import host_search_dirs

    for d in (*dirs, *host_search_dirs()):
        candidate = os.path.join(d, f"lib{name}.so")
        if os.path.exists(candidate):
            return candidate
    return None


def _mpi_fingerprint(ext: External) -> dict[str, str]:
    mpicc = ext.commands.get("mpicc")
    path = resolve_command(mpicc) if mpicc else None
    if path is None:
        raise HitError(f"external {ext.name}: an mpi needs an existing `mpicc` command")
    info = mpi_info(path)
    if info is None:
        raise HitError(f"external {ext.name}: {mpicc} is neither an Open MPI nor an MPICH wrapper")
    pin = {"version": f"{info.flavor} {info.version}"}
    compiler = resolve_command(info.compiler)
    pin["compiler"] = _file_id(compiler) if compiler else f"{info.compiler} (not found)"
    lib = _find_lib(info.libs[-1], info.libdirs) if info.libs else None
    pin["library"] = _file_id(lib) if lib else "(not found)"
    return pin


# --- checking and re-pinning --------------------------------------------------------------


def drift(ext: External) -> dict[str, tuple[str | None, str | None]]:
    """Each pinned value that differs from what is found now: key -> (pinned, found)."""
    found = fingerprint(ext)
    pinned = ext.pin or {}
    return {
        k: (pinned.get(k), found.get(k))
        for k in sorted(set(pinned) | set(found))
        if pinned.get(k) != found.get(k)
    }


def check(ext: External, repin: bool) -> str | None:
    """Stop if the external is not what its pin says (or re-pin it when asked).
    Returns a note to print when a pin was rewritten."""
    if ext.pin is None and not repin:
        raise HitError(
            f"{ext.file}:{ext.line}: external {ext.name} has no pin; run `hit build --repin` "
            f"to pin it as it is now, or paste the entry `hit externals detect` prints"
        )
    changes = drift(ext) if ext.pin is not None else {"pin": (None, "new")}
    if not changes:
        return None
    if repin:
        rewrite_pin(ext, fingerprint(ext))
        what = ", ".join(changes)
        return f"re-pinned external {ext.name} in {ext.file}:{ext.line} ({what} changed)"
    lines = "\n".join(f"  {k}: pinned {p!r}, found {f!r}" for k, (p, f) in changes.items())
    raise HitError(
        f"external {ext.name} ({ext.kind}) is not what it was pinned as "
        f"({ext.file}:{ext.line}):\n{lines}\n"
        f"Nothing was built. If the new {ext.name} is intended, re-pin it with "
        f"`hit build --repin` (rewrites the pin in {ext.file}), or replace the entry with the "
        f"one `hit externals detect` prints."
    )


def check_pins(externals: Iterable[External], repin: bool = False) -> tuple[str, ...]:
    """Check each external against its pin (`check`), each YAML line once; with `repin`,
    rewrite the pins that drifted and return a note for each (else raise HitError on drift).

    The pins in memory (and in every object loaded from the YAML) are then stale: a caller
    that gets notes reloads its own YAML (a profile or a site.yaml) before resolving. Within
    a file the pins are checked top down but rewritten bottom up, so a `pin:` line added to
    one external never moves the line of another still to be rewritten."""
    unique = {(str(e.file), e.line): e for e in externals if e.file is not None}
    order = sorted(unique, key=lambda key: (key[0], -key[1] if repin else key[1]))
    return tuple(note for key in order if (note := check(unique[key], repin)))


def pin_text(pin: dict[str, str]) -> str:
    """A pin as the one line of flow YAML (JSON) that `rewrite_pin` writes."""
    return json.dumps(pin)


def rewrite_pin(ext: External, pin: dict[str, str]) -> None:
    """Replace the external's `pin:` line (and any continuation lines) in its YAML file, or
    add one, leaving every other line as it was. Two forms are rewritten: a block mapping
    below `NAME:`, and one line `NAME: {kind: ..., commands: {...}}` (its pin goes in that
    line). Raises HitError (file:line) for any other (a flow mapping over several lines,
    inside another one): the pin to paste is what `hit externals detect` prints."""
    assert ext.file is not None
    lines = ext.file.read_text().splitlines(keepends=True)
    i = ext.line - 1
    indent = re.match(r"\s*", lines[i]).group(0)
    new = f"{indent}pin: {pin_text(pin)}\n"
    one_line = _one_line_entry(lines[i], ext.name)
    if one_line is not None:  # `name: {kind: python, ...}  # comment`
        body, rest = one_line
        if re.search(r"\bpin: \{[^{}]*\}", body):
            body = re.sub(r"\bpin: \{[^{}]*\}", lambda _m: f"pin: {pin_text(pin)}", body, count=1)
        else:
            body = f"{body.rstrip().rstrip(',')}, pin: {pin_text(pin)}"
        lines[i] = f"{body}}}{rest}"
    elif not _in_block(lines, i, ext.name):
        raise HitError(
            f"{ext.file}:{ext.line}: cannot write the pin of external {ext.name} here: give "
            "it as a block mapping below `NAME:` or on one line `NAME: {kind: ..., ...}`, or "
            "paste the pin `hit externals detect` prints"
        )
    elif lines[i].lstrip().startswith("pin:"):
        end = i + 1
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > len(indent)
        ):
            end += 1
        lines[i:end] = [new]
    else:
        lines.insert(i, new)
    write_atomic(ext.file, "".join(lines))
    resolvecache.forget(str(ext.file))  # read again: stamped again for the no-op memo


def _one_line_entry(line: str, name: str) -> tuple[str, str] | None:
    """(`  NAME: {...` up to its closing brace, what follows it: spaces, a comment, the line
    end) when `line` holds the whole external as one flow mapping; else None."""
    head = re.match(rf"\s*{re.escape(name)}\s*:\s*\{{", line)
    if head is None:
        return None
    depth, quote = 0, ""
    for at in range(head.end() - 1, len(line)):
        c = line[at]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                rest = line[at + 1 :]
                return (line[:at], rest) if re.fullmatch(r"\s*(#.*)?\n?", rest, re.S) else None
    return None


def _in_block(lines: list[str], i: int, name: str) -> bool:
    """Whether line `i` is a key line of NAME's block mapping: below the line `NAME:` (blank
    and comment lines between), more indented than it."""
    if not re.match(r"\s*[A-Za-z_][\w-]*\s*:", lines[i]):  # a key, not `{...}` or `- ...`
        return False
    key = re.compile(rf"(\s*){re.escape(name)}\s*:\s*(#.*)?\n?")
    depth = len(lines[i]) - len(lines[i].lstrip())
    for j in range(i - 1, -1, -1):
        stripped = lines[j].strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = key.fullmatch(lines[j])
        if found:
            return len(found.group(1)) < depth
        if len(lines[j]) - len(lines[j].lstrip()) < depth:
            return False
    return False


# --- detection ----------------------------------------------------------------------------


def _path_dirs(prefixes: list[Path]) -> list[str]:
    dirs = [str(p / "bin") for p in prefixes]
    return dirs + [d for d in os.environ.get("PATH", "").split(":") if d and d not in dirs]


def _compiler_entry(name: str, cc: str, cxx: str | None, fc: str | None) -> dict:
    commands = {"cc": cc, **({"cxx": cxx} if cxx else {}), **({"fc": fc} if fc else {})}
    full = query([cc, "-dumpfullversion", "-dumpversion"]).out.strip().splitlines()
    version = full[0] if full else ""
    libs = ["libgomp", "libatomic"] + (["libgfortran", "libquadmath"] if fc else [])
    ext = External(name, "compiler", version, commands)
    pin = fingerprint(ext)
    return {"kind": "compiler", "version": version, "commands": commands, "libs": libs, "pin": pin}


def detect(prefixes: list[Path] | None = None) -> dict[str, dict]:
    """Compilers (gcc, gcc-N, clang, clang-N with their C++ and Fortran siblings) and MPIs
    (Open MPI and MPICH C wrappers) on PATH or under the given prefixes, as YAML-ready
    entries with their pins. The same real binary found under two names is listed once."""
    found: dict[str, dict] = {}
    seen: set[str] = set()
    for d in _path_dirs(prefixes or []):
        if not os.path.isdir(d):
            continue
        # versioned names first: `gcc` and `mpicc` are often alternatives that can be repointed
        names = sorted(os.listdir(d), key=lambda n: ("-" not in n and "." not in n, n))
        for entry in names:
            m = re.fullmatch(r"(gcc|clang)(-\d+(?:\.\d+)?)?", entry)
            if not m:
                continue
            cc = os.path.join(d, entry)
            real = os.path.realpath(cc)
            if real in seen or not os.access(cc, os.X_OK) or _module_wrapper(cc):
                continue  # (a loaded module's wrapper: the real compiler is further on PATH)
            seen.add(real)
            suffix = m.group(2) or ""
            sibling = {"gcc": ("g++", "gfortran"), "clang": ("clang++", "flang")}[m.group(1)]
            cxx, fc = (os.path.join(d, s + suffix) for s in sibling)
            entry_doc = _compiler_entry(
                "", cc, cxx if os.path.exists(cxx) else None, fc if os.path.exists(fc) else None
            )
            major = entry_doc["version"].split(".")[0]
            found[_free_name(found, f"{m.group(1)}-{major}" if major else entry)] = entry_doc
        for entry in names:
            if not re.fullmatch(r"mpicc(\.[a-z]+)?", entry):
                continue
            mpicc = os.path.join(d, entry)
            real = os.path.realpath(mpicc)
            if real in seen or _module_wrapper(mpicc):
                continue
            info = mpi_info(mpicc)
            if info is None:
                continue
            seen.add(real)
            for name, doc in _mpi_entry(d, entry, info).items():
                found[_free_name(found, name)] = doc
    return found


def _free_name(found: dict[str, dict], name: str) -> str:
    """`name`, or `name-2`, `name-3` ... when an earlier tool (under a --prefix, which is
    searched first, or earlier on PATH) took it: two different compilers of one version
    are two externals, never one replacing the other."""
    n = 2
    candidate = name
    while candidate in found:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _mpi_entry(d: str, mpicc_name: str, info: MpiInfo) -> dict[str, dict]:
    suffix = mpicc_name[len("mpicc") :]
    commands = {"mpicc": os.path.join(d, mpicc_name)}
    for role, names in MPI_SIBLINGS:
        for n in names:
            if os.path.exists(os.path.join(d, n + suffix)):
                commands[role] = os.path.join(d, n + suffix)
                break
    libs = {f"lib{lib}" for lib in info.libs}
    if "mpifc" in commands:
        libs |= {f"lib{lib}" for lib in _fortran_libs(commands["mpifc"], info)}
    name = ("openmpi" if info.flavor == "Open MPI" else "mpich") + f"-{info.version}"
    ext = External(name, "mpi", info.version, commands, prefix=info.prefix)
    entry = {"kind": "mpi", "version": info.version}
    if info.prefix:
        entry["prefix"] = info.prefix
    entry.update({"commands": commands, "libs": sorted(libs), "pin": fingerprint(ext)})
    return {name: entry}


def _fortran_libs(mpifc: str, info: MpiInfo) -> list[str]:
    if info.flavor == "Open MPI":
        return query([mpifc, "--showme:libs"]).out.split()
    return [w[2:] for w in query([mpifc, "-show"]).out.split() if w.startswith("-l")]


def to_yaml(found: dict[str, dict]) -> str:
    """Ready-to-paste `externals:` YAML; each pin on one line so --repin can rewrite it."""
    out = ["externals:"]
    for name, entry in found.items():
        out.append(f"  {name}:")
        for key, value in entry.items():
            if isinstance(value, list):
                value = "[" + ", ".join(value) + "]"
            elif key != "kind":
                value = json.dumps(value)
            out.append(f"    {key}: {value}")
    return "\n".join(out) + "\n"
