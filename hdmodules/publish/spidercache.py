"""Lmod's system spider cache, written into a module tree before it is published (issue 13,
item 11; site.yaml `modules: spider_cache: true`).

Without a cache, `module spider` evaluates every modulefile reachable from MODULEPATH, walking
the whole hierarchy (Core -> Compiler/<c>/<v> -> MPI/...): seconds at thousands of modules.
With one, Lmod reads a single Lua file instead. Lmod trusts such a cache blindly (a module
missing from it does not exist for spider), so it must never describe another tree than the
one users reach: it is written inside the staging tree, by Lmod's own `spider -o spiderT` (as
`update_lmod_system_cache_files` does), and published with the tree by the same link swap.
A new tree gets its own cache; a previous tree's cache is reachable only through that tree.

What the tree holds, in `<tree>/lmod-cache/` (CACHE_DIR):

- `spiderT.lua`: spider's output. Every path in it is the one users reach through the link
  (`<modules path>/lmod/...`), never the staging folder's: see SPIDER_HOOK.
- `timestamp`: empty; its mtime equals the cache's. Lmod 8.6 (Cache.lua) trusts a cache whose
  mtime is at least its timestamp file's, forever; one without a timestamp file is trusted
  for a day only (LMOD_ANCIENT_TIME). Both mtimes are the moment the cache was written, so a
  user's own cache (`~/.lmod.d/.cache`) from before this tree loses against it.
- `lmodrc.lua`: the `scDescriptT` line that points Lmod at the two files through the link;
  Lmod reads `/etc/lmod/lmodrc.lua` and every file in `LMOD_RC` (ReadLmodRC.lua), so a site
  copies the line there or sets `LMOD_RC` to this file (lmodrc_line, the README).

If the cache cannot be written (no Lmod, spider fails, the cache would miss a module), HitError
is raised before the staging tree is renamed: nothing is published, the link keeps the
previous tree, and the next refresh removes the staging folder (moduletree.write_tree).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from ..errors import HitError
from ..spec.site import Site
from ..templating import lua_quote

CACHE_DIR = "lmod-cache"  # in the tree, beside lmod/ and tcl/
CACHE_FILE = "spiderT.lua"  # the name Lmod looks for in a cache dir
TIMESTAMP_FILE = "timestamp"
RC_FILE = "lmodrc.lua"
# where Lmod's libexec (with `spider`) lives when LMOD_DIR (set by Lmod's init) is not set:
# Debian/Ubuntu and EPEL packages, then Lmod's own default prefix
LMOD_PLACES = (Path("/usr/share/lmod/lmod/libexec"), Path("/opt/apps/lmod/lmod/libexec"))
SPIDER_TIMEOUT_S = 900  # seconds; writing the cache takes about 1 s at 2,000 modules
NO_HOME = "/nonexistent/hdmod-spider-cache"  # HOME and HIT_HOME of the spider run
UNPUBLISHED = "; the module tree was not published (the link keeps the previous one)"

# Loaded by Lmod's `spider` as one more rc file (LMOD_RC): Lmod runs rc files as Lua before it
# walks any modulefile. The tree's modulefiles name the folders they open through the link
# (`prepend_path("MODULEPATH", "<link>/lmod/Compiler/gcc/12.2.0")`), which still shows the
# previous tree (or nothing) while this one is staged: spider would describe the old tree.
# So each MODULEPATH folder under the link is walked in the staging tree instead
# (Spider_append_path is where spider records them), and each path spider writes is named
# through the link again (serializeTbl writes every table of its output). Folders outside the
# tree are left out of the cache (they could change without it: they are walked when on
# MODULEPATH), and the module files the cache lists are written to HDMOD_FOUND for the check.
SPIDER_HOOK = r"""-- hdmodules: a staged module tree, named by its published path (spidercache.py)
local link, staging = os.getenv("HDMOD_LINK"), os.getenv("HDMOD_STAGING")
local found = os.getenv("HDMOD_FOUND")
if type(Spider_append_path) ~= "function" or type(serializeTbl) ~= "function" then
   io.stderr:write("this Lmod's spider has no Spider_append_path or serializeTbl\n")
   os.exit(3)
