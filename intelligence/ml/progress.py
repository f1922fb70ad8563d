"""A ticking "elapsed / budget" line on stderr while a blocking training call runs."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO


class Progress:
    """Context manager: prints ``label: 12s / 60s`` every ``every_s`` seconds until the block ends."""

    def __init__(self, label: str, budget_s: float, stream: TextIO | None = None, every_s: float | None = None) -> None:
        self.label = label
        self.budget_s = budget_s
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 5.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ml-progress", daemon=True)
        self._started = 0.0

    def _line(self) -> str:
        elapsed = time.monotonic() - self._started
        return f"{self.label}: {elapsed:4.0f}s / {self.budget_s:.0f}s budget"

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._write(self._line())

    def _write(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._write(self._line())
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._write(self._line() + (" - done" if exc is None else " - failed"))
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
