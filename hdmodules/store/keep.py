"""What the gc keeps, and why: every kind of gc root, gathered in one list (`gather`).

Kinds, in the order `hit gc --list` shows them and `hit gc` counts them, each with what it
keeps:
- link: a profile link hit registered (`hit build`, `hdmod build`, `hit cp`, `hit develop`):
  the profile it points at.
- stale: a registered link that is gone (a plain `mv` or `rm`): the profile it last pointed
  to; or a generation whose link vanished before `hit build` made it again: its profile
  (generations.switch). Until `hit gc --drop-stale`.
- yours: a symlink you put in the roots folder yourself: what it points at.
- generation: an earlier generation of a link kept as rollback history (generations.History):
  its profile.
- temporary: a build running now: everything it builds or uses.
- user: a user's record of what their profile uses (a site store): those artifacts, while
  the user's link still points at that profile.

`hit gc` keeps what these reach, `hit purge` refuses what any of them reaches (naming it), and
`hit gc --list` shows them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import generations as gens
from . import roots

if TYPE_CHECKING:
    from .layout import Store

KINDS = ("link", "stale", "yours", "generation", "temporary", "user")


@dataclass(frozen=True)
class Kept:
    """One gc root of any kind: its `kind` (KINDS), `name` (how messages name it: a link's
    path, `LINK (generation 3)`, `a running build (pid 123)`), the store paths it reaches,
    the artifact ids it names (a user's record), and `line`, how `hit gc --list` shows it."""

    kind: str
    name: str
    paths: tuple[Path, ...]
    line: str
    ids: tuple[str, ...] = ()
    link: Path | None = None  # a registered link, or the link of a generation
    number: int | None = None  # a generation's number

    @property
    def keeps(self) -> bool:
        return bool(self.paths or self.ids)


def gather(
    gc_roots: Path, store: Store, history: gens.History, now: float | None = None
) -> list[Kept]:
    """Every gc root of every kind in `gc_roots`, for `store`, earlier generations chosen by
    `history`; roots that keep nothing (a stale link whose profile is unknown, a user's
    record whose link moved on) are included with nothing in `paths`, so that `--list`
    shows them."""
    now = time.time() if now is None else now
    out: list[Kept] = []
    for r in roots.list_roots(gc_roots, store.root):
        out.append(_root(r, store))
    for link, history_of_link in gens.every_link(gc_roots):
        out += _generations(link, history_of_link, store, history, now)
    for pid, paths in sorted(roots.temp_roots(gc_roots).items()):
        name = f"a running build (pid {pid})"
        line = f"{name}: {len(paths)} artifact(s) it builds or uses"
        out.append(Kept("temporary", name, tuple(sorted(paths)), line))
    for u in roots.use_records(gc_roots):
        line = f"{u.link}  (a user's profile, {u.state}: uses {len(u.ids)} artifact(s))"
        ids = u.ids if u.state != "gone" else ()  # alive, or a home we cannot look into
        out.append(Kept("user", f"the user's profile {u.link}", (), line, ids))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda k: order[k.kind])


def _root(r: roots.Root, store: Store) -> Kept:
    if not r.own:
        if r.target is None:
            line = f"{r.link}  STALE: your root points outside the store or at nothing"
            return Kept("yours", str(r.link), (), line)
        return Kept("yours", str(r.link), (r.target,), f"{r.link} -> {store.label(r.target)}"
                    "  (your root)")  # fmt: skip
    if r.target is not None:
        line = f"{r.link} -> {store.label(r.target)}"
        return Kept("link", str(r.link), (r.target,), line, link=r.link)
    keeps = f"; keeps {store.label(r.last)}" if r.last else ""
    line = f"{r.link}  STALE: the link is gone or points outside the store{keeps}"
    return Kept("stale", str(r.link), (r.last,) if r.last else (), line, link=r.link)


def _generations(
    link: Path, history_of_link: list[gens.Generation], store: Store, history, now: float
) -> list[Kept]:
    now_at = gens.current(link)
    out = []
    for g in history_of_link:
        if g.stale and g.target != now_at:
            name = f"{link} (generation {g.number})"
            line = (
                f"{link}  generation {g.number}  STALE: the link was moved or removed outside "
                f"hit while it pointed at {store.label(g.target)}; keeps it"
            )
            out.append(Kept("stale", name, (g.target,), line, link=link, number=g.number))
    for g in history.kept(history_of_link, now_at, now):
        if not g.stale:
            name = f"{link} (generation {g.number})"
            line = (
                f"{link}  generation {g.number} -> {store.label(g.target)}  "
                f"(rollback history: {history.why})"
            )
            out.append(Kept("generation", name, (g.target,), line, link=link, number=g.number))
    return out


def listing(gc_roots: Path, store: Store, history: gens.History) -> list[str]:
    """`hit gc --list`: one line a gc root, every kind (KINDS order)."""
    return [k.line for k in gather(gc_roots, store, history)]


NOUNS = {
    "link": "profile link(s)",
    "stale": "stale root(s) (links moved or removed outside hit)",
    "yours": "root(s) of yours in the roots folder",
    "generation": "earlier generation(s) kept as rollback history",
    "temporary": "running build(s)",
    "user": "user profile(s) using this store",
}


def counts(kept: list[Kept], history: gens.History) -> str:
    """`2 profile link(s), 1 earlier generation(s) kept as rollback history (history_days:
    30)`: how many roots of each kind keep something, the kinds that keep nothing left out."""
    parts = []
    for kind in KINDS:
        n = sum(1 for k in kept if k.kind == kind and k.keeps)
        if n:
            extra = f" ({history.why})" if kind == "generation" else ""
            parts.append(f"{n} {NOUNS[kind]}{extra}")
    return ", ".join(parts)
