"""What the `hit` commands share: the home, the store chain, resolving a profile."""

from __future__ import annotations

from pathlib import Path

import click

PROFILE_HELP = "profile YAML (default: default.yaml in this folder)"


def _resolve(profile: str, repin: bool = False, dirty: bool = False):
    from ..spec.resolve import resolve_file

    resolved = resolve_file(Path(profile), repin=repin, dirty=dirty)
    for note in resolved.notes:
        click.echo(note, err=True)
    return resolved


def _home(write: bool = True):
    """The home; commands that write refuse up front if they may not."""
    from ..store.home import load_home, require_writable

    home = load_home()
    if write:
        require_writable(home)
    return home


def open_store(home):
    """The home's store chained to its upstreams (store.home.open_store)."""
    from ..store.home import open_store as chain

    return chain(home)


def _store_paths(write: bool = True):
    home = _home(write)
    return home, open_store(home)
