"""Profile switches that assemble only what changed (publish/assemble.py, publish/farm.py)
and resolution's cache of recipes and source hashes (spec/resolvecache.py): the result is
always the one made from scratch."""

from __future__ import annotations

import json
import marshal
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdmodules.errors import HitError
from hdmodules.hashing import canonical_json
from hdmodules.publish.assemble import (
    FARM_INDEX,
    package_paths,
    read_farm_index,
    write_farm_index,
)
from hdmodules.publish.farm import plan_links, write_farm
from hdmodules.spec import recipes, resolvecache
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.resolve import resolve
from hdmodules.store.layout import MANIFEST, META, read_manifest
from tests.conftest import DEMO, write_profile, write_recipe

# --- incremental assembly == from scratch ---------------------------------------------------

FOLDERS = ["bin", "lib", "lib/pkgconfig", "share/doc", "share/man/man1", "include", "etc/x"]
NAMES = ["a", "b", "c"]
PACKAGES = [f"p{i}" for i in range(6)]

package_files = st.lists(
    st.tuples(st.sampled_from(FOLDERS), st.sampled_from(NAMES)), min_size=1, max_size=5
)
steps = st.lists(
    st.tuples(
        st.lists(st.sampled_from(PACKAGES), unique=True, min_size=1),  # the profile's packages
        st.lists(st.sampled_from(PACKAGES), unique=True, max_size=3),  # prefer:
        st.sampled_from([frozenset(), frozenset({"bin"}), frozenset({"lib/pkgconfig"})]),
        st.integers(0, 1),  # which build of each package (a new artifact, the same name)
    ),
    min_size=1,
    max_size=6,
)


def _package(store: Path, name: str, build: int, files: list[tuple[str, str]]) -> Path:
    """A package artifact with its own files plus `files` (folders shared with others)."""
    prefix = store / name / f"1-{build}"
    if not prefix.is_dir():
        rels = {f"{d}/{f}" for d, f in files} | {f"share/{name}/own", f"bin/{name}-{build}"}
        (prefix / META).mkdir(parents=True)
        (prefix / META / MANIFEST).write_text(json.dumps({r: "f:0" for r in sorted(rels)}))
    return prefix


def _on_disk(prefix: Path) -> dict[str, str]:
    """Every link below a farm: relative path -> target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(prefix):
        dirnames[:] = [d for d in dirnames if d != META]
        for name in filenames + [d for d in dirnames if os.path.islink(f"{dirpath}/{d}")]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                out[os.path.relpath(path, prefix)] = os.readlink(path)
    return out


def _plan(manifests, prefer, open_dirs):
    try:
        return plan_links(manifests, prefer, open_dirs=open_dirs)
    except HitError as e:
        return str(e)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.fixed_dictionaries({p: package_files for p in PACKAGES}), steps=steps)
def test_a_switch_planned_from_the_previous_profile_is_the_one_from_scratch(
    tmp_path_factory, files, steps
):
    root = tmp_path_factory.mktemp("switches")
    previous = None
    for k, (names, prefer, open_dirs, build) in enumerate(steps):
        held = {n: _package(root / "store", n, build, files[n]) for n in names}
        scratch = {n: (p, list(read_manifest(p))) for n, p in held.items()}
        index = read_farm_index(previous)
        reused = package_paths(held, index)
        expected = _plan(scratch, prefer, open_dirs)
        assert _plan(reused, prefer, open_dirs) == expected  # links, or the same error
        if isinstance(expected, str):
            continue
        farm = root / "profile" / str(k)
        (farm / META).mkdir(parents=True)
        manifest = write_farm(farm, expected, str(previous) if previous else None, index.links)
        write_farm_index(farm, reused, expected)
        (farm / META / MANIFEST).write_text(json.dumps(manifest))
        assert _on_disk(farm) == expected
        assert manifest == {rel: f"l:{t}" for rel, t in expected.items()}
        previous = farm


def test_a_damaged_index_means_the_manifests_are_read(tmp_path):
    a = _package(tmp_path / "store", "a", 0, [("bin", "a")])
    farm = tmp_path / "profile" / "x"
    (farm / META).mkdir(parents=True)
    whole = {"a": (a, list(read_manifest(a)))}
    for damaged in (
        marshal.dumps({"packages": {"a": [str(a), [7]]}, "links": {}}),  # wrong shape
        marshal.dumps({"a": [str(a), ["bin/x"], 7]}),  # its first form, a wrong stamp
        b"",
        b"\x00garbage",
        marshal.dumps({"packages": {"a": [str(a), ["bin/x"], [1]]}, "links": {}})[:-3],
    ):
        (farm / META / FARM_INDEX).write_bytes(damaged)  # cut short, or not marshal at all
        index = read_farm_index(farm)
        assert index.links is None and package_paths({"a": a}, index) == whole
    # a farm's plan of another shape is not planned from (its links still serve)
    good = {"packages": {"a": [str(a), ["bin/x"], None]}, "links": {"bin/x": "/t"}}
    # (owners as sets: the index of the code before, which kept them so)
    for owners in ({"bin": ["a"]}, {"bin": {"a"}}, [("bin", "a")], {"bin": "a", "lib": 7}):
        doc = {**good, "owners": owners, "shared": set(), "prefer": []}
        (farm / META / FARM_INDEX).write_bytes(marshal.dumps(doc))
        index = read_farm_index(farm)
        assert index.planned is None and index.links == {"bin/x": "/t"}
    doc = {**good, "owners": {"bin": "a"}, "shared": set(), "prefer": []}
    (farm / META / FARM_INDEX).write_bytes(marshal.dumps(doc))
    assert read_farm_index(farm).planned is not None
    # its first form (packages alone, no links) stands for the packages
    (farm / META / FARM_INDEX).write_bytes(marshal.dumps({"a": [str(a), ["bin/x"], None]}))
    index = read_farm_index(farm)
    assert index.links is None and index.packages == {"a": [str(a), ["bin/x"], None]}


# --- a switch through the real command line --------------------------------------------------


def _visible(profile: Path) -> set[str]:
    """Every file a user sees below the profile (links followed; not its metadata)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(profile, followlinks=True):
        dirnames[:] = [d for d in dirnames if dirpath != str(profile) or d != META]
        out |= {os.path.relpath(os.path.join(dirpath, f), profile) for f in filenames}
    return out


