"""What `hdmod build` publishes under a site root for users to build on, by name.

    ROOT/user-config.yaml              defaults for users (HIT_SITE_CONFIG)
    ROOT/stacks/<stack>.yaml           what users extend: it extends the stack's published copy
    ROOT/recipes/<sha256>/stack.yaml   a published stack: the stack as a profile (packages,
                                       parameters, pinned externals, toolchain) over ...
    ROOT/recipes/<sha256>/files/       ... a frozen copy of what the stack was built from
Names only: publish/publishedstacks.py writes them.
"""

from __future__ import annotations

from pathlib import Path

STACKS = "stacks"
RECIPES = "recipes"
USER_CONFIG = "user-config.yaml"
PUBLISHED_PROFILE = "stack.yaml"  # inside ROOT/recipes/<sha256>/
PUBLISHED_FILES = "files"


def stack_file(root: Path, name: str) -> Path:
    """ROOT/stacks/<name>.yaml: the file users extend to build on the stack `name`."""
    return root / STACKS / f"{name}.yaml"
