"""A whole transition as captured device graphs (GPU): record the kernel launches once, replay them per request.

Why: on the H100 a 40-frame transition made by ordinary `execute` calls took ~85 ms, almost all of it launch and
host overhead: every `steps` call runs hundreds of small kernels plus host-side shape checks between them
(docs/performance.md). MAX can record one `execute` into a device graph (`Model.capture`) and replay it
(`Model.replay`) with no host work. A transition is `prepare`, then ceil(L / k) `steps` calls, each followed by
the `chain` graph that picks its last frame as the next call's state. Each is captured once per (batch, length)
with its inputs wired to the previous capture's outputs, so a replay is: copy the request into the captured
input buffers, replay 1 + 2·ceil(L / k) graphs back to back on one stream, read the frames back.

Replays write into the buffers that capture returned and read the buffers capture was given, so those buffers
live as long as this object. Device graphs exist only on accelerators; on the CPU the engine keeps `execute`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Sequence

import numpy as np
from rsmt_studio.motion import features as F

_keys = itertools.count(1)  # graph keys are per model; unique ones keep captures apart in logs too


class CapturedTransition:
    """Captured prepare + rollout for one batch size and one transition length.

    `run(...)` yields (ps, rs, phs) host arrays per `steps` call, like `TransitionEngine.rollout_chunks`, with
    the padding frames of the last call already dropped.
    """

    def __init__(self, engine, chain_runner, batch: int, length: int, cache_shapes: Sequence[tuple[int, ...]],
                 predicted_phase: bool = False) -> None:
        from max.driver import CPU

        self._cpu = CPU()
        self.batch, self.length = int(batch), int(length)
        self.k = engine.steps_per_call
        self.n_calls = math.ceil(self.length / self.k)
        self.predicted_phase = predicted_phase
        d, b = engine.dims, self.batch
        self._host: list[np.ndarray] = []  # on a host device the buffers alias these arrays: keep them alive

        def dev(array: np.ndarray):
            self._host.append(array)
            return engine.session.to_device(array)

        def zeros(shape, dtype=np.float32):
            return dev(np.zeros(shape, dtype))

        np_, j, c = d.n_pos_joints, d.n_joints, d.n_phases
        w = F.N_WARMUP
        # Inputs refreshed from the host for every request (order = `run`'s arguments).
        self.request = {
            "ctx_p": zeros((b, w, np_, 3)), "ctx_v": zeros((b, w, np_, 3)), "ctx_r": zeros((b, w, j, 6)),
            "tgt_p": zeros((b, np_, 3)), "tgt_v": zeros((b, np_, 3)), "tgt_r": zeros((b, j, 6)),
            "z": zeros((b, engine.z_width)),
            "p9": zeros((b, np_, 3)), "v9": zeros((b, np_, 3)), "r9": zeros((b, j, 6)), "phase9": zeros((b, c, 2)),
        }
        self.caches = [zeros((b, *s[1:])) for s in cache_shapes]
        self._uploaded: list[_Uploaded | None] = [None] * (len(self.request) + len(self.caches))
        keyframe = F.N_PAST + self.length
        tta_prep = np.broadcast_to(np.array([keyframe - s for s in range(1, w + 1)], np.int64), (b, w))
        self._constants = [dev(np.ascontiguousarray(tta_prep))]
        h0 = zeros((b, engine.lstm_width))
        c0 = zeros((b, engine.lstm_width))
        self._constants += [h0, c0]

        prep, steps = engine.runners["prepare"], engine.runners["steps"]
        q = self.request
        self._prepare = (prep.model, next(_keys),
                         [q["ctx_p"], q["ctx_v"], q["ctx_r"], q["tgt_p"], q["tgt_v"], q["tgt_r"], self._constants[0],
                          q["z"], *self.caches[:4], h0, c0, *prep._weight_buffers])
        h, cc, latent, phase0 = prep.model.capture(self._prepare[1], *self._prepare[2])
        self._keep = [h, cc, latent, phase0]
        p, v, r = q["p9"], q["v9"], q["r9"]
        phase = phase0 if predicted_phase else q["phase9"]
        self._calls: list[tuple] = []
        self.outputs: list[tuple] = []
        for start in range(0, self.length, self.k):
            tta = np.array([max(self.length + 1 - s, 0) for s in range(start, start + self.k)], np.int64)
            tta_buf = dev(np.ascontiguousarray(np.broadcast_to(tta, (b, self.k))))
            self._constants.append(tta_buf)
            args = [p, v, r, phase, h, cc, q["tgt_p"], q["tgt_r"], latent, tta_buf, q["z"], *self.caches,
                    *steps._weight_buffers]
            key = next(_keys)
            ps, rs, phs, v, h, cc = steps.model.capture(key, *args)
            self._calls.append((steps.model, key, args))
            ckey = next(_keys)
            p, r, phase = chain_runner.model.capture(ckey, ps, rs, phs)
            self._calls.append((chain_runner.model, ckey, [ps, rs, phs]))
            self.outputs.append((ps, rs, phs))
            self._keep += [v, h, cc, p, r, phase]

    def run(self, ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, z, p9, v9, r9, phase9, caches
            ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Replay for one request; yields each call's frames as soon as that call has been read back."""
        from max.driver import Buffer

        host = [ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, z, p9, v9, r9, phase9]
        keep_alive: list = []
        self.last_uploads = 0
        for i, (dst, src) in enumerate(zip([*self.request.values(), *self.caches], [*host, *caches], strict=True)):
            if np.shape(src) != tuple(dst.shape):
                raise ValueError(f"captured for shape {tuple(dst.shape)}, got {np.shape(src)}")
            # Style caches and noise repeat from request to request: skipping them is far cheaper than a
            # pageable host-to-device copy (such copies took 331 of 374 ms of an eager batch-1024 transition).
            remembered = i == 6 or i >= len(host)
            if remembered and self._uploaded[i] is not None and self._uploaded[i].holds(src):
                continue
            staged = np.ascontiguousarray(src, dtype=np.float32)
            staging = Buffer.from_numpy(staged)
            dst.inplace_copy_from(staging)
            keep_alive.append((staged, staging))  # until the frames are read back (copies may be asynchronous)
            self.last_uploads += 1
            if remembered:
                self._uploaded[i] = _Uploaded(src)
        model, key, args = self._prepare
        model.replay(key, *args)
        for i, (ps, rs, phs) in enumerate(self.outputs):
            for model, key, args in self._calls[2 * i : 2 * i + 2]:
                model.replay(key, *args)
            n = min(self.k, self.length - i * self.k)
            # `.to` copies off a GPU; on a host device it returns the captured buffer itself, which the next
            # replay overwrites, so only there is a copy needed.
            out = [o.to(self._cpu).to_numpy() for o in (ps, rs, phs)]
            if ps.device.is_host:
                out = [a.copy() for a in out]
            yield tuple(a[:, :n] if n < self.k else a for a in out)  # type: ignore[misc]
        del keep_alive

    def release(self) -> None:
        model, key, _ = self._prepare
        model.release_captured_graph(key)
        for model, key, _ in self._calls:
            model.release_captured_graph(key)


