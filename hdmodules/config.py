"""The `hit` home: where a user's (or a site's) store, source cache, temp and roots live.

`HIT_HOME` overrides `~/.hashdist`; a home is created on first use, so `hit init-home` is a
convenience, never a requirement.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HitError

CONFIG_KEYS = {
    "store", "source_cache", "build_temp", "gc_roots", "mirrors", "host_libs", "jobs", "slurm",
}  # fmt: skip

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
    root: Path
    store: Path
    source_cache: Path
    build_temp: Path
    gc_roots: Path
    mirrors: tuple[str, ...] = ()
    host_libs: frozenset[str] = field(default=BASE_HOST_LIBS)
    jobs: int = 1
    slurm: object = None  # slurm.SlurmConfig, for `hit build --slurm`


def default_home() -> Path:
    env = os.environ.get("HIT_HOME")
    return Path(env).expanduser().absolute() if env else Path.home() / ".hashdist"


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def init_home(root: Path) -> Path:
    """Write a commented config.yaml (only if missing) and the folders it names."""
    config = root / "config.yaml"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not config.exists():
            from .templating import render

            tmp = config.with_name(f".config.yaml.{os.getpid()}")
            tmp.write_text(render("config.yaml.j2", home=root, jobs=default_jobs()))
            os.replace(tmp, config)
    except PermissionError:
        raise HitError(f"cannot create the hit home {root}: permission denied") from None
    home = load_home(root)
    for d in (home.store, home.source_cache, home.build_temp, home.gc_roots):
        d.mkdir(parents=True, exist_ok=True)
    return config


def load_home(root: Path | None = None) -> Home:
    from . import yamlfile  # not at the top: the no-op fast path must not need PyYAML

    root = root or default_home()
    config = root / "config.yaml"
    if not config.exists():
        init_home(root)
    m = yamlfile.load_mapping(config, "hit config")
    yamlfile.check_keys(m, CONFIG_KEYS, "config.yaml")

    def path(key: str, default: str) -> Path:
        return (root / (yamlfile.get_str(m, key) or default)).absolute()

    return Home(
        root=root,
        store=path("store", "bld"),
        source_cache=path("source_cache", "src"),
        build_temp=path("build_temp", "tmp"),
        gc_roots=path("gc_roots", "gcroots"),
        mirrors=tuple(
            u if "://" in u else str((root / u).absolute())
            for u in yamlfile.get_str_list(m, "mirrors")
        ),
        host_libs=BASE_HOST_LIBS | set(yamlfile.get_str_list(m, "host_libs")),
        jobs=yamlfile.get_int(m, "jobs", default_jobs()),
        slurm=_slurm(yamlfile.get_mapping(m, "slurm"), root),
    )


def _slurm(m, root: Path):
    if not m:
        return None
    from .slurm import load_config  # only homes that say something about Slurm pay for it

    return load_config(m, root)


DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, what: str = "--older-than") -> float:
    """`30d`, `12h`, `2w`, `45m`, `10s` -> seconds."""
    m = DURATION.match(str(text).strip())
    if not m:
        raise HitError(f"{what} {text!r}: give a number and a unit, like 30d, 12h or 2w")
    return int(m.group(1)) * UNITS[m.group(2)]
