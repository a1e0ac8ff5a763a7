"""Where the user's home is: the one rule, in plain `os` so that the no-op `hit build`
(cli/entry.py) can ask it before anything else is imported."""

from __future__ import annotations

import os


def home_root() -> str:
    """`$HIT_HOME` (`~` expanded, made absolute against the working folder), else
    `~/.hashdist`. A path with a `..` part is the folder the kernel reaches (realpath):
    the store's path is written into every artifact's RUNPATH, and `HIT_HOME=../h` kept
    the working folder in it (`/p/d/../../h/bld/...`), so moving that folder broke every
    program built there. Any other path is kept as it is spelt (a home reached through a
    symlink keeps the symlink's name)."""
    env = os.environ.get("HIT_HOME")
    if not env:
        return os.path.join(os.path.expanduser("~"), ".hashdist")
    path = os.path.expanduser(env)
    path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    return os.path.realpath(path) if ".." in path.split("/") else path
