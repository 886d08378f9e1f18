"""Many transitions in shared engine calls: the service's and `rsmt-studio batch`'s generator.

`TransitionEngine.generate` runs one request per graph call. Here requests are canonicalised one by one with the
engine's public pieces (`style_code`, `make_problem`, `phase_at`, `noise`), stacked along the batch axis, and B
requests cost one `prepare` call plus ceil(max length / steps_per_call) `steps` calls instead of B times that.
Rows may have different lengths: each row gets its own time-to-arrival, and rows that are finished or cancelled
leave the batch between calls.

Everything else a transition needs (placing frames on the source's rig, the quaternion continuity, the final
post-processing and resampling) is the engine's own code: each row runs `TransitionEngine._stream` on a
`_RowView` of the engine whose `prepare` / `rollout_chunks` / `captured_chunks` hand it that row's slice of the
batched calls, and whose `make_problem` / `phase_at` / `noise` return what was already computed for the batch.
So a row's result is what `generate` gives for the same request, bit for bit (a streamed row's chunks are
post-processed as they come, as `stream` does), whatever the engine's
post-processing does; a view that sees other inputs than the batch used raises instead of mixing them.

Not thread-safe: call it from the one thread that owns the engine (the service's engine thread, the batch command).
"""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rsmt_studio.inference.engine import (
    CancelToken,
    GenerationCancelled,
    Problem,
    StyleCode,
    Timings,
    Transition,
    TransitionChunk,
    TransitionEngine,
    TransitionError,
)
from rsmt_studio.motion import features as F
from rsmt_studio.motion.clip import Clip

PROBLEM_ARRAYS = ("ctx_p", "ctx_v", "ctx_r", "p9", "v9", "r9", "tgt_p", "tgt_v", "tgt_r")


@dataclass
class Request:
    """One transition request, as `TransitionEngine.generate` takes it (`seed=None`: no noise; `foot_lock=False`:
    the feet as the sampler made them; `head_steady=False`: the head as the sampler made it)."""

    source: Clip
    source_frame: int
    target: Clip
    target_frame: int
    style: Clip | str
    length: int
    seed: int | None = 0
    cancel: CancelToken | None = None
    foot_lock: bool = True
    head_steady: bool = True


@dataclass(eq=False)
class Prepared:
    """A request canonicalised for the graphs (batch 1 arrays), ready to be stacked with others."""

    request: Request
    problem: Problem
    n_model: int
    code: StyleCode
    phase_raw: np.ndarray  # what engine.phase_at returned, (C, 2)
    phase9: np.ndarray  # (1, C, 2) float32
    z: np.ndarray  # (1, Z)
    timings: Timings
    t_start: float

    @property
    def group_key(self) -> tuple:
        """Rows with equal keys can share calls: style caches of different token counts cannot be stacked."""
        return tuple(np.shape(a)[1:] for a in self.code.arrays)


ChunkFn = Callable[[int, TransitionChunk], None]
Result = Transition | BaseException | None


def prepare(engine: TransitionEngine, req: Request) -> Prepared:
    """Canonicalise one request with the engine's public pieces. Raises `TransitionError` for a request the model
    cannot serve (the engine's one-line messages)."""
    t_start = time.perf_counter()
    timings = Timings(device=engine.device.label, steps_per_call=engine.steps_per_call)
    if not 1 <= int(req.length) <= 1000:
        raise TransitionError(f"transition length must be 1..1000 frames, got {req.length}")
    code = engine.style_code(req.style)
    problem, n_model = engine.make_problem(req.source, req.source_frame, req.target, req.target_frame,
                                           int(req.length))
    phase_raw = engine.phase_at(req.source, n_model)
    phase9 = np.asarray(phase_raw[None], np.float32)
    return Prepared(req, problem, n_model, code, phase_raw, phase9, engine.noise(req.seed), timings, t_start)


def run(engine: TransitionEngine, rows: Sequence[Prepared], on_chunk: ChunkFn | None = None,
        streamed: Sequence[bool] | None = None) -> list[Result]:
    """Generate every prepared row; rows must share `group_key` (see `groups`). Returns per row the `Transition`,
    None when its `cancel` token was set (its work stops at the next call), or the exception that row raised.
    `on_chunk(i, chunk)` is called with row i's frames as they are made, from this thread, for the rows whose
    `streamed[i]` is true (default: all of them when `on_chunk` is given). A row nobody streams is post-processed
    once, at the end, exactly as `TransitionEngine.generate` does it."""
    if not rows:
        return []
    keys = {r.group_key for r in rows}
    if len(keys) > 1:
        raise ValueError(f"rows of different style-cache shapes cannot share calls: {sorted(keys)}")
    if streamed is None:
        streamed = [on_chunk is not None] * len(rows)
    state = [_Row(p, i, on_chunk if wants else None) for i, (p, wants) in enumerate(zip(rows, streamed, strict=True))]
    for row in state:
        row.start(engine)
    if engine.capture:
        _run_captured(engine, state)
    else:
        _run_eager(engine, state)
    return [row.outcome() for row in state]


