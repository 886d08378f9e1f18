"""Random inputs of the steps and prepare graphs (batch 3) for the fused-graph tests, drawn in one fixed order.

The times to arrival sit on both sides of the noise ramp (5..30 frames) and past the positional table's end.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def steps_state(d, W, rng: np.random.Generator, steps: int) -> tuple[np.ndarray, ...]:
    """(p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z): the steps graph's inputs before the caches."""
    b = 3
    lat, hid = W["offset_encoder.fc2.w"].shape[1], W["lstm.w"].shape[1] // 4
    p = rng.normal(0, 20, (b, d.n_pos_joints, 3)).astype(F32)
    v = rng.normal(0, 1, (b, d.n_pos_joints, 3)).astype(F32)
    r = rng.normal(0, 1, (b, d.n_joints, 6)).astype(F32)
    tp, tr = rng.normal(0, 20, p.shape).astype(F32), rng.normal(0, 1, r.shape).astype(F32)
    z = rng.normal(0, 0.5, (b, 2 * lat)).astype(F32)
    phase = rng.normal(0, 1, (b, d.n_phases, 2)).astype(F32)
    h, c = rng.normal(0, 0.5, (b, hid)).astype(F32), rng.normal(0, 0.5, (b, hid)).astype(F32)
    tl = rng.normal(0, 1, (b, lat)).astype(F32)
    tta = (np.array([[30], [8], [70]]) - np.arange(steps)[None, :]).astype(np.int64)
    return p, v, r, phase, h, c, tp, tr, tl, tta, z


def prepare_inputs(d, W, rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """((ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, tta, z), (h0, c0)): the prepare graph's inputs around the
    caches."""
    b, w = 3, d.n_warmup
    lat, hid = W["offset_encoder.fc2.w"].shape[1], W["lstm.w"].shape[1] // 4
    ctx_p = rng.normal(0, 20, (b, w, d.n_pos_joints, 3)).astype(F32)
    ctx_v = rng.normal(0, 1, ctx_p.shape).astype(F32)
    ctx_r = rng.normal(0, 1, (b, w, d.n_joints, 6)).astype(F32)
    tp = rng.normal(0, 20, (b, d.n_pos_joints, 3)).astype(F32)
    tv = rng.normal(0, 1, (b, d.n_pos_joints, 3)).astype(F32)
    tr = rng.normal(0, 1, (b, d.n_joints, 6)).astype(F32)
    tta = (np.array([[48], [14], [90]]) - np.arange(w)[None, :]).astype(np.int64)
    z = rng.normal(0, 0.5, (b, 2 * lat)).astype(F32)
    h0, c0 = rng.normal(0, 0.5, (b, hid)).astype(F32), rng.normal(0, 0.5, (b, hid)).astype(F32)
    return (ctx_p, ctx_v, ctx_r, tp, tv, tr, tta, z), (h0, c0)
