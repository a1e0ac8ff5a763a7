"""The text of `hit status`: for each artifact of a resolved profile, built or needs build,
with its short id. Rendered by publish/status.py when it resolves, and by build/memo.py for
the memo of a successful build (which answers `hit status` while nothing changed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def status_text(resolved: Any, installed: Callable[[Any], bool]) -> str:
    """The status of `resolved` (spec.resolve.Resolved): a line per artifact in build order
    (name, version, short id, `built` or `needs build`, `(dependency)` for one the profile
    does not list), then the profile's; `installed(ref)` says whether an artifact is built.
    One string: thousands of lines are written at once."""
    nodes = resolved.nodes.values()
    width = max([len(n) for n in resolved.nodes] + [7])
    wide = max([len(n.recipe.version) for n in nodes] + [10])  # each column as wide as its
    ids = max([len(n.ref.short) for n in nodes] + [len(resolved.profile_ref.short)])  # longest
    lines = []
    for node in nodes:
        state = "built" if installed(node.ref) else "needs build"
        extra = "" if node.name in resolved.packages else "  (dependency)"
        lines.append(
            f"{node.name:<{width}}  {node.recipe.version:<{wide}}  {node.ref.short:<{ids}}  "
            f"{state}{extra}"
        )
    pstate = "built" if installed(resolved.profile_ref) else "needs build"
    short = resolved.profile_ref.short
    lines.append(f"{'profile':<{width}}  {'':<{wide}}  {short:<{ids}}  {pstate}")
    return "\n".join(lines)
