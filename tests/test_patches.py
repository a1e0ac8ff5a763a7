"""Recipe patches (issue 15, item 4): applied in order with GNU patch after the sources are
unpacked, hashed by content, and a patch that does not apply stops the build naming it; a
`when:` block's patches (under a version condition) after the recipe's, for that version
only."""

import hashlib
import json
import shutil
import subprocess

import pytest

from tests.conftest import need, write_profile, write_recipe

HELLO_C = '#include <stdio.h>\nint main(void) {\n    puts("hello");\n    return 0;\n}\n'
# a git-style patch: changes main.c and adds a file
SHOUT = """\
diff --git a/main.c b/main.c
--- a/main.c
+++ b/main.c
@@ -1,5 +1,5 @@
 #include <stdio.h>
 int main(void) {
-    puts("hello");
+    puts("HELLO, patched");
     return 0;
 }
diff --git a/NOTE b/NOTE
new file mode 100644
--- /dev/null
+++ b/NOTE
@@ -0,0 +1 @@
+added by a patch
"""
# applies only after SHOUT (strip 0: paths without a/ b/)
EXCLAIM = """\
--- main.c
+++ main.c
@@ -1,5 +1,5 @@
 #include <stdio.h>
 int main(void) {
-    puts("HELLO, patched");
+    puts("HELLO, patched!");
     return 0;
 }
"""
# does not match the sources: its context says "goodbye"
BROKEN = """\
--- a/main.c
+++ b/main.c
@@ -1,5 +1,5 @@
 #include <stdio.h>
 int main(void) {
-    puts("goodbye");
+    puts("farewell");
     return 0;
 }
"""
BUILD = """\
  mkdir -p "$ARTIFACT/bin" "$ARTIFACT/share"
  $CC -o "$ARTIFACT/bin/hello" main.c
  if [ -e NOTE ]; then cp NOTE "$ARTIFACT/share/"; fi
"""


@pytest.fixture(autouse=True)
def _tools():
    need(shutil.which("patch") is not None, "GNU patch")
    need(shutil.which("gcc") is not None, "gcc")


def _package(tmp_path, patches: str):
    """A package `hello` from a folder source, with the given `patches:` YAML list."""
    src = tmp_path / "pkgs" / "hello-src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "main.c").write_text(HELLO_C)
    recipe = 'version: "1.0"\nsources:\n  - path: hello-src\n'
    recipe += f"patches: {patches}\n" if patches else ""
    recipe += "build: |\n" + BUILD
    (tmp_path / "pkgs" / "hello.yaml").write_text(recipe)
    return write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [hello]\n")


def _installed(home) -> list[str]:
    folder = home / "bld" / "hello"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_patches_apply_in_order_and_change_the_program(hit, home, tmp_path):
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT)
    exclaim = tmp_path / "exclaim.diff"  # fetched: a file:// URL with its sha256
    exclaim.write_text(EXCLAIM)
    sha = hashlib.sha256(exclaim.read_bytes()).hexdigest()
    patches = f"[shout.patch, {{url: '{exclaim.as_uri()}', sha256: {sha}, strip: 0}}]"
    profile = _package(tmp_path, patches)
    hit("build", str(profile))
    out = subprocess.run([tmp_path / "default" / "bin" / "hello"], capture_output=True, text=True)
    assert out.stdout == "HELLO, patched!\n"
    assert (tmp_path / "default" / "share" / "NOTE").read_text() == "added by a patch\n"
    # the recipe's own folder source is untouched, and the spec shows both patches in order
    assert (tmp_path / "pkgs" / "hello-src" / "main.c").read_text() == HELLO_C
    spec = json.loads(hit("show", "buildspec", "hello", "-p", str(profile)).out)
    shout = hashlib.sha256(SHOUT.encode()).hexdigest()
    assert spec["patches"] == [{"hash": shout, "strip": 1}, {"hash": sha, "strip": 0}]
    # `hit bdir` gives the patched tree too: what `bash build.sh` builds by hand
    hit("bdir", "hello", str(tmp_path / "by-hand"), "-p", str(profile))
    assert "HELLO, patched!" in (tmp_path / "by-hand" / "src" / "main.c").read_text()


