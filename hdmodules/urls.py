"""Telling a URL from a path: the one test every loader and the fetcher share."""

from __future__ import annotations

import os
from pathlib import Path


def is_url(text: str) -> bool:
    """True for `scheme://...` (https, file, ssh, git ...); anything else is a path."""
    return "://" in text


def git_location(repo: str, base: Path) -> str:
    """A git repository as a YAML file names it: a URL or absolute path as given, a relative
    path made absolute against the YAML file's folder `base`."""
    if is_url(repo) or repo.startswith("/"):
        return repo
    return os.path.abspath(base / repo)
