"""Recipes: one YAML file per package, `<package_dir>/<name>.yaml`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from ..errors import ConfigError, HitError
from ..hashing import sha256_file, tree_hash
from ..names import WRAPPER_VARIABLES, one_word
from ..urls import git_location
from . import buildsystems, yamlfile
from .buildsystems import BuildSteps
from .variants import BlockContext, When, load_when, toolchain_kinds
from .yamlfile import Scalar, check_version

RECIPE_KEYS = {
    "name",
    "version",
    "description",
    "homepage",
    "sources",
    "patches",
    "dependencies",
    "build",
    "parameters",
    "allow_host_libs",
    "toolchain",
    "environment",
    "resources",
    "when",  # variants (variants.py)
    "versions",  # more versions than `version:`, each with its sources (_versions)
} | buildsystems.KEYS
RESOURCE_KEYS = {"cpus", "mem", "time"}
SOURCE_KEYS = {"url", "sha256", "path", "git", "commit", "dest", "pypi"}
# `pypi: NAME==VERSION`: the requirement pip would read, pinned exactly (PEP 508 name)
PYPI_RE = re.compile(
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9])==([A-Za-z0-9][A-Za-z0-9.+!_-]*)"
)
MAX_PYPI = 200  # characters of a `pypi:` requirement
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MEM_RE = re.compile(r"[0-9]+(\.[0-9]+)?[KMGTkmgt]?")


@dataclass(frozen=True)
class Source:
    """`url` + `sha256` (fetched into the cache), `pypi` + `sha256` (one file of a release on
    the Python package index pip is configured with: build/pypi.py), `path` (a folder or
    archive next to the recipe), or `git` + `commit` (a repository URL or folder, at one
    commit). `dest` is where it goes inside the build folder."""

    url: str | None = None
    pypi: str | None = None  # `name==version`
    sha256: str | None = None
    path: Path | None = None
    git: str | None = None
    commit: str | None = None
    ref: str | None = None  # the branch a profile asked for (resolved to `commit`)
    dest: str = "."
    line: int = 0
    absolute: bool = False  # `path:` was written as an absolute path (not beside the recipe)


@dataclass(frozen=True)
class Patch:
    """One entry of a recipe's `patches:`: a unified diff beside the recipe (`path`, made
    absolute) or fetched (`url` + `sha256`), applied like `patch -p<strip>` in the source
    tree after the sources are unpacked. `line` is its line in the recipe."""

    path: Path | None = None
    url: str | None = None
    sha256: str | None = None
    strip: int = 1
    line: int = 0
    absolute: bool = False  # `path:` was written as an absolute path (not beside the recipe)

    @property
    def label(self) -> str:
        """How messages name it: the file, or the URL."""
        return str(self.path) if self.path is not None else str(self.url)

    @property
    def origin(self) -> tuple[str | None, str | None]:
        """What makes two entries one patch (its file, through any link, or its URL): a
        patch given twice would apply twice."""
        return (os.path.realpath(self.path) if self.path else None), self.url

    @property
    def short(self) -> str:
        """How a message about a repeat names it: the URL, or the file's name."""
        return self.url or (self.path.name if self.path else "")


@dataclass(frozen=True)
class Recipe:
    """One package's recipe as loaded from `<package_dir>/<name>.yaml` (see the README's Recipe
    section)."""

    name: str
    version: str
    file: Path
    build: str
    description: str = ""
    homepage: str = ""
    sources: tuple[Source, ...] = ()
    patches: tuple[Patch, ...] = ()  # in order; resolved, the when: blocks' after
    dependencies: tuple[str, ...] = ()
    parameters: dict[str, Scalar] = field(default_factory=dict)
    allow_host_libs: tuple[str, ...] = ()
    toolchain: tuple[str, ...] = ()  # external kinds it needs besides the compiler, e.g. mpi
    environment: dict[str, str] = field(default_factory=dict)  # set by its module; {prefix}
    resources: dict[str, str] = field(default_factory=dict)  # for Slurm: cpus, mem, time
    dependency_lines: dict[str, int] = field(default_factory=dict)
    toolchain_line: int = 0  # where `toolchain:` stands (0: not given), for errors
    build_system: BuildSteps | None = None  # `build_system:` and its arguments (buildsystems)
    when: tuple[When, ...] = ()  # variants: what holds under a condition (parameters, @version)
    versions: dict[str, tuple[Source, ...]] = field(default_factory=dict)  # version -> sources


