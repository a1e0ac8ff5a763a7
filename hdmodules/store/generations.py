"""Generations: every profile a link has pointed to, and which of them the gc keeps.

`gc_roots/_gen/<entry>/` holds, for one profile link, `link` (its path) and one symlink per
generation, `<n>` -> the profile, made when `hit build` pointed the link there. `hit history`
lists them, `hit rollback` goes back to the newest earlier one whose profile still exists.

The generation a link points at is kept by the link itself (a gc root). An earlier one is a gc
root only as **rollback history**, when the user asks for it (`History`: `history_keep` and
`history_days` in config.yaml, or `hit gc --keep-history AGE`); by default none is, so that
removing a package from a profile, `hit build` and `hit gc` remove the package, as the
HashDist guide says. The gc then forgets the generations whose profile it removed (as
`nix-collect-garbage -d` deletes Nix's generations).

A generation can also be **stale**: `hit build` found its registered link gone (moved with a
plain `mv`, or deleted by hand) while it pointed at that generation's profile, and made the
link again for a new profile. A moved link may still point at the old profile, so the gc keeps
it, and says so, until `hit gc --drop-stale` (mark: `<n>.stale` beside the generation).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_atomic
from ..errors import HitError
from .links import set_link
from .roots import GENERATIONS, STALE, entry_for, gen_folder, links_locked, point

if TYPE_CHECKING:
    from .layout import Store


@dataclass(frozen=True)
class Generation:
    """One generation of a profile link: its number, when it was made (seconds since the
    epoch), the profile, and whether the link vanished outside hit while pointing at it."""

    number: int
    when: float
    target: Path
    stale: bool = False


def _read(folder: Path) -> list[Generation]:
    """The generations recorded in one folder, oldest first."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return []
    out = [_generation(folder, n, names) for n in names if n.isascii() and n.isdigit()]
    return sorted((g for g in out if g is not None), key=lambda g: g.number)


def _generation(folder: Path, name: str, names: set[str]) -> Generation | None:
    """The generation of `folder`'s entry `name` (digits; the folder's entries: `names`);
    None when that entry is no symlink."""
    f = folder / name
    try:
        target = os.readlink(f)
        when = f.lstat().st_mtime
    except OSError:
        return None
    return Generation(int(name), when, Path(target), name + STALE in names)


def generations(gc_roots: Path, link: Path) -> list[Generation]:
    """The generations of `link`, oldest first."""
    return _read(gen_folder(gc_roots, link))


def every_link(gc_roots: Path) -> list[tuple[Path, list[Generation]]]:
    """Each link that has generations, with them (oldest first), sorted by link path."""
    top = gc_roots / GENERATIONS
    out = []
    if top.is_dir():
        for folder in top.iterdir():
            try:
                link = Path((folder / "link").read_text().strip())
            except OSError:
                continue
            out.append((link, _read(folder)))
    return sorted(out, key=lambda x: str(x[0]))


def current(link: Path) -> Path | None:
    """The profile `link` points at now (its real path), None when it is gone."""
    return Path(os.path.realpath(link)) if link.is_symlink() else None


@dataclass(frozen=True)
class Switch:
    """What `switch` did: whether the link changed, the generation it points at now, and the
    profile a link that vanished outside hit last pointed to (None: nothing vanished)."""

    changed: bool
    number: int
    vanished: Path | None = None


def switch(gc_roots: Path, link: Path, target: Path) -> Switch:
    """`hit build`'s last step: point `link` at `target` as a registered gc root
    (roots.point) and record the generation. When the link was registered but is gone
    (moved with a plain `mv` or deleted outside hit) and pointed at another profile, the
    generation of that profile is marked stale: a moved link may still point at it, so the
    gc keeps it until `hit gc --drop-stale`."""
    with links_locked(gc_roots):
        entry = entry_for(gc_roots, link)
        last = entry.with_name(entry.name + ".last")
        vanished = None
        if entry.is_symlink() and not link.is_symlink() and last.is_symlink():
            before = Path(os.readlink(last))
            if before != target and before.exists():
                vanished = before
        with signals_held():  # the link and its generation change together
            changed = point(gc_roots, link, target)
            if vanished is not None:
                mark_stale(gc_roots, link, _record(gc_roots, link, vanished, new=False))
            number = _record(gc_roots, link, target)
            _set_at(gc_roots, link, number)
    return Switch(changed, number, vanished)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back while the block runs, then act on the first one
    that came (its handler runs as it left: KeyboardInterrupt). A Ctrl-C late in `hit build`
    switched the link and left its generation unrecorded: `hit history` lacked it and `hit
    rollback` found nothing to go back to. In the main thread only (where Python runs signal
    handlers); elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[tuple[int, object]] = []

    def hold(signum: int, frame: object) -> None:
        came.append((signum, frame))

    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {signum: signal.signal(signum, hold) for signum in held}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if came:
            signum, frame = came[0]
            handler = before[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def _record(gc_roots: Path, link: Path, target: Path, new: bool = True) -> int:
    """The generation of `link` pointing at `target`: the newest one if it already does
    (with `new=False`: the newest one that does, anywhere in the history), else a new one.
    Returns its number."""
    folder = gen_folder(gc_roots, link)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "link", str(link.absolute()))
    if not new:
        same = [g.number for g in _read(folder) if g.target == target]
        if same:
            return same[-1]
    newest = _newest(folder)
    if new and newest is not None and newest.target == target:
        return newest.number
    number = newest.number + 1 if newest is not None else 1
    set_link(folder / str(number), target)
    return number


