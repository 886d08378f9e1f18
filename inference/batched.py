"""Many transitions in shared engine calls: the service's and `rsmt-studio batch`'s generator.

`TransitionEngine.generate` runs one request per graph call. Here requests are canonicalised one by one with the
engine's own pieces (`style_code`, `make_problem`, `phase_at`, `noise`) and then stacked along the batch axis, so
B requests cost one `prepare` call plus ceil(max length / steps_per_call) `steps` calls instead of B times that.
Rows may have different lengths: each row gets its own time-to-arrival, rows that are finished or cancelled are
dropped from the batch between calls, and each row's frames are post-processed exactly as `TransitionEngine.stream`
does (same chunking, same quaternion continuity, same resampling), so a batch of one gives the same floats as
`generate`.

Not thread-safe: call it from the one thread that owns the engine (the service's engine thread, the batch command).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from rsmt_studio.inference.engine import (
    CancelToken,
    Problem,
    StyleCode,
    Timings,
    Transition,
    TransitionChunk,
    TransitionEngine,
    TransitionError,
)
from rsmt_studio.inference.postprocess import to_world_clip
from rsmt_studio.motion import features as F
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.clip import Clip

PROBLEM_ARRAYS = ("ctx_p", "ctx_v", "ctx_r", "p9", "v9", "r9", "tgt_p", "tgt_v", "tgt_r")


@dataclass
class Request:
    """One transition request, as `TransitionEngine.generate` takes it (`seed=None`: no noise)."""

    source: Clip
    source_frame: int
    target: Clip
    target_frame: int
    style: Clip | str
    length: int
    seed: int | None = 0
    cancel: CancelToken | None = None


@dataclass
class Prepared:
    """A request canonicalised for the graphs (batch 1 arrays), ready to be stacked with others."""

    request: Request
    problem: Problem
    code: StyleCode
    phase9: np.ndarray  # (1, C, 2)
    z: np.ndarray  # (1, Z)
    timings: Timings
    t_start: float

    @property
    def group_key(self) -> tuple:
        """Rows with equal keys can share calls: style caches of different token counts cannot be stacked."""
        return tuple(np.shape(a)[1:] for a in self.code.arrays)


@dataclass(eq=False)
class _Row:
    prep: Prepared
    index: int
    clips: list[Clip] = field(default_factory=list)
    phases: list[np.ndarray] = field(default_factory=list)
    made: int = 0
    cancelled: bool = False


ChunkFn = Callable[[int, TransitionChunk], None]


def prepare(engine: TransitionEngine, req: Request) -> Prepared:
    """Canonicalise one request (the CPU part of `TransitionEngine.stream` before the sampler). Raises
    `TransitionError` for a request the model cannot serve (the engine's one-line messages)."""
    t_start = time.perf_counter()
    timings = Timings(device=engine.device.label, steps_per_call=engine.steps_per_call)
    if not 1 <= int(req.length) <= 1000:
        raise TransitionError(f"transition length must be 1..1000 frames, got {req.length}")
    t0 = time.perf_counter()
    code = engine.style_code(req.style)
    timings.style_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    problem, n_model = engine.make_problem(req.source, req.source_frame, req.target, req.target_frame,
                                           int(req.length))
    phase9 = np.asarray(engine.phase_at(req.source, n_model)[None], np.float32)
    timings.features_ms = (time.perf_counter() - t1) * 1e3
    return Prepared(req, problem, code, phase9, engine.noise(req.seed), timings, t_start)


def run(engine: TransitionEngine, rows: Sequence[Prepared], on_chunk: ChunkFn | None = None
        ) -> list[Transition | None]:
    """Generate every prepared row; rows must share `group_key` (see `groups`). Returns one `Transition` per row,
    or None for a row whose `cancel` token was set (its work stops at the next call). `on_chunk(i, chunk)` is
    called for row i's frames as they are made, from this thread."""
    if not rows:
        return []
    keys = {r.group_key for r in rows}
    if len(keys) > 1:
        raise ValueError(f"rows of different style-cache shapes cannot share calls: {sorted(keys)}")
    state = [_Row(p, i) for i, p in enumerate(rows)]
    if engine.capture:
        _run_captured(engine, state, on_chunk)
    else:
        _run_eager(engine, state, on_chunk)
    out: list[Transition | None] = []
    for row in state:
        out.append(None if row.cancelled else _finish(engine, row))
    return out


def groups(rows: Sequence[Prepared], max_batch: int, by_length: bool = False) -> list[list[int]]:
    """Indices of `rows` split into batches that can share calls, at most `max_batch` each, in input order.
    `by_length`: also one length per batch (captured device graphs are built per length)."""
    by: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        key = (r.group_key, int(r.request.length) if by_length else 0)
        by.setdefault(key, []).append(i)
    return [idx[k : k + max_batch] for idx in by.values() for k in range(0, len(idx), max_batch)]


# ---------------------------------------------------------------------------------------------- internals
def _stack(rows: list[_Row]) -> tuple[Problem, np.ndarray, np.ndarray, list[np.ndarray]]:
    p0 = rows[0].prep.problem
    arrays = {a: np.ascontiguousarray(np.concatenate([getattr(r.prep.problem, a) for r in rows])) for a in
              PROBLEM_ARRAYS}
    problem = Problem(frame=p0.frame, ms=p0.ms, **arrays)
    z = np.ascontiguousarray(np.concatenate([r.prep.z for r in rows]))
    phase9 = np.ascontiguousarray(np.concatenate([r.prep.phase9 for r in rows]))
    caches = [np.ascontiguousarray(np.concatenate([r.prep.code.arrays[k] for r in rows]))
              for k in range(len(rows[0].prep.code.arrays))]
    return problem, z, phase9, caches


def _cancelled(row: _Row) -> bool:
    c = row.prep.request.cancel
    if c is not None and c.cancelled:
        row.cancelled = True
    return row.cancelled


def _run_eager(engine: TransitionEngine, rows: list[_Row], on_chunk: ChunkFn | None) -> None:
    """`prepare` once for the batch, then `steps` calls; finished and cancelled rows leave the batch."""
    active = [r for r in rows if not _cancelled(r)]
    if not active:
        return
    problem, z, phase9, caches = _stack(active)
    caches = list(engine.film_caches(caches))
    lengths = np.array([int(r.prep.request.length) for r in active], np.int64)
    b = len(active)
    t0 = time.perf_counter()
    # engine.prepare with one length per row: tta of warm-up frame s is (N_PAST + L) - s
    tta = np.ascontiguousarray((F.N_PAST + lengths)[:, None] - np.arange(1, F.N_WARMUP + 1)[None, :])
    zeros = np.zeros((b, engine.lstm_width), np.float32)
    h, c, tgt_latent, _phase0 = engine.runners["prepare"](
        problem.ctx_p, problem.ctx_v, problem.ctx_r, problem.tgt_p, problem.tgt_v, problem.tgt_r, tta, z,
        *caches[:4], zeros, zeros)
    prep_ms = (time.perf_counter() - t0) * 1e3
    for r in active:
        r.prep.timings.prepare_ms = prep_ms
        r.prep.timings.calls = 1
    p, v, r_, phase = problem.p9, problem.v9, problem.r9, phase9
    tgt_p, tgt_r = problem.tgt_p, problem.tgt_r
    k = engine.steps_per_call
    start = 0
    while active:
        # engine.rollout_chunks' time-to-arrival per row: L + 1 - step, 0 for padding steps past the end
        steps = np.arange(start, start + k)[None, :]
        tta = np.ascontiguousarray(np.maximum(lengths[:, None] + 1 - steps, 0).astype(np.int64))
        t0 = time.perf_counter()
        ps, rs, phs, v, h, c = engine.runners["steps"](p, v, r_, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z,
                                                        *caches)
        ms = (time.perf_counter() - t0) * 1e3
        for i, row in enumerate(active):
            n = min(k, int(lengths[i]) - start)
            _emit(engine, row, ps[i : i + 1, :n], rs[i : i + 1, :n], phs[i : i + 1, :n],
                  ms * (n / k) if n < k else ms, on_chunk)
        p, r_, phase = ps[:, -1], rs[:, -1], phs[:, -1]
        start += k
        keep = [i for i, row in enumerate(active) if start < lengths[i] and not _cancelled(row)]
        if len(keep) < len(active):
            sel = np.array(keep, np.int64)
            active = [active[i] for i in keep]
            lengths = lengths[sel]
            p, v, r_, phase, h, c, tgt_p, tgt_r, tgt_latent, z = (
                np.ascontiguousarray(np.asarray(a)[sel]) for a in (p, v, r_, phase, h, c, tgt_p, tgt_r,
                                                                   tgt_latent, z))
            caches = [np.ascontiguousarray(np.asarray(a)[sel]) for a in caches]


def _run_captured(engine: TransitionEngine, rows: list[_Row], on_chunk: ChunkFn | None) -> None:
    """GPU: the engine's captured device graphs, one (batch, length) capture per call; rows of one length."""
    active = [r for r in rows if not _cancelled(r)]
    if not active:
        return
    lengths = {int(r.prep.request.length) for r in active}
    if len(lengths) > 1:
        raise ValueError("captured transitions need one length per batch (groups(..., by_length=True))")
    length = lengths.pop()
    problem, z, phase9, caches = _stack(active)
    for ps, rs, phs, ms in engine.captured_chunks(problem, length, z, caches, phase9):
        for i, row in enumerate(active):
            if not row.cancelled:
                _emit(engine, row, ps[i : i + 1], rs[i : i + 1], phs[i : i + 1], ms, on_chunk)
        if all(_cancelled(r) for r in active):
            return


def _emit(engine: TransitionEngine, row: _Row, p_k, r_k, ph_k, ms: float, on_chunk: ChunkFn | None) -> None:
    """One row's frames of one call, post-processed as `TransitionEngine._stream` does."""
    req, t = row.prep.request, row.prep.timings
    t.calls += 1
    t.sampler_ms += ms
    tp = time.perf_counter()
    chunk_clip = to_world_clip(np.asarray(p_k)[0], np.asarray(r_k)[0], row.prep.problem.frame,
                               row.prep.problem.ms, req.source, engine.dims.fps)
    if row.clips:  # keep quaternion signs continuous across chunks
        joined = R.quat_continuity(np.concatenate([row.clips[-1].local_rot[-1:], chunk_clip.local_rot]))
        chunk_clip.local_rot = joined[1:]
    else:
        chunk_clip.local_rot = R.quat_continuity(chunk_clip.local_rot)
    pp_ms = (time.perf_counter() - tp) * 1e3
    t.postprocess_ms += pp_ms
    n = np.shape(p_k)[1]
    t.per_frame += [{"sampler_ms": ms / n, "postprocess_ms": pp_ms / n}] * n
    ph = np.asarray(ph_k)[0]
    row.clips.append(chunk_clip)
    row.phases.append(ph)
    chunk = TransitionChunk(row.made, chunk_clip, ph, ms, pp_ms)
    row.made += n
    if on_chunk is not None:
        on_chunk(row.index, chunk)


def _finish(engine: TransitionEngine, row: _Row) -> Transition:
    req, t = row.prep.request, row.prep.timings
    tp = time.perf_counter()
    clips = row.clips
    clip = replace(clips[0], local_pos=np.concatenate([c.local_pos for c in clips]),
                   local_rot=np.concatenate([c.local_rot for c in clips]))
    if abs(req.source.fps - engine.dims.fps) > 1e-6:
        clip = clip.resample(req.source.fps)
    t.postprocess_ms += (time.perf_counter() - tp) * 1e3
    t.total_ms = (time.perf_counter() - row.prep.t_start) * 1e3
    return Transition(clip, np.concatenate(row.phases), t, req.source_frame, req.target_frame)


__all__ = ["Prepared", "Request", "groups", "prepare", "run"]
