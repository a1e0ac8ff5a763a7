"""`hit status`: answered from the no-op memo (build/memo.py, which keeps the text
build/status.py rendered for the last successful build) when nothing changed, else by
resolving the profile and looking in the store."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def profile_status(
    profile: str, home: Any, resolve: Callable[[str], Any]
) -> tuple[str, str | None]:
    """`hit status` of the profile YAML `profile` in `home` (store.home.Home): the status
    text (a line per artifact) and a note for stderr, or None. From the memo when the
    profile is up to date (issue 18: a 5,000-package profile over a site store took about a
    second to resolve), else `resolve(profile)` and a look in the home's store chain for each
    artifact, the note saying where the link points when that is not this profile
    (`link_note`). Raises what `resolve` raises (HitError)."""
    from ..build import memo
    from ..store.homeroot import home_root

    known = memo.status(home_root(), os.path.abspath(profile))  # as the no-op `hit build`
    if known is not None:  # (the memo holds only while the link points at this profile)
        return known, None
    from ..build.status import status_text
    from ..store.home import open_store

    resolved = resolve(profile)  # no link is made: any file name does (`common.inc`)
    store = open_store(home)
    return status_text(resolved, store.is_installed), link_note(resolved, store)


def link_note(resolved: Any, store: Any) -> str | None:
    """What a user should know of the link of `resolved` (spec.resolve.Resolved) that the
    status does not say: that it points at another profile than the one its YAML gives
    (after `hit rollback`, or an edit not built yet; as `nix-env --list-generations` marks
    the generation in use), or that it is no symlink (`hit build` refuses to replace it).
    None when it leads to this profile (compared where each leads: `../bld/profile/x` is
    `/home/bld/profile/x`), is missing, or the file has no link (`common.inc`)."""
    from ..errors import HitError

    try:
        link = resolved.profile.link_path
    except HitError:
        return None
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError:  # there, and no symlink
        return f"{link} is not a symlink: `hit build` cannot link the profile there; move it away"
    prefix = store.prefix(resolved.profile_ref)
    if os.path.realpath(link) == os.path.realpath(prefix):
        return None
    return (
        f"{link} points at {target}, not at the profile of this YAML: `hit build` builds "
        "what it lacks and points the link at it"
    )
