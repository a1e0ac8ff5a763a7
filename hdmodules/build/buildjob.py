"""The build job: everything one build needs, computed before it starts.

A build job is made on the resolve side from a resolved profile and a home (`build_job`), and
handed to the builder as one value: the local pool, `hit bdir`, `hit show script` and a Slurm
job all build from it. It holds the build spec, the sources, the rendered build script and
the environment that script sets, the dependencies' prefixes, the host libraries it may link
and where it builds and installs. The builder needs nothing else (no recipes, no externals,
no configuration).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..hashing import SHORT, hash_doc
from ..spec.artifact import ArtifactRef
from ..spec.buildspec import BuildSpec
from ..spec.buildsystems import ToolNeed, tool_needs
from ..spec.externals import ENV_OF_ROLE, ROLES, TOOL_NAMES
from ..spec.pythonenv import PYTHON, is_python_package
from ..spec.recipes import Patch, Source, env_name
from ..spec.toolfolders import own_folders
from ..store.layout import Store
from ..templating import render

if TYPE_CHECKING:
    from ..spec.resolve import Node, Resolved
    from ..store.home import Home

HOST_PATH = "/usr/bin:/bin"  # the host tools every build may use (bash, coreutils, make ...)


@dataclass(frozen=True)
class BuildJob:
    """One build, fully described.

    `spec` is the build spec (its hash is `ref.hash`);
    `dependencies` the artifact ids of the direct dependencies (what the scheduler orders
    by); `dependency_prefixes` every dependency's prefix, dependencies first (what the link
    check accepts); `allowed_host_libs` the host libraries it may link besides those, and
    the folders its link metadata may name (entries starting with `/`: the toolchain's
    own, see spec/toolfolders.py, and a recipe's); `env` the variables `script` exports,
    in order; `folder` the build folder (`src/`, `build.sh`, `build.log`); `prefix` where
    it installs (the store's prefix of `ref`, or `FOLDER/artifact` for `hit bdir`); `jobs`
    the build's JOBS (CPUs); `tools` the host tools its build system runs (checked on its
    PATH before it starts: missing_tools); `makeflags` and `inherit_fds` what the run's
    jobserver gives it when it starts (`with_jobserver`; empty: build.sh sets MAKEFLAGS to
    -j$JOBS); `toolchain` the folder of its toolchain (`bin/`, `mpi-stub`: tool_links,
    tool_stubs), shared by the builds of a home with the same tools (toolchain_folder:
    `folder/toolchain` is made a link to one of its slots, no other build's while this one
    runs, builder.lay_out_toolchain), or None: `folder/toolchain` is its own (`hit bdir`: a
    folder that builds by hand alone). Either way PATH starts with `folder/toolchain/bin`."""

    ref: ArtifactRef
    spec: BuildSpec
    dependencies: tuple[str, ...]
    sources: tuple[Source, ...]
    script: str
    env: tuple[tuple[str, str], ...]
    dependency_prefixes: tuple[Path, ...]
    allowed_host_libs: frozenset[str]
    folder: Path
    prefix: Path
    jobs: int
    source_cache: Path
    mirrors: tuple[str, ...] = ()
    patches: tuple[Patch, ...] = ()  # applied in order after the sources are in place
    tools: tuple[ToolNeed, ...] = ()
    tool_links: tuple[tuple[str, str], ...] = ()
    tool_stubs: tuple[str, ...] = ()
    makeflags: str = ""
    inherit_fds: tuple[int, ...] = ()
    toolchain: Path | None = None

    @property
    def record(self) -> dict[str, Any]:
        """What `.hit/build.json` holds: the artifact id and the build spec."""
        return self.spec.record(self.ref.id)

    def with_jobserver(self, makeflags: str, fds: tuple[int, ...]) -> BuildJob:
        """This job joining a jobserver: MAKEFLAGS `makeflags`, inheriting descriptors `fds`
        (the pipe form's; see jobserver.Jobserver.for_make). Not part of what is built."""
        return replace(self, makeflags=makeflags, inherit_fds=fds)

    @property
    def launch_env(self) -> dict[str, str]:
        """What the build script starts with (it clears the rest: templates/build.sh.j2):
        JOBS, PATH and, when it joins a jobserver, MAKEFLAGS."""
        env = {"JOBS": str(self.jobs), "PATH": HOST_PATH}
        return {**env, "MAKEFLAGS": self.makeflags} if self.makeflags else env


@dataclass(frozen=True, eq=False)
class PendingJob:
    """A build job not made yet: a package (`node`) of `resolved`. What the scheduler orders
    by (`ref`, `dependencies`: the artifact ids of its direct dependencies), made into its
    BuildJob (build_job) only when it is next to start, while the builds before it run
    (scheduler.run's `make`): making every job first, before any build starts, was some
    0.5 ms an artifact of a run's start-up (issue 18). Made so, a job sees its dependencies
    built (build_env looks at their library folders), as a later run would."""

    resolved: Resolved
    node: Node

    @property
    def ref(self) -> ArtifactRef:
        return self.node.ref

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(self.resolved.nodes[d].ref.id for d in self.node.deps)


def build_folder(home: Home, node: Node) -> Path:
    """Where `node` is built: `<build_temp>/<name>-<hash12>` (kept after a failure)."""
    return home.build_temp / f"{node.name}-{node.ref.hash[:SHORT]}"


def build_job(
    resolved: Resolved,
    node: Node,
    home: Home,
    store: Store,
    jobs: int,
    folder: Path | None = None,
) -> BuildJob:
    """The build job of `node` (a package of `resolved`) for `home`'s `store`, with `jobs`
    CPUs. Without `folder` it builds in `build_folder(home, node)` and installs at the
    store's prefix; with one (`hit bdir`) it builds there and installs into
    `folder/artifact`. Dependencies' prefixes are looked up now: this store, else an
    upstream that has them. Raises nothing."""
    links, stubs = tool_links(node)
    shared = toolchain_folder(home.build_temp, links, stubs) if folder is None else None
    prefix = store.prefix(node.ref) if folder is None else folder / "artifact"
    folder = build_folder(home, node) if folder is None else folder
    toolchain = folder / "toolchain"  # a link to a slot of `shared` when there is one
    deps = {d: store.prefix(resolved.nodes[d].ref) for d in node.closure}
    env = build_env(node, deps, prefix, folder, toolchain) + python_env(resolved, node, deps)
    allowed = home.host_libs | set(node.recipe.allow_host_libs)
    allowed |= {lib for ext in node.toolchain.values() for lib in ext.libs}
    allowed |= {d for ext in node.toolchain.values() for d in own_folders(ext)}  # `/...`
    return BuildJob(
        ref=node.ref,
        spec=node.spec,
        dependencies=tuple(resolved.nodes[d].ref.id for d in node.deps),
        sources=tuple(node.recipe.sources),
        script=render_script(node, env, folder, toolchain, jobs, links, stubs),
        env=tuple(env),
        dependency_prefixes=tuple(deps.values()),
        allowed_host_libs=frozenset(allowed),
        folder=folder,
        prefix=prefix,
        jobs=jobs,
        source_cache=home.source_cache,
        mirrors=tuple(home.mirrors),
        patches=tuple(node.recipe.patches),
        tools=tool_needs(node.recipe.build_system),
        tool_links=tuple(links),
        tool_stubs=tuple(stubs),
        toolchain=shared,
    )


TOOLCHAINS = ".toolchains"  # below build_temp: the toolchain folders builds share


def toolchain_folder(build_temp: Path, links: list[tuple[str, str]], stubs: list[str]) -> Path:
    """The toolchain folder (`bin/`, `mpi-stub`) that the builds in `build_temp` with these
    tool `links` and `stubs` (tool_links) share: `<build_temp>/.toolchains/<hash12>`, named by
    what it holds, and `<hash12>.1`, `.2` ... for builds running at the same time (slots:
    one build at a time each, builder.lay_out_toolchain). Laid out once and checked before
    each build, instead of about 15 links made and removed again in every build folder."""
    digest = hash_doc("toolchain", {"links": links, "stubs": stubs})[:SHORT]
    return build_temp / TOOLCHAINS / digest


def missing_tools(job: BuildJob) -> list[str]:
    """One message (naming the tool and the recipe's `build_system:` line) for each host tool
    the job's build system runs that is on none of the folders of its PATH as they are now
    (a dependency not built yet provides nothing)."""
    path = dict(job.env).get("PATH", HOST_PATH)
    return [
        need.message()
        for need in job.tools
        if not any(shutil.which(tool, path=path) for tool in need.alternatives)
    ]


def _lib_dirs(prefix: str) -> list[str]:
    dirs = [f"{prefix}/{d}" for d in ("lib", "lib64") if os.path.isdir(f"{prefix}/{d}")]
    return dirs or [f"{prefix}/lib"]


def build_env(
    node: Node, deps: dict[str, Path], artifact: Path, folder: Path, toolchain: Path
) -> list[tuple[str, str]]:
    """The variables a build sees, in order: nothing from the caller's environment leaks in.
    `deps` maps every dependency's name (closure, dependencies first) to its prefix;
    `artifact` is where it installs, `folder` the build folder (its HOME), `toolchain` the
    folder whose `bin/` comes first on PATH. A dependency's library folders are the ones it
    has (`lib`, `lib64`: _lib_dirs), so it is made once every dependency is built
    (scheduler.run makes each job when it is next to start). (Strings, not Paths: made for
    every package of a run.)"""
    prefixes = {d: str(p) for d, p in deps.items()}
    direct_first = [p for d, p in prefixes.items() if d in node.deps] + [
        p for d, p in prefixes.items() if d not in node.deps
    ]
    libdirs = [x for p in direct_first for x in _lib_dirs(p)]
    incdirs = [f"{p}/include" for p in direct_first]
    path = [f"{toolchain}/bin"] + [f"{p}/bin" for p in direct_first]
    env: list[tuple[str, str]] = [
        ("ARTIFACT", str(artifact)),
        ("PATH", ":".join([*path, HOST_PATH])),
        ("HOME", str(folder)),
        ("LANG", "C"),
        ("LC_ALL", "C"),
        ("TZ", "UTC"),
        ("SOURCE_DATE_EPOCH", "0"),
    ]
    env += toolchain_env(node)
    env += [(f"{env_name(d)}_DIR", p) for d, p in prefixes.items()]
    rpath = [f"{artifact}/lib"] + libdirs
    pkgconfig = [f"{p}/{sub}/pkgconfig" for p in direct_first for sub in ("lib", "lib64", "share")]
    env += [
        ("CPPFLAGS", " ".join(f"-I{d}" for d in incdirs)),
        ("LDFLAGS", " ".join([f"-L{d}" for d in libdirs] + [f"-Wl,-rpath,{d}" for d in rpath])),
        ("CPATH", ":".join(incdirs)),
        ("LIBRARY_PATH", ":".join(libdirs)),
        ("LD_RUN_PATH", ":".join(rpath)),
        ("PKG_CONFIG_PATH", ":".join(pkgconfig)),
        ("CMAKE_PREFIX_PATH", ":".join(direct_first)),
    ]
    for key, value in node.parameters.items():
        if isinstance(value, bool):
            value = int(value)
        env.append((env_name(key), str(value)))
    return env


def python_env(resolved: Resolved, node: Node, deps: dict[str, Path]) -> list[tuple[str, str]]:
    """For a Python package (build_system: python): PYTHON, its interpreter (the `python`
    dependency's bin/python3; a python external's command is set by toolchain_env), and
    PYTHON_PACKAGE_DIRS, the prefixes of the Python packages in its closure (the phase
    template puts their site-packages on PYTHONPATH: build requirements, no isolation)."""
    if not is_python_package(node.recipe):
        return []
    env = [("PYTHON", str(deps[PYTHON] / "bin" / "python3"))] if PYTHON in deps else []
    dirs = [str(p) for d, p in deps.items() if is_python_package(resolved.nodes[d].recipe)]
    return [*env, ("PYTHON_PACKAGE_DIRS", ":".join(dirs))]


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


# toolchain/mpi-stub, the one script every stub in toolchain/bin links to (one file, not one
# per tool: fewer files to write and remove); it names the tool it was run as. build.sh.j2's
# printf writes the same text.
STUB = '#!/bin/sh\necho "${0##*/}: this package does not declare toolchain: [mpi]" >&2\nexit 1\n'


def tool_links(node: Node) -> tuple[list[tuple[str, str]], list[str]]:
    """The build's toolchain/bin: links named like the usual tools to the declared ones, and
    the names of MPI tools the recipe did not ask for (links to a stub that fails: STUB)."""
    links = []
    for ext in node.toolchain.values():
        for role, cmd in ext.commands.items():
            links += [(name, cmd) for name in TOOL_NAMES.get(role, ())]
    linked = {name for name, _ in links}
    stubs = [n for r in ROLES["mpi"] for n in TOOL_NAMES[r] if n not in linked]
    return links, stubs


def build_id(folder: Path) -> str:
    """The HIT_BUILD_ID of the build in `folder` (its build folder): what marks its processes
    (builder.kill_build_processes). The folder, not the artifact id: two stores (a user's and
    the site's, two users) may build the same artifact at once, and neither may kill the
    other's processes."""
    return str(folder)


def render_script(
    node: Node,
    env: list[tuple[str, str]],
    folder: Path,
    toolchain: Path,
    jobs: int,
    links: list[tuple[str, str]],
    stubs: list[str],
) -> str:
    """build.sh (templates/build.sh.j2): clears the environment, exports `env`, lays out the
    toolchain in `toolchain/bin` (`links`, `stubs`: tool_links) unless it is there
    (builder.prepare lays it out without starting a process), then runs the build body in
    `folder/src`: the text the build spec hashes (`node.spec.build`: the recipe's `build:`,
    or its build system's phases rendered with its arguments), so what runs is what the hash
    names."""
    return render(
        "build.sh.j2",
        id=build_id(folder),
        toolbin=toolchain / "bin",
        stub=toolchain / "mpi-stub",
        tool_links=links,
        tool_stubs=stubs,
        name=node.name,
        version=node.recipe.version,
        jobs=jobs,
        env=env,
        srcdir=folder / "src",
        script=node.spec.build.rstrip("\n"),
    )
