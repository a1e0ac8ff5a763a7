"""Source cache, mirrors, `hit fetch`, and unpacking that cannot write outside the build folder."""

import hashlib
import io
import os
import shutil
import tarfile
import zipfile

import pytest

from hdmodules.build.sources import cache_file, fetch, materialize, unpack_tar, unpack_zip
from hdmodules.errors import HitError
from hdmodules.spec.recipes import Source
from tests.conftest import commit_all, need, write_profile, write_recipe


def make_tar(path, members):
    """members: (name, kind, data_or_target); kind is file, dir, sym or hard."""
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[
                kind
            ]
            if kind == "dir":
                info.mode = 0o755
            else:
                info.linkname = data
            tf.addfile(info)
    return path


def test_single_top_folder_is_stripped_even_without_a_dir_member(tmp_path):
    # bzip2's release tarball has no member for its top folder
    t = make_tar(tmp_path / "p.tgz", [("pkg-1/a.c", "file", b"x"), ("pkg-1/sub/b.c", "file", b"y")])
    unpack_tar(t, tmp_path / "out", "p.tgz")
    assert (tmp_path / "out" / "a.c").read_bytes() == b"x"
    assert (tmp_path / "out" / "sub" / "b.c").exists()


def test_two_top_entries_are_kept(tmp_path):
    t = make_tar(tmp_path / "p.tgz", [("a/x", "file", b"1"), ("b", "file", b"2")])
    unpack_tar(t, tmp_path / "out", "p.tgz")
    assert (tmp_path / "out" / "a" / "x").exists() and (tmp_path / "out" / "b").exists()


@pytest.mark.parametrize(
    "members",
    [
        [("pkg/a", "file", b"1"), ("../evil", "file", b"x")],
        [("pkg/a", "file", b"1"), ("pkg/../../evil", "file", b"x")],
        [("/etc/evil", "file", b"x")],
        [("pkg/a", "file", b"1"), ("pkg/link", "sym", "/etc/passwd")],
        [("pkg/a", "file", b"1"), ("pkg/link", "sym", "../../../etc")],
        [("pkg/a", "file", b"1"), ("pkg/hard", "hard", "/etc/passwd")],
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "abs-symlink", "rel-symlink-out", "hardlink-out"],
)
def test_members_that_escape_are_refused(tmp_path, members):
    t = make_tar(tmp_path / "evil.tgz", members)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(HitError, match=r"evil.tgz: member .* would land outside the build folder"):
        unpack_tar(t, out, "evil.tgz")
    assert not (tmp_path / "evil").exists()


def test_zip_unpack_strips_and_refuses_escape(tmp_path):
    z = tmp_path / "ok.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("top/a.txt", "hello")
    unpack_zip(z, tmp_path / "out", "ok.zip")
    assert (tmp_path / "out" / "a.txt").read_text() == "hello"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../evil.txt", "x")
    with pytest.raises(HitError, match="would land outside"):
        unpack_zip(bad, tmp_path / "out2", "bad.zip")


def _archive(tmp_path, name="pkg-1.0.tar.gz"):
    t = make_tar(tmp_path / name, [("pkg-1.0/hello.txt", "file", b"hi\n")])
    return t, hashlib.sha256(t.read_bytes()).hexdigest()


def test_fetch_prefers_mirror_then_falls_back_to_url(tmp_path):
    t, sha = _archive(tmp_path)
    cache = tmp_path / "cache"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    # the mirror lacks it: the URL (file://) is used
    assert fetch(cache, t.as_uri(), sha, (str(mirror),)) == cache_file(cache, sha)
    cache_file(cache, sha).unlink()
    # the mirror has it by name, the URL is dead: the mirror is used
    (mirror / t.name).write_bytes(t.read_bytes())
    dead = "http://127.0.0.1:9/pkg-1.0.tar.gz"
    assert fetch(cache, dead, sha, (str(mirror),)).read_bytes() == t.read_bytes()


def test_fetch_reports_both_hashes_and_unreachable_urls(tmp_path):
    t, sha = _archive(tmp_path)
    wrong = "0" * 64
    with pytest.raises(HitError, match=rf"sha256 mismatch: expected {wrong}, got {sha}"):
        fetch(tmp_path / "c", t.as_uri(), wrong)
    with pytest.raises(HitError, match=r"cannot fetch http://127.0.0.1:9/x.tgz: .*refused"):
        fetch(tmp_path / "c", "http://127.0.0.1:9/x.tgz", wrong)