def _switch_project(tmp_path: Path) -> Path:
    for name, shared in [("one", "x"), ("two", "y"), ("three", "z"), ("four", "w")]:
        write_recipe(
            tmp_path / "pkgs",
            name,
            f"""
            version: "1"
            build: |
              mkdir -p "$ARTIFACT/bin" "$ARTIFACT/share/{name}/doc" "$ARTIFACT/lib/common"
              echo {name} > "$ARTIFACT/bin/{name}"
              echo {name} > "$ARTIFACT/share/{name}/doc/README"
              echo {name} > "$ARTIFACT/lib/common/{shared}.txt"
            """,
        )
    write_recipe(
        tmp_path / "pkgs",
        "clash",
        """
        version: "1"
        build: |
          mkdir -p "$ARTIFACT/bin" && echo clash > "$ARTIFACT/bin/two"
        """,
    )
    return tmp_path / "default.yaml"


def test_removing_a_package_removes_exactly_its_files_and_a_conflict_still_fails(
    hit, tmp_path, home
):
    profile = _switch_project(tmp_path)
    write_profile(profile, "package_dirs: [pkgs]\npackages: [one, two, three, four]\n")
    hit("build", "-q", str(profile))
    before = _visible(tmp_path / "default")
    assert "bin/three" in before and "lib/common/z.txt" in before
    write_profile(profile, "package_dirs: [pkgs]\npackages: [one, two, four]\n")
    r = hit("build", str(profile))
    assert "assembled in" in r.err
    after = _visible(tmp_path / "default")
    assert after == before - {"bin/three", "share/three/doc/README", "lib/common/z.txt"}
    # two packages left in lib/common: still one folder of links; one left in share
    write_profile(profile, "package_dirs: [pkgs]\npackages: [one, four]\n")
    hit("build", str(profile))
    lib = tmp_path / "default" / "lib"
    assert not (lib / "common").is_symlink() and os.path.islink(lib / "common" / "x.txt")
    write_profile(profile, "package_dirs: [pkgs]\npackages: [one]\n")
    hit("build", str(profile))
    assert os.readlink(tmp_path / "default" / "lib").endswith("/lib")  # folded: one owner
    assert _visible(tmp_path / "default") == {
        "bin/one",
        "share/one/doc/README",
        "lib/common/x.txt",
    }

    # a conflict fails as it does with no earlier profile (another home: nothing to reuse)
    write_profile(profile, "package_dirs: [pkgs]\npackages: [one, two, clash]\n")
    switched = hit("build", str(profile), check=False)
    fresh = hit(
        "build", str(profile), check=False, env={**os.environ, "HIT_HOME": str(tmp_path / "h2")}
    )
    message = "packages two and clash conflict on bin/two (both ship it)"
    assert switched.code != 0 and message in switched.err
    assert fresh.code != 0 and switched.err.splitlines()[-1] == fresh.err.splitlines()[-1]


