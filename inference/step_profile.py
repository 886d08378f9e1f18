"""The step profile: where a transition's per-frame time goes, kernel by kernel, on the CPU (issue 17).

The latency panel's live stages stop at "sampler + decoder", one MAX call per 8 frames, because MAX 26.7 times
nothing per op on the CPU. On request (`TransitionEngine.profile_step`, the studio's "Profile step") the engine
runs the current transition through the steps graph with its kernels timed (graphs/cpu_timed.py: the same graph
and numbers, each custom op also returning the nanoseconds spent in it; compiled on demand in a child process and
cached like every graph) and reports per generated frame:

- `dense_ms`, `moe_ms`, `lstm_ms`, `film_ms`, `tails_ms`: time inside the dense layers, the 8-expert layers, the
  LSTM cell, the two FiLM blocks (layer norms, attention over the style tokens, their query and output layers) and
  the step's tails (the phase update and decoder inputs; apply-delta, Gram-Schmidt and the next frame's encoder
  inputs), as the timed twin of the whole-step op (kernels/cpu_step.mojo via cpu_dense_timed.mojo) reads the
  clock between them (wall time, so work whose thread was descheduled counts the wait; the glue between two
  kernels counts with the later one);
- `rest_ms`: the rest of the graph call: MAX's few ops around the steps, its runtime and the `execute` call
  itself (the call's wall time minus the timed work);
- `postprocess_ms`: the engine's post-processing (world space, the source's rig, quaternion continuity, fps).

It runs the transition exactly as the studio's engine streams it (`TransitionEngine._stream`, chunk by chunk),
through a view of the engine whose `steps` graph is the timed one and that makes every frame with it (no one-step
start): one warm-up run, then `repeats` measured runs; each stage is the median over the runs. A call that ran
past the transition's end (padding steps) counts in the share of its frames that were used, as the engine's own
per-frame times do.
"""

from __future__ import annotations

import statistics
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Per-frame stages, in display order.
STAGES = ("dense_ms", "moe_ms", "lstm_ms", "film_ms", "tails_ms", "rest_ms", "postprocess_ms")
STAGE_LABELS = {"dense_ms": "dense layers", "moe_ms": "8-expert MoE layers", "lstm_ms": "LSTM cell",
                "film_ms": "FiLM blocks", "tails_ms": "step tails", "rest_ms": "rest of the graph call",
                "postprocess_ms": "post-processing"}
#: The timed graph's `kernel_ns` order (graphs/cpu_timed.py KINDS) -> stage.
KERNEL_STAGES = ("dense_ms", "moe_ms", "lstm_ms", "film_ms", "tails_ms")
DEFAULT_REPEATS = 5


class ProfileUnavailable(RuntimeError):
    """No step profile here: the engine does not run the CPU graphs (a GPU engine)."""


@dataclass
class StepProfile:
    """A measured breakdown of one transition's per-frame time (ms per generated frame; see the module doc)."""

    device: str  # the engine's device label ("CPU")
    device_detail: str  # the processor, its cores and the compiled code's target
    measured_at: float  # time.time() when the measured runs finished
    frames: int  # generated frames per run (the transition's length)
    steps_per_call: int
    calls: int  # steps-graph calls per run
    repeats: int  # measured runs (after one warm-up)
    stages: dict[str, float]  # per-frame ms, median over the runs, in STAGES
    call_ms: float  # per-frame wall time of the graph calls (median); kernels + rest
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage -> (min, max) over the runs
    kernel_ops: dict[str, int] = field(default_factory=dict)  # kernel launches per generated frame, per kind
    runs: list[dict[str, float]] = field(default_factory=list)  # each measured run's per-frame stages + call_ms
    load_ms: float = 0.0  # compiling (0 when cached) and loading the timed graph, this request

    @property
    def kernel_ms(self) -> float:
        return float(sum(self.stages[k] for k in KERNEL_STAGES))

    @property
    def total_ms(self) -> float:
        return float(sum(self.stages.values()))

    def shares(self) -> dict[str, float]:
        """Each stage's fraction of the per-frame total."""
        total = self.total_ms or 1.0
        return {k: v / total for k, v in self.stages.items()}


class _TimedSteps:
    """The timed steps graph as the engine calls `runners["steps"]`: the steps graph's six outputs; each call's
    wall time and kernel times are kept."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.calls: list[tuple[int, np.ndarray, np.ndarray]] = []  # (wall ns, kernel ns (3,), kernel ops (3,))

    def __call__(self, *inputs):
        t0 = time.perf_counter_ns()
        outs = self.runner(*inputs)
        wall = time.perf_counter_ns() - t0
        self.calls.append((wall, np.array(outs[-2], np.int64), np.array(outs[-1], np.int64)))
        return outs[:-2]


class _ProfiledEngine:
    """The engine as the profile's `_stream` sees it: every frame from the timed steps graph, no one-step start;
    everything else is the engine's (its methods run with this view as `self`, as batched.py's row views do)."""

    first_step = False

    def __init__(self, engine, steps: _TimedSteps) -> None:
        self._engine = engine
        self.runners = {**engine.runners, "steps": steps}

    def __getattr__(self, name: str):
        from rsmt_studio.inference.batched import _engine_function

        fn = _engine_function(type(self._engine), name)
        return types.MethodType(fn, self) if fn is not None else getattr(self._engine, name)


def profile_spec(engine):
    """The cache spec of the engine's timed steps graph; raises ProfileUnavailable off the CPU graphs."""
    from rsmt_studio.inference.graphs import model_specs

    if engine.device.kind != "cpu" or engine.capture:
        raise ProfileUnavailable(f"the step profile times the CPU kernels; this engine runs on {engine.device.label} "
                                 "(MAX 26.7's GPU kernels are profiled with bench/gpu_profile.py and Nsight)")
    return model_specs(engine.dims, "cpu", engine.steps_per_call, profile=True)["steps_profile"]