def groups(rows: Sequence[Prepared], max_batch: int, by_length: bool = False) -> list[list[int]]:
    """Indices of `rows` split into batches that can share calls, at most `max_batch` each, in input order.
    `by_length`: also one length per batch (captured device graphs are built per length)."""
    by: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        key = (r.group_key, int(r.request.length) if by_length else 0)
        by.setdefault(key, []).append(i)
    return [idx[k : k + max_batch] for idx in by.values() for k in range(0, len(idx), max_batch)]


# ---------------------------------------------------------------------------------------------- internals
class OutOfStep(RuntimeError):
    """TransitionEngine._stream asked for other inputs than the batch was built from (the engine changed)."""


class _Row:
    """One row: its prepared inputs, the raw chunks made for it, and the engine's own `_stream` consuming them."""

    def __init__(self, prep: Prepared, index: int, on_chunk: ChunkFn | None) -> None:
        self.prep = prep
        self.index = index
        self.on_chunk = on_chunk  # None: nobody streams this row, its frames are post-processed once, at the end
        self.pending: deque = deque()
        self.made_all = False
        self.prepared_out: tuple | None = None  # (h, c, tgt_latent, phase0) slices, batch 1
        self.result: Transition | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.gen = None

    def start(self, engine: TransitionEngine) -> None:
        r = self.prep.request
        view = _RowView(engine, self)
        self.gen = TransitionEngine._stream(view, r.source, r.source_frame, r.target, r.target_frame, r.style,
                                            int(r.length), r.seed, r.cancel, "auto", chunked=self.on_chunk is not None,
                                            foot_lock=r.foot_lock, head_steady=r.head_steady)

    @property
    def live(self) -> bool:
        if self.result is None and self.error is None and not self.cancelled:
            c = self.prep.request.cancel
            if c is not None and c.cancelled:
                self.cancelled = True
        return self.result is None and self.error is None and not self.cancelled

    def feed(self, p_k, r_k, ph_k, ms: float, last: bool) -> None:
        """Hand the row one call's frames; its `_stream` post-processes them (and finishes after the last)."""
        self.pending.append((p_k, r_k, ph_k, ms))
        self.made_all = last
        if self.on_chunk is not None or last:  # an unstreamed row's `_stream` takes all its frames at the end
            self._advance()
        if last and self.live:
            self._advance()  # the rollout is over: `_stream` finishes the clip and yields the Transition

    def _advance(self) -> None:
        try:
            item = next(self.gen)
        except GenerationCancelled:
            self.cancelled = True
            return
        except StopIteration:
            self.error = OutOfStep("the engine's stream ended without a transition")
            return
        except Exception as exc:  # noqa: BLE001 - one row's failure is its own, not its batch's
            self.error = exc
            return
        if isinstance(item, Transition):
            self.result = item
        elif self.on_chunk is not None:
            self.on_chunk(self.index, item)

    def outcome(self) -> Result:
        if self.cancelled:
            return None
        if self.error is not None:
            return self.error
        if self.result is None:
            return OutOfStep("row was not finished")
        return self.result


@functools.lru_cache(maxsize=256)
def _engine_function(cls: type, name: str) -> types.FunctionType | None:
    """`name` as a plain function of the engine's class, or None (an instance attribute, a property): looked up
    once per name, not on every attribute access of every row."""
    attr = inspect.getattr_static(cls, name, None)
    return attr if isinstance(attr, types.FunctionType) else None


