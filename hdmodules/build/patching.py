"""Applying a recipe's patches to its unpacked sources: GNU patch, the one way it is done.

Why GNU `patch` and not `git apply`: it is what Debian (dpkg-source), Spack, EasyBuild and Nix
apply upstream patches with, so patches taken from them apply as they do there; it is part of
every build host (Debian's build-essential pulls it in through dpkg-dev), while git is needed
only for git sources; and `git apply` run inside any git checkout (a home kept in a project's
repository) resolves the patch's paths against that checkout's top and silently skips what
lies outside the current folder.

How it is run, the same for every patch: `--batch` (never a question), `--forward` (a patch
that looks reversed or already applied fails instead of being reversed), `--unified` (only
unified diffs, as `diff -u`, `git diff` and `git format-patch` write: never an ed script,
which `patch` would run through `ed`), `--fuzz=0` (every context line must match; a hunk may
only move, as dpkg-source does it), no backup files, in a clean environment (`LC_ALL=C`, the
host's PATH). GNU patch itself refuses file names that are absolute or hold `..`, and never
writes through a symlink. Each patch is tried with `--dry-run` first, so one that does not
apply leaves the tree as it was; its rejected hunks are then collected by applying it to
/dev/null, kept beside the sources and shown in the error.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from ..errors import HitError
from ..runner import query
from ..spec.recipes import Patch
from .buildjob import HOST_PATH
from .sources import cache_file

FLAGS = ("--batch", "--forward", "--unified", "--fuzz=0", "--no-backup-if-mismatch")
ENV = {"PATH": HOST_PATH, "LC_ALL": "C"}
TIMEOUT = 600  # seconds one patch may take
SHOWN_LINES = 40  # of patch's output and of the rejected hunks, each, in the error


@cache
def patch_tool() -> str:
    """The host's GNU patch (found on the builds' PATH, /usr/bin:/bin). Raises HitError when
    there is none, or it is not GNU patch."""
    tool = shutil.which("patch", path=HOST_PATH)
    if tool is None:
        raise HitError(
            f"a recipe has patches, but there is no `patch` in {HOST_PATH} "
            f"(install GNU patch: `apt-get install patch`); nothing was built"
        )
    version = query([tool, "--version"], env=ENV)
    if "GNU patch" not in version.out:
        first = version.out.strip().splitlines()[:1]
        raise HitError(f"{tool} is not GNU patch ({' '.join(first) or 'no version'})")
    return tool


def patch_file(patch: Patch, source_cache: Path) -> Path:
    """The file of `patch`: beside its recipe, or (a fetched one) in the source cache."""
    if patch.path is not None:
        return patch.path
    assert patch.sha256 is not None
    return cache_file(source_cache, patch.sha256)


def apply_patches(patches: tuple[Patch, ...], source_cache: Path, src: Path, keep: Path) -> None:
    """Apply `patches`, in order, to the source tree `src` (fetched ones must be in
    `source_cache`). A patch that does not apply raises HitError naming it, with patch's
    report and the rejected hunks (also written to `keep/<name>.rej`); `src` is then as the
    earlier patches left it."""
    for number, patch in enumerate(patches, 1):
        _apply(patch, number, len(patches), patch_file(patch, source_cache), src, keep)


def _apply(patch: Patch, number: int, total: int, file: Path, src: Path, keep: Path) -> None:
    cmd = [patch_tool(), *FLAGS, f"--strip={patch.strip}", f"--directory={src}", f"--input={file}"]
    trial = query([*cmd, "--dry-run"], env=ENV, timeout=TIMEOUT)
    if trial.code == 0:
        done = query(cmd, env=ENV, timeout=TIMEOUT)
        if done.code == 0:
            return
        trial = done  # it checked fine but did not apply: say what patch said
    rejects = keep / f"{Path(patch.label).name or 'patch'}.rej"
    rejects.unlink(missing_ok=True)
    query([*cmd, "--output=/dev/null", f"--reject-file={rejects}"], env=ENV, timeout=TIMEOUT)
    raise HitError(_failure(patch, number, total, trial.out, rejects, src))


def _shown(text: str, more: str) -> list[str]:
    lines = text.rstrip("\n").splitlines()
    shown = ["    " + line for line in lines[:SHOWN_LINES]]
    if len(lines) > SHOWN_LINES:
        shown.append(f"    ... ({len(lines) - SHOWN_LINES} more lines{more})")
    return shown


def _failure(patch: Patch, number: int, total: int, report: str, rejects: Path, src: Path) -> str:
    """The error of a patch that does not apply: which one, patch's own report, the hunks."""
    which = f"patch {number} of {total}" if total > 1 else "patch"
    lines = [f"{which} {patch.label} (strip {patch.strip}) does not apply to the sources:"]
    lines += _shown(report, "")
    try:
        rejected = rejects.read_text(errors="replace")
    except OSError:
        rejected = ""
    if rejected.strip():
        lines.append(f"  rejected hunks (kept in {rejects}):")
        lines += _shown(rejected, f" in {rejects}")
    lines.append(
        f"  nothing was installed; the sources as unpacked (earlier patches applied) are in "
        f"{src}: refresh the patch against them (`patch -p{patch.strip}` applies it there)"
    )
    return "\n".join(lines)
