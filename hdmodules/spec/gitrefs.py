"""Git references resolved when a profile is resolved: a local checkout's branch (or HEAD)
becomes the commit that enters the build spec. Fetching and exporting trees is the build's
(build/gitsources.py)."""

from __future__ import annotations

from pathlib import Path

from ..errors import HitError
from ..runner import query
from ..urls import is_remote_git


def git(*args: str) -> str:
    """The output of `git ARGS...` (stripped); HitError with git's message if it fails (its
    `fatal:` line, else its last: git may print usage or hints around it)."""
    out = query(["git", *args])
    if out.code != 0:
        lines = out.out.strip().splitlines() or ["failed"]
        said = next((line for line in lines if line.startswith("fatal:")), lines[-1])
        raise HitError(f"git {' '.join(args[:4])}: {said}")
    return out.out.strip()


def is_local(repo: str) -> bool:
    """A repository read in place (a checkout or bare repository on this machine)."""
    return not is_remote_git(repo)


def resolve_ref(repo: Path, ref: str | None, allow_dirty: bool) -> tuple[str, bool]:
    """(commit, dirty) of a local checkout at `ref` (its HEAD when None). A dirty working
    tree is refused unless `allow_dirty`, when the ref is what is checked out."""
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise HitError(f"{repo} is not a git repository")
    commit = git("-C", str(repo), "rev-parse", "--verify", f"{ref or 'HEAD'}^{{commit}}")
    head = git("-C", str(repo), "rev-parse", "HEAD")
    dirty = False
    if commit == head and (repo / ".git").exists():
        dirty = bool(git("-C", str(repo), "status", "--porcelain", "--untracked-files=no"))
        if dirty and not allow_dirty:
            raise HitError(
                f"{repo} has uncommitted changes; commit them (the commit then enters the "
                f"hash), or build with --dirty to use the working tree, hashed by its content"
            )
    return commit, dirty


def watched_files(repo: Path, ref: str | None) -> list[str]:
    """What says where a checkout's HEAD and branch `ref` are, present or not (a branch's
    file appears when it leaves packed-refs): what the no-op memo stamps for it, and what
    resolving stamps before git reads it (spec/resolve.py)."""
    git = repo / ".git"
    files = [git / "HEAD", git / "index", git / "packed-refs"]
    if ref:
        files.append(git / "refs" / "heads" / ref)
    return [str(f) for f in files]