# what builder.py sets for every build: a parameter may not shadow it (nor end in _DIR)
RESERVED_ENV = frozenset(
    ("ARTIFACT", "JOBS", "MAKEFLAGS", "PATH", "HOME", "HIT_BUILD_ID", "LANG", "LC_ALL", "TZ")
    + ("SOURCE_DATE_EPOCH", "CC", "CXX", "FC", "CPPFLAGS", "LDFLAGS", "CPATH", "LIBRARY_PATH")
    + ("LD_RUN_PATH", "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH")
    + ("MPICC", "MPICXX", "MPIFC", "MPIRUN", "MPI_DIR", "MPI_HOME")
    + WRAPPER_VARIABLES  # the MPI wrappers' compiler overrides
    + ("PYTHON", "PYTHON_PACKAGE_DIRS")
    # and what changes how bash, the dynamic linker or the shell itself behave
    + ("IFS", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE", "CDPATH", "PS4")
    + ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "SHELL", "PWD", "OLDPWD", "USER")
)


@cache  # a build's <NAME>_DIR for every package it builds on, checked at resolve too
def env_name(name: str) -> str:
    """`gnu-make` -> `GNU_MAKE`: how a package or parameter is named in the environment;
    a name starting with a digit gets a leading `_` (`4ti2` -> `_4TI2`), since a shell
    variable name cannot start with one."""
    upper = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    return f"_{upper}" if upper[:1].isdigit() else upper


def _load_source(m: yamlfile.Mapping, recipe_dir: Path) -> Source:
    yamlfile.check_keys(m, SOURCE_KEYS, "a source")
    url, path = yamlfile.get_str(m, "url"), yamlfile.get_str(m, "path")
    git, pypi = yamlfile.get_str(m, "git"), yamlfile.get_str(m, "pypi")
    if sum(x is not None for x in (url, path, git, pypi)) != 1:
        message = "a source needs exactly one of 'url', 'pypi', 'path' or 'git'"
        raise ConfigError(m.file, m.line, message)
    if pypi is not None and (len(pypi) > MAX_PYPI or not PYPI_RE.fullmatch(pypi)):
        shown = repr(pypi) if len(pypi) <= MAX_PYPI else f"{len(pypi)} characters"
        problem = f"'pypi' must be NAME==VERSION, one release (jinja2==3.1.4), not {shown}"
        yamlfile.fail(m, "pypi", problem)
    commit = yamlfile.get_str(m, "commit")
    if git is not None and (commit is None or not COMMIT_RE.match(commit)):
        problem = "a git source needs `commit:` with the full 40-hex commit id"
        yamlfile.fail(m, "commit" if commit else "git", problem)
    if git is not None:
        git = git_location(yamlfile.check_git(m, "git", git), recipe_dir)
    if url is not None:
        _check_url(m, url)
    sha = yamlfile.get_str(m, "sha256")
    if url is not None and sha is None:
        message = f"the source {url} needs a sha256 (`hit fetch {url}` prints it)"
        raise ConfigError(m.file, m.line, message)
    if pypi is not None and sha is None:
        message = (
            f"the source pypi: {pypi} needs the sha256 of the one file (wheel or sdist) "
            "it means (`hit create FILE` prints it)"
        )
        raise ConfigError(m.file, m.line, message)
    if sha is not None and not SHA256_RE.match(sha.lower()):
        yamlfile.fail(m, "sha256", "'sha256' must be 64 hexadecimal characters")
    dest = yamlfile.get_str(m, "dest", ".")
    if Path(dest).is_absolute() or ".." in Path(dest).parts:
        yamlfile.fail(m, "dest", "'dest' must be a relative path inside the build folder")
    return Source(
        url=url,
        pypi=pypi,
        sha256=sha.lower() if sha else None,
        path=Path(os.path.abspath(recipe_dir / path)) if path else None,
        git=git,
        commit=commit,
        dest=dest,
        line=m.line,
        absolute=path is not None and os.path.isabs(path),
    )


