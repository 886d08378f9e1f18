"""Make sure graphs are compiled, by a child process, with progress and cancellation.

`ensure_compiled(specs)` returns at once when every MEF is in the cache; otherwise it runs
`compile_worker` in a subprocess and relays its progress events. The calling process never compiles, so
models it already runs keep running at full speed meanwhile.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rsmt_studio.inference.runtime.cache import GraphSpec
from rsmt_studio.inference.runtime.progress import ProgressPrinter

ProgressFn = Callable[[dict[str, Any]], None]


class CompileError(RuntimeError):
    """The compile subprocess failed; the message is its last error line."""


class CompileCancelled(RuntimeError):
    """`cancel()` returned True while compiling; the child was stopped and nothing half-written was kept."""


def ensure_compiled(
    specs: Iterable[GraphSpec],
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    jobs: int | None = None,
    shipped: bool = True,
    check_runnable: bool = True,
) -> dict[str, Path]:
    """Compile missing MEFs in child processes; return {spec name: MEF path} for all specs.

    CPU graphs that match a shipped compiled model (runtime/shipped.py, unless `shipped=False`) are installed
    from it instead, in milliseconds. MAX compiles a graph mostly on one core, so up to `jobs` children
    (default: one per core, at most 4) compile different graphs at once, one child per graph.
    `check_runnable=False` allows compiling for a CPU target this machine cannot run (to ship it).
    """
    specs = list(specs)
    if check_runnable:
        _check_runnable(specs)
    if shipped:
        from rsmt_studio.inference.runtime.shipped import install_shipped

        install_shipped(specs, progress)
    missing = [s for s in specs if not s.is_compiled()]
    if missing:
        jobs = max(1, min(jobs or min(os.cpu_count() or 1, 4), len(missing)))
        todo = queue.SimpleQueue()
        for spec in missing:  # one child per graph, `jobs` at a time: the slow graphs do not queue behind others
            todo.put(spec)
        lock = threading.Lock()

        def relay(event: dict[str, Any]) -> None:
            if progress is not None:
                with lock:
                    progress(event)

        errors: list[BaseException] = []

        def run() -> None:
            while not errors:
                try:
                    spec = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    _run_worker([spec], relay, cancel)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(exc)

        threads = [threading.Thread(target=run, daemon=True) for _ in range(jobs - 1)]
        for t in threads:
            t.start()
        run()
        for t in threads:
            t.join()
        if errors:
            raise next((e for e in errors if isinstance(e, CompileCancelled)), errors[0])
    return {s.name: s.mef_path() for s in specs}


def _check_runnable(specs: list[GraphSpec]) -> None:
    """Refuse CPU models whose target this CPU cannot run (`$RSMT_STUDIO_CPU_TARGET` set too high): loading
    one would crash the process with SIGILL at its first run, not raise."""
    from rsmt_studio.inference.runtime import cpu_target

    for spec in specs:
        if spec.device == "cpu" and not cpu_target.can_run(spec.target()):
            raise CompileError(f"{spec.name}: this CPU cannot run code for {spec.target()} "
                               f"(${cpu_target.TARGET_ENV} is {os.environ.get(cpu_target.TARGET_ENV)!r})")


def _run_worker(specs: list[GraphSpec], progress: ProgressFn | None, cancel: Callable[[], bool] | None) -> None:
    env = dict(os.environ)
    env.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsmt_studio.inference.runtime.compile_worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(json.dumps([s.to_json() for s in specs]))
    proc.stdin.close()
    stderr_tail: list[str] = []

    def drain_stderr() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            stderr_tail.append(line)
            del stderr_tail[:-40]

    threading.Thread(target=drain_stderr, daemon=True).start()
    error: str | None = None
    cancelled = False
    watcher_stop = threading.Event()

    def watch_cancel() -> None:
        nonlocal cancelled
        while not watcher_stop.wait(0.1):
            if cancel is not None and cancel():
                cancelled = True
                proc.terminate()
                return

    if cancel is not None:
        threading.Thread(target=watch_cancel, daemon=True).start()
    try:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "error":
                error = event.get("message", "unknown error")
            if len(specs) == 1 and specs[0].device == "cpu":  # which build of the graph (ship compiles two)
                event.setdefault("target", specs[0].target())
            if progress is not None:
                progress(event)
        rc = proc.wait()
    finally:
        watcher_stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if cancelled:
        raise CompileCancelled("compile cancelled")
    if rc != 0:
        tail = "".join(stderr_tail).strip().splitlines()
        raise CompileError(error or (tail[-1] if tail else f"compile worker exited with {rc}"))


#: The shared printer behind `print_progress` (stderr; terminal or log decided per event).
_PRINTER: ProgressPrinter | None = None


def print_progress(event: dict[str, Any]) -> None:
    """A progress callback for the CLI: one line per graph, in place on a terminal, whole lines in a log
    (`progress.ProgressPrinter`)."""
    global _PRINTER
    if _PRINTER is None:
        _PRINTER = ProgressPrinter()
    _PRINTER(event)
