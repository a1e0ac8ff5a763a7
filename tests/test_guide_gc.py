"""The HashDist user guide's garbage collection, step by step, with the real `hit`."""

from tests.conftest import artifact_ids as ids
from tests.conftest import run_clean, write_recipe

ZLIB = """
version: "1.3"
description: A small stand-in for zlib (a shared library libz)
build: |
  printf 'int zlib_answer(void) { return 13; }\\n' > z.c
  gcc $CPPFLAGS -O2 -fPIC -shared -Wl,-soname,libz.so.1 -o libz.so.1 z.c $LDFLAGS
  install -Dm755 libz.so.1 "$ARTIFACT/lib/libz.so.1"
  ln -s libz.so.1 "$ARTIFACT/lib/libz.so"
"""


def add_zlib(demo):
    """The demo's default.yaml with a `zlib:` line (the guide's), its recipe in pkgs/;
    returns the YAML."""
    write_recipe(demo / "pkgs", "zlib", ZLIB)
    yaml = demo / "default.yaml"
    yaml.write_text(yaml.read_text().replace("packages:\n", "packages:\n  zlib:\n"))
    return yaml


def comment_out_zlib(yaml) -> None:
    yaml.write_text(yaml.read_text().replace("  zlib:\n", "#  zlib:\n"))


def test_the_guide_gc_sequence_works_as_written(hit, home, demo):
    """The guide, in its own words:

    1. "Comment out the zlib line, `hit build`, then `hit gc` — the zlib software is
       removed."
    2. "`hit cp default old_profile`", edit `default.yaml`, `hit build`, `hit gc`: both
       profiles still work.
    3. "`hit rm old_profile`", `hit gc`: what only the old profile used is freed.
    """
    yaml = add_zlib(demo)
    hit("build", cwd=demo)
    assert (demo / "default" / "lib" / "libz.so.1").exists()
    (zlib,) = ids(home, "zlib")

    # 1. comment out the zlib line, hit build, then hit gc: the zlib software is removed
    comment_out_zlib(yaml)
    hit("build", cwd=demo)
    r = hit("gc", cwd=demo)
    assert f"removed {zlib}" in r.err
    assert not (home / "bld" / "zlib").exists()  # its artifact, and the empty folder
    assert r.out.splitlines()[0].startswith("removed 2 artifact(s)")  # zlib, the old profile
    assert "kept 5 artifact(s), reached from 1 profile link(s)" in r.out
    assert run_clean([str(demo / "default/bin/app")]).stdout.startswith("Hello from")

    # 2. hit cp default old_profile, edit, hit build, hit gc: both are kept
    hit("cp", "default", "old_profile", cwd=demo)
    yaml.write_text(
        yaml.read_text().replace("  app:\n", "  app:\n    parameters: {greeting: New}\n")
    )
    hit("build", cwd=demo)
    r = hit("gc", cwd=demo)
    assert r.out.startswith("removed 0 artifact(s)")
    assert "reached from 2 profile link(s)" in r.out
    assert run_clean([str(demo / "old_profile/bin/app")]).stdout.startswith("Hello from")
    assert run_clean([str(demo / "default/bin/app")]).stdout.startswith("New from")
    assert len(ids(home, "app")) == 2

    # 3. hit rm old_profile, hit gc: what only the old profile used is freed
    old_app = ids(home, "app")
    hit("rm", "old_profile", cwd=demo)
    r = hit("gc", cwd=demo)
    assert r.out.startswith("removed 2 artifact(s)")  # the old profile and its app
    (new_app,) = ids(home, "app")
    (gone,) = old_app - {new_app}
    assert f"removed {gone}" in r.err
    assert run_clean([str(demo / "default/bin/app")]).stdout.startswith("New from")
    assert "removed 0 artifact(s)" in hit("gc", cwd=demo).out
