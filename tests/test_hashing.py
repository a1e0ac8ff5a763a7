import os

from hdmodules.hashing import HASH_CHARS, canonical_json, hash_doc, tree_hash


def test_canonical_json_ignores_key_order():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json(
        {"a": [1, {"c": 3, "d": 2}], "b": 1}
    )
    assert canonical_json({"a": "é"}) == '{"a":"é"}'


def test_hash_is_32_base32_chars_and_depends_on_doctype():
    h = hash_doc("build", {"x": 1})
    assert len(h) == HASH_CHARS and set(h) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert hash_doc("build", {"x": 1}) == h
    assert hash_doc("profile", {"x": 1}) != h
    assert hash_doc("build", {"x": 2}) != h


def test_tree_hash_follows_content_and_exec_bit_not_times(tmp_path):
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "a.c"
    f.write_text("int x;\n")
    h1 = tree_hash(tmp_path)
    os.utime(f, (1, 1))
    assert tree_hash(tmp_path) == h1
    f.chmod(0o755)
    h2 = tree_hash(tmp_path)
    assert h2 != h1
    f.write_text("int y;\n")
    assert tree_hash(tmp_path) not in (h1, h2)
    (tmp_path / "link").symlink_to("sub/a.c")
    assert tree_hash(tmp_path) != h2
