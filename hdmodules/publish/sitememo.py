"""The no-op fast path of `hdmod build` and `hdmod modules refresh`: remember what a site
published, and from what, so that running either on an unchanged site costs a few stats per
artifact instead of parsing every recipe, resolving every stack and rendering every
modulefile (issue 18: a site of 20,000 artifacts).

After each successful `hdmod build` (and `hdmod modules refresh`) the memo records:

- every input's stat stamp, as the profile memo of `hit build` stamps them (build/memo.py's
  `_inputs` for each stack: site.yaml and its externals files, every recipe, package-dir
  listings, path sources, patches, build-system templates, pinned commands, the root's
  config.yaml), plus what shapes the module tree: the package's publishing code and
  templates, the site's template folder, Lmod's version file when the tree holds a spider
  cache;
- what the build left, stamped or read back: each artifact's manifest (present), each profile
  link, its gc root and the module path link (pointing where they pointed), the files users
  read (user-config.yaml, the stack files, the folders of published stacks);
- when the module tree would change by itself: a replaced tree stops being kept (and its
  ghosts go) `modules: keep_days` after it was replaced; the memo is not trusted after that.

When all of it holds, nothing is resolved, built, rendered or written, and the command says
what it would have said. Anything else falls back to the full path, which saves a new memo.
A memo written by `modules refresh` serves a later refresh, never a build (a refresh neither
publishes the stacks nor gives artifacts the site's modes). The full path also re-applies the
site's modes and folder permissions; the fast path trusts that nothing outside hdmod changed
them, as it trusts stat (build/memo.py).

The memo is found before site.yaml is parsed (PyYAML reads a 20,000-package site.yaml in
seconds): in `<root>/.cache/`, the root given with --root or read from site.yaml's top-level
`root:` line (peek_root). A wrong guess is harmless: the memo names the site file, the root
and the options it is for, and is trusted only for exactly those.
"""

from __future__ import annotations

import marshal
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..build.memo import stamps

FORMAT = 3  # the memo file's layout: a memo of another layout is not trusted
# what shapes the module tree besides the entries (below the package folder)
PUBLISH_CODE = ("publish/*.py", "templating.py", "names.py", "store/layout.py")


@dataclass(frozen=True)
class Unchanged:
    """What a no-op build or refresh reports: the modulefiles of the tree at `modules` and each
    stack's (name, profile link)."""

    modulefiles: int
    modules: str
    stacks: list[tuple[str, str]]


def peek_root(site_yaml: Path) -> str | None:
    """site.yaml's top-level `root:` as load_site reads it (relative to the file's folder,
    absolute), when it is a plain one-line value; None otherwise (then no fast path)."""
    try:
        text = site_yaml.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    m = re.search(r"^root:[ \t]*([^\s'\"#{}\[\]&*!|>%@`][^#\n]*?)[ \t]*(?:#.*)?$", text, re.M)
    if m is None:
        return None
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(site_yaml)), m[1]))


