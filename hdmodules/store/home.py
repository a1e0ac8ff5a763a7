"""The `hit` home: where a user's (or a site's) store, source cache, temp and roots live.

`HIT_HOME` overrides `~/.hashdist`; a home is created on first use, so `hit init-home` is a
convenience, never a requirement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_atomic
from ..errors import HitError
from ..options import MAX_CPUS
from ..urls import is_url
from .homeroot import home_root

if TYPE_CHECKING:
    from ..spec.slurmconfig import SlurmConfig

CONFIG_KEYS = frozenset(
    [
        "store",
        "source_cache",
        "build_temp",
        "gc_roots",
        "mirrors",
        "host_libs",
        "jobs",
        "concurrent_packages",
        "slurm",
        "upstreams",
        "private",
        "history_keep",
        "history_days",
        "keep_failed_days",
    ]
)

CACHE = ".cache"  # a home's (or site root's) caches: the no-op memos, the resolve cache

BASE_HOST_LIBS = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "libstdc++.so.6",
        "libgcc_s.so.1",
    }
)


@dataclass(frozen=True)
class Home:
    """A hit home (or a site root) as its config.yaml says: store, source cache, build folders, gc
    roots, mirrors, upstreams, privacy."""

    root: Path
    store: Path
    source_cache: Path
    build_temp: Path
    gc_roots: Path
    mirrors: tuple[str, ...] = ()
    host_libs: frozenset[str] = field(default=BASE_HOST_LIBS)
    jobs: int = 1  # CPUs a build run shares (one make jobserver)
    concurrent_packages: int | None = None  # packages built at once, at most (None: `jobs`)
    slurm: SlurmConfig | None = None  # for `hit build --slurm`
    upstreams: tuple[Path, ...] = ()  # homes (or site roots) whose stores are reused, read-only
    private: bool = True  # artifacts readable by their owner only
    history_keep: int = 0  # earlier generations of a profile link kept as gc roots: the last N
    history_days: int = 0  # ... and those the link left less than N days ago
    keep_failed_days: int = 3  # a failed build's folder in build_temp survives `hit gc` so long

    @property
    def upstream_gc_roots(self) -> tuple[Path, ...]:
        """The roots folders of the upstream homes, where a user's builds leave records of
        what they use (roots.record_use)."""
        return tuple(upstream_path(up, "gc_roots", "gcroots") for up in self.upstreams)


def cache_folder(root: Path) -> Path:
    """Where the home (or site root) `root` keeps what only makes commands faster: the no-op
    memos and the resolve cache (spec/resolvecache.py). Owned by whoever owns the home; any
    of it may be deleted at any time. Its owner's only (0700): a site's memos name the
    admin's paths and recipes, and the resolve cache is unpickled. Made so when `root`
    exists and the folder does not, and closed again when its owner left it open to others
    (a root made before this rule); nothing is raised (without it, nothing is cached)."""
    folder = root / CACHE
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        try:
            st = os.stat(folder)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(folder, 0o700)
        except OSError:
            pass
    except OSError:
        pass  # no root yet (a first build), or not ours to write
    return folder


def default_home() -> Path:
    """`$HIT_HOME`, else `~/.hashdist` (homeroot.home_root)."""
    return Path(home_root())


def default_jobs() -> int:
    """The CPUs this process may use (its affinity), at least 1."""
    return max(1, len(os.sched_getaffinity(0)))


def init_home(root: Path, private: bool = True) -> Path:
    """Write a commented config.yaml (only if missing) and the folders it names. A user's
    home keeps its artifacts private; a site root (`hdmod`) does not.

    A private home is its owner's only from the start: the home and every folder it names
    (store, source cache, build folders and their logs, gc roots; the no-op memo in .cache,
    the user's modulefiles) are created 0700, so nothing is readable by others even while
    a build runs."""
    config = root / "config.yaml"
    try:
        _make_dir(root, private)
        if not config.exists():
            from ..templating import render

            text = render("config.yaml.j2", home=root, jobs=default_jobs(), private=private)
            write_atomic(config, text)
    except PermissionError:
        raise HitError(f"cannot create the hit home {root}: permission denied") from None
    home = load_home(root)
    for d in (home.store, home.source_cache, home.build_temp, home.gc_roots):
        _make_dir(d, home.private)
    return config


def _make_dir(path: Path, private: bool) -> None:
    """Create a folder of a home (and its parents); a private home's own folders 0700."""
    path.mkdir(mode=0o700 if private else 0o777, parents=True, exist_ok=True)


def _read(file: Path):
    from ..spec import resolvecache, yamlfile  # not at the top: the no-op path needs neither

    resolvecache.note(str(file))  # for the no-op memo: its stamp before it is read
    m = yamlfile.load_mapping(file, "hit config")
    yamlfile.check_keys(m, CONFIG_KEYS, file.name)
    return m


def site_defaults() -> tuple[Path, object] | None:
    """The site's defaults for users (`HIT_SITE_CONFIG`, e.g. ROOT/user-config.yaml that
    `hdmod build` writes): the same keys as config.yaml."""
    file = os.environ.get("HIT_SITE_CONFIG")
    if not file:
        return None
    path = Path(file).expanduser().absolute()
    if not path.exists():
        raise HitError(f"HIT_SITE_CONFIG names {path}, which does not exist")
    return path.parent, _read(path)


def upstream_path(home_root: Path, key: str = "store", default: str = "bld") -> Path:
    """A folder of another home or site root as its config.yaml names it (`store`, or
    `gc_roots` with default `gcroots`), read without writing anything there."""
    from ..spec import yamlfile

    config = home_root / "config.yaml"
    if config.exists():
        value = yamlfile.get_str(_read(config), key)
        if value:
            return (home_root / value).absolute()
    return home_root / default


def upstream_store(home_root: Path) -> Path:
    """The store folder of another home or site root."""
    return upstream_path(home_root)


HOME_CACHE = "home.pickle"  # in the home's CACHE: its settings as load_home last made them
# besides this file, the code that decides what load_home makes (below the package folder)
SETTINGS_CODE = ("spec/yamlfile.py", "spec/slurmconfig.py", "names.py", "urls.py")


def load_home(root: Path | None = None) -> Home:
    """The home's configuration; the site's defaults (HIT_SITE_CONFIG) fill in what the
    home's own config.yaml does not say, and lists (mirrors, host_libs, upstreams) add up.
    Kept in the home's cache while neither file changes (resolvecache.remembered: no YAML
    is parsed, nor PyYAML imported), nor this code, nor the number of CPUs that `jobs`
    defaults to; an upstream that is no folder any more is said as when it is read.
    Raises HitError (ConfigError for a config file that is wrong)."""
    from ..spec import resolvecache

    root = root or default_home()
    config = root / "config.yaml"
    if not config.exists():
        init_home(root)
    site = os.environ.get("HIT_SITE_CONFIG")
    inputs = [str(config)]
    if site:
        inputs.append(str(Path(site).expanduser().absolute()))
    here = os.path.dirname(os.path.dirname(__file__))
    code = [f"{here}/{f}" for f in ("store/home.py", *SETTINGS_CODE)]  # what reads them
    key = (str(root), str(root.absolute()), site, default_jobs())  # (a relative root: its cwd)
    cache = cache_folder(root) / HOME_CACHE
    home = resolvecache.remembered(cache, inputs, code, key, lambda: _load_home(root, config))
    if not all(up.is_dir() for up in home.upstreams):
        home = _load_home(root, config)  # says which
    return home


def _load_home(root: Path, config: Path) -> Home:
    """`load_home` of the home at `root` from its config.yaml, `config`, and the site's."""
    from ..spec import yamlfile

    own = _read(config)
    site = site_defaults()
    layers = [(root, own)] + ([site] if site else [])

    def scalar(key: str):
        return next(((base, m) for base, m in layers if m.get(key) is not None), (root, own))

    def path(key: str, default: str) -> Path:
        base, m = scalar(key)
        return (base / (yamlfile.get_str(m, key) or default)).absolute()

    def listed(key: str) -> list[tuple[Path, str]]:
        out = []
        for base, m in layers:
            given = yamlfile.mirror_list(m) if key == "mirrors" else yamlfile.get_str_list(m, key)
            out += [(base, v) for v in given if (base, v) not in out]
        return out

    upstreams = []  # in layer order, each once; one that is no folder is a typo or unmounted
    for base, m in layers:
        for i, u in enumerate(yamlfile.get_str_list(m, "upstreams")):
            up = Path(os.path.abspath(base / u))
            if not up.is_dir():
                problem = "is not a folder (give a site root or another user's home)"
                yamlfile.fail_item(m, "upstreams", i, f"upstream {u!r} ({str(up)!r}) {problem}")
            if up != root.absolute() and up not in upstreams:
                upstreams.append(up)
    base, m = scalar("jobs")
    jobs = yamlfile.get_int(m, "jobs", default_jobs(), maximum=MAX_CPUS)
    base, m = scalar("concurrent_packages")
    concurrent = yamlfile.get_int(m, "concurrent_packages", 0, maximum=MAX_CPUS) or None
    base, m = scalar("private")
    private = yamlfile.get_bool(m, "private", True)
    keeping = {}
    for key, default in (("history_keep", 0), ("history_days", 0), ("keep_failed_days", 3)):
        _b, hm = scalar(key)
        keeping[key] = yamlfile.get_int(hm, key, default, minimum=0)
    base, m = scalar("slurm")
    store = path("store", "bld")
    if ":" in str(store) or not str(store).isprintable():  # RUNPATH, LD_RUN_PATH split at `:`
        problem = "holds `:` or a control character, which RUNPATH and PATH lists split at"
        raise HitError(f"the store {store} {problem} (HIT_HOME, or store: in config.yaml)")
    return Home(
        **keeping,
        root=root,
        store=store,
        source_cache=path("source_cache", "src"),
        build_temp=path("build_temp", "tmp"),
        gc_roots=path("gc_roots", "gcroots"),
        mirrors=tuple(u if is_url(u) else str((b / u).absolute()) for b, u in listed("mirrors")),
        host_libs=BASE_HOST_LIBS | {lib for _b, lib in listed("host_libs")},
        jobs=jobs,
        concurrent_packages=concurrent,
        slurm=_slurm(yamlfile.get_mapping(m, "slurm"), base),
        upstreams=tuple(upstreams),
        private=private,
    )


def with_package_cap(home: Home, concurrent_packages: int | None) -> Home:
    """`home` with a --concurrent-packages, when one is given, instead of its config.yaml's."""
    from dataclasses import replace

    return replace(home, concurrent_packages=concurrent_packages or home.concurrent_packages)


def open_store(home: Home):
    """The home's store, chained to its upstreams' stores (read-only)."""
    from .layout import Store

    ups = tuple(Store(upstream_store(u)) for u in home.upstreams)
    return Store(home.store, ups, private=home.private)


def require_writable(home: Home) -> None:
    """Refuse, with the path, before anything is attempted in a store we may not write."""
    for path in (home.store, home.root):
        if path.exists():
            if not os.access(path, os.W_OK):
                raise HitError(
                    f"you cannot write to {path} (it belongs to someone else, e.g. the site); "
                    f"to reuse its artifacts, list {home.root} under `upstreams:` in your own "
                    f"config.yaml (or use the site's HIT_SITE_CONFIG)"
                )
            return


def _slurm(m, root: Path) -> SlurmConfig | None:
    if not m:
        return None
    from ..spec.slurmconfig import load_config  # only homes that say something about Slurm pay

    return load_config(m, root)