def _newest(folder: Path) -> Generation | None:
    """The newest generation recorded in `folder` (the highest number), found by its name:
    one readlink, where `_read` reads every generation (issue 18: 17 ms for a link's 820
    generations, on each `hit build` that switched it)."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return None
    numbered = sorted((n for n in names if n.isascii() and n.isdigit()), key=int, reverse=True)
    return next(filter(None, (_generation(folder, n, names) for n in numbered)), None)


def record_generation(gc_roots: Path, link: Path, target: Path) -> int:
    """Add a generation for `link` now pointing at `target` (none if its newest one does);
    returns its number. Nothing is pruned here: which earlier generations stay is the gc's
    decision (`History`)."""
    return _record(gc_roots, link, target)


def mark_stale(gc_roots: Path, link: Path, number: int) -> None:
    """Mark generation `number` of `link` stale (its link vanished outside hit)."""
    (gen_folder(gc_roots, link) / f"{number}{STALE}").touch()


def drop_stale(gc_roots: Path, dry_run: bool = False) -> list[tuple[Path, Generation]]:
    """`hit gc --drop-stale`: forget every stale mark (the generations then follow the
    history rule like any other); returns the (link, generation) pairs it concerned."""
    dropped = []
    for link, gens in every_link(gc_roots):
        for g in gens:
            if g.stale:
                dropped.append((link, g))
                if not dry_run:
                    (gen_folder(gc_roots, link) / f"{g.number}{STALE}").unlink(missing_ok=True)
    return dropped


def forget(gc_roots: Path, gone: set[Path], dry_run: bool = False) -> list[tuple[Path, Generation]]:
    """Forget the generations whose profile is in `gone` (the gc removed it, or would), and
    the folder of a link that is no longer registered once none is left; returns the
    (link, generation) pairs."""
    import shutil

    forgotten = []
    for link, gens in every_link(gc_roots):
        folder = gen_folder(gc_roots, link)
        going = [g for g in gens if g.target in gone]
        forgotten += [(link, g) for g in going]
        if dry_run:
            continue
        for g in going:
            (folder / str(g.number)).unlink(missing_ok=True)
            (folder / f"{g.number}{STALE}").unlink(missing_ok=True)
        if len(going) == len(gens) and not entry_for(gc_roots, link).is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
    return forgotten


# --- which earlier generations the gc keeps ----------------------------------------------------


@dataclass(frozen=True)
class History:
    """Which earlier generations of each link are gc roots (rollback history): the last
    `keep` of them, and those the link left less than `seconds` ago (when the next one was
    made). `why` says where the rule comes from, for messages: `history_days: 30`, or
    `--keep-history 2w`. The default keeps none."""

    keep: int = 0
    seconds: float = 0.0
    why: str = "history_keep: 0, history_days: 0"

    @property
    def on(self) -> bool:
        return self.keep > 0 or self.seconds > 0

    def kept(self, gens: list[Generation], now_at: Path | None, now: float) -> list[Generation]:
        """Of `gens` (one link's, oldest first), the earlier ones (not pointing at `now_at`,
        the link's profile) that this rule keeps."""
        earlier = [g for g in gens if g.target != now_at]
        by_count = {g.number for g in earlier[len(earlier) - self.keep :]} if self.keep else set()
        left = {a.number: b.when for a, b in zip(gens, gens[1:], strict=False)}
        return [
            g
            for g in earlier
            if g.number in by_count or now - left.get(g.number, g.when) < self.seconds
        ]


def history_of(keep: int, days: int) -> History:
    """The rule config.yaml's `history_keep` and `history_days` give; its `why` names the
    keys that keep something (both when neither does)."""
    said = [f"{k}: {v}" for k, v in (("history_keep", keep), ("history_days", days)) if v]
    why = ", ".join(said) or "history_keep: 0, history_days: 0"
    return History(keep, days * 86400.0, why)


# --- hit history, hit rollback -----------------------------------------------------------------


AT = "at"  # in a link's generations folder: the number of the generation hit last set it to


def current_number(gens: list[Generation], now_at: Path | None, at: int | None) -> int | None:
    """Which of `gens` (one link's) is the current one: `at`, the generation `hit build` or
    `hit rollback` last pointed the link at (`_at`), while it holds `now_at`, the profile the
    link points at; else the newest that holds it (a link switched by an older hit, or
    outside hit). A link names a profile, not a generation (Nix's names a generation): after
    building A, B, A again, then rolling back to 2 and 1, generation 1 is current, not 3,
    and the next rollback goes on from 1 (it went back to 2: a rollback bounced between two
    profiles). None when none holds it."""
    if at is not None and any(g.number == at and g.target == now_at for g in gens):
        return at
    return max((g.number for g in gens if g.target == now_at), default=None)


def _at(gc_roots: Path, link: Path) -> int | None:
    """The generation hit last pointed `link` at (AT), or None."""
    try:
        text = (gen_folder(gc_roots, link) / AT).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _set_at(gc_roots: Path, link: Path, number: int) -> None:
    write_atomic(gen_folder(gc_roots, link) / AT, f"{number}\n")


def history(gc_roots: Path, link: Path, store: Store) -> list[str]:
    """`hit history`: one line a generation of `link`, oldest first: number, local time,
    the profile, `(current)` for the one it points at (current_number: one generation at
    most, as `nix-env --list-generations` marks one). Raises HitError when it has none
    (no_generations)."""
    gens = generations(gc_roots, link)
    if not gens:
        raise HitError(no_generations(link))
    now = current_number(gens, current(link), _at(gc_roots, link))
    lines = []
    for g in gens:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.when))
        mark = "  (current)" if g.number == now else ""
        lines.append(f"{g.number:>4}  {when}  {store.label(g.target)}{mark}")
    return lines