URL_SCHEMES = ("http", "https", "ftp", "file")


def _check_url(m: yamlfile.Mapping, url: str) -> None:
    """A source URL that urllib can fetch: http(s) or ftp with a host, or file; without
    whitespace or control characters (urllib drops a line break or tab where it stands, so
    a URL holding one named another file than it said)."""
    import urllib.parse

    if not one_word(url):
        problem = "holds whitespace or a control character (write a space as %20)"
        yamlfile.fail(m, "url", f"{url!r} {problem}")

    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as e:
        yamlfile.fail(m, "url", f"{url!r} is not a valid URL ({e})")
    if parts.scheme not in URL_SCHEMES or (parts.scheme != "file" and not parts.hostname):
        yamlfile.fail(m, "url", f"{url!r}: give an http(s), ftp or file URL with its host")


PATCH_KEYS = {"path", "url", "sha256", "strip"}
MAX_STRIP = 32  # path components a strip level may remove


def _load_patches(m: yamlfile.Mapping, recipe_dir: Path) -> tuple[Patch, ...]:
    """`patches:`: a list of file names beside the recipe, or mappings with `path` or
    `url` + `sha256`, and `strip` (default 1). ConfigError (file:line) for anything else,
    a file that is not there included, each at its item's line. The same file or URL given
    twice is refused at the second (patch(1) would fail on it, or apply it twice)."""
    entries = m.get("patches") or []
    if not isinstance(entries, list):
        yamlfile.fail(m, "patches", "'patches' must be a list (- fix.patch, or - url: ...)")
    out: list[Patch] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = _patch_mapping(m, entry, yamlfile.item_line(m, "patches", i))
        if not isinstance(entry, yamlfile.Mapping):
            problem = "each patch is a file name or a mapping (path:/url:)"
            yamlfile.fail_item(m, "patches", i, problem)
        patch = _load_patch(entry, recipe_dir)
        first = next((p for p in out if p.origin == patch.origin), None)
        if first is not None:
            again = "" if first.short == patch.short else f" (the file of {first.short!r})"
            raise ConfigError(m.file, patch.line, f"patch {patch.short!r}{again} is listed twice")
        out.append(patch)
    return tuple(out)


def _patch_mapping(m: yamlfile.Mapping, path: str, line: int) -> yamlfile.Mapping:
    """A patch given as a plain file name, as the mapping `{path: NAME}` at its item's line."""
    entry = yamlfile.Mapping(path=path)
    entry.file, entry.line, entry.key_lines = m.file, line, {}
    return entry


def _load_patch(p: yamlfile.Mapping, recipe_dir: Path) -> Patch:
    yamlfile.check_keys(p, PATCH_KEYS, "a patch")
    path, url = yamlfile.get_str(p, "path"), yamlfile.get_str(p, "url")
    if (path is None) == (url is None):
        raise ConfigError(p.file, p.line, "a patch needs exactly one of 'path' or 'url'")
    strip = p.get("strip", 1)
    if isinstance(strip, bool) or not isinstance(strip, int) or not 0 <= strip <= MAX_STRIP:
        yamlfile.fail(p, "strip", f"'strip' must be a whole number from 0 to {MAX_STRIP}")
    sha = yamlfile.get_str(p, "sha256")
    if url is not None:
        _check_url(p, url)
        if sha is None:
            message = f"the patch {url} needs a sha256 (`hit fetch {url}` prints it)"
            raise ConfigError(p.file, p.line, message)
    if sha is not None and (url is None or not SHA256_RE.match(sha.lower())):
        problem = "64 hexadecimal characters" if url else "given only with 'url'"
        yamlfile.fail(p, "sha256", f"a patch's 'sha256' must be {problem}")
    file = None
    if path is not None:
        file = Path(os.path.abspath(recipe_dir / path))
        if not file.is_file():
            what = "is a folder" if file.is_dir() else "is not there"
            yamlfile.fail(p, "path", f"patch file {path} {what} ({file})")
        if file.stat().st_size == 0:  # patch(1) applies an empty file as a no-op
            yamlfile.fail(p, "path", f"patch file {path} is empty ({file})")
    absolute = path is not None and os.path.isabs(path)
    return Patch(file, url, sha.lower() if sha else None, strip, p.line, absolute)


