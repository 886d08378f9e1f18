"""Variants: the authored transition in several styles (or seeds) at once, in plain Python (no Qt).

The animator asks for variants of the current request (source/target clip and frame, length, seed, device); the
model builds one `batched.Request` per variant and hands them to the engine worker's `generate_batch`, so the N
transitions come from one set of shared graph calls (`inference.batched`) in the engine's child process. The call
runs on a thread of its own; `poll()` (UI thread) delivers `variants_ready` / `variants_failed` /
`variants_cancelled`. `choose(variant)` sets the authoring style and seed to that variant's, so the main
transition becomes it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rsmt_studio.app.models.authoring import (
    STYLE_OF_SOURCE,
    STYLE_OF_TARGET,
    USER_ERRORS,
    AuthoringModel,
    AuthoringParams,
    StageTimes,
    TransitionResult,
    place_target,
    placed_frame,
)
from rsmt_studio.app.models.events import Event

DEFAULT_COUNT = 4


class VariantError(RuntimeError):
    """One variant's row failed in the engine (its message names the variant)."""


@dataclass(frozen=True)
class VariantSpec:
    """One variant to make: a style (bank name, "@target" or "@source") and a seed."""

    style: str
    seed: int | None

    @property
    def label(self) -> str:
        name = {STYLE_OF_TARGET: "target's style", STYLE_OF_SOURCE: "source's style"}.get(self.style, self.style)
        return f"{name} · seed {'none' if self.seed is None else self.seed}"


@dataclass
class Variant:
    """One generated variant: its spec and the stitched transition (as the authoring model makes it)."""

    spec: VariantSpec
    result: TransitionResult

    @property
    def label(self) -> str:
        return self.spec.label


def default_specs(params: AuthoringParams, bank: list[str], count: int = DEFAULT_COUNT,
                  mode: str = "styles") -> list[VariantSpec]:
    """`mode="styles"`: the current style, then the next `count - 1` bank styles (after it, wrapping);
    `mode="seeds"`: the current style with seeds seed, seed+1, ..."""
    if mode == "seeds" or not bank:
        base = params.seed or 0
        return [VariantSpec(params.style, base + k) for k in range(count)]
    start = bank.index(params.style) + 1 if params.style in bank else 0
    others = [s for s in bank[start:] + bank[:start] if s != params.style]
    return [VariantSpec(params.style, params.seed)] + [VariantSpec(s, params.seed) for s in others[: count - 1]]


