"""What `hit build` and `hdmod build` do, given their options: one function each, over the
pipeline (resolve -> build locally or as Slurm jobs -> assemble -> publish). The commands only
parse options and print; everything else is here. Imported inside the commands, so that
`hit --version` and the no-op `hit build` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..build import memo
from ..collector import collector_paused, keep_for_the_command
from ..names import profile_link
from ..options import HitBuild, SiteBuild
from ..progress import Progress
from ..store import roots
from ..store.home import Home, load_home, open_store, require_writable, with_package_cap
from .profilebuild import Result, build_profile, link_plan

if TYPE_CHECKING:  # the resolver, sites and module trees: imported when used (quickswitch.py)
    from ..spec.resolve import Resolved
    from ..spec.site import Site
    from .sitebuild import Published

Say = Callable[[str], None]  # one line for the user (stderr)


def hit_build(file: Path, o: HitBuild, say: Say) -> Result | None:
    """`hit build FILE`: resolve the profile (re-pinning with `repin`), explain what is built
    (`explain`), submit the missing artifacts as Slurm jobs (`slurm`; returns None unless
    `wait`), else build them here, assemble the profile and point its link at it; remember
    the inputs for the no-op path; save the modules of a site-style profile and regenerate
    the user's module tree (usermodules.build_lines), saying which names it wrote. A profile
    that only lists other packages of its last build is switched without resolving
    (quickswitch.py). Returns the profile's Result. Raises HitError (ConfigError,
    BuildFailed, ...)."""
    home = with_package_cap(load_home(), o.concurrent_packages)
    require_writable(home)
    if not (o.repin or o.dirty or o.explain or o.slurm):
        result = _quick_switch(file, home, o, say)
        if result is not None:
            return result
    from ..spec.resolve import resolve_file

    with collector_paused():  # some 30 objects a package, that live until hit ends
        resolved = resolve_file(file, repin=o.repin, dirty=o.dirty, cache=home.root / ".cache")
    keep_for_the_command()
    for note in resolved.notes:
        say(note)
    if resolved.profile.link is None:  # the no-op memo is saved after the build
        memo.note_inputs(resolved, home)  # its inputs as they are before anything builds
    site_style = "compiler" in resolved.profile.toolchain
    if site_style:  # its modules need the toolchain's versions: said before building
        from . import modulefiles

        modulefiles.check_toolchain_versions(resolved.profile)
    store = open_store(home)
    if o.explain:
        from ..build.explain import why_build

        for line in why_build(resolved, store):
            say(line)
    if o.slurm and _submit_profile(file, resolved, home, o, say) and not o.wait:
        return None
    result = build_profile(
        resolved, home, o.jobs or home.jobs, Progress(len(resolved.nodes), quiet=o.quiet)
    )
    # a site-style stack's modules plug into the site's hierarchy: its record is saved and
    # the user's tree regenerated from every live profile's (before the memo: a no-op build
    # never writes them); a home without records has no tree (the module tree's code, some
    # 20 ms to import, is left out then)
    if site_style or roots.module_records(home.gc_roots).is_dir():
        from .usermodules import build_lines

        for line in build_lines(home, resolved, store, result.profile):
            say(line)
    if resolved.profile.link is None:  # a YAML file's own link: remember for the no-op path
        memo.save(home, resolved)
    return result


def _quick_switch(file: Path, home: Home, o: HitBuild, say: Say) -> Result | None:
    """`hit_build` of a profile that lists other packages of its last build, answered from
    the memo (quickswitch.py); None when it cannot be. The store's GC lock is held shared
    from before the memo's artifacts are found installed until the profile is linked, as
    the full path finds what to build under it: a `hit gc` meanwhile would remove one the
    last profile did not use, and its missing manifest would fail the assembly."""
    from .assemble import drop
    from .quickswitch import quick_plan, remember

    store = open_store(home)
    with store.gc_lock(False, lambda: say("waiting: a garbage collection is running")):
        quick = quick_plan(file, home)
        if quick is None:
            return None
        try:
            progress = Progress(len(quick.shorts), quiet=o.quiet)
            for short in quick.shorts:
                progress.present(short)
            result = link_plan(quick.plan, home, progress, quick.farm, quick.written)
        finally:
            drop(quick.written)  # a farm written ahead and not committed (a failure, Ctrl-C)
    if roots.module_records(home.gc_roots).is_dir():  # a user's module tree to refresh
        from .usermodules import build_lines

        for line in build_lines(home, None, store, result.profile):  # not site-style
            say(line)
    remember(quick, home, store)
    return result


def site_build(site: Site, o: SiteBuild, say: Say) -> Published | None:
    """`hdmod build SITE`: re-pin (`repin`; the site is loaded again if a pin changed),
    resolve every stack once, submit the missing artifacts as Slurm jobs (`slurm`; returns
    None unless `wait`), else build them here and publish the stacks and module tree.
    Raises HitError."""
    from ..spec.resolve import repin_externals
    from ..spec.site import load_site
    from . import modulefiles, moduletree, publishedstacks
    from .sitebuild import build_site, claim_root, resolve_stacks, site_home
    from .spidercache import spider_cache_files

    if o.repin:
        notes = repin_externals(s.profile for s in site.stacks)
        for note in notes:
            say(note)
        if notes:  # pins were rewritten: load the site again to use them
            site = load_site(site.file, site.root, site.modules.path)
    stacks = resolve_stacks(site)
    claim_root(site, say)  # a root a hit command made first becomes the site's
    home = site_home(site)
    for _stack, resolved in stacks:  # the site's memo is saved after the build
        memo.note_inputs(resolved, home)  # its inputs as they are before anything builds
    # module names clash, and an admin's default names no module, before anything builds
    moduletree.admin_defaults(site, modulefiles.plan(site, stacks, open_store(home)))
    publishedstacks.check_frozen(stacks)  # and a stack users could not get a frozen copy of
    spider_cache_files(site)  # and a spider cache without Lmod fails before too
    if o.slurm and _submit_site(site, stacks, home, o, say) and not o.wait:
        return None
    total = len({n.ref.id for _s, r in stacks for n in r.nodes.values()})
    return build_site(
        site, stacks, o.jobs or home.jobs, Progress(total), say, o.concurrent_packages
    )


def _fetch_before_submitting(stacks: list[Resolved], home: Home, say: Say) -> None:
    """Every download the artifacts still to build need, fetched here, on the submitting side,
    before any job is submitted (compute nodes often have no internet). Raises HitError."""
    from ..build.fetching import fetch_first
    from ..spec.resolve import to_build

    store = open_store(home)
    todo = to_build([(None, r) for r in stacks], store.is_installed)
    fetch_first([node.recipe for _none, node in todo], home, say)


def _submit_profile(file: Path, resolved: Resolved, home: Home, o: HitBuild, say: Say) -> bool:
    """Submit what `resolved` misses as Slurm jobs (the last one links the profile), once
    every download they need is fetched; True if anything was submitted."""
    from ..build.slurm import Commands, SlurmConfig, SlurmRequest, submit_and_follow, tool_command

    _fetch_before_submitting([resolved], home, say)
    py = tool_command("hdmodules.cli.hit")
    commands = Commands(
        artifact=(*py, "build-artifact", str(file)),
        final=(*py, "build", str(file)),
        hint=f"the last job links {profile_link(file)}; `squeue` shows the jobs",
    )
    request = SlurmRequest(home.root, file, home.slurm or SlurmConfig(), commands, o.pack, o.wait)
    return submit_and_follow(request, [("", resolved)], open_store(home), say) is not None


def _submit_site(site: Site, stacks, home: Home, o: SiteBuild, say: Say) -> bool:
    """Submit what the site's stacks miss as Slurm jobs (the last one publishes the site),
    once every download they need is fetched; True if anything was submitted."""
    from ..build.slurm import Commands, SlurmRequest, submit_and_follow, tool_command

    _fetch_before_submitting([r for _s, r in stacks], home, say)
    py = tool_command("hdmodules.cli.hdmod")
    args = (str(site.file), "--root", str(site.root), "--modules", str(site.modules.path))
    where = f"{site.file} --root {site.root}"
    hint = f"follow: hdmod status {where} --wait; cancel: hdmod cancel {where}"
    commands = Commands((*py, "build-artifact", *args), (*py, "build", *args), hint)
    request = SlurmRequest(home.root, site.file, site.slurm, commands, o.pack, o.wait)
    work = [(s.name, r) for s, r in stacks]
    return submit_and_follow(request, work, open_store(home), say) is not None
