"""The exceptions that reach users as a plain message instead of a traceback, and the one
escaping of what a file or a build brings into such a message (`escaped`, `log_line`)."""

from __future__ import annotations

from pathlib import Path


def escaped(text: str, keep: str = "") -> str:
    """`text` with every character that is not printable (str.isprintable) and not in `keep`
    written as Python escapes it: a line break as `\\n`, ESC as `\\x1b`; a byte of a file
    name that is not UTF-8 (which Python keeps as a surrogate, U+DC80-U+DCFF) as that byte,
    `\\xff`. The one escaping of text a file or a build brought into what hit prints
    (messages, log lines)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(c: str) -> str:
    """One character as `escaped` writes it."""
    if "\udc80" <= c <= "\udcff":  # os.fsdecode's surrogateescape of one byte
        return f"\\x{ord(c) - 0xDC00:02x}"
    return c.encode("unicode_escape").decode()


def log_line(line: str) -> str:
    """One line of a build's log (one line: no line break in it) as hit prints it: its
    colours and styles (SGR sequences, `ESC[...m`) left out, as click.echo leaves them out
    off a terminal, tabs kept, every other control character escaped. So a recipe's output
    cannot retitle the user's terminal (`ESC]0;...BEL`), clear it, move its cursor to write
    over what hit said, ring it, or hide text (`ESC[8m`, black on black: styles cannot be
    told harmless from hiding, so none is kept)."""
    if line.isprintable():
        return line
    import re

    return escaped(re.sub(r"\x1b\[[0-9;:]*m", "", line), keep="\t")


class HitError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits non-zero."""


class ConfigError(HitError):
    """A bad input file (a profile, recipe, site.yaml, config.yaml, externals file).

    Fields: `file` (the file read), `line` (1-based, None when the problem is the whole
    file), `message` (what is wrong, without the place). `str()` is `file:line: message`
    (`file: message` without a line), the form editors jump to, always one line: a line break
    or other control character a file's value brought into the message is escaped (`\\n`).
    Raised by yamlfile.fail and the loaders; `cli.guard.guarded` prints it."""

    def __init__(self, file: Path, line: int | None, message: str) -> None:
        super().__init__(file, line, message)  # args kept: the error pickles and compares
        self.file = Path(file)
        self.line = line
        self.message = escaped(message)

    @property
    def where(self) -> str:
        """`file:line`, or `file` when there is no line."""
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class BuildFailed(HitError):
    """A build failed. Fields: `artifact` (its id, `name/<hash>`), `what` (what failed, e.g.
    "the build script failed (exit 1)"), `folder` (the build folder, kept for a look; None when
    nothing was kept), `log` (its build log), `tail` (the log's last lines). `str()` is
    `artifact: what`, then the kept folder, the log and the tail, one per line. Raised by
    builder.build; scheduler.run raises the first one with every other failure attached."""

    def __init__(
        self,
        artifact: str,
        what: str,
        folder: Path | None = None,
        log: Path | None = None,
        tail: tuple[str, ...] = (),
    ) -> None:
        super().__init__(artifact, what, folder, log, tail)  # args kept: the error pickles
        self.artifact = artifact
        self.what = what
        self.folder = folder
        self.log = log
        self.tail = tuple(tail)

    def __str__(self) -> str:
        lines = [f"{self.artifact}: {self.what}"]
        if self.folder is not None:
            lines.append(f"  build folder kept: {self.folder}")
            if self.log is not None:
                lines.append(f"  log: {self.log}")
        if self.tail:
            lines.append(f"  last {len(self.tail)} lines:")
            lines += ["    " + log_line(line) for line in self.tail]
        return "\n".join(lines)


class FollowStopped(HitError):
    """Ctrl-C while following submitted Slurm jobs: they keep running. The message says how
    to follow or cancel them; the CLI prints it and exits 130."""
