"""`hit develop`: a writable environment over a profile, for working on top of it.

DIR gets real (writable) folders with links to every file of the profile's packages, so
`pip install` and friends can add files next to them; a Python venv on top: of the
profile's own interpreter when the profile is a Python environment (pyvenv.py), else of a
host python3 (system site packages visible) unless asked not to; `DIR/activate` for bash
and zsh and modulefiles in `DIR/modulefiles/`. `DIR/.hit/profile` links the profile and
is a gc root while DIR exists: remove DIR and `hit gc` may collect the profile (no `.last`
is kept for it).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HitError
from ..names import env_value_problem, text_path, text_problem
from ..runner import query
from ..spec.artifact import changed, short_id
from ..spec.buildspec import ProfileDoc
from ..store import roots
from ..store.home import Home
from ..store.layout import Store, read_manifest, read_spec
from ..templating import render
from .farm import plan_farm
from .pyvenv import config_home, write_config

VENV_TIMEOUT = 3600  # seconds: `python -m venv` on a slow shared filesystem
STATE = Path(".hit") / "develop.json"


def develop(home: Home, store: Store, profile: Path, folder: Path, python: str | None) -> list[str]:
    """Make or update `folder` over the assembled `profile` prefix; returns what changed
    (`added/removed/updated NAME`). Raises HitError for a folder that is not a develop folder,
    a path its modulefiles could not hold, an artifact missing from the store, or a failed venv."""
    check_folder(folder)
    doc = ProfileDoc.from_doc(read_spec(profile))
    state_file = folder / STATE
    old = json.loads(state_file.read_text()) if state_file.exists() else None
    if old is None and folder.exists() and any(folder.iterdir()):
        raise HitError(f"{folder} exists and is not a hit develop folder; give a new one")
    manifests = {}
    for name, artifact_id in doc.artifacts.items():
        prefix = store.find(artifact_id)
        if prefix is None:
            raise HitError(f"{artifact_id} is not in the store; build the profile first")
        manifests[name] = (prefix, read_manifest(prefix))
    links = plan_farm(manifests, list(doc.prefer), fold=False)
    interpreter = config_home(profile)  # the profile is a Python environment: its python
    if interpreter is not None:
        for rel in INTERPRETER_LINKS:  # an external's links are the profile's own
            if rel not in links and os.path.exists(profile / rel):
                links[rel] = os.path.realpath(profile / rel)
    _relink(folder, store, links, (old or {}).get("links", []))
    (folder / ".hit").mkdir(exist_ok=True)
    roots.point(home.gc_roots, folder / ".hit" / "profile", profile, last=False)
    if interpreter is not None:
        _profile_venv(folder, interpreter)
    _write_environment(folder, None if interpreter is not None else python)
    state = {"profile": str(profile), "artifacts": doc.artifacts, "links": sorted(links)}
    write_atomic(state_file, json.dumps(state))
    return _changes((old or {}).get("artifacts", {}), doc.artifacts) if old else []


def check_folder(folder: Path) -> None:
    """Refuse (HitError) a develop folder whose path its modulefiles could not hold: the path
    is written into whatis text and variable values (names.text_problem, env_value_problem).
    Called before anything is built."""
    text_path(folder)  # a gc root names it
    problem = text_problem(str(folder)) or env_value_problem(str(folder))
    if problem:
        raise HitError(f"{folder}: the folder's path {problem}")


def _relink(folder: Path, store: Store, links: dict[str, str], ours: list[str]) -> None:
    """Replace the links we made last time (`ours`; the user's own files stay) by `links`
    (relative path -> target in the store)."""
    emptied = set()
    for rel in ours:
        path = folder / rel
        if path.is_symlink() and os.readlink(path).startswith(str(store.root)):
            path.unlink()
            emptied.add(path.parent)
    _prune(folder, emptied)
    for rel, target in sorted(links.items()):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            os.symlink(target, path)


INTERPRETER_LINKS = ("bin/python3", "bin/python")


def _profile_venv(folder: Path, interpreter: Path) -> None:
    """`folder` as a venv of the profile's own interpreter (folder `interpreter`): its
    pyvenv.cfg, so `folder/bin/python3` sees the profile's packages (linked into the
    folder's writable site-packages) and what `pip install` adds there, none of the host's;
    and pip, from the profile (the python recipe ships it) or else from the interpreter's
    ensurepip (a host python3). Raises HitError if pip cannot be had."""
    write_config(folder, interpreter)
    python = folder / "bin" / "python3"
    if query([str(python), "-c", "import pip"]).code == 0:
        return
    r = query([str(python), "-m", "ensurepip", "--default-pip"], timeout=VENV_TIMEOUT)
    if r.code != 0:
        raise HitError(f"{python} -m ensurepip failed (no pip in {folder}): {r.out.strip()}")


def _prune(folder: Path, emptied: set[Path]) -> None:
    """Remove the folders below `folder` that removing our links left empty, or holding only
    `__pycache__` (bytecode Python wrote of the files that went), deepest first, up to the
    first that holds anything else: a removed package must not stay importable (as an empty
    namespace package) nor seem installed (an empty .dist-info)."""
    import shutil

    folders = {a for d in emptied for a in (d, *d.parents) if a.is_relative_to(folder)}
    folders.discard(folder)
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):  # children first
        if d.is_symlink() or not d.is_dir():
            continue
        cache = d / "__pycache__"
        if {e.name for e in d.iterdir()} <= {"__pycache__"} and not cache.is_symlink():
            shutil.rmtree(cache, ignore_errors=True)
            with contextlib.suppress(OSError):
                d.rmdir()


def _write_environment(folder: Path, python: str | None) -> None:
    """A Python venv (unless `python` is None or one is there), `activate`, and the folder's
    Lmod and Tcl modulefiles. Raises HitError if the venv cannot be made."""
    if python and not (folder / "pyvenv.cfg").exists():
        venv_cmd = [python, "-m", "venv", "--system-site-packages", str(folder)]
        r = query(venv_cmd, timeout=VENV_TIMEOUT)  # minutes on a slow disk
        if r.code != 0:
            raise HitError(f"{python} -m venv {folder} failed: {r.out.strip()}")
    context = {"dir": folder, "venv": (folder / "pyvenv.cfg").exists()}
    write_atomic(folder / "activate", render("develop/activate.sh.j2", **context))
    for fmt, name in (("lmod", "develop.lua"), ("tcl", "develop.tcl")):
        target = folder / "modulefiles" / fmt / "develop" / ("dev.lua" if fmt == "lmod" else "dev")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, render(f"develop/{name}.j2", **context))


def _changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = [
        f"{kind} {name}" + (f" ({short_id(was)} -> {short_id(now)})" if was and now else "")
        for kind, name, was, now in changed(old, new)
    ]
    return out or ["nothing changed"]
