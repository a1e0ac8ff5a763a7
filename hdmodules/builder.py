"""Running one build: a clean environment, the artifact's prefix, a log, the ELF check."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import elf
from .config import Home
from .errors import BuildFailed, HitError
from .externals import ENV_OF_ROLE, ROLES, TOOL_NAMES
from .hashing import SHORT
from .recipes import env_name
from .resolve import Node, Resolved
from .runner import spawn_logged
from .sources import fetch, materialize
from .store import Store, remove_tree
from .templating import render

HOST_PATH = "/usr/bin:/bin"
LOG_TAIL = 20

_running: dict[int, subprocess.Popen] = {}  # pid -> build process, killed on Ctrl-C
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    status: str  # "cached" or "built"
    seconds: float = 0.0


def _lib_dirs(prefix: Path) -> list[str]:
    dirs = [str(prefix / d) for d in ("lib", "lib64") if (prefix / d).is_dir()]
    return dirs or [str(prefix / "lib")]


def build_env(resolved: Resolved, node: Node, store: Store, artifact: Path, home_dir: Path):
    """The variables a build sees, in order: nothing from the caller's environment leaks in."""
    deps = [(d, store.prefix(resolved.nodes[d].ref)) for d in node.closure]
    direct_first = [p for d, p in deps if d in node.deps] + [
        p for d, p in deps if d not in node.deps
    ]
    libdirs = [x for p in direct_first for x in _lib_dirs(p)]
    incdirs = [str(p / "include") for p in direct_first]
    env: list[tuple[str, str]] = [
        ("ARTIFACT", str(artifact)),
        (
            "PATH",
            ":".join(
                [str(home_dir / "toolchain" / "bin")]
                + [str(p / "bin") for p in direct_first]
                + [HOST_PATH]
            ),
        ),
        ("HOME", str(home_dir)),
        ("LANG", "C"),
        ("LC_ALL", "C"),
        ("TZ", "UTC"),
        ("SOURCE_DATE_EPOCH", "0"),
    ]
    env += toolchain_env(node)
    env += [(f"{env_name(d)}_DIR", str(p)) for d, p in deps]
    rpath = [str(artifact / "lib")] + libdirs
    env += [
        ("CPPFLAGS", " ".join(f"-I{d}" for d in incdirs)),
        ("LDFLAGS", " ".join([f"-L{d}" for d in libdirs] + [f"-Wl,-rpath,{d}" for d in rpath])),
        ("CPATH", ":".join(incdirs)),
        ("LIBRARY_PATH", ":".join(libdirs)),
        ("LD_RUN_PATH", ":".join(rpath)),
        ("PKG_CONFIG_PATH", ":".join(
            f"{p}/{sub}/pkgconfig" for p in direct_first for sub in ("lib", "lib64", "share"))),
        ("CMAKE_PREFIX_PATH", ":".join(str(p) for p in direct_first)),
    ]  # fmt: skip
    for key, value in node.parameters.items():
        if isinstance(value, bool):
            value = int(value)
        env.append((env_name(key), str(value)))
    return env


def toolchain_env(node: Node) -> list[tuple[str, str]]:
    """CC, CXX, FC from the compiler; MPICC, MPICXX, MPIFC, MPIRUN and the MPI's prefix from
    the MPI, and the MPI wrappers told to call the toolchain's compiler. Only roles the
    externals declare are set: nothing is invented (no MPIFC for an MPI without Fortran)."""
    env: list[tuple[str, str]] = []
    for ext in node.toolchain.values():
        env += [(ENV_OF_ROLE[r], c) for r, c in ext.commands.items() if r in ENV_OF_ROLE]
    mpi = node.toolchain.get("mpi")
    if mpi is not None:
        if mpi.prefix:
            env += [("MPI_DIR", mpi.prefix), ("MPI_HOME", mpi.prefix)]
        compiler = node.toolchain["compiler"].commands
        for role, suffix in (("cc", "CC"), ("cxx", "CXX"), ("fc", "FC")):
            if role in compiler:
                env += [(f"OMPI_{suffix}", compiler[role]), (f"MPICH_{suffix}", compiler[role])]
    return env


def tool_links(node: Node) -> tuple[list[tuple[str, str]], list[str]]:
    """The build's toolchain/bin: links named like the usual tools to the declared ones, and
    the names of MPI tools the recipe did not ask for (they become stubs that fail)."""
    links = []
    for ext in node.toolchain.values():
        for role, cmd in ext.commands.items():
            links += [(name, cmd) for name in TOOL_NAMES.get(role, ())]
    linked = {name for name, _ in links}
    stubs = [n for r in ROLES["mpi"] for n in TOOL_NAMES[r] if n not in linked]
    return links, stubs


def render_script(
    resolved: Resolved, node: Node, store: Store, artifact: Path, folder: Path, jobs: int
) -> str:
    links, stubs = tool_links(node)
    return render(
        "build.sh.j2",
        id=node.ref.id,
        toolbin=folder / "toolchain" / "bin",
        tool_links=links,
        tool_stubs=stubs,
        name=node.name,
        version=node.recipe.version,
        jobs=jobs,
        env=build_env(resolved, node, store, artifact, folder),
        srcdir=folder / "src",
        script=node.recipe.build.rstrip("\n"),
    )


