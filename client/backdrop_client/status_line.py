"""One line of progress on stderr: rewritten in place on a terminal; anywhere else (a log,
a pipe) printed only when it changes, at most once every `every` seconds, or not at all
(`tty_only`)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO


class StatusLine:
    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty_only: bool = False,
        every: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._silent = tty_only and not self._tty
        self._every, self._clock = every, clock
        self._last = ""
        self._written_at: float | None = None
        self._held = ""  # a change not printed yet, off a terminal (too soon after the last)

    def show(self, line: str) -> None:
        if self._silent:
            return
        if self._tty:
            # A line wider than the terminal wraps, and \r would then rewrite only its end.
            line = line[: max(shutil.get_terminal_size().columns - 1, 20)]
        if line == self._last:
            self._held = ""
            return
        if not self._tty:
            now = self._clock()
            if self._written_at is not None and now - self._written_at < self._every:
                self._held = line
                return
            self._written_at, self._held = now, ""
            self._stream.write(f"{line}\n")
        else:
            # Pad over a longer previous line.
            self._stream.write(f"\r{line}{' ' * max(len(self._last) - len(line), 0)}")
        self._last = line
        self._stream.flush()

    def close(self) -> None:
        """Leave the last line standing and move to the next (off a terminal, print the
        last change if it was held back, so a log ends with how things ended)."""
        if self._tty and self._last:
            self._stream.write("\n")
            self._stream.flush()
        elif self._held:
            self._stream.write(f"{self._held}\n")
            self._stream.flush()
        self._last, self._held, self._written_at = "", "", None
