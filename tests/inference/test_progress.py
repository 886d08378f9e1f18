"""Compile progress: whole lines in a log or pipe, one line per graph redrawn in place on a terminal (#15)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from rsmt_studio.inference.runtime.progress import ProgressPrinter

#: Two graphs compiling at once, events interleaved as the compiler's two children send them.
EVENTS = [
    {"event": "start", "name": "deephase"},
    {"event": "start", "name": "style"},
    *[{"event": "progress", "name": n, "elapsed_s": float(t)} for t in range(1, 71) for n in ("deephase", "style")],
    {"event": "done", "name": "deephase", "seconds": 70.2},
    {"event": "start", "name": "prepare"},
    {"event": "progress", "name": "style", "elapsed_s": 71.0},
    {"event": "progress", "name": "prepare", "elapsed_s": 1.0},
    {"event": "done", "name": "style", "seconds": 71.5},
    {"event": "done", "name": "prepare", "seconds": 2.5},
]


def render(text: str) -> list[str]:
    """What a terminal shows after `text` (handles \\r, \\n, erase-line and cursor-up: all the printer uses)."""
    screen: list[str] = [""]
    row = col = 0
    for token in re.findall(r"\x1b\[(\d*)([AK])|(\r)|(\n)|([^\x1b\r\n]+)", text):
        n, code, cr, nl, chars = token
        if code == "A":
            row = max(0, row - int(n or 1))
        elif code == "K":
            screen[row] = screen[row][:col]
        elif cr:
            col = 0
        elif nl:
            row, col = row + 1, 0
            if row == len(screen):
                screen.append("")
        else:
            line = screen[row]
            screen[row] = line[:col] + chars + line[col + len(chars):]
            col += len(chars)
    return [line for line in screen if line]


def test_log_output_is_whole_lines():
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=False, log_every_s=30)
    for event in EVENTS:
        printer(event)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert text.endswith("\n")
    assert all(re.fullmatch(r"(deephase|style|prepare): [^:]+", line) for line in lines), lines
    assert lines.count("deephase: compiling, 30 s") == 1 and lines.count("style: compiling, 60 s") == 1
    assert "deephase: compiled in 70.2 s" in lines and "prepare: compiled in 2.5 s" in lines
    assert len(lines) == 3 + 2 * 2 + 3  # 3 starts, 2 throttled progress lines per long graph, 3 dones


def test_terminal_shows_one_line_per_graph_updated_in_place():
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=True)
    for event in EVENTS[:40]:
        printer(event)
    assert render(out.getvalue()) == ["deephase: compiling, 19 s", "style: compiling, 19 s"]
    for event in EVENTS[40:]:
        printer(event)
    assert render(out.getvalue()) == ["deephase: compiled in 70.2 s", "style: compiled in 71.5 s",
                                      "prepare: compiled in 2.5 s"]
    printer({"event": "cached", "name": "steps8"})  # a later, separate compile starts a new block below
    assert render(out.getvalue())[-1] == "steps8: already compiled"
    assert len(render(out.getvalue())) == 4
    printer({"event": "start", "name": "loop", "target": "x86-64-v3"})
    printer({"event": "error", "message": "CompileError: boom"})  # ends that block; the next starts below it
    printer({"event": "cached", "name": "chain"})
    assert render(out.getvalue())[-3:] == ["loop x86-64-v3: compiling (first run only; minutes per graph on 2 cores)...",
                                           "compile failed: CompileError: boom", "chain: already compiled"]


_CHILD = (
    "import json, sys\n"
    "from rsmt_studio.inference.runtime.compiler import print_progress\n"
    "for line in sys.stdin: print_progress(json.loads(line))\n"
)


def _child_input() -> str:
    import json

    return "".join(json.dumps(e) + "\n" for e in EVENTS)


def test_cli_progress_to_a_pipe_is_whole_lines():
    """The real callback in a real process whose stderr is a pipe (as under `make run > log` or CI)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=_child_input(), capture_output=True, text=True,
                          timeout=60, check=True)
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "prepare: compiled in 2.5 s"
    assert all(re.fullmatch(r"(deephase|style|prepare): [^:]+", line) for line in proc.stderr.splitlines())


def test_cli_progress_to_a_terminal_redraws_in_place():
    """Same, with stderr on a pseudo-terminal: the screen ends with one finished line per graph."""
    primary, secondary = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=_child_input(), stdout=subprocess.DEVNULL,
                              stderr=secondary, text=True, timeout=60, check=True)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO once the child's side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    assert proc.returncode == 0
    text = b"".join(chunks).decode().replace("\r\n", "\n")  # the tty's ONLCR turns \n into \r\n
    assert "\x1b[" in text
    assert render(text) == ["deephase: compiled in 70.2 s", "style: compiled in 71.5 s", "prepare: compiled in 2.5 s"]
