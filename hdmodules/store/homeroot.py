"""Where the user's home is: the one rule, in plain `os` so that the no-op `hit build`
(cli/entry.py) can ask it before anything else is imported."""

from __future__ import annotations

import os


def home_root() -> str:
    """`$HIT_HOME` (`~` expanded, made absolute against the working folder, not otherwise
    normalized), else `~/.hashdist`."""
    env = os.environ.get("HIT_HOME")
    if not env:
        return os.path.join(os.path.expanduser("~"), ".hashdist")
    path = os.path.expanduser(env)
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
