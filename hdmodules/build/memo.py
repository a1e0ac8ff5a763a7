"""The no-op fast path of `hit build`: remember what a profile resolved to, and from what.

Running `hit build` on an unchanged profile is the common case and should cost little more
than starting Python. After each successful build the memo records every input by
(mtime_ns, size, inode): the profile YAMLs, the home config, every recipe file, the listing of
every package dir (a recipe added earlier in the search order shadows a later one), every file
and folder of path sources, every patch file beside a recipe, every file that can be a build
system's phase template (each package dir's `build_systems/<system>.sh.j2`, present or not, and
the built-in one), and this package's own resolver code. When every stamp still matches, the
artifact ids are taken from the memo without reading YAML or hashing sources.
Externals are inputs too: every command and every file a pin names (a compiler replaced by
a package upgrade or an alternatives switch) is stamped, so the fast path never hides drift.
Any difference, or anything missing from the store, falls back to a full resolution.

Like make, this trusts stat: a file rewritten with the same size within one mtime tick would
be missed (ext4 and xfs stamps are in nanoseconds, so that takes deliberate effort).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import __version__
from ..atomic import write_atomic
from ..names import profile_link
from ..spec.artifact import ArtifactRef
from ..store.layout import Store
from ..store.roots import entry_for

# the code whose change can change what resolving gives (below the package folder): the
# no-op path trusts the memo only while none of it changed (a checkout being edited)
OWN_CODE = ("spec/*.py", "hashing.py", "names.py", "urls.py", "build/memo.py")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _memo_file(home_root: Path, profile: Path) -> Path:
    key = hashlib.sha256(str(profile).encode()).hexdigest()[:20]
    return home_root / ".cache" / f"build-{key}.json"


def _tree(root: Path, out: dict[str, list[int] | None]) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        out[dirpath] = _stamp(dirpath)
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            if name in filenames or os.path.islink(path):
                out[path] = _stamp(path)


# Complexity (radon C): a list of every input the no-op path must stamp, each kind of input
# (YAML, recipes, package dirs, externals' files, path and git sources) one short branch.
def _inputs(resolved, home) -> dict[str, list[int] | None]:
    """Every input of `resolved` (spec.resolve.Resolved) built in `home` (a Home): path ->
    its stamp (None: absent). Also what the site's memo (publish/sitememo.py) stamps."""
    from ..spec.buildsystems import template_files  # not on the no-op path: it loads PyYAML

    profile = resolved.profile
    config = home.root / "config.yaml"
    inputs: dict[str, list[int] | None] = {str(config): _stamp(str(config))}
    here = Path(__file__).parent.parent  # the package folder
    own = sorted(f for pattern in OWN_CODE for f in here.glob(pattern))
    inputs.update({str(f): _stamp(str(f)) for f in own})
    inputs.update({str(f): _stamp(str(f)) for f in profile.files})
    inputs.update({str(d): _stamp(str(d)) for d in profile.package_dirs})
    for node in resolved.nodes.values():
        for ext in node.toolchain.values():
            files = [
                *ext.commands.values(),
                *(v.rsplit("@", 1)[0] for v in (ext.pin or {}).values()),
            ]
            inputs.update({f: _stamp(f) for f in files if f.startswith("/")})
        inputs[str(node.recipe.file)] = _stamp(str(node.recipe.file))
        templates = template_files(node.recipe.build_system, tuple(profile.package_dirs))
        inputs.update({str(f): _stamp(str(f)) for f in templates})
        for source in node.recipe.sources:
            if source.git is not None and os.path.isdir(source.git):  # a checkout: its refs
                from .gitsources import watched_files

                _tree(Path(source.git), inputs)
                inputs.update({f: _stamp(f) for f in watched_files(Path(source.git), source.ref)})
            if source.path is not None:
                inputs[str(source.path)] = _stamp(str(source.path))
                if source.path.is_dir():
                    _tree(source.path, inputs)
        for patch in node.recipe.patches:  # a patch beside the recipe is hashed by content
            if patch.path is not None:
                inputs[str(patch.path)] = _stamp(str(patch.path))
    return inputs


def save(home, resolved) -> None:
    """Record a successful build of `resolved` (spec.resolve.Resolved) in `home` (a Home)."""
    from ..store.home import open_store

    inputs = _inputs(resolved, home)
    doc = {
        "version": __version__,
        "store": str(home.store),
        "upstreams": [str(u.root) for u in open_store(home).upstreams],
        "gc_roots": str(home.gc_roots),
        "inputs": inputs,
        "nodes": [[n.name, n.ref.version, n.ref.hash] for n in resolved.nodes.values()],
        "profile": resolved.profile_ref.hash,
    }
    target = _memo_file(home.root, resolved.profile.file)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, json.dumps(doc))
    except OSError:
        pass  # only a cache: a later build simply resolves in full


def load(home_root: Path, profile: Path) -> dict | None:
    """The memo of `profile` if every input is unchanged, else None."""
    try:
        doc = json.loads(_memo_file(home_root, profile).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != __version__:
        return None
    inputs = doc.get("inputs")
    if not isinstance(inputs, dict) or str(profile) not in inputs:
        return None
    for path, stamp in inputs.items():
        if _stamp(path) != stamp:
            return None
    return doc


def up_to_date(home_root: Path, profile: Path) -> tuple[list[ArtifactRef], Path] | None:
    """The artifacts of an unchanged profile whose build is complete and whose link and gc root
    are in place; None means "resolve and build in full"."""
    doc = load(home_root, profile)
    if doc is None:
        return None
    try:
        store = Store(Path(doc["store"]), tuple(Store(Path(u)) for u in doc.get("upstreams", [])))
        refs = [ArtifactRef(name, version, h) for name, version, h in doc["nodes"]]
        profile_ref = ArtifactRef("profile", "", doc["profile"])
        link = profile_link(profile)
        if os.readlink(link) != str(store.prefix(profile_ref)):
            return None
        if os.readlink(entry_for(Path(doc["gc_roots"]), link)) != str(link):
            return None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    if not all(store.is_installed(r) for r in [*refs, profile_ref]):
        return None
    return refs, store.prefix(profile_ref)
