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
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)  # its owner's only: a build log may hold a token
    (folder / "src").mkdir()
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


def _build_processes(build_id: str, pgid: int | None) -> list[int]:
    """Processes of one build: those in its process group `pgid` (the group of the build
    script we started, which no unrelated process can join while it exists) and those
    whose environment carries its HIT_BUILD_ID (every child of build.sh inherits it, even
    one that left the group with setsid)."""
    tag = f"HIT_BUILD_ID={build_id}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            in_group = pgid is not None and os.getpgid(pid) == pgid
            if in_group or tag in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    """Running or stopped, not a zombie (a zombie runs no code and writes nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_build_processes(build_id: str, pgid: int | None, wait: float = 10.0) -> int:
    """Kill every process of a build (see `_build_processes`) and wait, up to `wait`
    seconds, until none runs; returns how many were killed. Called when the build script
    has exited, before the artifact is committed (a background process must not write into
    an installed artifact), and for leftovers of a killed `hit` (then `pgid` is None: a
    recorded group id may have been reused, the build id may not)."""
    killed: set[int] = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pids = [p for p in _build_processes(build_id, pgid) if _alive(p)]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed |= set(pids)
        time.sleep(0.02)
    return len(killed)


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
        kill_build_processes(ref.id, None)  # leftovers of a killed earlier attempt
        prefix = store.begin(ref)
        start = time.monotonic()
        try:
            script = prepare(resolved, node, home, store, folder, prefix, jobs)
            _run(script, folder, jobs, ref.id)
            _check_links(resolved, node, home, store, prefix, folder)
            store.commit(ref, {"id": ref.id, **node.spec}, folder / "build.log")
        except OSError as e:  # a full disk, an unwritable folder: name what and where
            remove_tree(prefix)
            where = e.filename or folder
            raise BuildFailed(f"{ref.id}: {e.strerror or e}: {where}") from None
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
    with _running_lock:
        _running[proc.pid] = proc
    try:
        code = proc.wait()
    finally:
        with _running_lock:
            _running.pop(proc.pid, None)
        kill_build_processes(build_id, proc.pid)  # nothing outlives its build
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