def load_recipe(file: Path) -> Recipe:
    """Load and check one recipe file. Raises ConfigError (file:line) for anything a recipe may not
    say."""
    m = yamlfile.load_mapping(file, "recipe")
    yamlfile.check_keys(m, RECIPE_KEYS, f"recipe {file.stem}", required=("version",))
    # name and version are folders of the store and module names (see names.py)
    name = yamlfile.check_package_name(
        m, "name", yamlfile.get_str(m, "name", file.stem), "package name"
    )
    if isinstance(m["version"], float):
        yamlfile.fail(
            m, "version", f"write the version in quotes (YAML reads {m['version']} as a number)"
        )
    version = check_version(m, "version", yamlfile.get_str(m, "version"), f"{name}: version")
    sources = m.get("sources") or []
    problem = "'sources' must be a list of mappings (- url: ... sha256: ...)"
    if not isinstance(sources, list):
        yamlfile.fail(m, "sources", problem)
    for i, source in enumerate(sources):
        if not isinstance(source, yamlfile.Mapping):
            yamlfile.fail_item(m, "sources", i, problem)
    dep_lines = yamlfile.item_lines(m, "dependencies", twice="dependency")
    for d, line in dep_lines.items():  # each is looked up as <package_dir>/<name>.yaml
        yamlfile.check_package_name(m, "dependencies", d, "dependency", line)
    deps = list(dep_lines)
    params = yamlfile.check_parameters(m, "parameters")
    exported: dict[str, str] = {}
    params_m = yamlfile.get_mapping(m, "parameters")
    for key in params:  # each becomes a variable of the build's environment
        variable = env_name(key)
        if variable in RESERVED_ENV or variable.endswith("_DIR"):
            yamlfile.fail(params_m, key, f"parameter {key!r} would shadow a build variable")
        if variable in exported:  # the build would see the last; the hash holds both
            other = exported[variable]
            yamlfile.fail(params_m, key, f"parameters {other!r} and {key!r} are both {variable}")
        exported[variable] = key
    toolchain = list(toolchain_kinds(m))

    def variables(more_deps: list[str], more_toolchain: list[str]) -> frozenset[str]:
        names = [*deps, *more_deps]
        return buildsystems.arg_variables(names, list(params), toolchain + more_toolchain, env_name)

    steps = buildsystems.load(m, variables([], []), deps)
    if steps is None and m.get("build") is None:
        systems = ", ".join(buildsystems.SYSTEMS)
        message = f"recipe {file.stem} needs the key 'build' (a script) or 'build_system'"
        raise ConfigError(file, m.line, f"{message} ({systems})")
    if m.get("build") is not None and not isinstance(m["build"], str):
        yamlfile.fail(m, "build", "'build' must be a script (use `build: |` and indent it)")
    environment = yamlfile.module_environment(m)
    versions = _versions(m, version, file.parent)
    context = BlockContext(
        parameters=params,
        versions=tuple(versions or (version,)),
        build_system=steps.system if steps else None,
        variables=variables,
        load_patches=lambda block: _load_patches(block, file.parent),
    )
    recipe = Recipe(
        name=name,
        version=version,
        file=file,
        build=m.get("build") or "",
        description=yamlfile.check_text(m, "description", yamlfile.get_str(m, "description", "")),
        homepage=yamlfile.check_text(m, "homepage", yamlfile.get_str(m, "homepage", "")),
        sources=tuple(_load_source(s, file.parent) for s in sources),
        patches=_load_patches(m, file.parent),
        dependencies=tuple(deps),
        parameters=params,
        allow_host_libs=yamlfile.host_libs(m),
        toolchain=tuple(toolchain),
        resources=_resources(m),
        environment=environment,
        dependency_lines=dep_lines,
        toolchain_line=m.line_of("toolchain") if "toolchain" in m else 0,
        build_system=steps,
        when=load_when(m, context),
        versions=versions,
    )
    _refuse_repeats_in_blocks(recipe)
    return with_version(recipe, version)


