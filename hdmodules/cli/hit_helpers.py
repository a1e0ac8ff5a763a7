"""What the `hit` commands share: the home, the store chain, resolving a profile."""

from __future__ import annotations

from pathlib import Path

import click

PROFILE_HELP = "profile YAML (default: default.yaml in this folder)"


def _resolve(profile: str, repin: bool = False, dirty: bool = False):
    """PROFILE resolved, with the home's resolve cache (spec/resolvecache.py) as `hit build`
    uses it; its notes said on stderr."""
    from ..spec.resolve import resolve_file
    from ..store.homeroot import home_root

    cache = Path(home_root()) / ".cache"
    resolved = resolve_file(Path(profile), repin=repin, dirty=dirty, cache=cache)
    for note in resolved.notes:
        click.echo(note, err=True)
    return resolved


def _home(write: bool = True):
    """The home; commands that write refuse up front if they may not."""
    from ..store.home import load_home, require_writable

    home = load_home()
    if write:
        require_writable(home)
    return home


def open_store(home):
    """The home's store chained to its upstreams (store.home.open_store)."""
    from ..store.home import open_store as chain

    return chain(home)


def _store_paths(write: bool = True):
    home = _home(write)
    return home, open_store(home)


def _resolve_package(package: str, profile: str | None):
    """`(resolved, node)` of PACKAGE in PROFILE (default.yaml). When PACKAGE is a recipe file
    (`pkgs/hello.yaml`), that recipe is resolved as PROFILE would build it, its folder first
    among the package dirs and the package added; without a PROFILE given nor a
    default.yaml here, as a profile of that recipe alone (its folder for its dependencies,
    the host compiler). Raises HitError as resolving does."""
    from ..spec.resolve import node_for, resolve

    recipe = Path(package)
    if not (package.endswith(".yaml") and recipe.is_file()):
        resolved = _resolve(profile or "default.yaml")
        return resolved, node_for(resolved, package)
    from ..spec.profiles import PackageRequest, ProfileSpec, load_profile
    from ..spec.recipes import load_recipe

    name = load_recipe(recipe).name
    if profile is not None or Path("default.yaml").is_file():
        spec = load_profile(Path(profile or "default.yaml"))
    else:
        spec = ProfileSpec(file=recipe.absolute())
    folder = recipe.absolute().parent
    spec.package_dirs = [folder] + [d for d in spec.package_dirs if d != folder]
    spec.packages.setdefault(name, PackageRequest(name, file=recipe, line=1))
    resolved = resolve(spec)
    return resolved, node_for(resolved, name)