class _RowView:
    """The engine as one row's `_stream` sees it: everything delegated, except the graph calls (served from the
    batch) and the canonicalisation already done for the batch."""

    first_step = False  # a batch steps all its rows together, `steps_per_call` at a time

    def __init__(self, engine: TransitionEngine, row: _Row) -> None:
        self._engine = engine
        self._row = row

    def __getattr__(self, name: str):
        # The engine's methods run with this view as `self`, so every graph call and canonicalisation they make,
        # however deep, comes to the overrides below; bound to the engine, a helper such as `_sampler_chunks`
        # would run the row through its own batch-1 graphs (it did, unnoticed, because the frames are the same).
        fn = _engine_function(type(self._engine), name)
        return types.MethodType(fn, self) if fn is not None else getattr(self._engine, name)

    def make_problem(self, source, source_frame, target, target_frame, length):
        p = self._row.prep
        r = p.request
        if (source is r.source and target is r.target and source_frame == r.source_frame
                and target_frame == r.target_frame and int(length) == int(r.length)):
            return p.problem, p.n_model
        return self._engine.make_problem(source, source_frame, target, target_frame, length)

    def phase_at(self, clip, frame):
        p = self._row.prep
        if clip is p.request.source and frame == p.n_model:
            return p.phase_raw
        return self._engine.phase_at(clip, frame)

    def noise(self, seed, batch: int = 1):
        p = self._row.prep
        return p.z if seed == p.request.seed and batch == 1 else self._engine.noise(seed, batch)

    def _check(self, problem, z) -> None:
        p = self._row.prep
        if problem is not p.problem or not np.array_equal(z, p.z):
            raise OutOfStep("TransitionEngine._stream asked for other inputs than inference/batched.py built "
                            "the batch from; update batched.prepare to match the engine")

    def prepare(self, problem, length, z, caches):
        self._check(problem, z)
        if self._row.prepared_out is None:
            raise OutOfStep("prepare was asked for before the batch's prepare call ran")
        return self._row.prepared_out

    def rollout_chunks(self, state, problem, tgt_latent, z, caches, length):
        self._check(problem, z)
        return self._chunks()

    def captured_chunks(self, problem, length, z, caches, phase9=None):
        self._check(problem, z)
        return self._chunks()

    def _chunks(self):
        row = self._row
        while True:
            if row.pending:
                yield row.pending.popleft()
            elif row.made_all:
                return
            else:
                raise OutOfStep("a chunk was asked for before it was made")


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


def _run_eager(engine: TransitionEngine, rows: list[_Row]) -> None:
    """`prepare` once for the batch, then `steps` calls; finished and cancelled rows leave the batch."""
    active = [r for r in rows if r.live]
    if not active:
        return
    problem, z, phase9, caches = _stack(active)
    caches = list(engine.film_caches(caches))
    lengths = np.array([int(r.prep.request.length) for r in active], np.int64)
    b = len(active)
    # engine.prepare with one length per row: tta of warm-up frame s is (N_PAST + L) - s
    tta = np.ascontiguousarray((F.N_PAST + lengths)[:, None] - np.arange(1, F.N_WARMUP + 1)[None, :])
    zeros = np.zeros((b, engine.lstm_width), np.float32)
    outs = engine.runners["prepare"](problem.ctx_p, problem.ctx_v, problem.ctx_r, problem.tgt_p, problem.tgt_v,
                                     problem.tgt_r, tta, z, *caches[:4], zeros, zeros)
    h, c, tgt_latent, _phase0 = outs
    for i, r in enumerate(active):
        r.prepared_out = tuple(np.asarray(o)[i : i + 1] for o in outs)
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
            row.feed(ps[i : i + 1, :n], rs[i : i + 1, :n], phs[i : i + 1, :n], ms * (n / k) if n < k else ms,
                     last=start + k >= lengths[i])
        p, r_, phase = ps[:, -1], rs[:, -1], phs[:, -1]
        start += k
        keep = [i for i, row in enumerate(active) if start < lengths[i] and row.live]
        if len(keep) < len(active):
            sel = np.array(keep, np.int64)
            active = [active[i] for i in keep]
            lengths = lengths[sel]
            p, v, r_, phase, h, c, tgt_p, tgt_r, tgt_latent, z = (
                np.ascontiguousarray(np.asarray(a)[sel]) for a in (p, v, r_, phase, h, c, tgt_p, tgt_r,
                                                                   tgt_latent, z))
            caches = [np.ascontiguousarray(np.asarray(a)[sel]) for a in caches]


def _run_captured(engine: TransitionEngine, rows: list[_Row]) -> None:
    """GPU: the engine's captured device graphs for the batch (one length per batch; prepare is inside)."""
    active = [r for r in rows if r.live]
    if not active:
        return
    lengths = {int(r.prep.request.length) for r in active}
    if len(lengths) > 1:
        raise ValueError("captured transitions need one length per batch (groups(..., by_length=True))")
    length = lengths.pop()
    for r in active:
        r.prepared_out = ()  # prepare is replayed inside captured_chunks
    problem, z, phase9, caches = _stack(active)
    made = 0
    for ps, rs, phs, ms in engine.captured_chunks(problem, length, z, caches, phase9):
        made += np.shape(ps)[1]
        for i, row in enumerate(active):
            if row.live:
                row.feed(ps[i : i + 1], rs[i : i + 1], phs[i : i + 1], ms, last=made >= length)
        if not any(r.live for r in active):
            return


__all__ = ["OutOfStep", "Prepared", "Request", "groups", "prepare", "run"]
