"""Git references resolved when a profile is resolved: a local checkout's branch (or HEAD)
becomes the commit that enters the build spec. Fetching and exporting trees is the build's
(build/gitsources.py)."""

from __future__ import annotations

import re
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


def resolve_ref(
    repo: Path, branch: str | None, commit: str | None, allow_dirty: bool
) -> tuple[str, bool]:
    """(commit id, dirty) of a local checkout at `branch` (a branch: `refs/heads/BRANCH`,
    never a tag or commit of that name, as `git checkout BRANCH` takes a branch first), at
    `commit` (anything git resolves to a commit: an id, a tag), or at its HEAD when neither
    is given. A dirty working tree is refused unless `allow_dirty`, when the commit is what
    is checked out. Raises HitError in one line (no branch of that name; git's fatal line)."""
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise HitError(f"{repo} is not a git repository")
    if branch is not None:
        out = query(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                     f"refs/heads/{branch}^{{commit}}"])  # fmt: skip
        if out.code != 0:
            raise HitError(f"{repo} has no branch {branch!r}{_not_a_branch(repo, branch)}")
        found = _commit_id(out.out)
    else:
        found = _by_id(repo, commit) if commit else None
        if found is None:  # a tag, HEAD, or no commit's id starts so
            found = _commit_id(
                git("-C", str(repo), "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}")
            )
    head = _commit_id(git("-C", str(repo), "rev-parse", "HEAD"))
    dirty = False
    if found == head and (repo / ".git").exists():
        dirty = bool(git("-C", str(repo), "status", "--porcelain", "--untracked-files=no"))
        if dirty and not allow_dirty:
            raise HitError(
                f"{repo} has uncommitted changes; commit them (the commit then enters the "
                f"hash), or build with --dirty to use the working tree, hashed by its content"
            )
    return found, dirty


def _by_id(repo: Path, given: str) -> str | None:
    """The commit whose id starts with `given` (4 to 64 hex digits, any case), as `commit:`
    means it: git rev-parse prefers a branch or tag of that name (`5ce02b6` a branch too)
    and only warns. None when `given` is no hex or no commit's id starts so; HitError when
    several do."""
    if not re.fullmatch("[0-9a-fA-F]{4,64}", given):
        return None
    out = query(["git", "-C", str(repo), "rev-parse", f"--disambiguate={given.lower()}"])
    ids = [i for i in out.out.split() if _HEX.fullmatch(i)] if out.code == 0 else []
    commits = [i for i in ids if git("-C", str(repo), "cat-file", "-t", i) == "commit"]
    if len(commits) > 1:
        raise HitError(f"commit {given!r} is ambiguous in {repo}: give more of its digits")
    return commits[0] if commits else None


def _not_a_branch(repo: Path, name: str) -> str:
    """The hint for a `branch:` that names no branch of `repo`: its name alone for one
    spelled as a ref (`refs/heads/main`), `commit:` for what git resolves to a commit
    otherwise (a tag, a remote branch, an id), else nothing."""
    if name.startswith(("refs/heads/", "heads/")):
        alone = name.removeprefix("refs/").removeprefix("heads/")
        return f"; give the branch's name alone ({alone!r})"
    out = query(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"])
    if out.code != 0:
        return ""
    return (
        "; it names another ref or a commit (a tag, a remote branch, an id): give it as `commit:`"
    )


def _commit_id(said: str) -> str:
    """The commit id in what `git rev-parse` said (stderr and stdout together: a warning
    such as `refname 'x' is ambiguous` may come with it): the one line of 40 (SHA-1) or 64
    (SHA-256) hex digits. Raises HitError when there is none."""
    found = [line for line in said.split() if len(line) in (40, 64) and _HEX.fullmatch(line)]
    if len(found) != 1:
        raise HitError(f"git rev-parse gave no commit id: {said.strip()[:200]!r}")
    return found[0]


_HEX = re.compile("[0-9a-f]+")


def watched_files(repo: Path, ref: str | None) -> list[str]:
    """What says where a checkout's HEAD and branch `ref` are, present or not (a branch's
    file appears when it leaves packed-refs): what the no-op memo stamps for it, and what
    resolving stamps before git reads it (spec/resolve.py)."""
    git = repo / ".git"
    files = [git / "HEAD", git / "index", git / "packed-refs"]
    if ref:
        files.append(git / "refs" / "heads" / ref)
    return [str(f) for f in files]