def prepare(
    resolved: Resolved,
    node: Node,
    home: Home,
    store: Store,
    folder: Path,
    artifact: Path,
    jobs: int,
) -> Path:
    """A build folder: `src/` with every source in place, and `build.sh`. Returns the script."""
    if folder.exists():
        remove_tree(folder)
    (folder / "src").mkdir(parents=True)
    for source in node.recipe.sources:
        if source.url:
            fetch(home.source_cache, source.url, source.sha256, home.mirrors)
        materialize(source, home.source_cache, folder / "src")
    script = folder / "build.sh"
    script.write_text(render_script(resolved, node, store, artifact, folder, jobs))
    script.chmod(0o755)
    return script


def build_folder(home: Home, node: Node) -> Path:
    return home.build_temp / f"{node.name}-{node.ref.hash[:SHORT]}"


def _kill_leftovers(folder: Path, build_id: str) -> None:
    """Kill processes of an earlier, killed `hit` that are still building this artifact.

    They are found by the process group recorded in the build folder and confirmed by the
    HIT_BUILD_ID in their environment, so an unrelated process that reused the id is spared."""
    try:
        pgid = int((folder / "pgid").read_text())
    except (OSError, ValueError):
        return
    tag = f"HIT_BUILD_ID={build_id}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if tag in environ:
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def build(
    resolved: Resolved, node: Node, home: Home, store: Store, jobs: int, on_wait=None
) -> Outcome:
    """Build one artifact unless it is installed; safe against concurrent `hit` processes."""
    ref = node.ref
    if store.is_installed(ref):
        return Outcome("cached")
    with store.lock(ref, on_wait=on_wait):
        if store.is_installed(ref):  # another process built it while we waited
            return Outcome("cached")
        folder = build_folder(home, node)
        _kill_leftovers(folder, ref.id)
        prefix = store.begin(ref)
        start = time.monotonic()
        try:
            script = prepare(resolved, node, home, store, folder, prefix, jobs)
            _run(script, folder, jobs, ref.id)
            _check_links(resolved, node, home, store, prefix, folder)
            store.commit(ref, {"id": ref.id, **node.spec}, folder / "build.log")
        except BaseException:
            remove_tree(prefix)
            raise
        remove_tree(folder)
        seconds = time.monotonic() - start
        store.record_duration(node.name, seconds)
        return Outcome("built", seconds)


def _run(script: Path, folder: Path, jobs: int, build_id: str) -> None:
    proc = spawn_logged(
        ["/bin/bash", str(script)],
        cwd=folder / "src",
        log=folder / "build.log",
        env={"JOBS": str(jobs), "PATH": HOST_PATH},
    )
    (folder / "pgid").write_text(str(proc.pid))
    with _running_lock:
        _running[proc.pid] = proc
    try:
        code = proc.wait()
    finally:
        with _running_lock:
            _running.pop(proc.pid, None)
    if code != 0:
        raise BuildFailed(_failure(build_id, f"the build script failed (exit {code})", folder))


def _failure(build_id: str, what: str, folder: Path, with_tail: bool = True) -> str:
    """The message of a failed build: what failed, the kept folder, the log and its tail."""
    log = folder / "build.log"
    try:
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:] if with_tail else []
    except OSError:
        tail = []
    shown = "\n".join("    " + line for line in tail)
    return f"{build_id}: {what}\n  build folder kept: {folder}\n  log: {log}\n" + (
        f"  last {len(tail)} lines:\n{shown}" if tail else ""
    )


def _check_links(
    resolved: Resolved, node: Node, home: Home, store: Store, prefix: Path, folder: Path
) -> None:
    deps = [store.prefix(resolved.nodes[d].ref) for d in node.closure]
    allowed = home.host_libs | set(node.recipe.allow_host_libs)
    allowed |= {lib for ext in node.toolchain.values() for lib in ext.libs}
    problems = elf.check_artifact(prefix, deps, allowed)
    if problems:
        lines = "\n".join("    " + p.message(prefix) for p in problems[:20])
        with open(folder / "build.log", "a") as log:
            log.write("\nhdmodules link check failed:\n" + lines + "\n")
        raise BuildFailed(_failure(node.ref.id, f"library check failed:\n{lines}", folder, False))


def kill_running() -> None:
    """On Ctrl-C: stop every build this process started (their whole process groups)."""
    with _running_lock:
        procs = list(_running.values())
    for proc in procs:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def bdir(resolved: Resolved, node: Node, home: Home, store: Store, folder: Path, jobs: int) -> Path:
    """`hit bdir`: sources and build script in a folder of the user's, installing into
    `folder/artifact` instead of the store when run by hand."""
    if folder.exists() and any(folder.iterdir()):
        raise HitError(f"{folder} exists and is not empty; give a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    return prepare(resolved, node, home, store, folder, folder / "artifact", jobs)
