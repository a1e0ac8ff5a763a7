"""`hit`: the user's command. Thin: parse, call one function, print. Heavy modules are
imported inside commands so that `hit --version` and a no-op `hit build` start fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import __version__
from .common import externals_group, run_cli

PROFILE_HELP = "profile YAML (default: default.yaml in this folder)"


def _resolve(profile: str, repin: bool = False, dirty: bool = False):
    from ..profiles import load_profile
    from ..resolve import resolve

    resolved = resolve(load_profile(Path(profile)), repin=repin, dirty=dirty)
    for note in resolved.notes:
        click.echo(note, err=True)
    return resolved


def _home(write: bool = True):
    """The home; commands that write refuse up front if they may not."""
    from ..config import load_home, require_writable

    home = load_home()
    if write:
        require_writable(home)
    return home


def open_store(home):
    from ..config import open_store as chain

    return chain(home)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hit")
def cli() -> None:
    """Build software profiles from YAML into a hashed store of artifacts.

    Every package is built once into its own prefix, named by the hash of everything that
    went into it; a profile is a symlink farm over those prefixes, and `hit build X.yaml`
    leaves a link `X` next to the YAML file pointing at it.

    The home (store, source cache, gc roots) is ~/.hashdist, or $HIT_HOME.
    """


@cli.command("init-home")
def init_home() -> None:
    """Create the home (~/.hashdist or $HIT_HOME) with a commented config.yaml."""
    from ..config import default_home, init_home

    click.echo(init_home(default_home()))


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
@click.option(
    "-j", "--jobs", type=click.IntRange(1), help="builds at once (default: config.yaml's jobs)"
)
@click.option("-q", "--quiet", is_flag=True, help="do not list packages that are already built")
@click.option("--repin", is_flag=True, help="re-pin externals that changed (rewrites their YAML)")
@click.option("--slurm", is_flag=True, help="build the missing packages as Slurm batch jobs")
@click.option("--pack", type=click.IntRange(0), metavar="N",
              help="with --slurm: up to N quick packages per job")  # fmt: skip
@click.option("--wait", is_flag=True, help="with --slurm: follow the jobs, then assemble here")
@click.option("--dirty", is_flag=True,
              help="build git checkouts with uncommitted changes, hashed by content")  # fmt: skip
@click.option("--explain", is_flag=True,
              help="say, for each artifact to build, why no built one fits")  # fmt: skip
def build(profile, jobs, quiet, repin, slurm, pack, wait, dirty, explain) -> None:
    """Build every package of PROFILE that is missing, then assemble the profile.

    The link (e.g. `default` for default.yaml) is made next to the YAML file and
    registered as a gc root. Progress goes to stderr; the link's path to stdout.
    """
    from .. import memo
    from ..config import default_home
    from ..progress import Progress

    file = Path(os.path.abspath(profile))
    fast = None if (repin or slurm or dirty or explain) else memo.up_to_date(default_home(), file)
    if fast is not None:  # nothing changed since the last build: no YAML, no hashing
        refs, prefix = fast
        progress = Progress(len(refs), quiet=quiet)
        for ref in refs:
            progress.cached(ref.short)
        click.echo(f"{memo.profile_link(file)} -> {prefix} (up to date)")
        return
    from ..plan import build_profile

    home = _home()
    resolved = _resolve(profile, repin, dirty)
    if explain:
        _explain(resolved, open_store(home))
    if slurm:
        from ..slurm import SlurmConfig, submit_and_follow

        py = [sys.executable, "-m", "hdmodules.cli.hit"]
        sub = submit_and_follow(
            [("", resolved)], home.root, open_store(home), file, home.slurm or SlurmConfig(),
            pack, wait, [*py, "build-artifact", str(file)], [*py, "build", str(file)],
            lambda line: click.echo(line, err=True),
            f"the last job links {memo.profile_link(file)}; `squeue` shows the jobs",
        )  # fmt: skip
        if sub is not None and not wait:
            return
    progress = Progress(len(resolved.nodes), quiet=quiet)
    result = build_profile(resolved, home, jobs or home.jobs, progress)
    if "compiler" in resolved.profile.toolchain:  # a site-style stack: modules that plug in
        from ..modulefiles import write_user_modules

        for rel in write_user_modules(home.root, resolved, open_store(home)):
            click.echo(f"module written: {home.root / 'modules' / rel}", err=True)
    if result.link_changed:
        click.echo(f"{result.link} -> {result.profile}")
    else:
        click.echo(f"{result.link} -> {result.profile} (up to date)")


def _explain(resolved, store) -> None:
    """For each artifact about to be built: the nearest built one and what differs."""
    from ..explain import explain, nearest
    from ..store import MANIFEST, META, read_spec

    known = {n.ref.id: {"id": n.ref.id, **n.spec} for n in resolved.nodes.values()}

    def lookup(artifact_id: str):
        prefix = store.find(artifact_id)
        return known.get(artifact_id) or (read_spec(prefix) if prefix else None)

    for node in resolved.nodes.values():
        if store.is_installed(node.ref):
            continue
        candidates = []
        for s in (store, *store.upstreams):
            folder = s.root / node.name
            if folder.is_dir():
                candidates += [
                    read_spec(p) for p in folder.iterdir() if (p / META / MANIFEST).exists()
                ]
        found = nearest(known[node.ref.id], candidates)
        if found is None:
            click.echo(f"{node.ref.short}: {node.name} was never built here", err=True)
            continue
        best, _changes = found
        click.echo(f"{node.ref.short}: nearest built is {best['id'][: len(node.name) + 13]}, "
                   f"which differs in:", err=True)  # fmt: skip
        for line in explain(best, known[node.ref.id], lookup, "    "):
            click.echo(line, err=True)


@cli.command("build-artifact", hidden=True)
@click.argument("profile")
@click.option("--artifact", "artifacts", multiple=True, required=True, metavar=":ID")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1)
def build_artifact(profile: str, artifacts, jobs: int) -> None:
    """Build the given artifacts of PROFILE here (what a Slurm job runs)."""
    from ..plan import build_only
    from ..progress import Progress

    ids = {a.partition(":")[2] for a in artifacts}
    build_only([_resolve(profile)], ids, _home(), jobs, Progress(len(ids)))


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def status(profile: str) -> None:
    """For each package of PROFILE: built or needs build, with its short id."""

    home = _home(write=False)
    resolved = _resolve(profile)
    store = open_store(home)
    width = max([len(n) for n in resolved.nodes] + [7])
    for node in resolved.nodes.values():
        state = "built" if store.is_installed(node.ref) else "needs build"
        extra = "" if node.name in resolved.roots else "  (dependency)"
        click.echo(
            f"{node.name:<{width}}  {node.recipe.version:<10}  {node.ref.short}  {state}{extra}"
        )
    pstate = "built" if store.is_installed(resolved.profile_ref) else "needs build"
    click.echo(f"{'profile':<{width}}  {'':<10}  {resolved.profile_ref.short}  {pstate}")


@cli.group()
def show() -> None:
    """Show what a build would use: its build spec or its build script."""


@show.command("buildspec")
@click.argument("package")
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def show_buildspec(package: str, profile: str) -> None:
    """The canonical build spec of PACKAGE (its hash is the artifact id)."""
    from ..resolve import node_for

    node = node_for(_resolve(profile), package)
    click.echo(json.dumps({"id": node.ref.id, **node.spec}, indent=2, sort_keys=True))


@show.command("script")
@click.argument("package")
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def show_script(package: str, profile: str) -> None:
    """The exact build script PACKAGE is built with (environment included)."""
    from ..builder import build_folder, render_script
    from ..resolve import node_for

    home = _home(write=False)
    resolved = _resolve(profile)
    node = node_for(resolved, package)
    store = open_store(home)
    folder = build_folder(home, node)
    click.echo(
        render_script(resolved, node, store, store.prefix(node.ref), folder, home.jobs), nl=False
    )


@cli.command()
@click.argument("package")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-p", "--profile", default="default.yaml", help=PROFILE_HELP)
def bdir(package: str, folder: Path, profile: str) -> None:
    """Unpack PACKAGE's sources into FOLDER/src with its build script FOLDER/build.sh.

    `bash FOLDER/build.sh` then builds by hand exactly as `hit build` would, except that it
    installs into FOLDER/artifact rather than the store.
    """
    from ..builder import bdir as make_bdir
    from ..resolve import node_for

    home = _home()
    resolved = _resolve(profile)
    node = node_for(resolved, package)
    script = make_bdir(resolved, node, home, open_store(home), folder.absolute(), home.jobs)
    click.echo(f"sources in {folder / 'src'}; run: bash {script}")


@cli.command()
@click.argument("url_or_file", required=False)
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="add every archive in this folder to the cache")  # fmt: skip
def fetch(url_or_file: str | None, from_dir: Path | None) -> None:
    """Put a source into the cache and print its sha256 and a `sources:` snippet.

    With --from DIR, seed the cache from every archive in DIR (for sites without internet:
    copy the upstream tarballs there; their hashes are what recipes name).
    """
    from ..sources import add_file, fetch_any, is_archive

    home = _home()
    if (url_or_file is None) == (from_dir is None):
        raise click.UsageError("give either URL_OR_FILE or --from DIR")
    if from_dir is not None:
        files = sorted(p for p in from_dir.iterdir() if p.is_file() and is_archive(p.name))
        for f in files:
            click.echo(f"{add_file(home.source_cache, f)}  {f.name}")
        click.echo(f"{len(files)} archive(s) added to {home.source_cache}", err=True)
        return
    sha, url = fetch_any(home.source_cache, url_or_file, home.mirrors)
    click.echo(f"sha256: {sha}\n\nsources:\n  - url: {url}\n    sha256: {sha}")


def _store_paths(write: bool = True):
    home = _home(write)
    return home, open_store(home)


def _short(store, path) -> str:
    return str(path.relative_to(store.root)) if path is not None else "?"


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


@cli.command()
@click.argument("profiles", nargs=-1, metavar="[PROFILE.yaml...]")
@click.option("--list", "list_", is_flag=True, help="list the gc roots and what they reach")
@click.option("-n", "--dry-run", is_flag=True, help="say what would be removed, remove nothing")
@click.option(
    "--older-than",
    metavar="AGE",
    help="keep unreachable artifacts built or used by a build within AGE (30d, 12h)",
)
@click.option(
    "--drop-stale",
    is_flag=True,
    help="forget registered roots whose link is gone (their profile may then go)",
)
@click.option(
    "--sources",
    is_flag=True,
    help="also remove cached sources that no recipe of PROFILE.yaml... needs",
)
def gc(profiles, list_: bool, dry_run: bool, older_than, drop_stale: bool, sources: bool):
    """Remove every artifact and profile no gc root reaches.

    Roots are the profile links `hit build` registered, any symlink you put in the roots
    folder (names not starting with _), and the inputs of builds running right now (the
    collector waits for running builds). A root whose link was moved or deleted outside
    `hit` is reported as stale and keeps the profile it last pointed to, until
    --drop-stale. Reachable: the root's profile, the artifacts it links, their dependencies.
    """
    from .. import gc as collector
    from ..roots import list_roots

    home, store = _store_paths(write=not (list_ or dry_run))
    if list_:
        for r in list_roots(home.gc_roots, store.root):
            who = "" if r.own else "  (your root)"
            if r.stale:
                last = f"; keeps {_short(store, r.last)}" if r.last else ""
                click.echo(f"{r.link}  STALE: the link is gone or points outside the store{last}")
            else:
                click.echo(f"{r.link} -> {_short(store, r.target)}{who}")
        from ..roots import use_records

        for u in use_records(home.gc_roots):
            click.echo(f"{u.link}  (a user's profile, {u.state}: uses {len(u.ids)} artifact(s))")
        return
    keep_sources = None
    if sources:
        if not profiles:
            raise click.UsageError("--sources needs the profiles whose sources to keep")
        keep_sources = {
            s.sha256
            for p in profiles
            for n in _resolve(p).nodes.values()
            for s in n.recipe.sources
            if s.sha256
        }
    elif profiles:
        raise click.UsageError("profiles are only taken with --sources")
    from ..config import parse_duration

    age = parse_duration(older_than) if older_than else None
    report = collector.collect(
        store, home.gc_roots, dry_run, age, drop_stale,
        on_wait=lambda: click.echo("waiting for running builds to finish ...", err=True),
    )  # fmt: skip
    verb = "would remove" if dry_run else "removed"
    for r in report.dropped:
        click.echo(f"dropped root {r.link}: the link no longer exists", err=True)
    for u in report.dropped_users:
        click.echo(f"dropped a user's record {u.file.name}: {u.link} no longer points at "
                   f"{u.profile}", err=True)  # fmt: skip
    if report.users:
        kept = sum(len(u.ids) for u in report.users)
        click.echo(f"kept what {len(report.users)} user profile(s) use ({kept} references)",
                   err=True)  # fmt: skip
    for r in report.stale:
        if r not in report.dropped:
            kept = f"; kept {_short(store, r.last)} it last pointed to" if r.last else ""
            click.echo(
                f"stale root {r.link}: the link is gone (moved or deleted outside hit){kept}; "
                f"`hit gc --drop-stale` forgets it",
                err=True,
            )
    for i in report.removed:
        click.echo(f"{verb} {i}", err=True)
    if report.kept_recent:
        click.echo(f"kept {len(report.kept_recent)} unreachable artifact(s) used within "
                   f"{older_than}", err=True)  # fmt: skip
    click.echo(f"{verb} {len(report.removed)} artifact(s), {_mib(report.bytes_freed)}")
    if keep_sources is not None:
        gone = collector.collect_sources(home.source_cache, keep_sources, dry_run)
        click.echo(f"{verb} {len(gone)} cached source(s)")


def _link_command(name: str, doc: str, fn):
    @cli.command(name, help=doc)
    @click.argument("link", type=click.Path(path_type=Path))
    @click.argument("new", type=click.Path(path_type=Path))
    def command(link: Path, new: Path) -> None:
        home, store = _store_paths()
        target = fn(home.gc_roots, store.root, link.absolute(), new.absolute())
        click.echo(f"{new} -> {target}")

    return command


def _cp(gc_roots, store, link, new):
    from ..roots import copy_link

    return copy_link(gc_roots, store, link, new)


def _mv(gc_roots, store, link, new):
    from ..roots import move_link

    return move_link(gc_roots, store, link, new)


_link_command("cp", "Copy the profile link LINK to NEW; both are gc roots.", _cp)
_link_command("mv", "Move the profile link LINK to NEW, moving its gc root along.", _mv)


@cli.command("rm")
@click.argument("link", type=click.Path(path_type=Path))
def rm(link: Path) -> None:
    """Remove the profile link LINK and its gc root (`hit gc` may then collect the profile)."""
    from ..roots import forget_use, remove_link

    home, store = _store_paths()
    target = remove_link(home.gc_roots, store.root, link.absolute())
    for up in home.upstreams:
        forget_use(up / "gcroots", link.absolute())
    click.echo(f"removed {link} (was -> {target})")


def _package_set(thing: str, store):
    """name -> artifact id for a profile YAML, a profile link (or profile in the store), or
    one artifact (by id or path); plus the specs resolution produced (for YAMLs)."""
    from ..errors import HitError
    from ..store import read_spec

    if thing.endswith((".yaml", ".yml")):
        resolved = _resolve(thing)
        specs = {n.ref.id: {"id": n.ref.id, **n.spec} for n in resolved.nodes.values()}
        return {n.name: n.ref.id for n in resolved.nodes.values()}, specs
    path = Path(thing)
    prefix = Path(os.path.realpath(path)) if path.exists() else store.find(thing)
    if prefix is None:
        raise HitError(f"{thing}: not a profile YAML, a profile link or an artifact id")
    spec = read_spec(prefix)
    if not spec:
        raise HitError(f"{thing}: {prefix} is not an artifact of the store")
    if spec.get("kind") == "profile":
        return dict(spec.get("artifacts", {})), {}
    return {spec["name"]: spec["id"]}, {}


@cli.command()
@click.argument("a")
@click.argument("b")
def diff(a: str, b: str) -> None:
    """Explain how A and B differ: two profile links, two artifact ids or two profile YAMLs.

    For each package that differs, the inputs that changed its hash (source, script,
    parameter, pinned external, dependency), a changed dependency followed down to the
    input that changed first.
    """
    from ..explain import diff_sets
    from ..store import read_spec

    _home_, store = _store_paths(write=False)
    set_a, specs_a = _package_set(a, store)
    set_b, specs_b = _package_set(b, store)
    known = {**specs_a, **specs_b}

    def lookup(artifact_id: str):
        if artifact_id in known:
            return known[artifact_id]
        prefix = store.find(artifact_id)
        return read_spec(prefix) if prefix else None

    lines = diff_sets(set_a, set_b, lookup)
    click.echo("\n".join(lines) if lines else "no differences")


@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[PROFILE.yaml] DIR")
@click.option("-j", "--jobs", type=click.IntRange(1), help="builds at once")
@click.option("--python", "python", default="python3", show_default=True,
              help="the Python whose venv DIR gets (pip install works in DIR)")  # fmt: skip
@click.option("--no-python", is_flag=True, help="no Python venv in DIR")
def develop(args, jobs, python, no_python) -> None:
    """Build PROFILE (default.yaml), then make DIR a writable environment over it.

    DIR holds writable folders linking every file of the profile's packages, a Python venv
    (so `DIR/bin/pip install` works), `DIR/activate` (bash/zsh) and modulefiles in
    DIR/modulefiles. It is a gc root while it exists; rerun to update it in place.
    """
    from ..develop import develop as make
    from ..plan import build_and_assemble
    from ..progress import Progress

    if len(args) > 2:
        raise click.UsageError("give [PROFILE.yaml] DIR")
    profile, folder = args if len(args) == 2 else ("default.yaml", args[0])
    home = _home()
    resolved = _resolve(profile)
    prefix = build_and_assemble(resolved, home, jobs or home.jobs, Progress(len(resolved.nodes)))
    target = Path(folder).absolute()
    for change in make(home, open_store(home), prefix, target, None if no_python else python):
        click.echo(change, err=True)
    click.echo(f"{target}: source {target}/activate  (or: module use {target}/modulefiles/lmod)")


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def history(profile: str) -> None:
    """The profiles PROFILE's link has pointed to (generations, newest last)."""
    import time

    from ..roots import generations
    from ..store import profile_link

    home, store = _store_paths(write=False)
    link = profile_link(Path(os.path.abspath(profile)))
    current = os.path.realpath(link) if link.is_symlink() else None
    for g in generations(home.gc_roots, link):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.when))
        mark = "  (current)" if str(g.target) == current else ""
        click.echo(f"{g.number:>4}  {when}  {_short(store, g.target)}{mark}")


