"""What `hit create URL_OR_FILE` does: fetch the archive into the source cache (as `hit
fetch` does), make a starting recipe of it (spec.create) and write it, checked by the
recipe loader first, so that what it writes always loads."""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath

from ..atomic import write_atomic
from ..build.sources import cache_file, fetch_any
from ..errors import ConfigError, HitError
from ..spec.create import Created, recipe_for
from ..spec.recipes import load_recipe
from ..urls import is_url


def _file_name(what: str) -> str:
    """The archive's file name: a URL's last path component, or a path's name."""
    if is_url(what):
        path = urllib.parse.unquote(urllib.parse.urlsplit(what).path)
        return PurePosixPath(path).name
    return Path(what).name


def _refuse(output: Path) -> None:
    if output.exists() or output.is_symlink():
        raise HitError(f"{output} exists; give --force to replace it, or -o FILE")


def create_recipe(
    cache: Path,
    what: str,
    mirrors: tuple[str, ...] = (),
    output: Path | None = None,
    force: bool = False,
    name: str | None = None,
    version: str | None = None,
) -> tuple[Path, Created]:
    """Fetch `what` (a URL, or a local archive) into the source cache `cache` (trying
    `mirrors`), make its starting recipe and write it to `output` (default: NAME.yaml in the
    current folder). Returns (the file written, the recipe). Raises HitError when the
    output exists and not `force`, for a failed download, a file that is not a readable
    archive, a name or version that is not valid; OSError when the file cannot be written."""
    if output is not None and not force:
        _refuse(output)
    sha, url = fetch_any(cache, what, mirrors)
    created = recipe_for(cache_file(cache, sha), _file_name(what), url, sha, name, version)
    target = output if output is not None else Path(f"{created.name}.yaml")
    if not force:
        _refuse(target)
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / target.name
        check.write_text(created.text)
        try:
            load_recipe(check)
        except ConfigError as e:  # a bug here, not the user's: say what was made
            raise HitError(f"the recipe made for {what} does not load: {e.message}") from None
    write_atomic(target, created.text, mode=0o644)
    return target, created
