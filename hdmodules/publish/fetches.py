"""What `hit fetch PROFILE.yaml` and `hdmod fetch SITE.yaml [--to DIR]` do: every download the
recipes of a profile or a site use, into the source cache, or into a seed folder that a site
without internet seeds its cache from (`hit fetch --from DIR`), as `spack mirror create` does.

Only recipes are read (nothing is resolved, no external is fingerprinted), so a site's
downloads can be gathered on any machine with internet. Every download is fetched, whether
or not an artifact built from it is installed already: the folder is for a store that may
have nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..build.fetching import Need, fetch_all, needs_of
from ..build.gitsources import mirror
from ..build.sources import write_index
from ..spec.profiles import load_profile
from ..spec.resolve import recipes_of
from ..spec.site import Site
from ..store.home import Home
from .sitebuild import site_home

Say = Callable[[str], None]  # one progress line (stderr)


@dataclass(frozen=True)
class Fetched:
    """What a fetch command did: `needed` downloads the recipes name, `fetched` of them now
    (the others were there already), all of them in `folder` (a source cache or seed)."""

    needed: int
    fetched: int
    folder: Path


def fetch_profile(file: Path, home: Home, say: Say) -> Fetched:
    """`hit fetch PROFILE.yaml`: every download of every recipe the profile uses into the
    home's source cache (through its mirrors). Raises HitError (a bad profile or recipe, a
    download that fails: then with every mirror tried and what to do)."""
    needs = needs_of(recipes_of(load_profile(file)))
    config = str(home.root / "config.yaml")
    fetched = fetch_all(needs, home.source_cache, home.mirrors, say, config, building=False)
    return Fetched(len(needs), fetched, home.source_cache)


def fetch_site(site: Site, to: Path | None, say: Say) -> Fetched:
    """`hdmod fetch SITE.yaml`: every download of every recipe of every stack into the site
    root's source cache (the root is made if missing); with `to`, into that seed folder
    instead (`to/sha256/<hex>`, git mirrors in `to/git/`, SOURCES.txt listing them), taking
    what the site root's cache holds, if there is one, before the mirrors and URLs, and
    writing nothing under the root. Raises HitError as `fetch_profile`."""
    recipes = [r for stack in site.stacks for r in recipes_of(stack.profile)]
    needs = needs_of(recipes)
    config = f"{site.file} or {site.root / 'config.yaml'}"
    if to is None:
        home = site_home(site)
        fetched = fetch_all(needs, home.source_cache, home.mirrors, say, config, building=False)
        return Fetched(len(needs), fetched, home.source_cache)
    mirrors = site.mirrors
    if (site.root / "config.yaml").exists():  # a site root here already: its cache first
        home = site_home(site)
        mirrors = (str(home.source_cache), *home.mirrors)
    to.mkdir(parents=True, exist_ok=True)
    fetched = fetch_all(needs, to, mirrors, say, config, building=False)
    write_index(to, [_index_entry(to, n) for n in needs])
    return Fetched(len(needs), fetched, to)


def _index_entry(folder: Path, need: Need) -> tuple[str, str, str]:
    """(key, name, origin) of one download in a seed folder's SOURCES.txt."""
    if need.sha256 is not None:
        return need.sha256, need.name, need.url or (f"pypi:{need.pypi}" if need.pypi else "")
    repo = mirror(folder, need.git or "")
    return f"git/{repo.name}", need.name, need.git or ""
