"""Git sources: a repository at one commit is an input like any other, keyed by the commit.

Remote repositories are mirrored bare into the source cache (`src/git/<hash of URL>.git`) and
fetched again only when a commit is missing; a local checkout is read in place. A profile may
point a package at a checkout and a branch; the branch is resolved to its commit when the
profile is resolved, so every new commit gives a new artifact and going back is instant.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from ..errors import HitError
from ..runner import query
from ..spec.gitrefs import git, is_local


def mirror(cache: Path, url: str) -> Path:
    """The bare mirror of the remote repository `url` in the source cache (`git/<hash>.git`)."""
    return cache / "git" / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")


def ensure_commit(cache: Path, repo: str, commit: str) -> str:
    """A git dir that has `commit`: the local repository itself, or an up-to-date mirror."""
    if is_local(repo):
        gitdir = repo
    else:
        gitdir = str(mirror(cache, repo))
        if not Path(gitdir).exists():
            Path(gitdir).parent.mkdir(parents=True, exist_ok=True)
            git("clone", "--bare", "--quiet", "--", repo, gitdir)
    if query(["git", "-C", gitdir, "cat-file", "-e", f"{commit}^{{commit}}"]).code != 0:
        if is_local(repo):
            raise HitError(f"{repo} has no commit {commit}")
        git("-C", gitdir, "fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*")
        if query(["git", "-C", gitdir, "cat-file", "-e", f"{commit}^{{commit}}"]).code != 0:
            raise HitError(f"{repo} has no commit {commit} (fetched it again)")
    return gitdir


def export(cache: Path, repo: str, commit: str, dest: Path, into: str = ".") -> None:
    """The tree of `commit` into `dest`/`into`, through the same checked unpacking as
    tarballs (`git archive`, nothing stripped): symlinks that leave the build folder and paths
    through a symlink already there are refused. Raises HitError."""
    from .unpack import unpack_tar

    gitdir = ensure_commit(cache, repo, commit)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp, "tree.tar")
        git("-C", gitdir, "archive", "--format=tar", "-o", str(archive), commit)
        unpack_tar(archive, dest, f"{repo}@{commit[:12]}", strip=False, into=into)
