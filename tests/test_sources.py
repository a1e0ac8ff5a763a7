"""Source cache, mirrors, `hit fetch`, and unpacking that cannot write outside the build folder."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from hdmodules.errors import HitError
from hdmodules.sources import cache_file, fetch, unpack_tar, unpack_zip
from tests.conftest import write_profile, write_recipe


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