def profile_step(engine, source, source_frame: int, target, target_frame: int, style, length: int,
                 seed: int | None = 0, repeats: int = DEFAULT_REPEATS, progress: Callable[[dict], None] | None = None,
                 cancel=None) -> StepProfile:
    """Profile the transition (`TransitionEngine.stream`'s arguments) `repeats` times after a warm-up run; the
    timed graph is compiled first when it is not cached (`progress` gets the compile's events, `cancel` stops it)."""
    from rsmt_studio.inference.engine import GenerationCancelled, Transition, TransitionEngine
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.runtime.session import GraphRunner

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    spec = profile_spec(engine)
    emit = progress or (lambda _ev: None)
    t0 = time.perf_counter()
    runner = engine._timed_steps_runner
    if runner is None or runner.spec != spec:
        ensure_compiled([spec], progress=progress, cancel=(lambda: cancel.cancelled) if cancel is not None else None)
        runner = GraphRunner(engine.session, spec, engine.runners["steps"].weights)
        engine._timed_steps_runner = runner
    load_ms = (time.perf_counter() - t0) * 1e3
    runs: list[dict[str, float]] = []
    ops_per_frame: dict[str, int] = {}
    k = engine.steps_per_call
    with engine._lock:
        for rep in range(repeats + 1):
            if cancel is not None and cancel.cancelled:
                raise GenerationCancelled("profile cancelled")
            emit({"event": "profiling", "run": rep, "runs": repeats + 1})
            timed = _TimedSteps(runner)
            result = None
            for item in TransitionEngine._stream(_ProfiledEngine(engine, timed), source, source_frame, target,
                                                 target_frame, style, length, seed, cancel, "auto"):
                if isinstance(item, Transition):
                    result = item
            if result is None:
                raise GenerationCancelled("profile cancelled")
            frames = int(length)
            used = [min(k, frames - i * k) / k for i in range(len(timed.calls))]  # padding steps left out
            kernel = np.sum([u * ns for u, (_, ns, _) in zip(used, timed.calls, strict=True)], axis=0) / 1e6 / frames
            call_ms = sum(u * wall for u, (wall, _, _) in zip(used, timed.calls, strict=True)) / 1e6 / frames
            run = {s: float(v) for s, v in zip(KERNEL_STAGES, kernel, strict=True)}
            run["rest_ms"] = call_ms - float(np.sum(kernel))
            run["postprocess_ms"] = result.timings.postprocess_ms / frames
            run["call_ms"] = call_ms
            ops_per_frame = {s.removesuffix("_ms"): int(n) // k for s, n in zip(KERNEL_STAGES, timed.calls[0][2],
                                                                                  strict=True)}
            if rep > 0:  # the first run is a warm-up (the new model's first calls, a style encoded once)
                runs.append(run)
    stages = {s: statistics.median(r[s] for r in runs) for s in STAGES}
    return StepProfile(
        device=engine.device.label, device_detail=cpu_description(spec.target()), measured_at=time.time(),
        frames=int(length), steps_per_call=k, calls=len(timed.calls), repeats=repeats, stages=stages,
        call_ms=statistics.median(r["call_ms"] for r in runs),
        spread={s: (min(r[s] for r in runs), max(r[s] for r in runs)) for s in STAGES},
        kernel_ops=ops_per_frame, runs=runs, load_ms=load_ms)


def cpu_description(target: str = "") -> str:
    """"AMD EPYC, 2 cores, x86-64-v3": this machine's processor (Linux: /proc/cpuinfo), its logical cores and the
    CPU target the graphs were compiled for."""
    import os
    import platform

    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    parts = [name or platform.processor() or platform.machine() or "CPU", f"{os.cpu_count() or 1} cores"]
    return ", ".join(parts + ([target] if target else []))


def describe(profile: StepProfile) -> dict[str, Any]:
    """A plain dict of a profile (JSON, logs)."""
    return {"device": profile.device, "device_detail": profile.device_detail, "measured_at": profile.measured_at,
            "frames": profile.frames, "steps_per_call": profile.steps_per_call, "calls": profile.calls,
            "repeats": profile.repeats,
            "stages_ms": profile.stages, "call_ms": profile.call_ms, "kernel_ops_per_frame": profile.kernel_ops,
            "shares": profile.shares(), "load_ms": profile.load_ms}


__all__ = ["STAGES", "STAGE_LABELS", "ProfileUnavailable", "StepProfile", "cpu_description", "describe",
           "profile_spec", "profile_step"]
