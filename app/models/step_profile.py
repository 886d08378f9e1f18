"""The step profile of the authored transition, in plain Python (no Qt): the latency panel's "Profile step".

The engine measures it (`TransitionEngine.profile_step`, inference/step_profile.py): per generated frame, the time
inside the dense, 8-expert and LSTM-cell kernels, the rest of the graph calls, and post-processing. Here a run of
it is started off the calling thread for the authoring model's current request:

1. the engine for the request's device (`engine_for`, the studio's worker pool) names the timed steps graph
   (`profile_spec`; a GPU engine raises `ProfileUnavailable`, delivered as `profile_unavailable`);
2. when that graph is not compiled yet, it is compiled here, in a child process (`ensure_compiled`: minutes on
   two cores, the first time only), so the engine worker keeps generating transitions meanwhile;
3. the worker runs the profile (one warm-up and `repeats` runs of the transition: well under a second at the
   shipped widths) and the result comes back as `profile_ready`.

`cancel()` stops the compile (its child is terminated) or the runs (between graph calls). Progress text
("compiling the profiling graph, 42 s", "measuring: run 3 of 6") comes as `profile_progress`. Events fire from
`poll()` only, on the thread that calls it (the UI's), as `VariantsModel` does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from rsmt_studio.app.models.authoring import AuthoringModel
from rsmt_studio.app.models.events import Event

DEFAULT_REPEATS = 5


def progress_text(event: dict[str, Any]) -> str:
    """One line for a compile or profile progress event."""
    kind = event.get("event")
    if kind == "profiling":
        run, runs = int(event.get("run", 0)), int(event.get("runs", 1))
        return "measuring: warm-up run" if run == 0 else f"measuring: run {run} of {runs - 1}"
    if kind == "start":
        return "compiling the profiling graph (first time only; several minutes on 2 cores)\u2026"
    if kind == "progress":
        return f"compiling the profiling graph\u2026 {float(event.get('elapsed_s', 0)):.0f} s"
    if kind == "done":
        return f"compiled the profiling graph in {float(event.get('seconds', 0)):.0f} s"
    if kind in ("cached", "shipped"):
        return "loading the profiling graph\u2026"
    return str(kind or "")


def breakdown_rows(profile) -> list[dict[str, Any]]:
    """The breakdown as display rows, in stage order: stage key, label, ms per frame (median), share of the
    per-frame total, (min, max) over the runs."""
    from rsmt_studio.inference.step_profile import STAGE_LABELS, STAGES

    shares = profile.shares()
    return [{"stage": k, "label": STAGE_LABELS[k], "ms": profile.stages[k], "share": shares[k],
             "range": profile.spread.get(k, (profile.stages[k], profile.stages[k]))} for k in STAGES]


def caption(profile) -> str:
    """Where and when it was measured, and over what: "CPU (AMD EPYC, 2 cores, x86-64-v3), measured 2026-12-02
    14:03:12: 40 frames, 1 call of 40 steps, median of 5 runs"."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(profile.measured_at))
    calls = f"{profile.calls} call{'s' if profile.calls != 1 else ''}"
    return (f"{profile.device} ({profile.device_detail}), measured {when}: {profile.frames} frames, {calls} "
            f"of {profile.steps_per_call} steps, median of {profile.repeats} runs")


