"""The one way to switch a link (a new symlink renamed over the old, atomic.replace_link)
with errors a user can act on. Where a profile's link goes is a naming rule (names.py)."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import replace_link
from ..errors import HitError


def set_link(link: Path, target: Path) -> bool:
    """Point `link` at `target` atomically (a new symlink renamed over the old one), making
    its folder if needed. Returns False when it already pointed there. Raises HitError when
    `link` is something else than a symlink, or cannot be written."""
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return False
    elif link.exists():
        raise HitError(f"{link} exists and is not a symlink; move it away first")
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        replace_link(link, target)
    except OSError as e:  # the link's path, not the target's, is what could not be made
        raise HitError(f"cannot write the link {link}: {e.strerror or e}") from None
    return True
