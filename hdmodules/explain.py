"""Why two artifacts differ: the inputs of their build specs compared, and a changed
dependency followed down to the input that changed first (the root cause)."""

from __future__ import annotations

import difflib
from collections.abc import Callable

Lookup = Callable[[str], dict | None]  # artifact id -> its build spec, if known


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def changes(a: dict, b: dict) -> list[tuple[str, str, object, object]]:
    """(kind, what, old, new) for each input that differs, dependencies last."""
    out: list[tuple[str, str, object, object]] = []
    for key in ("name", "version", "platform", "build_env"):
        if a.get(key) != b.get(key):
            out.append((key, "", a.get(key), b.get(key)))
    sa, sb = a.get("sources") or [], b.get("sources") or []
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        if x != y:
            out.append(("source", str(i + 1), x and x.get("hash"), y and y.get("hash")))
    if a.get("build") != b.get("build"):
        old, new = (a.get("build") or "").splitlines(), (b.get("build") or "").splitlines()
        diff = difflib.unified_diff(old, new, lineterm="", n=0)
        lines = [d for d in diff if d[:1] in "+-" and d[:3] not in ("---", "+++")]
        out.append(("script", "", "", "; ".join(lines[:4])))
    pa, pb = a.get("parameters") or {}, b.get("parameters") or {}
    for k in sorted(set(pa) | set(pb)):
        if pa.get(k) != pb.get(k):
            out.append(("parameter", k, pa.get(k), pb.get(k)))
    ta, tb = a.get("toolchain") or {}, b.get("toolchain") or {}
    for kind in sorted(set(ta) | set(tb)):
        ea, eb = ta.get(kind) or {}, tb.get(kind) or {}
        for k in sorted(set(ea) | set(eb)):
            if k == "pin":
                pins_a, pins_b = ea.get("pin") or {}, eb.get("pin") or {}
                for p in sorted(set(pins_a) | set(pins_b)):
                    if pins_a.get(p) != pins_b.get(p):
                        out.append(("external", f"{kind} pin {p}", pins_a.get(p), pins_b.get(p)))
            elif ea.get(k) != eb.get(k):
                out.append(("external", f"{kind} {k}", ea.get(k), eb.get(k)))
    da, db = a.get("dependencies") or {}, b.get("dependencies") or {}
    for name in sorted(set(da) | set(db)):
        if da.get(name) != db.get(name):
            out.append(("dependency", name, da.get(name), db.get(name)))
    return out


def explain(a: dict, b: dict, lookup: Lookup, indent: str = "  ", depth: int = 0) -> list[str]:
    """Readable lines: each changed input; a changed dependency is explained in turn."""
    lines = []
    for kind, what, old, new in changes(a, b):
        if kind == "script":
            lines.append(f"{indent}build script changed: {new}")
        elif kind == "dependency":
            if old is None or new is None:
                state = "added" if old is None else "removed"
                lines.append(f"{indent}dependency {what} {state}")
                continue
            lines.append(f"{indent}dependency {what} changed ({_id(old)} -> {_id(new)})")
            sa, sb = lookup(old), lookup(new)
            if sa is not None and sb is not None and depth < 20:
                lines += explain(sa, sb, lookup, indent + "  ", depth + 1)
        else:
            label = f"{kind} {what}".strip()
            lines.append(f"{indent}{label}: {_short(old)} -> {_short(new)}")
    return lines


def _id(artifact_id: str) -> str:
    name, _, h = artifact_id.partition("/")
    return f"{name}/{h[:12]}"


def diff_sets(a: dict[str, str], b: dict[str, str], lookup: Lookup) -> list[str]:
    """Two sets of packages (name -> artifact id): which differ, and why."""
    lines = []
    for name in sorted(set(a) | set(b)):
        if name not in b:
            lines.append(f"- {name} ({_id(a[name])}): only in the first")
        elif name not in a:
            lines.append(f"+ {name} ({_id(b[name])}): only in the second")
        elif a[name] != b[name]:
            lines.append(f"~ {name}: {_id(a[name])} -> {_id(b[name])}")
            sa, sb = lookup(a[name]), lookup(b[name])
            if sa is not None and sb is not None:
                lines += explain(sa, sb, lookup, "    ")
            else:
                lines.append("    (one of them is not in the store: cannot say why)")
    return lines


def nearest(spec: dict, candidates: list[dict]) -> tuple[dict, list] | None:
    """The existing build of the same package whose inputs differ least."""
    scored = [(len(changes(c, spec)), c) for c in candidates if c.get("name") == spec.get("name")]
    if not scored:
        return None
    best = min(scored, key=lambda x: x[0])[1]
    return best, changes(best, spec)
