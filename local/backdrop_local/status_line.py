"""One line of progress on stderr: rewritten in place on a terminal; anywhere else (a log,
a pipe) printed only when it changes, or not at all (`tty_only`)."""

from __future__ import annotations

import sys
from typing import TextIO


class StatusLine:
    def __init__(self, stream: TextIO | None = None, *, tty_only: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._silent = tty_only and not self._tty
        self._last = ""

    def show(self, line: str) -> None:
        if line == self._last or self._silent:
            return
        if self._tty:
            # Pad over a longer previous line.
            self._stream.write(f"\r{line}{' ' * max(len(self._last) - len(line), 0)}")
        else:
            self._stream.write(f"{line}\n")
        self._last = line
        self._stream.flush()

    def close(self) -> None:
        """Leave the last line standing and move to the next."""
        if self._tty and self._last:
            self._stream.write("\n")
            self._stream.flush()
        self._last = ""
