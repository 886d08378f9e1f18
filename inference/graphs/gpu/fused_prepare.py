"""The GPU `prepare` graph with the warm-up frames batched: what runs once per transition before its first frame.

Why: `prepare` (nets.prepare) computes the LSTM inputs of the 8 context frames one frame after another, each a
chain of ~30 small kernels (encoders, embedding FiLM, positional rows, the LSTM cell). At batch 1 on an H100 that
was ~250 kernels and ~0.65 ms of kernel time before the first generated frame (bench/gpu_profile.py), about an
eighth of a 40-frame transition. None of those inputs depends on the LSTM state, only the recurrence does, so:

- The 8 frames' LSTM inputs are computed together, as (B, 8, ·) tensors: one state vector per frame in
  fused_steps' layout, the block-diagonal encoders and the embedding layer of fused_steps, the embedding FiLM
  block with its attention over (B, 8, T) logits, the positional rows gathered for all 8 frames at once.
- The LSTM's stacked weight is split at load into its input rows and its hidden rows (`fused_weights`): the
  input half is one matmul over all 8 frames; the recurrence is 8 x (h @ W_h + that frame's gates, then
  fused_steps' `rsmt_lstm_gates` op).
- The initial-phase predictor reads the 8 LSTM inputs as nets.initial_phase does.

The maths is nets.prepare's (same data inputs and outputs, so the engine and the captured device graphs use it
unchanged); `tests/inference/test_fused_prepare.py` checks it against numpy on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import Graph, ops
from rsmt_studio.inference.graphs import nets, networks
from rsmt_studio.inference.graphs.gpu import blocks as gpu_blocks
from rsmt_studio.inference.graphs.gpu import fused_film, fused_steps
from rsmt_studio.inference.graphs.gpu.fused_steps import Layout
from rsmt_studio.inference.graphs.nets import Dims

#: The weights this graph takes beyond fused_steps' fused ones: the LSTM weight's input and hidden rows.
SPLIT = (("fused.lstm_x.w", 2), ("fused.lstm_h.w", 2))
#: nets.py weights not needed here (fused_steps' replacements or the split LSTM weight stand in for them).
REPLACED = fused_steps.REPLACED + ("lstm.w",)
#: fused_steps' fused weights this graph reads.
USED_FROM_STEPS = ("fused.encoders.fc1.w", "fused.encoders.fc1.b", "fused.encoders.fc2.w", "fused.encoders.fc2.b",
                   "fused.embedding_fc.w")


def weight_inputs() -> list[tuple[str, int]]:
    """networks.weight_inputs("prepare") with the replaced weights swapped for fused ones (graph-input order),
    without the FiLM layers that fused_film.py folds into the style caches."""
    fused = [w for w in fused_steps.FUSED if w[0] in USED_FROM_STEPS]
    drop = REPLACED + fused_film.UNUSED
    return [w for w in networks.weight_inputs("prepare") if w[0] not in drop] + fused + list(SPLIT)


def lstm_input_width(weights: dict[str, np.ndarray]) -> int:
    """The LSTM's input width [h_state, h_t] (its stacked weight's rows less the hidden ones)."""
    return int(weights["embedding_fc.w"].shape[1]) + 2 * int(weights["offset_encoder.fc2.w"].shape[1])


def fused_shapes(weights: dict[str, np.ndarray]) -> dict[str, tuple[int, int]]:
    """The split LSTM weight's shapes, without building it (for the graph's static input types)."""
    n_in, hidden = lstm_input_width(weights), weights["lstm.w"].shape[1] // 4
    return {"fused.lstm_x.w": (gpu_blocks._up(n_in), 4 * hidden), "fused.lstm_h.w": (gpu_blocks._up(hidden), 4 * hidden)}


def fused_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The split LSTM weight (zero rows up to gpu_blocks.ALIGN) from the adapted stacked one [W_x; W_h]."""
    w = weights["lstm.w"]
    n_in, hidden = lstm_input_width(weights), w.shape[1] // 4
    if w.shape[0] != n_in + hidden:
        raise ValueError(f"lstm.w has {w.shape[0]} rows, expected {n_in} inputs + {hidden} hidden")
    out = {}
    for name, part in (("fused.lstm_x.w", w[:n_in]), ("fused.lstm_h.w", w[n_in:])):
        padded = np.zeros((gpu_blocks._up(part.shape[0]), part.shape[1]), np.float32)
        padded[: part.shape[0]] = part
        out[name] = padded
    return out