class Captures:
    """An engine's captured transitions, one per (batch, length, phase source, cache shapes), at most 8 (each pins
    its buffers on the device); a new combination costs one eager run of each graph."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._captured: dict[tuple, CapturedTransition] = {}

    def chunks(self, problem, length: int, z, caches, phase9=None) -> Iterator[tuple]:
        """Replay the transition of `problem` (caches as the graphs take them): yields (p, r, phase, ms) per
        `steps` call, the first one's time including the `prepare` replay and the request's upload."""
        e = self.engine
        b = problem.ctx_p.shape[0]
        predicted = phase9 is None
        key = (b, int(length), predicted, tuple(np.shape(a)[1:] for a in caches))
        cap = self._captured.get(key)
        if cap is None:
            if len(self._captured) >= 8:
                self._captured.pop(next(iter(self._captured))).release()
            cap = CapturedTransition(e, e.runners["chain"], b, length, [np.shape(a) for a in caches],
                                     predicted_phase=predicted)
            self._captured[key] = cap
        if phase9 is None:
            phase9 = np.zeros((b, e.dims.n_phases, 2), np.float32)
        caches = [a if np.shape(a)[0] == b else np.broadcast_to(a, (b, *np.shape(a)[1:])) for a in caches]
        t0 = time.perf_counter()
        for ps, rs, phs in cap.run(problem.ctx_p, problem.ctx_v, problem.ctx_r, problem.tgt_p, problem.tgt_v,
                                   problem.tgt_r, z, problem.p9, problem.v9, problem.r9, phase9, caches):
            ms = (time.perf_counter() - t0) * 1e3
            yield ps, rs, phs, ms
            t0 = time.perf_counter()


class _Uploaded:
    """What a captured input buffer holds, to skip uploading it again; the check must cost far less than the copy.

    - A read-only array (numpy's promise that it will not change; the engine's style codes are) is recognised
      by identity: at batch 1024 the four (1024, 111, 256) style caches are 465 MB, and comparing them took
      longer than the whole transition.
    - A batch broadcast from one row (stride 0, e.g. one style for every row) is compared by that row only.
    - Anything else is compared in full against a copy.
    """

    def __init__(self, src: np.ndarray) -> None:
        self.ref = src if is_frozen(src) else None
        self.row = _broadcast_row(src)
        self.copy = None if self.ref is not None or self.row is not None else np.array(src, np.float32)
        if self.row is not None:
            self.row = self.row.copy()
        self.shape = np.shape(src)

    def holds(self, src: np.ndarray) -> bool:
        if np.shape(src) != self.shape:
            return False
        if self.ref is not None:
            return src is self.ref
        row = _broadcast_row(src)
        if self.row is not None:
            return row is not None and np.array_equal(row, self.row)
        return row is None and np.array_equal(src, self.copy)


def is_frozen(a) -> bool:
    """An array that promises not to change: numpy's read-only flag on memory it owns (a StyleCode's arrays)."""
    return isinstance(a, np.ndarray) and not a.flags.writeable and a.base is None


def _broadcast_row(a: np.ndarray) -> np.ndarray | None:
    """The single row a batch is broadcast from (stride 0 along the batch axis), else None."""
    if isinstance(a, np.ndarray) and a.ndim and a.shape[0] > 1 and a.strides[0] == 0:
        return a[:1]
    return None
