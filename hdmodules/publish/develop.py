"""`hit develop`: a writable environment over a profile, for working on top of it.

DIR gets real (writable) folders with links to every file of the profile's packages, so
`pip install` and friends can add files next to them; a Python venv on top (system site
packages visible) unless asked not to; `DIR/activate` for bash and zsh and modulefiles in
`DIR/modulefiles/`. `DIR/.hit/profile` links the profile and is a gc root while DIR exists:
remove DIR and `hit gc` may collect the profile (no `.last` is kept for it).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ..atomic import write_atomic
from ..errors import HitError
from ..spec.buildspec import ProfileDoc
from ..store import roots
from ..store.home import Home
from ..store.layout import Store, read_manifest, read_spec
from ..templating import render
from .farm import plan_farm

STATE = Path(".hit") / "develop.json"


def develop(home: Home, store: Store, profile: Path, folder: Path, python: str | None) -> list[str]:
    """Make or update `folder` over the assembled `profile` prefix; returns what changed."""
    doc = ProfileDoc.from_doc(read_spec(profile))
    artifacts = doc.artifacts
    state_file = folder / STATE
    old = json.loads(state_file.read_text()) if state_file.exists() else None
    if old is None and folder.exists() and any(folder.iterdir()):
        raise HitError(f"{folder} exists and is not a hit develop folder; give a new one")
    manifests = {}
    for name, artifact_id in artifacts.items():
        prefix = store.find(artifact_id)
        if prefix is None:
            raise HitError(f"{artifact_id} is not in the store; build the profile first")
        manifests[name] = (prefix, read_manifest(prefix))
    links = plan_farm(manifests, list(doc.prefer), fold=False)
    for rel in (old or {}).get("links", []):  # our links of last time; the user's files stay
        path = folder / rel
        if path.is_symlink() and os.readlink(path).startswith(str(store.root)):
            path.unlink()
    for rel, target in sorted(links.items()):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            os.symlink(target, path)
    (folder / ".hit").mkdir(exist_ok=True)
    roots.point(home.gc_roots, folder / ".hit" / "profile", profile, last=False)
    if python and not (folder / "pyvenv.cfg").exists():
        venv_cmd = [python, "-m", "venv", "--system-site-packages", str(folder)]
        r = subprocess.run(venv_cmd, capture_output=True, text=True)  # minutes on a slow disk
        if r.returncode != 0:
            raise HitError(f"{python} -m venv {folder} failed: {r.stderr.strip()}")
    venv = (folder / "pyvenv.cfg").exists()
    context = {"dir": folder, "venv": venv}
    (folder / "activate").write_text(render("develop/activate.sh.j2", **context))
    for fmt, name in (("lmod", "develop.lua"), ("tcl", "develop.tcl")):
        target = folder / "modulefiles" / fmt / "develop" / ("dev.lua" if fmt == "lmod" else "dev")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(f"develop/{name}.j2", **context))
    state = {"profile": str(profile), "artifacts": artifacts, "links": sorted(links)}
    write_atomic(state_file, json.dumps(state))
    return _changes((old or {}).get("artifacts", {}), artifacts) if old else []


def _changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            out.append(f"removed {name}")
        elif name not in old:
            out.append(f"added {name}")
        elif old[name] != new[name]:
            out.append(
                f"updated {name} ({old[name][: len(name) + 13]} -> {new[name][: len(name) + 13]})"
            )
    return out or ["nothing changed"]
