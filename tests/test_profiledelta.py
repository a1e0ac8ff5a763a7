"""A profile switch reads the packages of an edited profile YAML from the lines it changed
(spec/profiledelta.py): whatever it answers, the YAML loader must answer the same, and it
answers nothing for an edit it cannot tell."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hdmodules.errors import HitError
from hdmodules.spec.profiledelta import Layout, from_saved, listed, of_profile, saved
from hdmodules.spec.profiles import load_profile

BASES = [
    "packages:\n  a:\n  b:\n  c:\n  d:\n",
    "package_dirs: []\npackages:\n  a:\n  b:\n  c:\nprefer: [a]\n",
    "packages:\n- a\n- b\n- c\n",
    "packages:\n    - a\n    - b\n    - c\ntoolchain: {}\n",
    "packages:\n  # the first\n  a:\n  b:\n    version: '2'\n  c:\n\n  d:\n",
    "packages:\n  a:\n  b: {version: '2'}\n  c:\n  d:\n# the end\n",
    "packages:\n  a:\n  b:\n  c:",  # no line break at the end
    "packages:\n  a:\n    ~\n  b:\n  c:\n",  # a's null on a line of its own
]
LINES = [
    "  e:", "  f:", "  a:", "  yes:", "  null:", "  2to3:", "  x.y+z-1:", "  e:  ", "   e:",
    "  e: ~", "    e:", "  # note", "", "  - e", "- e", "    - e", "e:", "  e:\t", "  On:",
    "  profile:", "    version: '3'", "prefer: [a]", "  e: {}", "  - yes", "- f", "    ~",
    "    null", "  e: # c", "\ta:", "  \u2028e:", "...", "  {e: }", "  [e]", "}", "]", "  {",
    "  e: ,", "  &x e:", "  *x :", "  <<: {e: }", "  'e':", "---",
]  # fmt: skip


def _packages(path: Path, text: str) -> tuple[list[str], Layout | None] | None:
    """What the loader reads in `text` (its packages and layout), None for an error."""
    path.write_text(text)
    try:
        spec = load_profile(path)
    except HitError:
        return None
    return list(spec.packages), of_profile(spec)


def _edits(rng: random.Random, text: str) -> str:
    rows = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(rows) + 1)
        what = rng.random()
        if what < 0.4 and at < len(rows):
            del rows[at]
        elif what < 0.7:
            rows.insert(at, rng.choice(LINES))
        elif at < len(rows):
            rows[at] = rng.choice(LINES)
    return "\n".join(rows)


@pytest.mark.parametrize("seed", range(12))
def test_what_the_lines_tell_is_what_the_loader_reads(tmp_path, seed):
    """Random edits of profiles of each form: when `listed` answers, the loader reads the
    same packages in the same order and the same layout; the plain removals and additions
    a switch makes are answered (not left to the loader)."""
    rng = random.Random(seed)
    path = tmp_path / "p.yaml"
    answered = 0
    for _ in range(300):
        base = rng.choice(BASES)
        loaded = _packages(path, base)
        assert loaded is not None and loaded[1] is not None, base
        old = from_saved(saved(loaded[1]))  # as the memo keeps it
        assert old == loaded[1]
        text = _edits(rng, base)
        found = listed(old, text)
        if found is None:
            continue
        answered += 1
        truth = _packages(path, text)
        assert truth is not None, (base, text)  # the loader takes it
        assert list(found[0]) == truth[0], (base, text)
        assert found[1] == truth[1], (base, text)
    assert answered > 10  # (20-40 of 300 here)


def test_a_switch_removing_or_adding_plain_lines_is_told(tmp_path):
    text = "package_dirs: []\npackages:\n  a:\n  b:\n  c:\nprefer: [a]\n"
    spec = load_profile(_write(tmp_path, text))
    old = of_profile(spec)
    assert old is not None
    names, layout = listed(old, text.replace("  b:\n", ""))
    assert names == ("a", "c")
    names, _ = listed(layout, text.replace("  b:\n", "  b:\n  d:\n  e:\n"))
    assert names == ("a", "b", "d", "e", "c")


@pytest.mark.parametrize("dash", [False, True])
def test_packages_added_or_removed_at_the_end_of_the_text_are_told(tmp_path, dash):
    """A list that ends the text, after its last line break: packages appended to it, or its
    last ones removed, were loaded in full (the empty line after the last break was taken
    for a line that ends the list otherwise: the switch's test of the home's cache)."""
    line = "- {}\n" if dash else "  {}:\n"
    text = "package_dirs: []\npackages:\n" + line.format("a")
    old = of_profile(load_profile(_write(tmp_path, text)))
    more = text + line.format("b") + line.format("c")
    names, layout = listed(old, more)
    assert names == ("a", "b", "c") and layout == _packages(tmp_path / "p.yaml", more)[1]
    names, _ = listed(layout, text)
    assert names == ("a",)


@pytest.mark.parametrize(
    "edit",
    [
        ("  b:\n", "  b:\n  # a comment\n"),  # not a package line
        ("  b:\n", "  yes:\n"),  # YAML reads it as a bool
        ("  b:\n", "  a:\n"),  # a name twice: the loader says so
        ("  b:\n  c:\n", "  b:\n"),  # removing c lets `    version` under b
        ("  a:\n", "  a:\n  b:\n"),  # b twice
        ("prefer", "\nprefer"),  # a blank line: not a package line
    ],
)
def test_an_edit_the_lines_cannot_tell_is_left_to_the_loader(tmp_path, edit):
    text = "packages:\n  a:\n  b:\n  c:\n    version: '2'\nprefer: [a]\n"
    old = of_profile(load_profile(_write(tmp_path, text)))
    assert old is not None
    assert listed(old, text.replace(*edit, 1)) is None


@pytest.mark.parametrize(
    "text",
    [
        "packages:\n  {top: }\nprefer: []\n",
        "packages:\n  [top]\n",
        "packages:\n  {top: ,\n  a: ,\n  b:\n}\nprefer: []\n",
        "packages:\n  top:\n  'a':\n",
    ],
    ids=["flow-mapping", "flow-sequence", "flow-over-lines", "a-quoted-name"],
)
def test_a_list_in_flow_style_or_with_a_quoted_name_keeps_no_layout(tmp_path, text):
    """Flow style keeps no layout: a plain line inserted before `{top: }` or into a flow
    mapping closed by `}` at column 0 was read as a package added, where the loader says
    the text is malformed (this stop's attack trial)."""
    assert of_profile(load_profile(_write(tmp_path, text))) is None


def test_a_profile_that_extends_another_keeps_no_layout(tmp_path):
    _write(tmp_path, "packages:\n  a:\n", "base.yaml")
    spec = load_profile(_write(tmp_path, "extends: [base.yaml]\npackages:\n  b:\n"))
    assert of_profile(spec) is None


def _write(folder: Path, text: str, name: str = "p.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path
