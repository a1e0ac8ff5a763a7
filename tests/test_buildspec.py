"""The build spec and profile document: one serialisation, golden ids, reproducible hashes,
and the generic document diff that `hit diff` and `hit build --explain` print."""

import json
import os
import subprocess
import sys

from hdmodules.build.explain import changes, diff_docs, explain, nearest
from hdmodules.hashing import hash_doc
from hdmodules.spec.buildspec import (
    BuildSpec,
    ProfileDoc,
    SourceInput,
    from_record,
    record_id,
    references,
)
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.recipes import source_hash
from hdmodules.spec.resolve import BUILD_ENV_VERSION, platform_doc, resolve
from tests.conftest import DEMO, REPO

PIN = {"version": "gcc (Debian 12.2.0-14) 12.2.0", "cc": "/usr/bin/gcc-12@0123456789abcdef"}
COMPILER = {"kind": "compiler", "version": "12.2.0", "prefix": None, "module": None, "pin": PIN}
GOLDEN_DOC = {
    "name": "app",
    "version": "1.0",
    "sources": [{"hash": "sha256:" + "ab" * 32, "dest": "."}],
    "build": "make && make install PREFIX=$ARTIFACT\n",
    "parameters": {"greeting": "Hello", "debug": False, "level": 3},
    "dependencies": {"libcore": "libcore/" + "a" * 32, "liba": "liba/" + "b" * 32},
    "toolchain": {"compiler": COMPILER},
    "platform": {"system": "linux", "machine": "x86_64", "libc": "glibc 2.36"},
    "build_env": 2,
}
# computed with hash_doc over the literal document above, before BuildSpec existed: a change
# here changes every artifact id of every store (all would be rebuilt)
GOLDEN_BUILD = "zmrdyfltpmaxvz2sbbvvz6h53rxygfoi"
GOLDEN_PROFILE = "gz7bpfscploonnpzkdtsad573u7epqrk"


def golden_spec() -> BuildSpec:
    return BuildSpec(
        name="app",
        version="1.0",
        sources=(SourceInput("sha256:" + "ab" * 32, "."),),
        build="make && make install PREFIX=$ARTIFACT\n",
        parameters={"greeting": "Hello", "debug": False, "level": 3},
        dependencies={"libcore": "libcore/" + "a" * 32, "liba": "liba/" + "b" * 32},
        toolchain={"compiler": COMPILER},
        platform={"system": "linux", "machine": "x86_64", "libc": "glibc 2.36"},
        build_env=2,
    )


def test_golden_ids_are_unchanged():
    spec = golden_spec()
    assert spec.to_doc() == GOLDEN_DOC
    assert hash_doc("build", GOLDEN_DOC) == GOLDEN_BUILD and spec.hash() == GOLDEN_BUILD
    profile = ProfileDoc({"app": "app/" + "c" * 32}, ("app",))
    assert profile.to_doc() == {"artifacts": {"app": "app/" + "c" * 32}, "prefer": ["app"]}
    assert profile.hash() == GOLDEN_PROFILE


def test_demo_ids_equal_the_old_way_of_hashing():
    """Each spec resolve makes is the very document the dict-based resolver hashed."""
    r = resolve(load_profile(DEMO / "default.yaml"))
    for node in r.nodes.values():
        recipe = node.recipe
        old = {
            "name": recipe.name,
            "version": recipe.version,
            "sources": [{"hash": source_hash(s), "dest": s.dest} for s in recipe.sources],
            "build": recipe.build,
            "parameters": node.parameters,
            "dependencies": {d: r.nodes[d].ref.id for d in recipe.dependencies},
            "toolchain": {k: e.spec() for k, e in sorted(node.toolchain.items())},
            "platform": platform_doc(),
            "build_env": BUILD_ENV_VERSION,
        }
        assert node.spec.to_doc() == old and node.ref.hash == hash_doc("build", old)
    old_profile = {"artifacts": {n: r.nodes[n].ref.id for n in r.packages}, "prefer": []}
    assert r.profile_doc.to_doc() == old_profile
    assert r.profile_ref.hash == hash_doc("profile", old_profile)


def test_records_read_back_and_old_ones_are_tolerated():
    spec = golden_spec()
    record = spec.record("app/" + GOLDEN_BUILD)
    assert record == {"id": "app/" + GOLDEN_BUILD, **GOLDEN_DOC}
    assert from_record(record) == spec and record_id(record) == "app/" + GOLDEN_BUILD
    assert spec.references() == ("libcore/" + "a" * 32, "liba/" + "b" * 32)
    profile = ProfileDoc({"app": "app/x"}, ("app",))
    assert from_record(profile.record("profile/y")) == profile
    assert profile.record("profile/y")["kind"] == "profile" and profile.references() == ("app/x",)
    # an old or damaged build.json: missing keys read as empty, wrong types too, never raises
    old = BuildSpec.from_doc({"name": "x", "dependencies": {"y": "y/1"}})
    assert old.version == "" and old.sources == () and old.build_env == 0
    assert old.references() == ("y/1",)
    damaged = from_record({"dependencies": ["not", "a", "mapping"], "sources": "x", "id": 3})
    assert damaged.references() == () and damaged.sources == ()
    assert from_record([]) == BuildSpec("", "") and record_id([]) == "" and record_id({}) == ""
    # gc reads references straight from the record: the same ids as the typed value's
    old_profile = {"id": "profile/z", "artifacts": {"app": "app/x"}}  # written without `kind`
    for doc in (record, profile.record("profile/y"), old_profile, {}, [], {"artifacts": 1}):
        assert references(doc) == from_record(doc).references()
    assert references(old_profile) == ("app/x",)


