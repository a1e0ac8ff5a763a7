"""Lmod's system spider cache, written into a module tree before it is published (issue 13,
item 11: not yet written; this is where it goes)."""

from __future__ import annotations

from pathlib import Path

from ..spec.site import Site


def write_spider_cache(site: Site, tree: Path) -> None:
    """Write Lmod's spider cache for the Lmod tree under `tree` when the site asks for it."""
    return None
