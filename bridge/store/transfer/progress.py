"""Progress of a migrate-store run on stderr: rows, rows/s and ETA per table and phase."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A bar redrawn in place on a terminal; otherwise a line every `interval` seconds and one at
    the end of each table's phase (logs stay short)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.1 if self.tty else interval
        self.phase = self.table = ""
        self.total = self.done = 0
        self.began = self.last = time.monotonic()

    def start(self, phase: str, table: str, total: int) -> None:
        self.phase, self.table, self.total, self.done = phase, table, total, 0
        self.began = self.last = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(final=False)

    def finish(self) -> None:
        self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        when = f"{elapsed:.1f} s" if final else (f"ETA {left / rate:.0f} s" if rate > 0 else "ETA ?")
        text = f"{self.phase} {self.table}: {self.done:,}/{self.total:,} rows, {rate:,.0f} rows/s, {when}"
        if self.tty:
            width = 24
            filled = width if not self.total else min(width, width * self.done // self.total)
            end = "\n" if final else ""
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\033[K{end}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