end
local function under(s, root)
   return s == root or s:sub(1, #root + 1) == root .. "/"
end
local function rebase(s, from, to)
   if type(s) == "string" and under(s, from) then
      return to .. s:sub(#from + 1)
   end
   return s
end
local spider_append_path = Spider_append_path
Spider_append_path = function(kind, t)
   if t[1] == "MODULEPATH" then
      local copy = {}
      for k, v in pairs(t) do copy[k] = v end
      copy[2] = rebase(t[2], link, staging)
      t = copy
   end
   return spider_append_path(kind, t)
end
local function unstage(v)
   if type(v) ~= "table" then
      return rebase(v, staging, link)
   end
   local copy = {}
   for k, x in pairs(v) do copy[unstage(k)] = unstage(x) end
   return copy
end
local function files(t, out)
   for k, v in pairs(t) do
      if k == "fn" and type(v) == "string" then
         out[#out + 1] = v
      elseif type(v) == "table" then
         files(v, out)
      end
   end
   return out
end
local serialize = serializeTbl
serializeTbl = function(options)
   local copy = {}
   for k, v in pairs(options) do copy[k] = v end
   copy.value = unstage(options.value)
   if options.name == "spiderT" then
      for dir in pairs(copy.value) do
         if type(dir) == "string" and dir:sub(1, 1) == "/" and not under(dir, link) then
            copy.value[dir] = nil
         end
      end
      local f = assert(io.open(found, "w"))
      for _, fn in ipairs(files(copy.value, {})) do f:write(fn, "\n") end
      f:close()
   end
   return serialize(copy)
end
"""


def lmodrc_line(site: Site) -> str:
    """The Lua line that points Lmod (8.6: `/etc/lmod/lmodrc.lua` or a file in `LMOD_RC`) at
    the site's cache, through the module path link:
    `scDescriptT = {{dir = "<path>/lmod-cache", timestamp = "<path>/lmod-cache/timestamp"}}`."""
    cache = site.modules.path / CACHE_DIR
    dir_, stamp = lua_quote(str(cache)), lua_quote(str(cache / TIMESTAMP_FILE))
    return f"scDescriptT = {{{{dir = {dir_}, timestamp = {stamp}}}}}"


def spider_cache_files(site: Site, spider: Path | None = None) -> dict[str, bytes]:
    """The cache's files known before the tree is written: `{"lmod-cache/lmodrc.lua": the
    lmodrc_line, with a comment naming Lmod's version}`, `{}` when the site does not ask for
    the cache. For render_tree to add to the tree, so that the tree's content id changes when
    the option is turned on or off or Lmod is upgraded (a refresh writes a new tree, with a
    new cache); write_spider_cache writes it when it is not there. `spider`: Lmod's spider
    tool (find_spider when None, which raises HitError when there is none)."""
    cfg = site.modules
    if not cfg.spider_cache or "lmod" not in cfg.formats:
        return {}
    spider = spider or find_spider(site)
    try:
        version = re.search(
            r'tag\(\)\s+return\s+"([^"]+)"', (spider.parent / "Version.lua").read_text()
        )
    except OSError:
        version = None
    text = (
        "-- Lmod's spider cache of this module tree, written with it by hdmodules "
        f"(Lmod {version[1] if version else 'of unknown version'}).\n"
        "-- Use it: put the line below into /etc/lmod/lmodrc.lua, or set LMOD_RC to this file.\n"
        f"{lmodrc_line(site)}\n"
    )
    return {f"{CACHE_DIR}/{RC_FILE}": text.encode()}


def find_spider(site: Site) -> Path:
    """Lmod's `spider` tool: in `$LMOD_DIR` when set (Lmod's init sets it to its libexec, so
    hdmod run from an admin's shell uses the Lmod users run), else in LMOD_PLACES. Raises
    HitError, one line naming where it looked, when there is none."""
    given = os.environ.get("LMOD_DIR")
    places = [Path(given)] if given else list(LMOD_PLACES)
    for place in places:
        spider = place / "spider"
        if spider.is_file() and os.access(spider, os.X_OK):
            return spider
    looked = f"$LMOD_DIR={given}" if given else ", ".join(str(p) for p in places)
    raise HitError(
        f"{site.file}: modules: spider_cache: true needs Lmod's spider tool, and there is none "
        f"(looked in {looked}); install Lmod, run hdmod where `module` is Lmod (its init sets "
        "LMOD_DIR), or set spider_cache: false"
    )


def write_spider_cache(site: Site, tree: Path) -> None:
    """When the site asks for it (`modules: spider_cache: true`), write Lmod's spider cache of
    the staged tree `tree` (holding `lmod/`) into `tree/lmod-cache/` (CACHE_DIR: spiderT.lua,
    timestamp, lmodrc.lua), its paths named through the module path link. Raises HitError
    when Lmod is missing, its spider fails or times out (SPIDER_TIMEOUT_S), or the cache
    would not list exactly the tree's modulefiles: the caller then leaves `tree` unpublished."""
    cfg = site.modules
    if not cfg.spider_cache or "lmod" not in cfg.formats:
        return
    spider = find_spider(site)
    staging, link = tree / "lmod", cfg.path / "lmod"
    top = staging / "Core" if cfg.layout == "hierarchy" else staging
    where = f"{site.file}: modules: spider_cache"
    with tempfile.TemporaryDirectory(prefix="hdmod-spider-") as tmp:
        hook, found = Path(tmp, "hook.lua"), Path(tmp, "found")
        hook.write_text(SPIDER_HOOK)
        env = _spider_env(hook, {"HDMOD_LINK": str(link), "HDMOD_STAGING": str(staging)})
        env["HDMOD_FOUND"] = str(found)
        try:
            run = subprocess.run(
                [str(spider), "-o", "spiderT", str(top)],
                env=env,
                capture_output=True,
                timeout=SPIDER_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise HitError(
                f"{where}: {spider} took over {SPIDER_TIMEOUT_S} s{UNPUBLISHED}"
            ) from None
        except OSError as e:
            raise HitError(
                f"{where}: cannot run {spider}: {e.strerror or e}{UNPUBLISHED}"
            ) from None
        said = run.stderr.decode(errors="replace").strip().splitlines()
        if run.returncode != 0:
            reason = said[-1] if said else "no message"
            raise HitError(
                f"{where}: {spider} failed (exit {run.returncode}): {reason}{UNPUBLISHED}"
            )
        if not found.exists():  # this Lmod read no LMOD_RC file, or wrote no spiderT
            raise HitError(f"{where}: {spider} did not run hdmod's LMOD_RC hook{UNPUBLISHED}")
        listed = {os.fsdecode(fn) for fn in found.read_bytes().splitlines()}
    _check_cache(where, run.stdout, listed, tree, link)
    cache = tree / CACHE_DIR
    cache.mkdir(exist_ok=True)
    (cache / CACHE_FILE).write_bytes(run.stdout)
    written = (cache / CACHE_FILE).stat()
    (cache / TIMESTAMP_FILE).write_bytes(b"")
    os.utime(cache / TIMESTAMP_FILE, ns=(written.st_atime_ns, written.st_mtime_ns))
    for rel, content in spider_cache_files(site, spider).items():
        if not (tree / rel).exists():  # render_tree may have put it there
            (tree / rel).write_bytes(content)


def _spider_env(hook: Path, paths: dict[str, str]) -> dict[str, str]:
    """hdmod's environment for the spider run, as update_lmod_system_cache_files would have
    it (the site's LMOD_RC files, MODULERCFILE, SitePackage), with: the hook appended to
    LMOD_RC, `paths` (HDMOD_LINK, HDMOD_STAGING) added, no MODULEPATH or loaded modules, and
    HOME and HIT_HOME at a folder that does not exist, so neither the admin's own rc files nor
    their own modules (the templates open `$HIT_HOME/modules/...` too) enter the cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MODULEPATH", "LOADEDMODULES", "_LMFILES_")
        and not k.startswith(("_ModuleTable", "__LMOD_REF_COUNT"))
    }
    env["LMOD_RC"] = ":".join(filter(None, (env.get("LMOD_RC"), str(hook))))
    env.update(paths, HOME=NO_HOME, HIT_HOME=NO_HOME)
    return env


def _check_cache(where: str, text: bytes, listed: set[str], tree: Path, link: Path) -> None:
    """The cache `text` must list exactly the modulefiles of `tree`/lmod (it may list their rc
    files too), each through `link` (the module path's `lmod`), and name no path of `tree`:
    otherwise spider walked something else than this tree (a previous tree through the link,
    say) and Lmod would trust a wrong cache. `listed`: the `fn` paths of spiderT, written by
    SPIDER_HOOK. Raises HitError naming up to three files."""
    modulefiles, rc_files = set(), set()
    for path in (tree / "lmod").rglob("*"):
        if path.is_file():
            through_link = str(link / path.relative_to(tree / "lmod"))
            (rc_files if path.name.startswith(".") else modulefiles).add(through_link)
    missing = sorted(modulefiles - listed)
    stray = sorted(listed - modulefiles - rc_files)
    problem = None
    if missing:
        problem = f"spider did not list {len(missing)} modulefile(s): {', '.join(missing[:3])}"
    elif stray:
        problem = f"spider listed file(s) not in the tree: {', '.join(stray[:3])}"
    elif b"spiderT" not in text or os.fsencode(tree) in text:
        problem = "spider wrote no spiderT, or one naming the staging folder"
    if problem:
        raise HitError(f"{where}: Lmod's {problem}{UNPUBLISHED}")
