"""A profile YAML read as the one the no-op memo last loaded, but for lines that each list
one plain package (a name with nothing under it): the package list of a profile switch,
without parsing the YAML again (issue 18, goal 3: loading a 5,000-package profile costs
50 ms of a switch's 300).

The memo keeps the `Layout` of the text its build loaded: the text, the line of its
`packages:` key, and each package's line, with whether it is plain (one line, `  NAME:` or
`  - NAME`, asking for nothing). A new text differs from that one in a run of whole lines
(the lines both texts start and end with set apart). When every line of the run, in either
text, is a plain package at the packages' indentation, the line before the run is the key or
a plain package, and the line after it one that ends or continues the list (another package,
a top-level key, or the end of the text, after its last line break or not), then the YAML
loader would read the new text as the old one with those packages listed instead: nothing
else in it changed, and a block mapping or sequence goes on line by line. Anything else (a
comment, a blank line, another form, a name YAML would read as a bool or null, a name twice)
is None: the text is loaded in full (yamlfile.py), which says what is wrong with it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from ..names import package_name_problem

# a name as the loader would read it: a plain scalar that resolves to a string (starting
# with a letter: YAML 1.1 reads digits as numbers or dates), one of names.py's names
_NAME = r"([A-Za-z][A-Za-z0-9_.+-]*)"
_ENTRY = re.compile(rf"( +){_NAME}:[ \t]*")  # of a block mapping (indented under the key)
_ITEM = re.compile(rf"( *)- +{_NAME}[ \t]*")  # of a block sequence
_NOT_STRINGS = frozenset(["yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"])
_KEY = re.compile(r"packages:[ \t]*")
_TOP = re.compile(r"[A-Za-z_\"']|---|\.\.\.")  # a line a block list ends at: a key, a marker
# line breaks YAML knows besides \n: a text with one counts lines otherwise than split("\n")
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


@dataclass(frozen=True)
class Layout:
    """Where a profile text lists its packages: the `text`, the index (from 0) of its
    `packages:` line (`key`), the indentation of the entries (`indent`), whether they are a
    sequence (`dash`) or a mapping, the `names` in order with each one's line (`lines`,
    ascending) and whether it is plain."""

    text: str
    key: int
    indent: str
    dash: bool
    names: tuple[str, ...]
    lines: tuple[int, ...]
    plain: tuple[bool, ...]


def saved(layout: Layout | None) -> list | None:
    """`layout` as the memo keeps it (marshal's types); None for none (`from_saved` reads it)."""
    if layout is None:
        return None
    names = "\0".join(layout.names)
    return [layout.text, layout.key, layout.indent, layout.dash, names, list(layout.lines),
            bytes(layout.plain)]  # fmt: skip


def from_saved(saved: object) -> Layout | None:
    """The Layout `saved` gave; None for anything else (another format)."""
    try:
        text, key, indent, dash, names, lines, bits = saved  # type: ignore[misc]
        return Layout(text, key, indent, dash, tuple(names.split("\0")), tuple(lines),
                      tuple(map(bool, bits)))  # fmt: skip
    except (TypeError, ValueError, AttributeError):
        return None


def of_profile(spec) -> Layout | None:
    """The Layout of a loaded profile (spec.profiles.ProfileSpec) that extends none, whose
    own text it keeps; None for another."""
    if spec.files != [spec.file] or not spec.text:
        return None
    entries = [
        (name, req.line, not (req.parameters or req.version or req.git))
        for name, req in spec.packages.items()
    ]
    return layout(spec.text, entries)


def layout(text: str, entries: list[tuple[str, int, bool]]) -> Layout | None:
    """The Layout of a profile `text` the loader read, whose packages were `entries` (name,
    line from 1, whether it asked for nothing), in order; None when no later text can be
    read against it (no package, a line break other than \\n, no `packages:` line at the
    start of the line before the first package, an entry that does not start its line as
    a block mapping's or sequence's at the first one's indentation: flow style, a quoted
    name)."""
    if not entries or any(b in text for b in _OTHER_BREAKS):
        return None
    rows = text.split("\n")
    lines = tuple(line - 1 for _name, line, _plain in entries)
    if any(b <= a for a, b in zip(lines, lines[1:], strict=False)) or lines[-1] >= len(rows):
        return None
    key = lines[0] - 1
    while key >= 0 and (not rows[key].strip() or rows[key].lstrip().startswith("#")):
        key -= 1
    first = rows[lines[0]]
    indent = first[: len(first) - len(first.lstrip(" "))]
    dash = first[len(indent) :].startswith("-")
    if key < 0 or not _KEY.fullmatch(rows[key]) or not (indent or dash):
        return None
    form = _ITEM if dash else _ENTRY
    plain = []
    for name, line, asks_nothing in entries:
        row = rows[line - 1]
        start = f"{indent}-" if dash else f"{indent}{name}:"
        if not row.startswith(start) or row[len(start) : len(start) + 1] not in ("", " ", "\t"):
            return None  # not a block entry at the list's indentation: flow style, a quoted name
        m = form.fullmatch(row)
        plain.append(bool(asks_nothing and m and m[1] == indent and m[2] == name))
    names = tuple(name for name, _line, _plain in entries)
    return Layout(text, key, indent, dash, names, lines, tuple(plain))


def listed(old: Layout, text: str) -> tuple[tuple[str, ...], Layout] | None:
    """The packages the profile `text` lists, in order, and its Layout, when it differs
    from the text of `old` only in plain package lines (the module's docstring); else
    None. Never raises."""
    if any(b in text for b in _OTHER_BREAKS):
        return None
    was, now = old.text.split("\n"), text.split("\n")
    start, end = _differing(was, now)  # was[start:len(was)-end] became now[start:len(now)-end]
    gone = range(start, len(was) - end)
    at = dict(zip(old.lines, range(len(old.lines)), strict=True))  # line -> entry
    if any(i not in at or not old.plain[at[i]] for i in gone):
        return None
    before, after = start - 1, len(was) - end
    if before != old.key and not (before in at and old.plain[at[before]]):
        return None  # the run does not start in the list, or after a package with more lines
    ends = was[after:] in ([], [""])  # the text ends there (after its last line break or not)
    if not ends and after not in at and not _TOP.match(was[after]):
        return None  # after it neither a package, a top-level key, a document marker nor the end
    form = _ITEM if old.dash else _ENTRY
    added = []
    for line in now[start : len(now) - end]:
        m = form.fullmatch(line)
        if m is None or m[1] != old.indent or m[2].lower() in _NOT_STRINGS:
            return None
        if package_name_problem(m[2]):
            return None
        added.append(m[2])
    first, last = bisect_left(old.lines, start), bisect_left(old.lines, after)
    names = (*old.names[:first], *added, *old.names[last:])
    if not names or len(set(names)) != len(names):
        return None  # no package, or one twice: the loader says what is wrong
    shift = len(now) - len(was)
    lines = (
        *old.lines[:first],
        *range(start, start + len(added)),
        *(i + shift for i in old.lines[last:]),
    )
    plain = (*old.plain[:first], *(True,) * len(added), *old.plain[last:])
    return names, Layout(text, old.key, old.indent, old.dash, names, lines, plain)


def _differing(was: list[str], now: list[str]) -> tuple[int, int]:
    """How many lines `was` and `now` start with alike, and how many they then end with."""
    start, most = 0, min(len(was), len(now))
    while start < most and was[start] == now[start]:
        start += 1
    end = 0
    while end < most - start and was[-1 - end] == now[-1 - end]:
        end += 1
    return start, end
