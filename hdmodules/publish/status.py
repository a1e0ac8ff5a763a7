"""`hit status`: for each artifact of a profile, built or needs build, with its short id;
answered from the no-op memo (build/memo.py, which keeps this text from the last successful
build) when nothing changed, else by resolving the profile and looking in the store."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def status_text(resolved: Any, installed: Callable[[Any], bool]) -> str:
    """The status of `resolved` (spec.resolve.Resolved): a line per artifact in build order
    (name, version, short id, `built` or `needs build`, `(dependency)` for one the profile
    does not list), then the profile's; `installed(ref)` says whether an artifact is built.
    One string: thousands of lines are written at once."""
    width = max([len(n) for n in resolved.nodes] + [7])
    lines = []
    for node in resolved.nodes.values():
        state = "built" if installed(node.ref) else "needs build"
        extra = "" if node.name in resolved.packages else "  (dependency)"
        lines.append(
            f"{node.name:<{width}}  {node.recipe.version:<10}  {node.ref.short}  {state}{extra}"
        )
    pstate = "built" if installed(resolved.profile_ref) else "needs build"
    lines.append(f"{'profile':<{width}}  {'':<10}  {resolved.profile_ref.short}  {pstate}")
    return "\n".join(lines)


def profile_status(profile: str, home: Any, resolve: Callable[[str], Any]) -> str:
    """`hit status` of the profile YAML `profile` in `home` (store.home.Home): from the memo
    when the profile is up to date (issue 18: a 5,000-package profile over a site store took
    about a second to resolve), else `resolve(profile)` and a look in the home's store chain
    for each artifact. Raises what `resolve` raises (HitError)."""
    from ..build import memo
    from ..store.homeroot import home_root

    known = memo.status(home_root(), os.path.abspath(profile))  # as the no-op `hit build`
    if known is not None:
        return known
    from ..store.home import open_store

    resolved = resolve(profile)
    return status_text(resolved, open_store(home).is_installed)
