"""A site's life (README "A site's life"): users extend each stack's published copy, never
the admin's checkout; a stack removed from site.yaml is retired; a root a hit command seeded
offline before the first `hdmod build` is still a site. Root runs the real `hdmod`, a real
non-root user the real `hit` (tests/site_users.py)."""

import grp
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import demo_site, run_hdmod, run_hit
from tests.site_users import GROUP, HOME, as_user, install_for_user, user_project, write_as_user

PERMISSIONS = f'permissions:\n  group: {GROUP}\n  mode: "0750"\n'


@pytest.fixture
def base():
    """A folder the test user can reach (pytest's tmp_path is root's only), removed after,
    with the user's projects and hit homes the test made under the user's home."""
    install_for_user()
    folder = Path(tempfile.mkdtemp(prefix="hdmod-life-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(HOME / folder.name)])
    subprocess.run(["chmod", "-R", "u+rwx", str(folder)])
    shutil.rmtree(folder, ignore_errors=True)


def site(base: Path, stacks: str, permissions: str = PERMISSIONS) -> Path:
    """The demo site in `base` with `stacks` (YAML) and `permissions`; its site.yaml."""
    yaml = demo_site(base, stacks)
    yaml.write_text(yaml.read_text() + permissions)
    return yaml


def project(base: Path, root: Path, stack: str) -> tuple[Path, list[str]]:
    """The user's project extending ROOT/stacks/<stack>.yaml with greet, and a hit home of
    its own (HIT_HOME, for `as_user`'s env_extra)."""
    mine = HOME / base.name
    proj = user_project(mine / "proj", root / "stacks" / f"{stack}.yaml")
    return proj, [f"HIT_HOME={mine / 'hit'}"]


def user(proj: Path, root: Path, env: list[str], *cmd: str) -> subprocess.CompletedProcess:
    """`cmd` as the test user in `proj`; never a traceback."""
    r = as_user(*cmd, root=root, cwd=proj, env_extra=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def artifacts(profile: Path) -> dict[str, str]:
    """Package name -> artifact id of a profile (its build.json)."""
    return json.loads((profile / ".hit" / "build.json").read_text())["artifacts"]


def prefix(root: Path, artifact_id: str) -> Path:
    """Where the site store keeps the demo artifact `artifact_id` (all are version 1.0)."""
    name, _, h = artifact_id.partition("/")
    return root / "bld" / name / f"1.0-{h[:12]}"


def published_copy(stack_file: Path) -> Path:
    """The published copy a stack file extends."""
    rel = re.search(r'^extends: \["(.+)"\]$', stack_file.read_text(), re.M).group(1)
    return (stack_file.parent / rel).resolve().parent


def stack_statuses(r: subprocess.CompletedProcess) -> dict[str, str]:
    """`hit status`: package -> built / needs build."""
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    return {w[0]: " ".join(w[3:]) for w in lines if w and w[0] != "profile"}


DIAMOND = "  gcc12:\n    compiler: gcc-12\n    packages: [libcore, liba, libb, app]\n"


def test_a_users_stack_does_not_depend_on_the_admins_checkout(base):
    yaml = site(base, DIAMOND)
    demo, root = yaml.parent, base / "root"
    run_hdmod("build", str(yaml), "--root", str(root))
    stack = root / "stacks" / "gcc12.yaml"
    copy = published_copy(stack)
    # read-only, in the site's group with its mode, holding the recipes and their sources
    assert copy.parent == root / "recipes" and re.fullmatch("[0-9a-f]{64}", copy.name)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o550
    assert copy.stat().st_gid == grp.getgrnam(GROUP).gr_gid
    assert all(not p.lstat().st_mode & 0o222 for p in copy.rglob("*") if not p.is_symlink())
    app_recipe = (demo / "pkgs" / "app.yaml").read_bytes()
    assert (copy / "files" / "pkgs" / "app.yaml").read_bytes() == app_recipe
    assert (copy / "files" / "src" / "app" / "app.c").is_file()  # `path: ../src/app`
    site_ids = artifacts(root / "profiles" / "gcc12")
    proj, env = project(base, root, "gcc12")

    # the admin edits the checkout without rebuilding: a comment, and a real change
    with open(demo / "pkgs" / "libcore.yaml", "a") as f:
        f.write("# a comment, nothing more\n")
    text = app_recipe.decode().replace("greeting: Hello", "greeting: Howdy")
    (demo / "pkgs" / "app.yaml").write_text(text)
    statuses = stack_statuses(user(proj, root, env, "hit", "status"))
    assert statuses == {**dict.fromkeys(site_ids, "built"), "greet": "needs build"}
    # ... moves it, then makes it unreadable
    moved = demo.rename(base / "moved")
    assert stack_statuses(user(proj, root, env, "hit", "status"))["app"] == "built"
    for folder in (moved / "pkgs", moved / "src"):
        folder.chmod(0)
    r = user(proj, root, env, "hit", "build")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("built in") == 1 and "greet/" in r.stderr  # the rest is the site's
    mine = artifacts(proj / "default")
    assert {name: mine[name] for name in site_ids} == site_ids  # the very ids the site built
    # a site package the user builds otherwise comes from the copy (recipe and sources)
    write_as_user(
        proj / "other.yaml",
        f"extends: [{stack}]\npackage_dirs: [mypkgs]\n"
        "packages:\n  greet:\n  app: {parameters: {greeting: Hi}}\n",
    )
    r = user(proj, root, env, "hit", "build", "other.yaml")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("built in") == 1 and "app/" in r.stderr
    out = user(proj, root, env, str(proj / "other" / "bin" / "app"))
    assert out.returncode == 0 and out.stdout.startswith("Hi from app"), out.stderr

    # the admin rebuilds from the edited checkout: a new copy; the old one stays one build
    for folder in (moved / "pkgs", moved / "src"):
        folder.chmod(0o755)
    r = run_hdmod("build", str(moved / "site.yaml"), "--root", str(root))
    assert r.stderr.count("built in") == 1  # app, greeting Howdy
    new = published_copy(stack)
    assert new != copy and copy.is_dir()
    statuses = stack_statuses(user(proj, root, env, "hit", "status"))
    assert set(statuses.values()) == {"built"}  # the site's new app, the user's greet
    r = run_hdmod("build", str(moved / "site.yaml"), "--root", str(root))
    assert f"removed {copy}: no stack has been published from it" in r.stderr
    assert not copy.exists() and new.is_dir()


# gcc12 with libcore and liba, gcc11 with the whole diamond
TWO_STACKS = DIAMOND.replace("libb, app", "").replace("[libcore, liba, ]", "[libcore, liba]")
TWO_STACKS += DIAMOND.replace("12", "11")


def built_two_stacks(yaml: Path, root: Path) -> tuple[dict, dict, list[Path]]:
    """`hdmod build` of a TWO_STACKS site: each stack's artifacts (name -> id) and the
    prefixes only gcc11 uses."""
    run_hdmod("build", str(yaml), "--root", str(root))
    gcc11, gcc12 = (artifacts(root / "profiles" / s) for s in ("gcc11", "gcc12"))
    only11 = [prefix(root, i) for i in gcc11.values() if i not in gcc12.values()]
    return gcc11, gcc12, only11


def test_a_stack_removed_from_site_yaml_is_retired(base):
    yaml, root = site(base, TWO_STACKS), base / "root"
    gcc11, gcc12, only11 = built_two_stacks(yaml, root)
    assert len(only11) == 4 and all(p.is_dir() for p in only11)
    proj, env = project(base, root, "gcc11")
    assert user(proj, root, env, "hit", "build").returncode == 0  # greet, on gcc11's liba

    text = yaml.read_text()
    yaml.write_text(text[: text.index("  gcc11:")] + text[text.index("modules:") :])
    r = run_hdmod("build", str(yaml), "--root", str(root))
    link, file = root / "profiles" / "gcc11", root / "stacks" / "gcc11.yaml"
    retired = f"retired stack gcc11: it is no longer in site.yaml; removed {link} and {file}"
    assert retired in r.stderr
    assert not os.path.lexists(link) and not file.exists()
    assert (root / "stacks" / "gcc12.yaml").is_file() and (root / "profiles" / "gcc12").is_dir()
    # the module tree has no module of it (but hidden ghosts, for shells that loaded one)
    modules = json.loads((root / "modules" / ".modules.json").read_text())
    levels = {
        level[2][:2] for level, _name, _version in modules if level[:2] == ["Compiler", "gcc"]
    }
    assert levels == {"12"}

    # the user who extended it: one clear error at the next build, at the extends line
    r = user(proj, root, env, "hit", "build")
    assert r.returncode == 1, r.stderr
    expected = (
        f"hit: error: {proj / 'default.yaml'}:1: extends {file}: the site {root} retired "
        f"the stack gcc11 on "
    )
    assert r.stderr.startswith(expected) and r.stderr.count("\n") == 1, r.stderr
    assert f"its stacks now: gcc12 (extend one of them: {root}/stacks/NAME.yaml)" in r.stderr
    # what the user's built profile uses is kept by the site's gc until the user drops it
    site_hit = {**os.environ, "HIT_HOME": str(root)}
    site_hit.pop("HIT_SITE_CONFIG", None)
    r = run_hit("gc", env=site_hit)
    assert "kept what 1 user profile(s) use" in r.err
    kept = [prefix(root, i) for name, i in gcc11.items() if name in ("libcore", "liba")]
    assert all(p.is_dir() for p in kept)
    out = user(proj, root, env, str(proj / "default" / "bin" / "greet"))
    assert out.returncode == 0 and out.stdout.startswith("greet: liba"), out.stderr
    assert user(proj, root, env, "hit", "rm", "default").returncode == 0
    run_hit("gc", env=site_hit)
    assert not any(p.exists() for p in only11)  # what only gcc11 used is gone
    assert all(prefix(root, i).is_dir() for i in gcc12.values())  # the rest stays


def test_a_root_seeded_offline_is_still_a_site(base):
    yaml = site(base, DIAMOND.replace("libb, app", "").replace(", ]", "]"), permissions="")
    root, seed = base / "root", base / "seed"
    seed.mkdir()
    subprocess.run(["tar", "czf", str(seed / "src-1.0.tar.gz"), "-C", str(yaml.parent), "src"])
    site_hit = {**os.environ, "HIT_HOME": str(root)}
    site_hit.pop("HIT_SITE_CONFIG", None)
    run_hit("fetch", "--from", str(seed), env=site_hit)  # before any hdmod build
    assert "\nprivate: true\n" in (root / "config.yaml").read_text()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700

    r = run_hdmod("build", str(yaml), "--root", str(root))
    config = root / "config.yaml"
    assert f"{config} said `private: true`" in r.stderr and "now `private: false`" in r.stderr
    assert f"opened to 755, as site.yaml says: {root} (700), {root / 'bld'} (700)" in r.stderr
    assert "\nprivate: false\n" in config.read_text()
    prefixes = [p for p in (root / "bld").glob("*/*") if p.parent.name[0] != "."]
    assert len(prefixes) == 3  # libcore, liba, the stack's profile
    for p in prefixes:
        assert stat.S_IMODE(p.stat().st_mode) == 0o555, p  # dr-xr-xr-x, not dr-x------
    liba = next((root / "bld" / "liba").iterdir())
    assert stat.S_IMODE((liba / "include" / "a.h").stat().st_mode) == 0o444
    proj, env = project(base, root, "gcc12")
    r = user(proj, root, env, "cat", str(liba / "include" / "a.h"))
    assert r.returncode == 0 and "a_describe" in r.stdout, r.stderr
    r = user(proj, root, env, "hit", "build")
    assert r.returncode == 0 and r.stderr.count("built in") == 1 and "greet/" in r.stderr

    # an artifact an older hdmod installed owner-only gets the site's modes back (an older
    # hdmod wrote no no-op memo of this format: the next build goes the full way)
    for path, mode in ((liba / "include" / "a.h", 0o400), (liba, 0o500)):
        path.chmod(mode)
    for memo in (root / ".cache").glob("site-*.memo"):
        memo.unlink()
    r = run_hdmod("build", str(yaml), "--root", str(root))
    assert "private" not in r.stderr and "opened" not in r.stderr  # nothing else to correct
    assert stat.S_IMODE(liba.stat().st_mode) == 0o555
    assert stat.S_IMODE((liba / "include" / "a.h").stat().st_mode) == 0o444


def test_a_source_named_by_its_absolute_path_is_refused_before_building(tmp_path):
    """The published copy holds the recipes and the files named relative to them; a file
    named by its absolute path would stay the admin's live file for every user, so `hdmod
    build` refuses it at the recipe's line, before anything builds."""
    yaml = demo_site(tmp_path, DIAMOND)
    recipe = yaml.parent / "pkgs" / "app.yaml"
    absolute = (yaml.parent / "src" / "app").resolve()
    text = recipe.read_text()
    recipe.write_text(text.replace("path: ../src/app", f"path: {absolute}"))
    line = text.splitlines().index("  - path: ../src/app") + 1
    root = tmp_path / "root"
    r = run_hdmod("build", str(yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{recipe}:{line}: {absolute} is named by its absolute path, but stack gcc12" in r.stderr
    assert "built in" not in r.stderr and not list(root.glob("bld/*/*"))


def test_a_stack_says_which_package_wins_a_file_both_ship(tmp_path):
    """Two packages of a stack ship share/twin/which: without `prefer:` the stack's profile
    cannot be assembled (the message says where to choose); with `prefer: [twin-b]` in the
    stack, twin-b's file is the profile's, and users extending the stack inherit the choice."""
    stacks = "  s:\n    compiler: gcc-12\n    packages: [twin-a, twin-b]\n"
    yaml = demo_site(tmp_path, stacks)
    for name in ("twin-a", "twin-b"):
        (yaml.parent / "pkgs" / f"{name}.yaml").write_text(
            'version: "1"\nbuild: |\n  mkdir -p "$ARTIFACT/share/twin"\n'
            f'  echo {name} > "$ARTIFACT/share/twin/which"\n'
        )
    root = tmp_path / "root"
    r = run_hdmod("build", str(yaml), "--root", str(root), check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "packages twin-a and twin-b conflict on share/twin/which" in r.stderr
    assert "(for a site: in the stack, beside its packages:)" in r.stderr
    yaml.write_text(yaml.read_text().replace(stacks, stacks + "    prefer: [twin-b]\n"))
    run_hdmod("build", str(yaml), "--root", str(root))
    assert (root / "profiles" / "s" / "share" / "twin" / "which").read_text() == "twin-b\n"
    published = published_copy(root / "stacks" / "s.yaml") / "stack.yaml"
    assert 'prefer: ["twin-b"]' in published.read_text()


def test_the_sites_gc_keeps_what_a_users_running_build_uses(tmp_path):
    """A user's build on the site's libcore is running when the admin changes libcore and
    runs the site's gc: the old libcore is no stack's any more and the user's link does not
    point at anything yet, but the build told the site what it uses before it started
    (a record that counts while the build runs), so the gc keeps it and the build finishes
    against it. Afterwards only the user's ordinary record remains."""
    yaml = demo_site(tmp_path, DIAMOND)
    root = tmp_path / "root"
    run_hdmod("build", str(yaml), "--root", str(root))
    old = artifacts(root / "profiles" / "gcc12")["libcore"]
    proj, started, go = tmp_path / "proj", tmp_path / "started", tmp_path / "go"
    (proj / "mypkgs").mkdir(parents=True)
    (proj / "mypkgs" / "uslow.yaml").write_text(
        'version: "1"\ndependencies: [libcore]\nbuild: |\n'
        f"  touch {started}\n"
        f"  for i in $(seq 600); do [ -e {go} ] && break; sleep 0.1; done\n"
        '  ls "$LIBCORE_DIR/lib" > /dev/null\n  mkdir -p "$ARTIFACT/share"\n'
    )
    (proj / "default.yaml").write_text(
        f"extends: [{root}/stacks/gcc12.yaml]\npackage_dirs: [mypkgs]\npackages: {{uslow: }}\n"
    )
    env = {**os.environ, "HIT_HOME": str(tmp_path / "hithome"),
           "HIT_SITE_CONFIG": str(root / "user-config.yaml")}  # fmt: skip
    cmd = [sys.executable, "-m", "hdmodules.cli.hit", "build", "default.yaml"]
    building = subprocess.Popen(cmd, cwd=proj, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(600):
            if started.exists() or building.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), building.communicate()
        recipe = yaml.parent / "pkgs" / "libcore.yaml"
        recipe.write_text(recipe.read_text().replace("build: |\n", "build: |\n  true\n", 1))
        run_hdmod("build", str(yaml), "--root", str(root))
        assert artifacts(root / "profiles" / "gcc12")["libcore"] != old
        site_hit = {**os.environ, "HIT_HOME": str(root)}
        site_hit.pop("HIT_SITE_CONFIG", None)
        listed = run_hit("gc", "--list", env=site_hit).out
        assert "(a user's profile, building: uses" in listed, listed
        gc = run_hit("gc", env=site_hit)
        assert prefix(root, old).is_dir(), gc.both
    finally:
        go.touch()
        out, err = building.communicate(timeout=120)
    assert building.returncode == 0, err
    records = [json.loads(f.read_text()) for f in (root / "gcroots" / "users").glob("*.json")]
    assert [r for r in records if "building" not in r] and not [
        r for r in records if "building" in r
    ]
    assert old in next(r for r in records if "building" not in r)["uses"]


def test_retiring_a_stack_whose_link_was_removed_by_hand(tmp_path):
    """`rm ROOT/profiles/gcc11` by hand, then gcc11 leaves site.yaml: `hdmod build` still
    retires it, forgetting its gc root, so the site's gc frees what only it used."""
    yaml, root = demo_site(tmp_path, TWO_STACKS), tmp_path / "root"
    gcc11, gcc12, only11 = built_two_stacks(yaml, root)
    (root / "profiles" / "gcc11").unlink()
    text = yaml.read_text()
    yaml.write_text(text[: text.index("  gcc11:")] + text[text.index("modules:") :])
    r = run_hdmod("build", str(yaml), "--root", str(root))
    assert "retired stack gcc11: it is no longer in site.yaml; removed" in r.stderr
    assert f"the gc root of {root / 'profiles' / 'gcc11'}" in r.stderr
    site_hit = {**os.environ, "HIT_HOME": str(root)}
    site_hit.pop("HIT_SITE_CONFIG", None)
    gc = run_hit("gc", env=site_hit)
    assert only11 and not any(p.exists() for p in only11), gc.both
    assert all(prefix(root, i).is_dir() for i in gcc12.values())


def test_a_profile_path_the_sites_gc_refuses_is_warned_about(tmp_path):
    """A user's project in a folder with a line break in its name: the site's gc does not
    accept such a path in a user's record, so `hit build` says the site may remove what
    the profile uses, instead of leaving a record nobody reads."""
    yaml = demo_site(tmp_path, DIAMOND)
    root = tmp_path / "root"
    run_hdmod("build", str(yaml), "--root", str(root))
    proj = tmp_path / "odd\nfolder"
    proj.mkdir()
    (proj / "default.yaml").write_text(f"extends: [{root}/stacks/gcc12.yaml]\n")
    env = {**os.environ, "HIT_HOME": str(tmp_path / "hithome"),
           "HIT_SITE_CONFIG": str(root / "user-config.yaml")}  # fmt: skip
    r = run_hit("build", "default.yaml", cwd=proj, env=env)
    assert "warning: the link " in r.err and "odd\\nfolder/default has a control character" in r.err
    assert not list((root / "gcroots" / "users").glob("*.json"))


def test_a_copy_of_the_demo_site_builds_into_the_copy(tmp_path):
    """`hdmod build` of a copied demo site.yaml without `--root`: its root (`site-root`,
    beside the file) is in the copy, so nothing is written outside it (it was
    `../../build/demo-site`: two folders above the copy; the tenth stop's trial)."""
    yaml = demo_site(tmp_path / "copy")
    r = run_hdmod("build", str(yaml), "-j", "2")
    root = tmp_path / "copy" / "demo" / "site-root"
    assert f"stack gcc12: {root / 'profiles' / 'gcc12'}" in r.stdout + r.stderr
    assert (root / "profiles" / "gcc12").is_symlink() and (root / "modules").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["demo"]


def test_a_stack_of_no_packages_is_built_and_published(tmp_path):
    """`packages: []` in a stack (the second trial: a traceback from publishing it, as the
    common folder of nothing): built and published like any stack, an empty profile."""
    yaml = demo_site(tmp_path, "  empty:\n    compiler: gcc-12\n    packages: []\n")
    r = run_hdmod("build", str(yaml), check=False)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    root = tmp_path / "demo" / "site-root"
    assert (root / "profiles" / "empty").is_symlink()
    assert [p.name for p in (root / "stacks").glob("empty*")], sorted(root.rglob("*stack*"))