# --- resolution's cache -------------------------------------------------------------------


@pytest.fixture
def cache(home, monkeypatch):
    """Every stamp settles at once (the test edits files within one clock tick's reach of
    caching them, so each edit below changes a size or sets an mtime); counts recipe loads."""
    home.mkdir()
    monkeypatch.setattr(resolvecache, "SETTLE_NS", -(10**12))
    monkeypatch.setattr(resolvecache, "_CACHE", resolvecache._Cache())
    loads = []
    real = recipes.load_recipe
    monkeypatch.setattr(recipes, "load_recipe", lambda f: loads.append(f) or real(f))
    return loads


def _specs(resolved) -> dict[str, str]:
    return {n: canonical_json(node.spec.to_doc()) for n, node in resolved.nodes.items()}


def test_cached_resolution_is_byte_identical(cache, home, monkeypatch):
    cold = resolve(load_profile(DEMO / "default.yaml"), cache=home / ".cache")
    assert (home / ".cache" / resolvecache.FILE).is_file()
    monkeypatch.setattr(resolvecache, "_CACHE", resolvecache._Cache())  # a new process
    n = len(cache)
    warm = resolve(load_profile(DEMO / "default.yaml"), cache=home / ".cache")
    assert len(cache) == n  # every recipe came from the cache
    bare = resolve(load_profile(DEMO / "default.yaml"))  # no cache at all
    assert len(cache) == 2 * n
    for r in (warm, bare):
        assert _specs(r) == _specs(cold)
        assert r.profile_ref == cold.profile_ref
        assert [x.ref for x in r.nodes.values()] == [x.ref for x in cold.nodes.values()]