def _refuse_repeats_in_blocks(recipe: Recipe) -> None:
    """A `when:` block's dependency or patch that the recipe lists itself: the dependency
    would be merged silently, the patch applied twice (patch(1) then fails, or undoes it).
    ConfigError at the block's line for it, as for one listed twice in one list."""
    own = {p.origin for p in recipe.patches}
    for block in recipe.when:
        for dep in block.dependencies:
            if dep in recipe.dependencies:
                message = f"when {block.condition}: dependency {dep!r} is the recipe's own already"
                raise ConfigError(recipe.file, block.dependency_line or block.line, message)
        for patch in block.patches:
            if patch.origin in own:
                message = (
                    f"when {block.condition}: patch {patch.short!r} is the recipe's own already"
                )
                raise ConfigError(recipe.file, patch.line, message)


def _resources(m: yamlfile.Mapping) -> dict[str, str]:
    r = yamlfile.get_mapping(m, "resources")
    yamlfile.check_keys(r, RESOURCE_KEYS, "resources")
    out = {k: yamlfile.get_str(r, k) for k in r}
    if "cpus" in out and not out["cpus"].isdigit():
        yamlfile.fail(r, "cpus", "'cpus' must be a whole number")
    if "mem" in out and not MEM_RE.fullmatch(out["mem"]):  # written into the job script
        yamlfile.fail(r, "mem", "'mem' must be a number with an optional unit K, M, G or T")
    return out


def patch_hash(patch: Patch) -> str:
    """What of a patch enters the build spec: its content's sha256 (never its name or URL).
    Raises HitError if its file went away since the recipe was loaded."""
    if patch.sha256:
        return patch.sha256
    assert patch.path is not None
    try:
        return sha256_file(patch.path)
    except OSError as e:
        raise HitError(f"patch {patch.path}: {e.strerror or e}") from None


def source_hash(source: Source, hash_tree: Callable[[Path], str] = tree_hash) -> str:
    """What of a source enters the build spec: the bytes, never where they came from (a
    folder's through `hash_tree`: hashing.tree_hash, or a cache of it)."""
    if source.sha256:
        return source.sha256
    if source.commit:
        return "git:" + source.commit
    assert source.path is not None
    if source.path.is_dir():
        return "tree:" + hash_tree(source.path)
    if source.path.is_file():
        return sha256_file(source.path)
    raise HitError(f"source path {source.path} does not exist")


def with_version(recipe: Recipe, version: str) -> Recipe:
    """`recipe` building `version`, one it offers (`versions:`), with that version's sources."""
    if not recipe.versions:
        return recipe
    return replace(recipe, version=version, sources=recipe.versions[version])


def _versions(m: yamlfile.Mapping, default: str, recipe_dir: Path) -> dict[str, tuple[Source, ...]]:
    """`versions:` (README "Versions"): version -> its source (a mapping) or sources (a list),
    each followed by the recipe's own `sources:` (shared: patches, extra files); `version:`
    is the default and must be one of them. {} when the recipe offers one version only."""
    versions_m = yamlfile.get_mapping(m, "versions")
    common = tuple(_load_source(s, recipe_dir) for s in m.get("sources") or [])
    out = {}
    for version, sources in versions_m.items():
        if isinstance(version, float):
            yamlfile.fail(
                versions_m, version, f"write the version in quotes (YAML reads {version})"
            )
        check_version(versions_m, version, str(version), "versions: version")
        items = [sources] if isinstance(sources, yamlfile.Mapping) else sources
        problem = f"versions: {version}: give its source (url:, sha256:) or a list of them"
        if not isinstance(items, list):
            yamlfile.fail(versions_m, version, problem)
        for i, source in enumerate(items):
            if not isinstance(source, yamlfile.Mapping):
                yamlfile.fail_item(versions_m, version, i, problem)
        out[str(version)] = tuple(_load_source(s, recipe_dir) for s in items) + common
    if out and default not in out:
        have = ", ".join(out)
        yamlfile.fail(
            m, "version", f"the default version {default} is not under versions: ({have})"
        )
    return out
