"""Jinja2 for every generated text file. The templates live in the repo's `templates/` and
ship as the package `hdmodules.templates`; a site may put a folder of its own first, which
overrides the built-in templates file by file. Jinja2 is imported only when rendering, so
commands that render nothing start faster."""

from __future__ import annotations

import re
import shlex
import string
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from .errors import ConfigError


def builtin_dirs() -> list[Path]:
    """templates/ (modulefiles, build scripts, config) and slurm/ (job scripts)."""
    return [Path(str(files("hdmodules.templates"))), Path(str(files("hdmodules.slurm_files")))]


@cache
def environment(overrides: tuple[Path, ...] = ()):
    """The Jinja2 environment over `overrides` (a site's folders, first) and the built-in
    templates, with the q, arg, args, lua, tcl and comment filters."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*map(str, overrides), *map(str, builtin_dirs())]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = shell_quote
    env.filters["arg"] = shell_arg
    env.filters["args"] = shell_args
    env.filters["lua"] = lua_quote
    env.filters["tcl"] = tcl_quote
    env.filters["comment"] = comment_text
    return env


def shell_quote(value: object) -> str:
    """One shell word that bash reads back byte-exact, whatever the value holds: the one way
    any string enters a generated shell script (the `q` filter)."""
    return shlex.quote(str(value))


def shell_arg(value: object) -> str:
    """A recipe's argument (`configure_args: [...]` and the like) as one shell word: its text
    byte-exact (shell_quote), except that each `{NAME}` becomes the value of the build
    variable NAME ("$NAME", inside the same word, never split or globbed); `{{` and `}}` are
    literal braces. The `arg` filter. Raises ValueError for a field that is not a variable
    name (spec/buildsystems.py refuses those when the recipe is loaded)."""
    words, text = [], ""
    for literal, name, spec, conversion in string.Formatter().parse(str(value)):
        text += literal  # `{{x}}` comes as "{" and "x}": one quoted piece
        if name is not None:
            if spec or conversion or not name.isidentifier() or not name.isascii():
                raise ValueError(f"{{{name}}} is not a build variable")
            words += [shell_quote(text)] if text else []
            words.append(f'"${{{name}}}"')
            text = ""
    words += [shell_quote(text)] if text or not words else []
    return "".join(words)


def shell_args(values: Iterable[object]) -> str:
    """Arguments as shell words (shell_arg), each preceded by a space: "" for none, so a
    template writes `make{{ make_args|args }}`. The `args` filter."""
    return "".join(" " + shell_arg(v) for v in values)


def comment_text(value: object) -> str:
    """Text to put inside a one-line comment (shell and Tcl `#`, Lua `--`, YAML `#`): every
    character that is not printable, line breaks first, becomes a visible `\\xNN` (`\\uNNNN`),
    so nothing in the value can end the comment and start a line of code. Use it for every
    value in a comment; values outside comments go through q, lua or tcl."""

    def esc(c: str) -> str:
        if c.isprintable():
            return c
        return f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"

    text = str(value)
    return text if text.isprintable() else "".join(map(esc, text))


def _quoted(value: object, special: str, control: str) -> str:
    """A double-quoted literal: `special` characters get a backslash, a line break becomes
    \\n, other control characters `control` % their code. Rendering a site's tens of
    thousands of modulefiles quotes hundreds of thousands of values, nearly all with nothing
    or little to escape: one compiled pattern per (special, control) finds what needs it,
    and only that is replaced (str.translate would look up every character)."""
    text = str(value)
    needs, escape = _escapes(special, control)
    if needs.search(text) is None:
        return '"' + text + '"'
    return '"' + needs.sub(escape, text) + '"'


@cache
def _escapes(special: str, control: str) -> tuple[re.Pattern[str], Callable]:
    """A pattern matching each character _quoted escapes, and the function giving a match's
    escape."""
    table = {chr(c): control % c for c in (*range(32), 127)}
    table["\n"] = "\\n"
    table.update({c: "\\" + c for c in special})
    needs = re.compile("[" + "".join(re.escape(c) for c in sorted(table)) + "]")
    return needs, lambda m: table[m[0]]


def lua_quote(value: object) -> str:
    """A Lua string literal that reads back byte-exact, whatever the value holds: the one
    way any string enters generated Lua (the `lua` filter)."""
    return _quoted(value, '\\"', "\\%03d")


def tcl_quote(value: object) -> str:
    """A Tcl word that reads back byte-exact: every character Tcl would substitute ($ [ ]
    and backslash) or that could end the word is escaped, and braces too, so the word is safe
    inside a braced body (proc ModulesHelp). The one way any string enters generated Tcl (the
    `tcl` filter): modulefiles and `.modulerc`, which Lmod and Environment Modules evaluate as
    Tcl on a plain `module avail`."""
    return _quoted(value, '\\"$[]{};', "\\u%04x")


def render(template: str, overrides: tuple[Path, ...] = (), **context: Any) -> str:
    """Render the template named `template` (e.g. `lmod/module.lua`) with `context`. Raises
    ConfigError for a mistake in a template (template_errors)."""
    with template_errors():
        return environment(overrides).get_template(template).render(**context)


def snapshot(overrides: tuple[Path, ...] = ()):
    """The environment of `overrides` (as `environment`) for one run that renders many files
    (a module tree: tens of thousands): each template is compiled once, on first use, and
    its file is not looked at again, neither when it is fetched nor when another includes
    it. (The process-wide environment stats a template's file, and each file it includes,
    at every render, to notice a change.) Use its `get_template(name).render(...)`."""
    return environment(overrides).overlay(auto_reload=False, cache_size=100)


# what a template's own mistake raises while it renders (an unknown field, `"a" + 1`, a
# missing key, a template that includes itself); raised by hdmodules' code instead, the
# same types stay tracebacks (bugs)
_RENDER_ERRORS = (
    ArithmeticError, AttributeError, LookupError, RecursionError, TypeError, ValueError,
)  # fmt: skip


@contextmanager
def template_errors() -> Iterator[None]:
    """Around rendering: a mistake in a template (a site's override, `modules: templates:`)
    becomes one ConfigError naming the template's file and line (`file:line: template
    error: ...`): a syntax error (where Jinja found it), a missing include, an undefined
    field or a Python error raised by the template's own code (the innermost template line
    of the traceback, which Jinja rewrites to name template files). An error raised
    outside any template frame is left as it is."""
    import jinja2

    try:
        yield
    except jinja2.TemplateSyntaxError as e:
        where = Path(e.filename or e.name or "<template>")
        raise ConfigError(where, e.lineno, f"template error: {e.message}") from None
    except UnicodeDecodeError as e:  # (a ValueError) a template file that is not UTF-8
        where = _file_being_read(e)
        if where is None:
            raise
        line = e.object[: e.start].count(b"\n") + 1
        byte = e.object[e.start : e.start + 1].hex()
        message = f"template error: not UTF-8 text (byte 0x{byte})"
        raise ConfigError(Path(where), line, message) from None
    except (jinja2.TemplateError, *_RENDER_ERRORS) as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if _is_template(f.filename)]
        if not frames:
            raise
        missing = isinstance(e, jinja2.TemplateNotFound)
        message = f"no template {e.name!r} to include" if missing else str(e)
        raise ConfigError(
            Path(frames[-1].filename), frames[-1].lineno, f"template error: {message}"
        ) from None


def _file_being_read(e: UnicodeDecodeError) -> str | None:
    """The template file whose text could not be decoded: Jinja's loader reads it in
    `get_source(environment, template)`, whose local `filename` names it (jinja2 3.x's
    FileSystemLoader); None when the error came from elsewhere."""
    tb = e.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "get_source" and "/jinja2/" in frame.f_code.co_filename:
            name = frame.f_locals.get("filename")
            found = name if isinstance(name, str) else found
        tb = tb.tb_next
    return found


def _is_template(filename: str) -> bool:
    """Whether a traceback frame's file is a template (Jinja names a template's frames by its
    file) rather than Python code."""
    return not filename.endswith(".py") and not filename.startswith("<")


def render_file(path: Path, **context: Any) -> str:
    """Render the template file `path` with `context`, as it is now: compiled once per
    (path, mtime, size, inode), so a file that changed or appeared since an earlier render in
    this process is what renders. Its `{% include %}`s name built-in templates. Raises
    OSError if it cannot be read. (Its caller, spec/buildsystems.py, names the recipe too.)"""
    st = path.stat()
    return _compiled(str(path), st.st_mtime_ns, st.st_size, st.st_ino).render(**context)


@cache
def _compiled(path: str, mtime_ns: int, size: int, inode: int):
    """The compiled template of the file `path` at that stat stamp (render_file)."""
    return environment().from_string(Path(path).read_text())
