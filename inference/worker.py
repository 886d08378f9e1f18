"""`EngineWorker`: the `TransitionEngine` in a child process that is stopped while the user is idle.

Why: once MAX has executed anything, its runtime threads keep spinning at ~0.1-0.15 CPU-s per second even
when nothing runs (measured in docs/performance.md), and no runtime option turns that off in MAX 26.7 (the
thread-count and busy-wait settings abort the process). So the engine lives in its own process, and when no
request has arrived for `idle_stop_s` the parent sends it SIGSTOP; the next request sends SIGCONT first
(microseconds), so latency is unchanged while the idle cost drops to zero. Where SIGSTOP does not exist
(Windows) the worker simply runs (the idle cost remains there).

The proxy has the engine's API: `clip_phases`, `style_code`, `generate`, `stream` (chunks cross the pipe as they
are made), with cancellation through a `CancelToken` checked between chunks, plus `generate_batch` (several
requests in shared graph calls through `inference.batched`, run in the child) and the step profile
(`profile_spec`, `profile_step`: compile progress crosses the pipe, `cancel` stops the compile or the runs).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, Self

from rsmt_studio.inference.engine import (
    CancelToken,
    GenerationCancelled,
    PhaseTrack,
    StyleCode,
    Transition,
    TransitionChunk,
    TransitionError,
)
from rsmt_studio.inference.runtime.compiler import CompileCancelled, CompileError, ProgressFn
from rsmt_studio.inference.step_profile import ProfileUnavailable, StepProfile

_CAN_STOP = hasattr(signal, "SIGSTOP")
_ERRORS = {"TransitionError": TransitionError, "GenerationCancelled": GenerationCancelled,
           "ProfileUnavailable": ProfileUnavailable, "CompileCancelled": CompileCancelled, "CompileError": CompileError}


class WorkerError(RuntimeError):
    """The worker process failed (its own error message is included)."""


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL us when the parent dies (works even while we are stopped)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _serve(conn, assets, device: str | None, steps_per_call: int | None,
           corrections_file: str | None = None, first_step: bool = False) -> None:
    """Child main loop: build the engine, then answer calls until told to quit."""
    _die_with_parent()
    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    from rsmt_studio.inference.engine import TransitionEngine

    try:
        engine = TransitionEngine(assets, device=device, steps_per_call=steps_per_call,
                                  progress=lambda ev: conn.send(("progress", ev)),
                                  corrections_file=corrections_file, first_step=first_step)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    conn.send(("ready", {"device": engine.device.label, "styles": engine.styles, "load_ms": engine.load_ms,
                         "dims": engine.dims.to_json()}))
    while True:
        msg = conn.recv()
        if msg[0] == "quit":
            return
        if msg[0] == "cancel":  # a cancel that crossed the call's last message: the call is over, nothing to stop
            continue
        _, method, args, kwargs = msg
        try:
            if method == "stream":
                token = _PipeCancel(conn)
                for item in engine.stream(*args, cancel=token, **kwargs):
                    conn.send(("chunk", item) if isinstance(item, TransitionChunk) else ("result", item))
            elif method == "generate_batch":
                conn.send(("result", generate_batch(engine, *args, cancel=_PipeCancel(conn), **kwargs)))
            elif method == "profile_step":
                conn.send(("result", engine.profile_step(*args, cancel=_PipeCancel(conn),
                                                         progress=lambda ev: conn.send(("progress", ev)), **kwargs)))
            else:
                conn.send(("result", getattr(engine, method)(*args, **kwargs)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            conn.send(("error", type(exc).__name__, str(exc)))


def generate_batch(engine, requests: list, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Run `requests` (`batched.Request`s) through `inference.batched` in as few shared calls as it allows.

    Returns {"results": per request a `Transition`, None (cancelled) or ("error", type name, message),
    "batches": how many `batched.run` calls (sets of graph calls) were made}. `cancel` applies to every row."""
    from dataclasses import replace

    from rsmt_studio.inference import batched

    results: list[Any] = [None] * len(requests)
    prepared, index = [], []
    for i, req in enumerate(requests):
        try:
            prepared.append(batched.prepare(engine, replace(req, cancel=cancel)))
            index.append(i)
        except Exception as exc:  # noqa: BLE001 - reported per row
            results[i] = ("error", type(exc).__name__, str(exc))
    groups = batched.groups(prepared, max(len(prepared), 1), by_length=engine.capture) if prepared else []
    for idx in groups:
        for j, out in zip(idx, batched.run(engine, [prepared[k] for k in idx])):
            results[index[j]] = (("error", type(out).__name__, str(out)) if isinstance(out, BaseException)
                                 else out)
    return {"results": results, "batches": len(groups)}