def test_editing_a_patch_changes_the_hash_and_rebuilds(hit, home, tmp_path):
    (tmp_path / "pkgs").mkdir()
    patch = tmp_path / "pkgs" / "shout.patch"
    patch.write_text(SHOUT)
    profile = _package(tmp_path, "[shout.patch]")
    hit("build", str(profile))
    first = _installed(home)
    # the same patch with another strip level is another build spec
    plain = _package(tmp_path, "[{path: shout.patch, strip: 1}]")
    assert hit("build", str(plain)).err.count("present") == 1 and _installed(home) == first
    patch.write_text(SHOUT.replace("HELLO, patched", "HELLO, edited"))
    r = hit("build", str(profile))  # the no-op memo must notice the edited patch
    assert "built in" in r.err
    second = _installed(home)
    assert len(second) == 2 and set(first) < set(second)
    out = subprocess.run([tmp_path / "default" / "bin" / "hello"], capture_output=True, text=True)
    assert out.stdout == "HELLO, edited\n"
    why = hit("build", "--explain", str(_package(tmp_path, "[]"))).err
    assert "patch 1: " in why and "patch 1 strip: 1 -> null" in why
    # no patches at all is the same build spec as an empty list: ids of old recipes stay
    without = json.loads(hit("show", "buildspec", "hello", "-p", str(profile)).out)
    _package(tmp_path, "")
    assert json.loads(hit("show", "buildspec", "hello", "-p", str(profile)).out) == without
    assert "patches" not in without


def test_a_patch_that_does_not_apply_stops_with_its_name_and_hunk(hit, home, tmp_path):
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT)
    (tmp_path / "pkgs" / "broken.patch").write_text(BROKEN)
    profile = _package(tmp_path, "[shout.patch, broken.patch]")
    r = hit("build", str(profile), check=False)
    assert r.code == 1 and "Traceback" not in r.err
    broken = tmp_path / "pkgs" / "broken.patch"
    assert f"patch 2 of 2 {broken} (strip 1) does not apply to the sources:" in r.err
    assert "Hunk #1 FAILED" in r.err
    assert '-    puts("goodbye");' in r.err and '+    puts("farewell");' in r.err
    assert r.err.count("hit: error:") == 1
    assert _installed(home) == []  # nothing in the store
    assert not (tmp_path / "default").exists()
    # the kept tree is as the first patch left it: the broken one changed nothing
    kept = next((home / "tmp").glob("hello-*"))
    assert 'puts("HELLO, patched");' in (kept / "src" / "main.c").read_text()
    assert "farewell" in (kept / "broken.patch.rej").read_text()


def test_a_patch_applied_twice_is_refused_not_reversed(hit, home, tmp_path):
    """Two files holding the same change: the second finds it applied, which patch(1) would
    take for a reversed patch and undo; the build fails instead."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT.split("diff --git a/NOTE")[0])
    (tmp_path / "pkgs" / "again.patch").write_text(SHOUT.split("diff --git a/NOTE")[0])
    profile = _package(tmp_path, "[shout.patch, {path: again.patch, strip: 1}]")
    r = hit("build", str(profile), check=False)
    assert r.code == 1 and "patch 2 of 2" in r.err
    assert "Reversed (or previously applied) patch detected" in r.err
    assert _installed(home) == []


def test_a_patch_listed_twice_is_refused_at_its_line_before_building(hit, home, tmp_path):
    """`patches: [x, x]` was found only when the second did not apply; now the recipe is
    refused at the second item's line, as a dependency listed twice is."""
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT)
    profile = _package(tmp_path, "\n  - shout.patch\n  - {path: shout.patch, strip: 1}")
    r = hit("build", str(profile), check=False)
    assert r.code == 1 and "Traceback" not in r.err
    assert "hello.yaml:6: patch 'shout.patch' is listed twice" in r.err, r.err
    assert _installed(home) == []
    (tmp_path / "pkgs" / "loud.patch").symlink_to("shout.patch")  # the same file by a link
    _package(tmp_path, "\n  - shout.patch\n  - loud.patch")
    r = hit("build", str(profile), check=False)
    assert r.code == 1 and "Traceback" not in r.err
    message = "hello.yaml:6: patch 'loud.patch' (the file of 'shout.patch') is listed twice"
    assert message in r.err, r.err
    assert _installed(home) == []


VERSIONED = """\
version: "2.0"
versions:
  "2.0": {path: hello-src}
  "1.0": {path: hello-src}
patches: [shout.patch]
when:
  "@1.0":              # Spack: patch("exclaim.patch", when="@1.0")
    patches: [{path: exclaim.patch, strip: 0}]
build: |
"""