def memo_file(root: str, site_yaml: Path, root_arg, modules_arg) -> str:
    """The memo of `site_yaml` built with --root `root_arg` and --modules `modules_arg` (each
    None when not given), in the site root `root`; the running code's folder is part of its
    name (the memo stamps that code's files: another installation never takes it)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    key = "\0".join([os.path.abspath(site_yaml), str(root_arg), str(modules_arg), here])
    return os.path.join(root, ".cache", f"site-{zlib.crc32(key.encode()):08x}.memo")


def unchanged(site_yaml: Path, root_arg, modules_arg, building: bool) -> Unchanged | None:
    """What the last build (`building`) or build or refresh published, if nothing it depends
    on changed since; None means "do it in full". Reads one memo file and stats each input and
    output once; never raises."""
    root = os.path.abspath(root_arg) if root_arg is not None else peek_root(site_yaml)
    if root is None:
        return None
    try:
        with open(memo_file(root, site_yaml, root_arg, modules_arg), "rb") as f:
            doc = marshal.load(f)
        if doc["format"] != FORMAT or doc["version"] != __version__ or doc["root"] != root:
            return None
        if doc["file"] != os.path.abspath(site_yaml) or (building and not doc["built"]):
            return None
        if time.time() >= doc["expires"]:
            return None
        if stamps(doc["paths"].split("\0")) != doc["stamps"]:
            return None
        for link, target in doc["links"]:
            if os.readlink(link) != target:
                return None
        return Unchanged(doc["modulefiles"], doc["modules"], doc["stacks"])
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _code_inputs(site, inputs: dict) -> None:
    """Stamp the publishing code, the built-in and the site's templates, and Lmod's version
    file when the tree holds a spider cache (its version is part of the tree)."""
    from ..build.memo import tree
    from .spidercache import find_spider

    here = Path(__file__).parent.parent  # the package folder
    for f in sorted(f for pattern in PUBLISH_CODE for f in here.glob(pattern)):
        inputs[str(f)] = None
    tree(here / "templates", inputs)
    if site.modules.templates is not None:
        inputs[str(site.modules.templates)] = None
        if site.modules.templates.is_dir():
            tree(site.modules.templates, inputs)
    if site.modules.spider_cache and "lmod" in site.modules.formats:
        inputs[str(find_spider(site).parent / "Version.lua")] = None


def _expires(modules: Path, keep_days: int, inputs: dict) -> float:
    """When the tree behind the module path link `modules` would change by itself: the
    earliest time a replaced tree stops being kept (treehistory.kept_trees); inf if none.
    Each tree is stamped into `inputs` too (its mtime says when it was replaced)."""
    from .treehistory import trees_folder

    current = os.readlink(modules)
    out = float("inf")
    for tree in trees_folder(modules).iterdir():
        if not tree.name.startswith(".") and tree.is_dir():
            inputs[str(tree)] = None
            if str(tree) != current:
                out = min(out, tree.stat().st_mtime + keep_days * 86400)
    return out


def save(site, stacks, modulefiles: int, given: tuple, built: bool) -> None:
    """Record a successful publication of `site` (spec.site.Site) with its resolved `stacks`
    ([(Stack, Resolved)]): `modulefiles` written (all formats); `given`: the command's
    (site.yaml, --root, --modules), each of the last two None when not given; `built`: by
    `hdmod build` (False: by `modules refresh`). Never raises for an unwritable cache (it is
    only a cache)."""
    from ..atomic import write_atomic

    site_yaml, root_arg, modules_arg = given
    target = Path(memo_file(str(site.root), site_yaml, root_arg, modules_arg))
    try:  # what it names may go meanwhile (another build of the root retired a stack)
        doc = _record(site, stacks, modulefiles, built)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, marshal.dumps(doc))
    except OSError:
        pass  # a later build simply works in full


def _record(site, stacks, modulefiles: int, built: bool) -> dict:
    """The memo of save(): raises OSError for a path gone meanwhile."""
    from ..build.memo import noted_inputs as stack_inputs
    from ..spec import siteroot
    from ..spec.resolvecache import seen
    from ..store.home import open_store
    from ..store.layout import MANIFEST, META
    from ..store.roots import entry_for
    from .publishedstacks import leftover_copies
    from .sitebuild import site_home

    if built and leftover_copies(site):  # the next build removes them: it is no no-op
        built = False  # (the memo still serves `modules refresh`, which leaves them)
    home = site_home(site)
    store = open_store(home)
    inputs: dict = {}
    for _stack, resolved in stacks:
        inputs.update(stack_inputs(resolved, home))
    _code_inputs(site, inputs)
    if built:  # what users read: written by the build, not by a refresh
        outputs = [site.root / siteroot.USER_CONFIG, site.root / siteroot.STACKS]
        outputs += [site.root / siteroot.RECIPES]  # its listing: copies added or removed
        outputs += [siteroot.stack_file(site.root, s.name) for s, _r in stacks]
        inputs.update(dict.fromkeys(str(p) for p in outputs))
    links = [site.modules.path]
    for _stack, resolved in stacks:
        link = resolved.profile.link_path
        links += [link, entry_for(home.gc_roots, link)]
    expires = _expires(site.modules.path, site.modules.keep_days, inputs)
    refs = {n.ref for _s, r in stacks for n in r.nodes.values()}
    refs |= {r.profile_ref for _s, r in stacks}
    for ref in sorted(refs, key=lambda r: r.id):  # installed: their manifests stamped too
        inputs[str(store.prefix(ref) / META / MANIFEST)] = None
    paths = list(inputs)
    doc = {
        "format": FORMAT,
        "version": __version__,
        "file": str(site.file),
        "root": str(site.root),
        "built": built,
        "expires": expires,
        "paths": "\0".join(paths),  # one string and one array: loads at once (build/memo.py)
        # each stack's inputs as stamped before anything built (build/memo.note_inputs)
        "stamps": stamps(paths, seen()),
        "links": [(str(p), os.readlink(p)) for p in links],
        "modulefiles": modulefiles,
        "modules": str(site.modules.path),
        "stacks": [(s.name, str(s.profile.link_path)) for s, _r in stacks],
    }
    return doc
