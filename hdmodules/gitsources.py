"""Git sources: a repository at one commit is an input like any other, keyed by the commit.

Remote repositories are mirrored bare into the source cache (`src/git/<hash of URL>.git`) and
fetched again only when a commit is missing; a local checkout is read in place. A profile may
point a package at a checkout and a branch; the branch is resolved to its commit when the
profile is resolved, so every new commit gives a new artifact and going back is instant.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .errors import HitError
from .runner import query
from .urls import is_url


def _git(*args: str) -> str:
    out = query(["git", *args])
    if out.code != 0:
        raise HitError(f"git {' '.join(args[:4])}: {out.out.strip() or 'failed'}")
    return out.out.strip()


def is_local(repo: str) -> bool:
    return not is_url(repo) and ":" not in repo.split("/")[0]


def resolve_ref(repo: Path, ref: str | None, allow_dirty: bool) -> tuple[str, bool]:
    """(commit, dirty) of a local checkout at `ref` (its HEAD when None). A dirty working
    tree is refused unless `allow_dirty`, when the ref is what is checked out."""
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise HitError(f"{repo} is not a git repository")
    commit = _git("-C", str(repo), "rev-parse", "--verify", f"{ref or 'HEAD'}^{{commit}}")
    head = _git("-C", str(repo), "rev-parse", "HEAD")
    dirty = False
    if commit == head and (repo / ".git").exists():
        dirty = bool(_git("-C", str(repo), "status", "--porcelain", "--untracked-files=no"))
        if dirty and not allow_dirty:
            raise HitError(
                f"{repo} has uncommitted changes; commit them (the commit then enters the "
                f"hash), or build with --dirty to use the working tree, hashed by its content"
            )
    return commit, dirty


def mirror(cache: Path, url: str) -> Path:
    return cache / "git" / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")


def ensure_commit(cache: Path, repo: str, commit: str) -> str:
    """A git dir that has `commit`: the local repository itself, or an up-to-date mirror."""
    if is_local(repo):
        gitdir = repo
    else:
        gitdir = str(mirror(cache, repo))
        if not Path(gitdir).exists():
            Path(gitdir).parent.mkdir(parents=True, exist_ok=True)
            _git("clone", "--bare", "--quiet", repo, gitdir)
    if query(["git", "-C", gitdir, "cat-file", "-e", f"{commit}^{{commit}}"]).code != 0:
        if is_local(repo):
            raise HitError(f"{repo} has no commit {commit}")
        _git("-C", gitdir, "fetch", "--quiet", "origin", "+refs/heads/*:refs/heads/*")
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
        _git("-C", gitdir, "archive", "--format=tar", "-o", str(archive), commit)
        unpack_tar(archive, dest, f"{repo}@{commit[:12]}", strip=False, into=into)


def watched_files(repo: Path, ref: str | None) -> list[str]:
    """What the no-op memo stamps for a checkout: what says where HEAD and the branch are."""
    git = repo / ".git"
    files = [git / "HEAD", git / "index", git / "packed-refs"]
    if ref:
        files.append(git / "refs" / "heads" / ref)
    return [str(f) for f in files if os.path.exists(f)]