def test_hit_fetch_file_and_from_dir(hit, home, tmp_path):
    t, sha = _archive(tmp_path)
    r = hit("fetch", str(t))
    assert f"sha256: {sha}" in r.out and f"  - url: {t.as_uri()}\n    sha256: {sha}" in r.out
    assert (home / "src" / "sha256" / sha).exists()
    seed = tmp_path / "seed"
    seed.mkdir()
    t2, sha2 = _archive(seed, "other-2.tar.gz")
    (seed / "README").write_text("not an archive")
    r = hit("fetch", "--from", str(seed))
    assert f"{sha2}  other-2.tar.gz" in r.out and "README" not in r.out
    assert (home / "src" / "sha256" / sha2).exists()


def test_build_uses_seeded_cache_and_mirror_from_config(hit, home, tmp_path):
    t, sha = _archive(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pkg-1.0.tar.gz").write_bytes(t.read_bytes())
    hit("init-home")
    cfg = home / "config.yaml"
    cfg.write_text(cfg.read_text().replace("mirrors: []", f"mirrors: [{mirror}]"))
    p = _dead_url_profile(tmp_path, sha, 'install -Dm644 hello.txt "$ARTIFACT/share/hello.txt"')
    hit("build", str(p))
    assert (tmp_path / "default" / "share" / "hello.txt").read_text() == "hi\n"


def _dead_url_profile(tmp_path, sha: str, build: str):
    """A recipe whose URL is unreachable: only the cache or a mirror can supply it."""
    write_recipe(
        tmp_path / "pkgs",
        "pkg",
        f"""
        version: "1.0"
        sources:
          - url: http://127.0.0.1:9/pkg-1.0.tar.gz
            sha256: {sha}
        build: |
          {build}
        """,
    )
    return write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [pkg]\n")


def test_build_with_bad_hash_and_dead_url_fails_plainly(hit, tmp_path):
    p = _dead_url_profile(tmp_path, "a" * 64, "true")
    r = hit("build", str(p), check=False)
    assert r.code == 1
    assert "cannot fetch http://127.0.0.1:9/pkg-1.0.tar.gz" in r.err


def test_url_mirror_by_hash(tmp_path):
    t, sha = _archive(tmp_path)
    mirror = tmp_path / "mirror"
    (mirror / "sha256").mkdir(parents=True)
    (mirror / "sha256" / sha).write_bytes(t.read_bytes())
    got = fetch(tmp_path / "c", "http://127.0.0.1:9/gone.tgz", sha, (mirror.as_uri(),))
    assert got.read_bytes() == t.read_bytes()


# --- materialising: archives by name, folders, dest, and the real command line --------------


def test_a_file_named_like_an_archive_must_be_one(tmp_path):
    for name in ("pkg-1.tar.gz", "pkg.tgz", "pkg.tar.xz", "pkg.zip", "pkg.tar"):
        (tmp_path / name).write_text("<html>not found</html>\n")
        with pytest.raises(HitError, match=rf"source {name} is named like an archive but is not"):
            materialize(Source(path=tmp_path / name), tmp_path / "c", tmp_path / "src")
    for name, text in (("fix.patch", "--- a\n+++ b\n"), ("main.c", "int main(){}\n")):
        (tmp_path / name).write_text(text)
        materialize(Source(path=tmp_path / name, dest="extra"), tmp_path / "c", tmp_path / "src")
        assert (tmp_path / "src" / "extra" / name).read_text() == text


def _escaping_tree(tmp_path):
    """A folder source whose `out` points outside the build folder, as copytree keeps it."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.c").write_text("int a;\n")
    (tree / "out").symlink_to("../outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("safe\n")
    return tree


def test_nothing_goes_through_a_folder_sources_symlink(tmp_path):
    tree = _escaping_tree(tmp_path)
    build = tmp_path / "build"  # src/out -> ../outside: tmp_path/build/outside
    (build / "outside").mkdir(parents=True)
    (build / "outside" / "keep").write_text("safe\n")
    src = build / "src"
    materialize(Source(path=tree), tmp_path / "c", src)
    assert os.readlink(src / "out") == "../outside" and (src / "a.c").exists()
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("out/keep", "pwned\n")
        zf.writestr("other", "x")
    t = make_tar(tmp_path / "evil.tgz", [("out/keep", "file", b"pwned\n"), ("b", "file", b"")])
    other = tmp_path / "other"
    other.mkdir()
    (other / "out").mkdir()
    (other / "out" / "keep").write_text("pwned\n")
    for source in (
        Source(path=z),
        Source(path=t),
        Source(path=tmp_path / "tree" / "a.c", dest="out/sub"),
        Source(path=t, dest="out"),
        Source(path=other),
    ):
        with pytest.raises(HitError, match="symlink 'out'; sources are never unpacked through"):
            materialize(source, tmp_path / "c", src)
    assert (build / "outside" / "keep").read_text() == "safe\n"
    assert sorted(os.listdir(build / "outside")) == ["keep"]


def test_git_export_keeps_inner_symlinks_and_refuses_escaping_ones(tmp_path):
    need(shutil.which("git") is not None, "git")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "lib").mkdir()
    (repo / "lib" / "x.h").write_text("x\n")
    (repo / "inc").symlink_to("lib")
    head = commit_all(repo, "one")
    src = tmp_path / "src"
    materialize(Source(git=str(repo), commit=head, dest="g"), tmp_path / "c", src)
    assert (src / "g" / "inc" / "x.h").read_text() == "x\n"
    (repo / "up").symlink_to("../../..")
    head = commit_all(repo, "two")
    with pytest.raises(HitError, match=r"member 'up' \(a symlink to '../../..'\) would land"):
        materialize(Source(git=str(repo), commit=head, dest="h"), tmp_path / "c", src)


def _one_package(tmp_path, sources: str):
    write_recipe(
        tmp_path / "pkgs",
        "pkg",
        f"""
        version: "1"
        sources: {sources}
        build: |
          true
        """,
    )
    return write_profile(tmp_path / "default.yaml", "package_dirs: [pkgs]\npackages: [pkg]\n")


def _error_line(r) -> str:
    lines = [line for line in r.err.splitlines() if "error" in line]
    assert r.code == 1 and len(lines) == 1, r.err
    return lines[0]


def test_hit_build_refuses_a_hostile_tarball_in_one_line(hit, tmp_path):
    (tmp_path / "sentinel").write_text("safe\n")
    make_tar(tmp_path / "evil.tgz", [("pkg/a.c", "file", b"int a;\n"),
                                     ("pkg/up", "sym", "../" * 12),
                                     ("pkg/up/sentinel", "file", b"pwned\n")])  # fmt: skip
    p = _one_package(tmp_path, "[{path: ../evil.tgz}]")
    line = _error_line(hit("build", str(p), check=False))
    assert "evil.tgz: member 'pkg/up/sentinel' runs through the symlink 'up'" in line
    assert (tmp_path / "sentinel").read_text() == "safe\n"


def test_hit_build_refuses_an_archive_through_a_folder_sources_symlink(hit, tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.c").write_text("int a;\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree / "out").symlink_to(outside)
    make_tar(tmp_path / "evil.tgz", [("out/pwned", "file", b"x"), ("b.c", "file", b"")])
    p = _one_package(tmp_path, "[{path: ../tree}, {path: ../evil.tgz}]")
    line = _error_line(hit("build", str(p), check=False))
    assert "evil.tgz: member 'out/pwned' runs through the symlink 'out'" in line
    p = _one_package(tmp_path, "[{path: ../tree}, {path: ../tree/a.c, dest: out/sub}]")
    line = _error_line(hit("build", str(p), check=False))
    assert "dest 'out/sub' runs through the symlink 'out'" in line
    assert os.listdir(outside) == []


def test_hit_build_reports_a_truncated_tarball_not_an_interrupt(hit, tmp_path):
    t = make_tar(tmp_path / "p-1.tar.gz", [("p/big", "file", os.urandom(100_000))])
    t.write_bytes(t.read_bytes()[:50_000])
    p = _one_package(tmp_path, "[{path: ../p-1.tar.gz}]")
    line = _error_line(hit("build", str(p), check=False))
    assert "cannot unpack p-1.tar.gz: truncated or damaged archive" in line


def test_scp_style_git_remotes_are_remote_everywhere():
    """`git@host:org/x.git` is a remote, as git reads it: never made a path next to the YAML."""
    from pathlib import Path

    from hdmodules.spec.gitrefs import is_local
    from hdmodules.urls import git_location

    base = Path("/site/pkgs")
    for remote in ("git@example.org:org/repo.git", "https://example.org/x.git", "host:dir/x"):
        assert git_location(remote, base) == remote and not is_local(remote)
    for local, where in (("../checkout", "/site/checkout"), ("/abs/repo", "/abs/repo")):
        assert git_location(local, base) == where and is_local(where)
