"""What a build prints: one line per package event, plus a live status line on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Plain lines (`[2/5] liba/abc123  built in 1.2 s`) for logs and pipes; on a terminal a
    last line shows what is running right now and is redrawn as builds start and end."""

    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.live = self.stream.isatty()
        self.running: dict[str, float] = {}  # scripts running
        self.checking: dict[str, None] = {}  # scripts ended, artifacts being checked, sealed
        self._lock = threading.Lock()

    def _emit(self, line: str) -> None:
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            if self.live and (self.running or self.checking):
                parts = [f"building: {', '.join(self.running)}"] if self.running else []
                parts += [f"checking: {', '.join(self.checking)}"] if self.checking else []
                self.stream.write(f"[{self.done}/{self.total}] {'; '.join(parts)}")
            self.stream.flush()

    def _counted(self, short: str, what: str) -> None:
        self.done += 1
        self._emit(f"[{self.done}/{self.total}] {short}  {what}")

    def present(self, short: str) -> None:
        """`short` is built already: found so before building, or (after `started`) built
        meanwhile by another process that held its lock."""
        self.running.pop(short, None)
        self.checking.pop(short, None)
        if not self.quiet:
            self._counted(short, "present")
        else:
            self.done += 1

    def waiting(self, short: str) -> None:
        """`short` waits for another process building the same artifact."""
        self._emit(f"      {short}  waiting: another process is building it")

    def started(self, short: str) -> None:
        """`short` (a short artifact id) starts building."""
        self.running[short] = time.monotonic()
        self._emit(f"      {short}  building")

    def ended(self, short: str) -> None:
        """`short`'s script ended well; its artifact is being checked and sealed while the
        next build runs (scheduler.ENDED): the live line lists it apart, so that it names as
        many builds as run scripts (the CPUs of `-j N`)."""
        self.running.pop(short, None)
        self.checking[short] = None

    def built(self, short: str, seconds: float) -> None:
        """`short` was built in `seconds`."""
        self.running.pop(short, None)
        self.checking.pop(short, None)
        self._counted(short, f"built in {seconds:.1f} s")

    def failed(self, short: str) -> None:
        """`short` failed (the message comes with the error)."""
        self.running.pop(short, None)
        self.checking.pop(short, None)
        self._counted(short, "failed")

    def note(self, line: str) -> None:
        """One line for the user (stderr), above the live status line."""
        self._emit(line)