@cli.command()
@click.argument("profile", default="default.yaml", metavar="[PROFILE.yaml]")
def rollback(profile: str) -> None:
    """Point PROFILE's link back at the generation before the current one (no YAML read,
    nothing built)."""
    from ..errors import HitError
    from ..roots import generations, register
    from ..store import profile_link, set_link

    home, store = _store_paths()
    link = profile_link(Path(os.path.abspath(profile)))
    gens = generations(home.gc_roots, link)
    current = os.path.realpath(link) if link.is_symlink() else None
    now = max((g.number for g in gens if str(g.target) == current), default=None)
    earlier = [g for g in gens if now is not None and g.number < now and g.target.exists()]
    if not earlier:
        raise HitError(f"{link} has no earlier generation to go back to (`hit history`)")
    back = earlier[-1]
    set_link(link, back.target)
    register(home.gc_roots, link, back.target)
    click.echo(f"{link} -> {back.target} (generation {back.number})")


@cli.command()
@click.argument("artifacts", nargs=-1, metavar="[ARTIFACT...]")
def verify(artifacts) -> None:
    """Re-hash artifacts' files against their manifests (all artifacts by default).

    ARTIFACT is an id (name/hash, or a unique start of it) or a path in the store. Prints
    what was modified, added or removed; exits 1 if anything was.
    """
    from ..errors import HitError
    from ..store import MANIFEST, META
    from ..verify import verify as check

    home, store = _store_paths(write=False)
    if artifacts:
        prefixes = []
        for a in artifacts:
            p = Path(a).absolute() if Path(a).exists() else store.find(a)
            if p is None:
                raise HitError(f"no artifact {a} in {store.root}")
            prefixes.append(p)
    else:
        prefixes = [p for p in store.prefixes() if (p / META / MANIFEST).exists()]
    bad = 0
    for prefix in prefixes:
        damage = check(prefix)
        name = _short(store, prefix)
        if damage.ok:
            click.echo(f"ok        {name}")
            continue
        bad += 1
        for kind in ("modified", "added", "removed"):
            for f in getattr(damage, kind):
                click.echo(f"{kind:<9} {name}/{f}")
    if bad:
        raise HitError(f"{bad} of {len(prefixes)} artifact(s) differ from their manifest")


@cli.command()
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...")
def purge(artifacts) -> None:
    """Remove the given artifacts now (refused for any a gc root still reaches)."""
    from ..gc import purge as remove

    home, store = _store_paths()
    for i in remove(store, home.gc_roots, list(artifacts)):
        click.echo(f"removed {i}")


cli.add_command(externals_group("hit"))


def main() -> None:
    sys.exit(run_cli(cli, "hit"))


if __name__ == "__main__":
    main()