class VariantsModel:
    """Generates variants of the authoring model's current request off the calling thread (see module doc)."""

    def __init__(self, authoring: AuthoringModel, wake: Callable[[], None] | None = None) -> None:
        self.authoring = authoring
        self.wake = wake or (lambda: None)
        self.variants: list[Variant] = []
        self.batches = 0  # shared-call batches the last run used (1: all variants in one set of graph calls)
        self.generating = False
        self.last_error = ""
        self.variants_ready = Event("variants_ready")  # (list[Variant])
        self.variants_failed = Event("variants_failed")  # (message)
        self.variants_cancelled = Event("variants_cancelled")  # ()
        self.variant_chosen = Event("variant_chosen")  # (Variant)
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._token: Any = None
        self._thread: threading.Thread | None = None
        self._run_id = 0

    def generate(self, specs: list[VariantSpec] | None = None, mode: str = "styles",
                 count: int = DEFAULT_COUNT) -> int:
        """Start making `specs` (default: `default_specs` of the current params); cancels a run in flight.
        Returns the run id, or -1 when the authoring model has no source/target yet."""
        from rsmt_studio.inference.engine import CancelToken

        m = self.authoring
        if not m.ready:
            return -1
        self.cancel()
        p = m.params
        self._run_id += 1
        self._token = CancelToken()
        self.generating = True
        self._thread = threading.Thread(target=self._run, name="rsmt-variants", daemon=True,
                                        args=(self._run_id, p, specs, (mode, count), m.clips[p.source],
                                              m.clips[p.target], self._token))
        self._thread.start()
        return self._run_id

    def cancel(self) -> None:
        """Stop the run in flight (the worker stops between graph calls); `variants_cancelled` follows."""
        if self._token is not None:
            self._token.cancel()

    def choose(self, variant: Variant) -> None:
        """Make `variant` the authored transition: the authoring style and seed become its own."""
        self.authoring.set_params(style=variant.spec.style, seed=variant.spec.seed)
        self.variant_chosen.emit(variant)

    def poll(self) -> int:
        """Deliver finished runs as events (call on the UI thread). Returns how many messages."""
        n = 0
        while True:
            try:
                run_id, kind, payload = self._messages.get_nowait()
            except queue.Empty:
                return n
            n += 1
            if run_id != self._run_id:
                continue  # a newer run replaced it
            self.generating = False
            if kind == "ready":
                self.variants, self.batches = payload
                self.last_error = ""
                self.variants_ready.emit(self.variants)
            elif kind == "failed":
                self.last_error = payload
                self.variants_failed.emit(payload)
            else:
                self.variants_cancelled.emit()

    def wait(self, timeout_s: float = 120.0) -> list[Variant]:
        """Poll until the latest run has finished (scripts, tests); returns the variants (empty if not ready)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if not self.generating:
                return self.variants
            time.sleep(0.005)
        raise TimeoutError(f"variants not finished within {timeout_s} s")

    def close(self) -> None:
        self.cancel()
        if self._thread is not None:
            self._thread.join(10)

    # -- runner thread ------------------------------------------------------------------------------
    def _post(self, *msg: Any) -> None:
        self._messages.put(msg)
        self.wake()

    def _run(self, run_id: int, p: AuthoringParams, specs: list[VariantSpec] | None, how: tuple[str, int], source,
             target, token) -> None:
        try:
            variants, batches = self._make(p, specs, how, source, target, token)
        except BaseException as exc:  # noqa: BLE001 - reported to the UI thread
            if token.cancelled or type(exc).__name__ == "GenerationCancelled":
                self._post(run_id, "cancelled", None)
            else:
                self._post(run_id, "failed", str(exc) if isinstance(exc, VariantError) else f"{type(exc).__name__}: {exc}")
            return
        self._post(run_id, "cancelled" if variants is None else "ready",
                   None if variants is None else (variants, batches))

    def _make(self, p: AuthoringParams, specs: list[VariantSpec] | None, how: tuple[str, int], source, target,
              token) -> tuple[list[Variant] | None, int]:
        from rsmt_studio.inference.batched import Request

        m = self.authoring
        if m.check_clips is not None:
            m.check_clips(source, target)
        engine = m.engine_for(p.device)
        specs = list(specs or default_specs(p, list(getattr(engine, "styles", [])), how[1], how[0]))

        def style_of(name: str):
            return target if name == STYLE_OF_TARGET else source if name == STYLE_OF_SOURCE else name

        t0 = time.perf_counter()
        requests = [Request(source, p.source_frame, target, p.target_frame, style_of(s.style), p.length, s.seed,
                            foot_lock=p.foot_lock, head_steady=p.head_steady) for s in specs]
        out = engine.generate_batch(requests, cancel=token)
        if token.cancelled:
            return None, out["batches"]
        placed = place_target(source, p.source_frame, target, p.target_frame, p.length)
        key = placed_frame(target, p.target_frame, placed)
        ghost = placed.fk()[0][key]
        wall = (time.perf_counter() - t0) * 1e3
        variants = []
        for spec, tr in zip(specs, out["results"]):
            if tr is None:
                return None, out["batches"]
            if isinstance(tr, tuple):
                raise VariantError(f"{spec.label}: {tr[2]}" if tr[1] in USER_ERRORS else f"{spec.label}: {tr[1]}: {tr[2]}")
            times = StageTimes(device=tr.timings.device, total_ms=tr.timings.total_ms)
            res = TransitionResult(-1, replace(p, style=spec.style, seed=spec.seed), source, placed, tr.clip,
                                   tr.phase, times, wall, wall, ghost_pose=ghost, placed_frame=key)
            res.positions = res.stitched().fk()[0]
            variants.append(Variant(spec, res))
        return variants, out["batches"]


__all__ = ["Variant", "VariantError", "VariantSpec", "VariantsModel", "default_specs"]
