"""Compile progress for people: one line per graph, updated in place on a terminal, whole lines in a log.

Graphs compile in parallel children, so their events interleave. Writing `\\r` + text per event fused them into
one unreadable line (`[1/1] style: 41 s[1/1] deephase: 42 s…`, issue #15). On a terminal the printer keeps one
line per graph and redraws that block in place (ANSI cursor-up + erase-line); anywhere else (a log file, a pipe,
CI) it writes only complete lines: a start line, a line every `log_every_s` seconds, and a done line.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

#: Seconds between "still compiling" lines when the output is not a terminal.
LOG_EVERY_S = 30.0


class ProgressPrinter:
    """A `ProgressFn` (compiler events -> text). `tty=None` asks the stream whether it is a terminal."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 log_every_s: float = LOG_EVERY_S) -> None:
        self._stream = stream
        self._tty = tty
        self.log_every_s = log_every_s
        self._lines: dict[str, str] = {}  # graph -> its current text (terminal block, in start order)
        self._drawn = 0  # lines of the block currently on screen
        self._last_logged: dict[str, float] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, event: dict[str, Any]) -> None:
        text = describe(event)
        if text is None:
            return
        name = label(event)
        kind = event.get("event")
        with self._lock:
            if self.tty:
                self._draw(name, text, final=kind in ("done", "cached", "shipped", "error"))
            elif kind != "progress" or self._due(name, float(event.get("elapsed_s", 0.0))):
                self.stream.write(text + "\n")
            self.stream.flush()

    def _due(self, name: str, elapsed: float) -> bool:
        last = self._last_logged.get(name, 0.0)
        if elapsed - last >= self.log_every_s:
            self._last_logged[name] = elapsed
            return True
        return False

    def _draw(self, name: str, text: str, final: bool) -> None:
        """Redraw the block of graph lines in place; when every graph has finished, leave it and start anew."""
        out = self.stream
        if not self._running:  # a new block: the previous one stays above as plain lines
            self._lines.clear()
            self._drawn = 0
        self._lines[name] = text
        if self._drawn:
            out.write(f"\x1b[{self._drawn}A")
        for line in self._lines.values():
            out.write("\r\x1b[K" + line + "\n")
        self._drawn = len(self._lines)
        if not final:
            self._running.add(name)
        elif name:
            self._running.discard(name)
        else:  # an error names no graph: the compile is over, the block stays as it is
            self._running.clear()


def label(event: dict[str, Any]) -> str:
    """The graph an event is about, with its CPU target when it has one (`deephase x86-64-v4`)."""
    name = str(event.get("name", ""))
    return f"{name} {event['target']}" if event.get("target") else name


def describe(event: dict[str, Any]) -> str | None:
    """One event as one line of text (None for events people need not see)."""
    kind = event.get("event")
    name = label(event)
    if kind == "start":
        return f"{name}: compiling (first run only; minutes per graph on 2 cores)..."
    if kind == "progress":
        return f"{name}: compiling, {float(event.get('elapsed_s', 0)):.0f} s"
    if kind == "done":
        return f"{name}: compiled in {float(event.get('seconds', 0)):.1f} s"
    if kind == "cached":
        return f"{name}: already compiled"
    if kind == "shipped":
        return f"{name}: shipped compiled model installed in {float(event.get('seconds', 0)) * 1e3:.0f} ms"
    if kind == "error":
        return f"compile failed: {event.get('message')}"
    return None
