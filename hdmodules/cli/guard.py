"""How a command's failures become one line and an exit code, and how it leaves. Without
click: the click CLI (common.run_cli) and a plain `hit build` run before click is imported
(cli/plainbuild.py, issue 18) share them."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from ..errors import ConfigError, FollowStopped, HitError, escaped
from .process import flush_output

Say = Callable[[str], None]  # one line on stderr

_received: list[int] = []  # SIGTERM or SIGHUP, once received


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM or SIGHUP (`timeout`, `scancel`, a closed terminal): handled as Ctrl-C is, so
    the builds under way are stopped too (the scheduler's interrupt path)."""
    _received.append(signum)
    raise KeyboardInterrupt


def guarded(body: Callable[[], int], prog: str, say: Say) -> int:
    """Run a command's `body` (returns its exit code); user errors become one line `prog:
    error: ...` (`say`) and exit 1, never a traceback. SIGTERM and SIGHUP stop it as Ctrl-C
    does (the builds under way with it; exit 128 + the signal), instead of leaving its
    builds running. A reader that went away (`hit status | head -1`) exits 141, as SIGPIPE
    would."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        return body()
    except FollowStopped as e:  # the jobs keep running: say how to follow them
        say(str(e))
        return 130
    except KeyboardInterrupt:  # builds under way are stopped (builder.kill_running)
        say("")  # past the terminal's ^C, as click's main does before its Abort
        say(f"{prog}: interrupted")
        return interrupted()
    except BrokenPipeError:
        return 141
    except (HitError, OSError) as e:
        say(f"{prog}: error: {error_text(e)}")
        return 1


def interrupted() -> int:
    """The exit code of a command stopped by Ctrl-C (130), SIGTERM or SIGHUP (128 + it)."""
    return 128 + _received[0] if _received else 130


def error_text(e: HitError | OSError) -> str:
    """The one line a user sees for an error: a bad input file's place first (`file:line:
    message`, as editors read it), an OSError's reason and path. Control characters but line
    breaks and tabs are escaped (errors.escaped): a file name may hold ESC; a failed build's
    message spreads over lines by design (its log lines escaped: errors.log_line); a
    ConfigError is one line whatever its file's name holds."""
    if isinstance(e, ConfigError):
        return escaped(f"{e.where}: {e.message}")
    if isinstance(e, OSError):
        where = f": {e.filename}" if e.filename else ""
        return escaped(f"{e.strerror or e}{where}")
    return escaped(str(e), keep="\n\t")


def leave(code: int, prog: str = "hit") -> NoReturn:
    """Exit with `code` once a command is done, without the interpreter's teardown: freeing
    every object one by one took ~120 ms after a switch of a 5,000-package profile (issue
    18). The standard streams are flushed (141 when the reader is gone) and the atexit
    functions run first (filelock releases a lock still held, logging flushes). While
    another thread still runs, or a profiler or tracer watches (cProfile writes its figures
    after the program), this is a plain exit."""
    if threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        sys.exit(code)
    code = flush_output(code, prog)
    atexit._run_exitfuncs()  # what a normal exit runs before tearing the interpreter down
    os._exit(code)