def test_ids_are_the_same_in_processes_with_other_hash_seeds():
    script = (
        "from pathlib import Path\n"
        "from hdmodules.spec.profiles import load_profile\n"
        "from hdmodules.spec.resolve import resolve\n"
        f"r = resolve(load_profile(Path({str(DEMO / 'default.yaml')!r})))\n"
        "print(*[n.ref.id for n in r.nodes.values()], r.profile_ref.id)\n"
    )
    outs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        cmd = [sys.executable, "-c", script]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=True)
        outs.append(p.stdout.split())
    assert len(outs[0]) == 5 and outs[0] == outs[1]


# --- the document diff ----------------------------------------------------------------------


def test_diff_docs_walks_mappings_and_lists():
    a = {"x": {"k": 1, "same": 2}, "l": [1, 2], "gone": {"p": 1}}
    b = {"x": {"k": 3, "same": 2}, "l": [1, 5, 6], "new": "v"}
    assert list(diff_docs(a, b)) == [
        (("gone", "p"), 1, None),
        (("l", 1), 2, 5),
        (("l", 2), None, 6),
        (("new",), None, "v"),
        (("x", "k"), 1, 3),
    ]
    assert list(diff_docs({"a": [1]}, {"a": {"0": 1}})) == [(("a",), [1], {"0": 1})]
    assert list(diff_docs(GOLDEN_DOC, GOLDEN_DOC)) == []


def _variant(**changed) -> dict:
    return {**GOLDEN_DOC, "id": "app/" + "e" * 32, **changed}


def _cut(text: str) -> str:
    """How a long value is shown: as JSON writes it, cut to 67 characters and an ellipsis."""
    return json.dumps(text)[:67] + "..."


def test_explain_wording():
    base = {**GOLDEN_DOC, "id": "app/" + GOLDEN_BUILD}
    other = _variant(
        version="1.1",
        sources=[{"hash": "tree:" + "cd" * 32, "dest": "."}],
        build="make -j4 && make install PREFIX=$ARTIFACT\n",
        parameters={"greeting": "Hi", "debug": False, "level": 3},
        toolchain={"compiler": {**COMPILER, "pin": {**PIN, "cc": "/usr/bin/gcc-12@ffff"}}},
        dependencies={"libcore": "libcore/" + "a" * 32, "libb": "libb/" + "d" * 32},
    )
    lines = explain(base, other, lambda _id: None)
    assert lines == [
        '  version: "1.0" -> "1.1"',
        f"  source 1: {_cut('sha256:' + 'ab' * 32)} -> {_cut('tree:' + 'cd' * 32)}",
        "  build script changed: -make && make install PREFIX=$ARTIFACT; "
        "+make -j4 && make install PREFIX=$ARTIFACT",
        '  parameter greeting: "Hello" -> "Hi"',
        '  external compiler pin cc: "/usr/bin/gcc-12@0123456789abcdef" -> "/usr/bin/gcc-12@ffff"',
        "  dependency liba removed",
        "  dependency libb added",
    ]
    assert [path for path, _o, _n in changes(base, other)][0] == ("version",)  # id is no cause


def test_explain_follows_a_changed_dependency_to_the_root_cause():
    core_a = {"id": "libcore/" + "a" * 32, "name": "libcore", "parameters": {"opt": 1}}
    core_b = {"id": "libcore/" + "f" * 32, "name": "libcore", "parameters": {"opt": 2}}
    specs = {d["id"]: d for d in (core_a, core_b)}
    base = {**GOLDEN_DOC, "id": "app/" + GOLDEN_BUILD}
    other = _variant(dependencies={**GOLDEN_DOC["dependencies"], "libcore": core_b["id"]})
    assert explain(base, other, specs.get) == [
        f"  dependency libcore changed (libcore/{'a' * 12} -> libcore/{'f' * 12})",
        "    parameter opt: 1 -> 2",
    ]


def test_nearest_is_the_build_with_fewest_changes():
    far = _variant(version="0.9", build="x")
    near = _variant(build="x")
    other_package = {**near, "name": "lib"}
    assert nearest(GOLDEN_DOC, [far, near, other_package]) is near
    assert nearest(GOLDEN_DOC, [other_package]) is None