class _PipeCancel(CancelToken):
    """In the child: cancelled once the parent sends ("cancel",) on the pipe."""

    def __init__(self, conn) -> None:
        super().__init__()
        self._conn = conn

    @property
    def cancelled(self) -> bool:
        if not self._event.is_set() and self._conn.poll():
            msg = self._conn.recv()
            if msg[0] == "cancel":
                self._event.set()
        return self._event.is_set()


class EngineWorker:
    """A `TransitionEngine` in a child process (see the module docstring). Use as a context manager."""

    def __init__(self, assets=None, device: str | None = None, steps_per_call: int | None = None,
                 idle_stop_s: float = 0.5, progress: ProgressFn | None = None,
                 corrections_file: str | None = None, first_step: bool = False) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, name="rsmt-engine", daemon=True,
                                 args=(child, assets if assets is None else str(getattr(assets, "source", assets)),
                                       device, steps_per_call,
                                       None if corrections_file is None else str(corrections_file), first_step))
        self._proc.start()
        child.close()
        self.idle_stop_s = idle_stop_s
        self._lock = threading.Lock()  # may be released by another thread (generators)
        self._busy = 0
        self._stopped = False
        self._timer: threading.Timer | None = None
        with self._lock:
            self._busy += 1
            try:
                _, payload = self._wait_for(("ready",), progress)
            finally:
                self._busy -= 1
        self.info: dict[str, Any] = payload
        self._schedule_stop()

    # ------------------------------------------------------------------------------------------ engine API
    @property
    def pid(self) -> int:
        return int(self._proc.pid or 0)

    @property
    def styles(self) -> list[str]:
        return list(self.info["styles"])

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    @property
    def is_alive(self) -> bool:
        """Whether the child process still runs (a crashed or killed one answers every call with a WorkerError)."""
        return self._proc.is_alive()

    def clip_phases(self, clip) -> PhaseTrack:
        return self._call("clip_phases", clip)

    def style_code(self, style) -> StyleCode:
        return self._call("style_code", style)

    def generate(self, *args, cancel: CancelToken | None = None, **kwargs) -> Transition:
        result = None
        for item in self.stream(*args, cancel=cancel, **kwargs):
            if isinstance(item, Transition):
                result = item
        assert result is not None
        return result

    def generate_batch(self, requests: list, cancel: CancelToken | None = None) -> dict[str, Any]:
        """`generate_batch` (module function) in the child: several `batched.Request`s in shared graph calls."""
        result = None
        for item in self._streaming("generate_batch", (list(requests),), {}, cancel):
            result = item
        assert result is not None
        return result

    def stream(self, *args, cancel: CancelToken | None = None, **kwargs) -> Iterator[TransitionChunk | Transition]:
        """Same arguments as `TransitionEngine.stream`; chunks arrive as the child makes them."""
        return self._streaming("stream", args, kwargs, cancel)

    def profile_spec(self):
        """`TransitionEngine.profile_spec` (the timed steps graph's cache spec; `ProfileUnavailable` off the CPU)."""
        return self._call("profile_spec")

    def profile_step(self, *args, cancel: CancelToken | None = None, progress: ProgressFn | None = None,
                     **kwargs) -> StepProfile:
        """`TransitionEngine.profile_step` in the child: its compile progress comes to `progress` (in the calling
        thread), `cancel` stops the compile or the runs. Holds the worker while it runs (and while it compiles,
        when the timed graph was not compiled ahead: `profile_spec` + `ensure_compiled` do that without it)."""
        result = None
        for item in self._streaming("profile_step", args, kwargs, cancel, progress):
            result = item
        assert result is not None
        return result

    def _streaming(self, method: str, args: tuple, kwargs: dict, cancel: CancelToken | None,
                   progress: ProgressFn | None = None) -> Iterator[Any]:
        with self._lock:
            self._begin()
            sent_cancel = False
            finished = False
            try:
                self._send(("call", method, args, kwargs))
                while not finished:
                    if cancel is not None and cancel.cancelled and not sent_cancel:
                        self._conn.send(("cancel",))
                        sent_cancel = True
                    if not self._conn.poll(0.01):
                        self._check_alive()
                        continue
                    msg = self._conn.recv()
                    if msg[0] == "chunk":
                        yield msg[1]
                    elif msg[0] == "result":
                        finished = True
                        yield msg[1]
                    elif msg[0] == "progress" and progress is not None:
                        progress(msg[1])
                    elif msg[0] == "error":
                        finished = True
                        raise _ERRORS.get(msg[1], WorkerError)(msg[2])
            finally:
                if not finished and self._proc.is_alive():  # abandoned mid-stream: stop the child, drain it
                    self._drain_after_cancel(sent_cancel)
                self._end()

    def _drain_after_cancel(self, sent_cancel: bool) -> None:
        try:
            if not sent_cancel:
                self._conn.send(("cancel",))
            while self._proc.is_alive():
                if self._conn.poll(0.05) and self._conn.recv()[0] in ("result", "error"):
                    return
        except (BrokenPipeError, EOFError, OSError):
            pass

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._proc.is_alive():
                self._resume()
                try:
                    self._conn.send(("quit",))
                except (BrokenPipeError, OSError):
                    pass
                self._proc.join(5)
                if self._proc.is_alive():
                    self._proc.kill()
                    self._proc.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ internals
    def _call(self, method: str, *args, **kwargs):
        with self._lock:
            self._begin()
            try:
                self._send(("call", method, args, kwargs))
                return self._wait_for(("result",))[1]
            finally:
                self._end()

    def _wait_for(self, kinds: tuple[str, ...], progress: ProgressFn | None = None):
        while True:
            if not self._conn.poll(0.05):
                self._check_alive()
                continue
            msg = self._conn.recv()
            if msg[0] in kinds:
                return msg
            if msg[0] == "progress" and progress is not None:
                progress(msg[1])
            elif msg[0] == "error":
                raise _ERRORS.get(msg[1], WorkerError)(msg[2])

    def _send(self, msg: tuple) -> None:
        """Send to the child; a child that has gone is reported as such, not as a broken pipe."""
        try:
            self._conn.send(msg)
        except (BrokenPipeError, EOFError, OSError) as exc:
            self._proc.join(1.0)
            self._check_alive()
            raise WorkerError(f"engine worker's pipe closed: {exc}") from exc

    def _check_alive(self) -> None:
        if not self._proc.is_alive():
            raise WorkerError(f"engine worker exited with code {self._proc.exitcode}")

    def _begin(self) -> None:
        self._busy += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._resume()

    def _end(self) -> None:
        self._busy -= 1
        self._schedule_stop()

    def _resume(self) -> None:
        if self._stopped and _CAN_STOP:
            os.kill(self.pid, signal.SIGCONT)
            self._stopped = False

    def _schedule_stop(self) -> None:
        if not _CAN_STOP or self.idle_stop_s is None:
            return
        self._timer = threading.Timer(self.idle_stop_s, self._stop_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _stop_if_idle(self) -> None:
        with self._lock:
            if self._busy == 0 and not self._stopped and self._proc.is_alive():
                os.kill(self.pid, signal.SIGSTOP)
                self._stopped = True
