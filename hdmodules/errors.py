"""The exceptions that reach users as a plain message instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class HitError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits non-zero."""


class ConfigError(HitError):
    """A bad input file (a profile, recipe, site.yaml, config.yaml, externals file).

    Fields: `file` (the file read), `line` (1-based, None when the problem is the whole
    file), `message` (what is wrong, without the place). `str()` is `file:line: message`
    (`file: message` without a line), the form editors jump to. Raised by yamlfile.fail and
    the loaders; `cli.common.run_cli` prints it."""

    def __init__(self, file: Path, line: int | None, message: str) -> None:
        super().__init__(file, line, message)  # args kept: the error pickles and compares
        self.file = Path(file)
        self.line = line
        self.message = message

    @property
    def where(self) -> str:
        """`file:line`, or `file` when there is no line."""
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class BuildFailed(HitError):
    """A build command failed; the message already holds the log tail and the kept folder."""
