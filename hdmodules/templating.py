"""Jinja2 for every generated text file. The templates live in the repo's `templates/` and
ship as the package `hdmodules.templates`; a site may put a folder of its own first, which
overrides the built-in templates file by file. Jinja2 is imported only when rendering, so
commands that render nothing start faster."""

from __future__ import annotations

import shlex
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any


def builtin_dir() -> Path:
    return Path(str(files("hdmodules.templates")))


@cache
def environment(overrides: tuple[Path, ...] = ()):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*map(str, overrides), str(builtin_dir())]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = lambda s: shlex.quote(str(s))
    return env


def render(template: str, overrides: tuple[Path, ...] = (), **context: Any) -> str:
    return environment(overrides).get_template(template).render(**context)