def previous_generation(gc_roots: Path, link: Path, rule: History | None = None) -> Generation:
    """The newest generation of `link` older than the current one (current_number) whose
    profile still exists and is not the one the link points at; when every such earlier
    generation holds that profile, the newest of them (rolling back to it changes nothing).
    Skipping those is what Nix's rollbacks reach too, one step later: Nix switches to such
    a generation (its content unchanged), and from there to the one before it; here the link
    names a profile, not a generation, so going to it would leave the link where it was,
    and the next rollback would choose it again. Raises HitError when there is no earlier
    generation (or the link points at no generation), saying, when `rule` keeps no history,
    that the gc removes earlier generations."""
    gens = generations(gc_roots, link)
    if not gens:
        raise HitError(no_generations(link))
    now_at = current(link)
    now = current_number(gens, now_at, _at(gc_roots, link))
    earlier = [g for g in gens if now is not None and g.number < now and g.target.exists()]
    other = [g for g in earlier if g.target != now_at]
    if other:
        return other[-1]
    if not earlier:
        why = ""  # below: only when there were earlier ones (the first is number 1)
        if rule is not None and not rule.on and now is not None and now > 1:
            why = (
                "; rollback history is not kept (history_keep and history_days are 0 in "
                "config.yaml), so `hit gc` removes earlier generations: set history_days: N "
                "to keep those of the last N days"
            )
        raise HitError(f"{link} has no earlier generation to go back to (`hit history`){why}")
    return earlier[-1]


def no_generations(link: Path) -> str:
    """What `hit history` and `hit rollback` say of a link with no generation recorded: no
    profile link hit knows, or one `hit cp` made (a copy starts without history)."""
    return (
        f"{link} has no generations: `hit build` records one each time it points this link "
        "at a profile (is it the profile's link? `hit gc --list` lists those hit knows)"
    )


def rollback(gc_roots: Path, link: Path, rule: History | None = None) -> tuple[Generation, bool]:
    """`hit rollback`: point `link` back at its previous generation (previous_generation);
    returns it and whether the link changed (not when that generation holds the profile the
    link points at already). Nothing is read or built. Raises HitError as
    previous_generation does, or naming the link when it cannot be made."""
    with links_locked(gc_roots):
        back = previous_generation(gc_roots, link, rule)
        with signals_held():  # the link and the generation it is at change together
            changed = point(gc_roots, link, back.target)
            _set_at(gc_roots, link, back.number)
    return back, changed
