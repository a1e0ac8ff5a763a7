"""What `hdmod build` publishes under a site root for users to build on, by name, and what a
user is told whose profile extends a stack the site does not offer (any longer).

    ROOT/profiles/<stack>              the stack's profile link (a gc root of the site)
    ROOT/user-config.yaml              defaults for users (HIT_SITE_CONFIG)
    ROOT/stacks/<stack>.yaml           what users extend: it extends the stack's published copy
    ROOT/stacks/.retired.json          stacks removed from site.yaml: name -> the day
    ROOT/recipes/<sha256>/stack.yaml   a published stack: the stack as a profile (packages,
                                       parameters, pinned externals, toolchain) over ...
    ROOT/recipes/<sha256>/files/       ... a frozen copy of the recipes and files it was built
                                       from (publish/publishedstacks.py)
"""

from __future__ import annotations

import json
from pathlib import Path

PROFILES = "profiles"  # ROOT/profiles/<stack>: each stack's profile link
STACKS = "stacks"
RECIPES = "recipes"
USER_CONFIG = "user-config.yaml"
RETIRED = ".retired.json"
PUBLISHED_PROFILE = "stack.yaml"  # inside ROOT/recipes/<sha256>/
PUBLISHED_FILES = "files"


def stack_file(root: Path, name: str) -> Path:
    """ROOT/stacks/<name>.yaml: the file users extend to build on the stack `name`."""
    return root / STACKS / f"{name}.yaml"


def offered_stacks(root: Path) -> list[str]:
    """The stacks the site root offers now (its stack files), sorted."""
    folder = root / STACKS
    try:
        return sorted(f.stem for f in folder.iterdir() if f.suffix == ".yaml" and f.is_file())
    except OSError:
        return []


def retired_stacks(root: Path) -> dict[str, str]:
    """The stacks `hdmod build` retired from the site root: name -> the day (YYYY-MM-DD).
    Never raises: a missing or damaged record reads as none."""
    try:
        doc = json.loads((root / STACKS / RETIRED).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {str(k): str(v) for k, v in doc.items()}


def missing_stack(base_file: Path) -> str | None:
    """Why a profile cannot extend `base_file` when that is a site's stack file that is not
    there (a folder `stacks/` whose parent holds the user-config.yaml hdmod writes): the
    stack was retired, or the site never offered it, and which stacks it offers. None when
    `base_file` is not a site's stack file."""
    folder = base_file.parent
    root = folder.parent
    if folder.name != STACKS or base_file.suffix != ".yaml" or not (root / USER_CONFIG).exists():
        return None
    name = base_file.stem
    offered = offered_stacks(root)
    stacks = ", ".join(offered) if offered else "none"
    day = retired_stacks(root).get(name)
    if day is not None:
        what = (
            f"the site {root} retired the stack {name} on {day} (profiles already built on "
            f"it keep working)"
        )
    else:
        what = f"the site {root} offers no stack {name}"
    hint = f"extend one of them: {root / STACKS}/NAME.yaml" if offered else "ask its admin"
    return f"extends {base_file}: {what}; its stacks now: {stacks} ({hint})"
