"""Why two artifacts differ: their build specs compared as documents, and a changed
dependency followed down to the input that changed first (the root cause).

Both sides are build spec documents (`BuildSpec.to_doc()`, or a build.json with its `id`),
walked by one generic diff (`diff_docs`); each difference becomes one readable line:
`parameter greeting: 'Hello' -> 'Hi'`, `source 1: 'tree:…' -> 'tree:…'`,
`external compiler pin cc: … -> …`, `build script changed: -old; +new`,
`dependency libcore changed (libcore/… -> libcore/…)` followed by that dependency's own
lines, indented.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import HitError
from ..spec.artifact import changed, short_id
from ..spec.buildspec import ProfileDoc, from_record, record_id
from ..spec.resolve import Resolved
from ..store.layout import MANIFEST, META, Store, read_spec

Lookup = Callable[[str], dict | None]  # artifact id -> its build spec document, if known
KeyPath = tuple[str | int, ...]  # keys and list indices from the top of a document
Change = tuple[KeyPath, Any, Any]  # (path, old, new); None where one side has nothing

# The order changes are listed in, by top-level key: what the package is, where and how it
# is built, then its inputs; dependencies last, as each one opens an explanation of its own.
ORDER = (
    "name",
    "version",
    "platform",
    "build_env",
    "sources",
    "patches",
    "build",
    "parameters",
    "toolchain",
    "dependencies",
)
IGNORED = {"id"}  # differs whenever anything does: never a cause
# how a path's top-level key reads in a line
WORDS = {
    "sources": "source",
    "patches": "patch",
    "parameters": "parameter",
    "toolchain": "external",
}
MAX_DEPTH = 20  # how far down dependencies are followed


def diff_docs(a: Any, b: Any, path: KeyPath = ()) -> Iterator[Change]:
    """Every leaf where two JSON documents differ, as (path, old, new), keys in sorted order.

    Mappings are walked key by key and lists index by index; a missing key or index, or a
    None facing a mapping or list, counts as empty (so a whole added section shows as its
    leaves). Anything else that differs (scalars, a type change) is one leaf."""
    if a == b:
        return
    pairs = _children(a, b)
    if pairs is None:
        yield path, a, b
        return
    for key, x, y in pairs:
        yield from diff_docs(x, y, (*path, key))


def _children(a: Any, b: Any) -> list[tuple[str | int, Any, Any]] | None:
    """(key or index, a's, b's) below two mappings or two lists (either may be None); None
    below anything else: a leaf."""
    kinds = {_kind(v) for v in (a, b) if v is not None}
    if kinds not in ({dict}, {list}):
        return None
    ea, eb = _entries(a), _entries(b)
    return [(k, ea.get(k), eb.get(k)) for k in sorted(ea.keys() | eb.keys())]


def _kind(value: Any) -> type | None:
    return next((kind for kind in (dict, list) if isinstance(value, kind)), None)


def _entries(value: dict | list | None) -> dict:
    """A mapping as it is, a list by index, None as empty."""
    return dict(enumerate(value)) if isinstance(value, list) else dict(value or {})


def changes(a: dict, b: dict) -> list[Change]:
    """Each input that differs between build spec documents `a` and `b`, in ORDER by top-level
    key (unknown keys after, `id` never), dependencies last."""
    rank = {key: i for i, key in enumerate(ORDER)}
    keys = sorted((set(a) | set(b)) - IGNORED, key=lambda k: (rank.get(k, len(rank)), k))
    return [c for key in keys for c in diff_docs(a.get(key), b.get(key), (key,))]


def _short(value: Any) -> str:
    """A value of a build spec as JSON writes it (`false`, `"text"`, `null`: what `hit show
    buildspec` prints), cut at 70 characters."""
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 70 else text[:67] + "..."


def _label(path: KeyPath) -> str:
    """`parameter greeting`, `source 1` (a source's hash), `source 1 dest`,
    `external compiler pin cc`, `platform libc`."""
    head, *rest = path
    words = [WORDS.get(str(head), str(head))]
    words += [str(p + 1) if isinstance(p, int) else p for p in rest]
    if head in ("sources", "patches") and words[-1] == "hash":
        words.pop()
    return " ".join(words)


def _script_change(old: Any, new: Any) -> str:
    """The first four changed lines of a build script, `-old; +new`."""
    old_lines, new_lines = str(old or "").splitlines(), str(new or "").splitlines()
    diff = difflib.unified_diff(old_lines, new_lines, lineterm="", n=0)
    lines = [d for d in diff if d[:1] in "+-" and d[:3] not in ("---", "+++")]
    return "; ".join(lines[:4])


def _dependency_lines(change: Change, lookup: Lookup, indent: str, depth: int) -> list[str]:
    (_key, name), old, new = change
    if old is None or new is None:
        return [f"{indent}dependency {name} {'added' if old is None else 'removed'}"]
    lines = [f"{indent}dependency {name} changed ({short_id(old)} -> {short_id(new)})"]
    sa, sb = lookup(old), lookup(new)
    if sa is not None and sb is not None and depth < MAX_DEPTH:
        lines += explain(sa, sb, lookup, indent + "  ", depth + 1)
    return lines


def explain(a: dict, b: dict, lookup: Lookup, indent: str = "  ", depth: int = 0) -> list[str]:
    """Readable lines, one per changed input of build spec documents `a` -> `b`; a changed
    dependency whose two specs `lookup` finds is explained in turn, indented (up to
    MAX_DEPTH levels)."""
    lines = []
    for change in changes(a, b):
        path, old, new = change
        if path[0] == "build":
            lines.append(f"{indent}build script changed: {_script_change(old, new)}")
        elif path[0] == "dependencies" and len(path) == 2:
            lines += _dependency_lines(change, lookup, indent, depth)
        else:
            lines.append(f"{indent}{_label(path)}: {_short(old)} -> {_short(new)}")
    return lines


SET_LINES = {  # how diff_sets shows each kind of change (spec.artifact.changed)
    "removed": "- {name} ({was}): only in the first",
    "added": "+ {name} ({now}): only in the second",
    "updated": "~ {name}: {was} -> {now}",
}


def diff_sets(a: dict[str, str], b: dict[str, str], lookup: Lookup) -> list[str]:
    """Two sets of packages (name -> artifact id): which differ, and why."""
    lines = []
    for kind, name, was, now in changed(a, b):
        ids = {"was": short_id(was) if was else "", "now": short_id(now) if now else ""}
        lines.append(SET_LINES[kind].format(name=name, **ids))
        if kind != "updated":
            continue
        sa, sb = lookup(was), lookup(now)
        if sa is not None and sb is not None:
            lines += explain(sa, sb, lookup, "    ")
        else:
            lines.append("    (one of them is not in the store: cannot say why)")
    return lines


def nearest(spec: dict, candidates: list[dict]) -> dict | None:
    """Of the build spec documents `candidates`, the one of the same package whose inputs
    differ least from `spec` (the first of equals); None if none is of that package."""
    same = [c for c in candidates if c.get("name") == spec.get("name")]
    return min(same, key=lambda c: len(changes(c, spec)), default=None)


def why_build(resolved: Resolved, store: Store) -> list[str]:
    """For each artifact of `resolved` that `store` (or an upstream) lacks: the nearest built
    build of the same package and the inputs it differs in (what `hit build --explain`
    prints), or that the package was never built here."""
    known = specs_of(resolved)
    lookup = lookup_in(store, known)
    lines = []
    for node in resolved.nodes.values():
        if store.is_installed(node.ref):
            continue
        best = nearest(known[node.ref.id], built_specs(store, node.name))
        if best is None:
            lines.append(f"{node.ref.short}: {node.name} was never built here")
            continue
        lines.append(
            f"{node.ref.short}: nearest built is {short_id(record_id(best))}, which differs in:"
        )
        lines += explain(best, known[node.ref.id], lookup, "    ")
    return lines


def specs_of(resolved: Resolved) -> dict[str, dict]:
    """artifact id -> build spec document (with its id, as build.json has it) of every node."""
    return {n.ref.id: n.spec.record(n.ref.id) for n in resolved.nodes.values()}


def lookup_in(store: Store, known: dict[str, dict]) -> Lookup:
    """A Lookup over the documents in `known` first, then the build.json of artifacts
    installed in `store` or its upstreams (None for an id found in neither)."""

    def lookup(artifact_id: str) -> dict | None:
        if artifact_id in known:
            return known[artifact_id]
        prefix = store.find(artifact_id)
        return read_spec(prefix) if prefix else None

    return lookup


def built_specs(store: Store, name: str) -> list[dict]:
    """The build.json documents of every installed build of package `name`, in this store
    and its upstreams (the candidates `nearest` picks from)."""
    out = []
    for s in (store, *store.upstreams):
        folder = s.root / name
        if folder.is_dir():
            out += [read_spec(p) for p in sorted(folder.iterdir()) if _installed(p)]
    return out


def _installed(prefix: Path) -> bool:
    return (prefix / META / MANIFEST).exists()


def package_set(thing: Resolved | str, store: Store) -> tuple[dict[str, str], dict]:
    """What `hit diff` compares: name -> artifact id of a resolved profile, of a profile
    link (or a profile in the store), or of one artifact (by id or path); plus the build
    specs a resolution produced (by id, for `lookup_in`). Raises HitError for anything else."""
    if isinstance(thing, Resolved):
        return {n.name: n.ref.id for n in thing.nodes.values()}, specs_of(thing)
    path = Path(thing)
    prefix = Path(os.path.realpath(path)) if path.exists() else store.find(thing)
    if prefix is None:
        raise HitError(f"{thing}: not a profile YAML, a profile link or an artifact id")
    record = read_spec(prefix)
    if not record:
        raise HitError(f"{thing}: {prefix} is not an artifact of the store")
    value = from_record(record)
    if isinstance(value, ProfileDoc):
        return dict(value.artifacts), {}
    return {value.name: record_id(record)}, {}