def test_the_cache_follows_recipes_sources_and_shadowing(cache, home, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.c").write_text("int main(void) { return 0; }\n")
    write_recipe(
        tmp_path / "late", "tool", 'version: "1"\nsources: [{path: ../src}]\nbuild: make\n'
    )
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [early, late]\npackages: [tool]\n")
    (tmp_path / "early").mkdir()

    def ref():
        return resolve(load_profile(profile), cache=home / ".cache").nodes["tool"].ref

    first = ref()
    assert ref() == first and len(cache) == 1  # unchanged: from the cache
    write_recipe(
        tmp_path / "late", "tool", 'version: "1"\nsources: [{path: ../src}]\nbuild: make all\n'
    )
    edited = ref()
    assert edited != first and len(cache) == 2
    (src / "main.c").write_text("int main(void) { return 1; }\n")  # same size
    os.utime(src / "main.c", ns=(1, 10**18))
    touched = ref()
    assert touched not in (first, edited)
    write_recipe(tmp_path / "early", "tool", 'version: "2"\nbuild: "true"\n')
    shadowed = ref()
    assert shadowed.version == "2" and len(cache) == 3
    (tmp_path / "early" / "tool.yaml").unlink()
    assert ref() == touched and len(cache) == 3  # the late recipe again, still cached


def test_the_cache_sees_a_file_added_removed_or_renamed_deep_in_a_source(cache, home, tmp_path):
    """A cached source hash is checked by the stamps of the paths it was made from (no
    listing): a file added, renamed or removed in a folder below is seen through that
    folder's stamp, whatever the file's name."""
    src = tmp_path / "src"
    (src / "lib" / "deep").mkdir(parents=True)
    (src / "lib" / "deep" / "a.c").write_text("int a;\n")
    write_recipe(
        tmp_path / "pkgs", "tool", 'version: "1"\nsources: [{path: ../src}]\nbuild: make\n'
    )
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [tool]\n")

    def ref():
        return resolve(load_profile(profile), cache=home / ".cache").nodes["tool"].ref

    first = ref()
    assert ref() == first  # from the cache
    (src / "lib" / "deep" / "b.c").write_text("int b;\n")
    added = ref()
    assert added != first
    (src / "lib" / "deep" / "b.c").rename(src / "lib" / "deep" / "c.c")
    renamed = ref()
    assert renamed not in (first, added)
    (src / "lib" / "deep" / "c.c").unlink()
    assert ref() == first
    shutil.rmtree(src)
    src.write_text("int main;\n")  # the folder is now a file: hashed as a file
    assert ref() not in (first, added, renamed)


def test_a_damaged_cache_is_a_full_resolution(cache, home, monkeypatch):
    file = home / ".cache" / resolvecache.FILE
    file.parent.mkdir(parents=True)
    file.write_bytes(b"not a pickle")
    file.chmod(0o600)
    r = resolve(load_profile(DEMO / "default.yaml"), cache=file.parent)
    assert len(cache) == len(r.nodes)
    monkeypatch.setattr(resolvecache, "_CACHE", resolvecache._Cache())
    file.chmod(0o666)  # writable by others: not trusted
    resolve(load_profile(DEMO / "default.yaml"), cache=file.parent)
    assert len(cache) == 2 * len(r.nodes)


def test_the_cache_follows_build_system_templates(cache, home, tmp_path):
    write_recipe(tmp_path / "late", "tool", 'version: "1"\nbuild_system: make\n')
    (tmp_path / "early").mkdir()
    profile = write_profile(tmp_path / "p.yaml", "package_dirs: [early, late]\npackages: [tool]\n")

    def body():
        return resolve(load_profile(profile), cache=home / ".cache").nodes["tool"].spec.build

    builtin = body()
    assert body() == builtin and "make" in builtin
    template = tmp_path / "early" / "build_systems" / "make.sh.j2"
    template.parent.mkdir()
    template.write_text("echo site-make\n")  # a site's template, earlier in the lookup
    assert "echo site-make" in body()
    template.write_text("echo site-make-2\n")
    assert "echo site-make-2" in body()
    template.unlink()
    assert body() == builtin


def test_a_farm_whose_links_cannot_be_hard_linked_gets_new_ones(tmp_path, monkeypatch):
    links = {"bin/a": "/s/a/bin/a", "bin/b": "/s/b/bin/b", "share": "/s/a/share"}
    old = tmp_path / "old"
    write_farm(old, links)
    tried = []

    def refuse(src, dst, **kw):  # another owner's profile, another filesystem
        tried.append(dst)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    new = tmp_path / "new"
    links["bin/c"] = "/s/c/bin/c"
    assert write_farm(new, links, str(old)) == {r: f"l:{t}" for r, t in links.items()}
    assert _on_disk(new) == links and len(tried) == 1  # refused once: not asked again


def test_a_package_built_again_with_other_files_is_not_planned_from_the_index(hit, tmp_path):
    """An artifact removed behind hit's back is built again at the same prefix, and its
    build names a file by the date: the next switch takes its files from its new manifest,
    not from the index of the profile that held the first build (whose file is gone)."""
    write_recipe(
        tmp_path / "pkgs",
        "dated",
        'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n'
        '  echo x > "$ARTIFACT/bin/dated-$(date +%s%N)"\n',
    )
    write_recipe(
        tmp_path / "pkgs",
        "other",
        'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/bin"\n  echo x > "$ARTIFACT/bin/other"\n',
    )
    profile = write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [dated]\n")
    hit("build", cwd=tmp_path)
    dated = next((tmp_path / "hithome" / "bld" / "dated").iterdir())
    first = {p.name for p in (dated / "bin").iterdir()}
    shutil.rmtree(dated)  # removed behind hit's back (an admin, a full disk cleaned)
    hit("build", cwd=tmp_path)  # built again: the same artifact id, another file
    again = {p.name for p in (dated / "bin").iterdir()}
    assert again != first
    write_profile(profile, "package_dirs: [pkgs]\npackages: [dated, other]\n")
    hit("build", cwd=tmp_path)
    assert {p.name for p in (tmp_path / "default" / "bin").iterdir()} == again | {"other"}
    assert all(p.exists() for p in (tmp_path / "default" / "bin").iterdir())  # none dangles