class StepProfileModel:
    """Runs the step profile of `authoring`'s current request off the calling thread (see the module docstring)."""

    def __init__(self, authoring: AuthoringModel, wake: Callable[[], None] | None = None,
                 repeats: int = DEFAULT_REPEATS) -> None:
        self.authoring = authoring
        self.wake = wake or (lambda: None)
        self.repeats = int(repeats)
        self.profile: Any = None  # the last `StepProfile`
        self.running = False
        self.status = ""  # the last progress line, or why the last run did not give a profile
        self.profile_started = Event("profile_started")  # (run id)
        self.profile_progress = Event("profile_progress")  # (text)
        self.profile_ready = Event("profile_ready")  # (StepProfile)
        self.profile_failed = Event("profile_failed")  # (message)
        self.profile_unavailable = Event("profile_unavailable")  # (message): a GPU engine
        self.profile_cancelled = Event("profile_cancelled")  # ()
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._token: Any = None
        self._thread: threading.Thread | None = None
        self._run_id = 0

    def start(self) -> int:
        """Profile the current request (cancels a run in flight). Returns the run id, or -1 when the authoring
        model has no source and target yet."""
        from rsmt_studio.inference.engine import CancelToken

        m = self.authoring
        if not m.ready:
            return -1
        self.cancel()
        p = m.params
        self._run_id += 1
        self._token = CancelToken()
        self.running = True
        self.status = "starting\u2026"
        self._thread = threading.Thread(target=self._run, name="rsmt-step-profile", daemon=True,
                                        args=(self._run_id, p, m.clips[p.source], m.clips[p.target],
                                              m.style_argument(p), self._token))
        self._thread.start()
        self.profile_started.emit(self._run_id)
        return self._run_id

    def cancel(self) -> None:
        """Stop the run in flight (the compile child is terminated; the runs stop between graph calls)."""
        if self._token is not None:
            self._token.cancel()

    def poll(self) -> int:
        """Deliver the runner's messages as events (call on the UI thread). Returns how many."""
        n = 0
        while True:
            try:
                run_id, kind, payload = self._messages.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if run_id != self._run_id:
                continue  # a newer run replaced it
            if kind == "progress":
                self.status = payload
                self.profile_progress.emit(payload)
                continue
            self.running = False
            if kind == "ready":
                self.profile, self.status = payload, ""
                self.profile_ready.emit(payload)
            elif kind == "unavailable":
                self.status = payload
                self.profile_unavailable.emit(payload)
            elif kind == "failed":
                self.status = payload
                self.profile_failed.emit(payload)
            else:
                self.status = "cancelled"
                self.profile_cancelled.emit()

    def wait(self, timeout_s: float = 600.0) -> Any:
        """Poll until the latest run has finished (scripts, tests); returns the profile (None if it gave none)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if not self.running:
                return self.profile if self.status == "" else None
            time.sleep(0.01)
        raise TimeoutError(f"step profile not finished within {timeout_s} s")

    def close(self) -> None:
        self.cancel()
        if self._thread is not None:
            self._thread.join(10)

    # -- runner thread ------------------------------------------------------------------------------
    def _post(self, *msg: Any) -> None:
        self._messages.put(msg)
        self.wake()

    def _run(self, run_id: int, p, source, target, style, token) -> None:
        from rsmt_studio.inference.runtime.compiler import ensure_compiled
        from rsmt_studio.inference.step_profile import ProfileUnavailable

        def relay(event: dict) -> None:
            self._post(run_id, "progress", progress_text(event))

        try:
            engine = self.authoring.engine_for(p.device)
            spec = engine.profile_spec()
            if not spec.is_compiled():  # here, in a child process: the worker keeps generating meanwhile
                ensure_compiled([spec], progress=relay, cancel=lambda: token.cancelled)
            profile = engine.profile_step(source, p.source_frame, target, p.target_frame, style, p.length,
                                          seed=p.seed, repeats=self.repeats, progress=relay, cancel=token)
        except BaseException as exc:  # noqa: BLE001 - reported to the UI thread
            name = type(exc).__name__
            if token.cancelled or name in ("GenerationCancelled", "CompileCancelled"):
                self._post(run_id, "cancelled", None)
            elif isinstance(exc, ProfileUnavailable):
                self._post(run_id, "unavailable", str(exc))
            else:
                self._post(run_id, "failed", f"{exc}" if name == "TransitionError" else f"{name}: {exc}")
            return
        self._post(run_id, "ready", profile)


__all__ = ["StepProfileModel", "breakdown_rows", "caption", "progress_text"]
