"""Telling a URL from a path: the one test every loader and the fetcher share."""

from __future__ import annotations

import os
from pathlib import Path


def is_url(text: str) -> bool:
    """True for `scheme://...` (https, file, ssh, git ...); anything else is a path."""
    return "://" in text


def is_remote_git(repo: str) -> bool:
    """A git repository elsewhere: a URL, or git's scp-like `host:path` (`git@host:org/x.git`:
    a colon before the first slash, as git itself reads it); anything else is a local path."""
    return is_url(repo) or ":" in repo.split("/")[0]


def git_url_problem(repo: str) -> str | None:
    """Why `repo` cannot name a git repository, or None: one starting with `-` would be read
    by git as an option (`-u...` as `--upload-pack`: a command), one with a control
    character or whitespace at its ends is a copying mistake (and a line break would split a
    message)."""
    if not repo:
        return "is empty"
    if repo.startswith("-"):
        return "starts with -, which git would read as an option"
    if not repo.isprintable() or repo != repo.strip():
        return "holds a control character, or whitespace at an end"
    return None


def git_location(repo: str, base: Path) -> str:
    """A git repository as a YAML file names it: a remote one (is_remote_git) or an absolute
    path as given, a relative path made absolute against the YAML file's folder `base`."""
    if is_remote_git(repo) or repo.startswith("/"):
        return repo
    return os.path.abspath(base / repo)