def graph_config(weights: dict[str, np.ndarray], d: Dims) -> dict[str, Any]:
    """The spec config for adapted `weights` (static shapes: gpu_blocks' padding, the fused weights')."""
    shapes = {n: list(s) for n, s in fused_steps.fused_shapes(weights, d).items() if n in USED_FROM_STEPS}
    shapes.update({n: list(s) for n, s in fused_shapes(weights).items()})
    for n, _ in weight_inputs():
        if n not in shapes:
            shapes[n] = list(gpu_blocks.padded_shape(n, weights[n].shape))
    return {"dims": d.to_json(), "weight_shapes": shapes, "data_dims": networks.width_dims(weights)}


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """networks.build_graph's prepare graph (same data inputs and outputs) with the warm-up frames batched."""
    d = Dims(**config["dims"])
    data = networks.data_inputs("prepare", d)
    weights = weight_inputs()
    types = fused_steps.input_types(data, weights, config, device_ref)
    with Graph("rsmt_prepare_fused", input_types=types, custom_extensions=[fused_steps.mojo_package()]) as g:
        values = [v.tensor for v in g.inputs]
        x = dict(zip([n for n, _, _ in data], values[: len(data)], strict=True))
        W = dict(zip([n for n, _ in weights], values[len(data) :], strict=True))
        cache = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values")]
        g.output(*prepare(W, d, x["ctx_p"], x["ctx_v"], x["ctx_r"], x["tgt_p"], x["tgt_v"], x["tgt_r"], x["tta"],
                          x["z"], cache, x["h0"], x["c0"]))
    return g


def _zeros(shape, device):
    return ops.broadcast_to(ops.constant(0.0, DType.float32, device=device), shape)


def lstm_inputs(W, d: Dims, ctx_p, ctx_v, ctx_r, tgt_p, tgt_r, tgt_latent, tta, z, emb_cache):
    """nets.lstm_input for all n_warmup context frames at once: (B, F, emb + 2 latent)."""
    K = gpu_blocks
    lay = Layout.of(d)
    b, f, dev = ctx_p.shape[0], d.n_warmup, ctx_p.device

    def flat(a):  # (B, F, N, k) -> (B, F, N*k)
        return ops.reshape(a, (b, f, int(a.shape[2]) * int(a.shape[3])))

    pf, rf = flat(ctx_p), flat(ctx_r)
    tp = ops.unsqueeze(ops.reshape(tgt_p, (b, lay.p3)), 1)
    tr = ops.unsqueeze(ops.reshape(tgt_r, (b, lay.r6)), 1)
    # fused_steps' state vector (the encoders' zero rows past the offset part: zeros there)
    x = ops.concat([flat(ctx_p - ctx_p[:, :, 0:1, :]), flat(ctx_v), rf, tp - pf, tr - rf,
                    _zeros((b, f, lay.x_width - lay.state_width - lay.offset_width), dev)], axis=-1)
    enc = K.linear(K.elu(K.linear(x, W["fused.encoders.fc1.w"], W["fused.encoders.fc1.b"])),
                   W["fused.encoders.fc2.w"], W["fused.encoders.fc2.b"])  # [state, offset, 0]
    pre = K.linear(enc, W["fused.embedding_fc.w"], W["embedding_fc.b"])
    folded = fused_film.block_caches(emb_cache, int(W["embedding_film.out_proj.b"].shape[0]))
    emb = K.elu(fused_film.film(W, "embedding_film", pre, *folded))
    pe_big, pe_pair, noise = fused_steps.step_additions(W, d, tta, tgt_latent, z)  # per frame, all at once
    lat = int(W["pe_latent"].shape[1])
    hidden = int(W["fused.encoders.fc2.w"].shape[1]) - 2 * lat  # the state encoder's output width
    # enc's tail is [offset, 0]: h_t = [offset + pe, target latent + pe] + lam z
    h_t = ops.rebind(enc[:, :, hidden:], (b, f, 2 * lat)) + pe_pair
    h_t = h_t + noise
    h_state = emb + ops.rebind(pe_big, (b, f, emb.shape[2]))
    return ops.concat([h_state, h_t], axis=-1)


def prepare(W, d: Dims, ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, tta, z, emb_cache, h0, c0):
    """nets.prepare (same inputs and outputs) with the warm-up frames batched; W holds the fused weights, the
    cache's keys and values are fused_film.py's folded ones."""
    K = gpu_blocks
    b = ctx_p.shape[0]
    tgt_latent = nets.target_latent(K, W, tgt_p, tgt_v, tgt_r)
    xs = lstm_inputs(W, d, ctx_p, ctx_v, ctx_r, tgt_p, tgt_r, tgt_latent, tta, z, emb_cache)
    lstm = int(h0.shape[1])
    gx = K.linear(xs, W["fused.lstm_x.w"], W["lstm.b"], out=4 * lstm)  # (B, F, 4H): every frame's input gates
    hc = ops.concat([h0, ops.rebind(c0, (b, lstm))], axis=-1)
    for i in range(d.n_warmup):
        gates = ops.rebind(gx[:, i], (b, 4 * lstm)) + K.linear(hc[:, :lstm], W["fused.lstm_h.w"], out=4 * lstm)
        hc = fused_steps.lstm_gates(gates, hc)
    phase0 = nets.initial_phase(K, W, d, xs)
    return hc[:, :lstm], hc[:, lstm:], tgt_latent, phase0