def test_a_patch_under_a_version_condition(hit, home, tmp_path):
    """`when: "@1.0": patches:` applies after the recipe's own patch (it applies only on top
    of it) when 1.0 is built, and not for 2.0: in the build spec, the program, the ids."""
    _package(tmp_path, "")
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT)
    (tmp_path / "pkgs" / "exclaim.patch").write_text(EXCLAIM)
    write_recipe(tmp_path / "pkgs", "hello", VERSIONED + BUILD)
    specs, outputs = {}, {}
    for version in ("1.0", "2.0"):
        profile = write_profile(
            tmp_path / f"v{version}.yaml",
            f'package_dirs: [pkgs]\npackages: {{hello: {{version: "{version}"}}}}\n',
        )
        specs[version] = json.loads(hit("show", "buildspec", "hello", "-p", str(profile)).out)
        hit("build", str(profile))
        program = tmp_path / f"v{version}" / "bin" / "hello"
        outputs[version] = subprocess.run([program], capture_output=True, text=True).stdout
    assert outputs == {"1.0": "HELLO, patched!\n", "2.0": "HELLO, patched\n"}
    shout, exclaim = (hashlib.sha256(t.encode()).hexdigest() for t in (SHOUT, EXCLAIM))
    assert specs["1.0"]["patches"] == [{"hash": shout, "strip": 1}, {"hash": exclaim, "strip": 0}]
    assert specs["2.0"]["patches"] == [{"hash": shout, "strip": 1}]
    assert specs["1.0"]["id"] != specs["2.0"]["id"] and len(_installed(home)) == 2


def test_a_published_stack_copies_the_patches_of_every_block(home, tmp_path):
    """A site's published copy of a recipe (publishedstacks.recipe_inputs) holds the patches
    of the blocks that do not hold for the stack too: loading the copy checks them all."""
    from hdmodules.publish.publishedstacks import recipe_inputs
    from hdmodules.spec.resolve import resolve_file

    _package(tmp_path, "")
    for name, text in (("shout.patch", SHOUT), ("exclaim.patch", EXCLAIM)):
        (tmp_path / "pkgs" / name).write_text(text)
    write_recipe(tmp_path / "pkgs", "hello", VERSIONED + BUILD)
    node = resolve_file(tmp_path / "default.yaml").nodes["hello"]  # 2.0: exclaim not applied
    assert [p.path.name for p in node.recipe.patches] == ["shout.patch"]
    copied = recipe_inputs(node.recipe, [tmp_path / "pkgs"])
    assert {tmp_path / "pkgs" / n for n in ("shout.patch", "exclaim.patch")} <= set(copied)


@pytest.mark.parametrize(
    "patches, message",
    [
        ("[missing.patch]", "patch file missing.patch is not there"),
        ("[empty.patch]", "patch file empty.patch is empty"),
        ("[adir]", "patch file adir is a folder"),
        ("[{path: shout.patch, strip: -1}]", "'strip' must be a whole number from 0 to 32"),
        ("[{path: shout.patch, strip: yes}]", "'strip' must be a whole number"),
        ("[{url: 'http://example.org/x.patch'}]", "the patch http://example.org/x.patch needs"),
        ("[{url: 'gopher://x/y.patch', sha256: " + "a" * 64 + "}]", "give an http(s), ftp"),
        ("[{path: shout.patch, sha256: " + "a" * 64 + "}]", "'sha256' must be given only with"),
        ("[{path: shout.patch, url: 'http://x/y'}]", "exactly one of 'path' or 'url'"),
        ("[{path: shout.patch, level: 1}]", "unknown key 'level' in a patch"),
        ("shout.patch", "'patches' must be a list"),
    ],
)
def test_bad_patch_entries_are_one_line_with_file_and_line(hit, tmp_path, patches, message):
    write_recipe(tmp_path / "pkgs", "other", 'version: "1"\nbuild: "true"\n')
    (tmp_path / "pkgs" / "shout.patch").write_text(SHOUT)
    (tmp_path / "pkgs" / "empty.patch").write_text("")
    (tmp_path / "pkgs" / "adir").mkdir()
    profile = _package(tmp_path, patches)
    r = hit("build", str(profile), check=False)
    assert r.code == 1 and r.err.count("\n") == 1, r.err
    assert f"{tmp_path / 'pkgs' / 'hello.yaml'}:4: " in r.err and message in r.err
