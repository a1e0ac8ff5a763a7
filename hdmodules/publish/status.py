"""`hit status`: answered from the no-op memo (build/memo.py, which keeps the text
build/status.py rendered for the last successful build) when nothing changed, else by
resolving the profile and looking in the store."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


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
    from ..build.status import status_text
    from ..store.home import open_store

    resolved = resolve(profile)  # no link is made: any file name does (`common.inc`)
    store = open_store(home)
    text = status_text(resolved, store.is_installed)
    elsewhere = _link_elsewhere(resolved, store)
    return text if elsewhere is None else f"{text}\n{elsewhere}"


def _link_elsewhere(resolved: Any, store: Any) -> str | None:
    """A line saying where the profile's link points when that is another profile than the
    one its YAML describes (after `hit rollback`, or a build of another text), as `nix-env
    --list-generations` marks the current one: the status lists what the YAML gives, not
    what the link serves. None when the link points at this profile, is missing, or the
    file has no link (`common.inc`)."""
    from ..errors import HitError, escaped

    try:
        link = resolved.profile.link_path
    except HitError:
        return None
    try:
        target = os.readlink(link)
    except OSError:
        return None
    if target == str(store.prefix(resolved.profile_ref)):
        return None
    return escaped(
        f"{link} points at {target}, not at this profile (a rollback, or a build of another "
        "text): `hit build` points it here"
    )
