"""The FiLM blocks' query and output layers folded into the style caches, once per style (GPU graphs).

Why: each FiLM block (nets.film) runs, per generated frame, a query layer q = LN(y) @ Wq + bq before its
attention over the style tokens and an output layer ctx @ Wo + bo after it: two one-row matmuls (GEVMs, ~2.7 µs
each on an H100 at batch 1) per block, two blocks per frame, 160 kernels of a 40-frame transition. Both are
linear, and the tokens' keys and values do not change during a transition, so

    keys[t] · q = (keys @ Wq^T)[t] · LN(y) + keys[t] · bq
    sum_t att[t] values[t] @ Wo + bo = sum_t att[t] (values @ Wo)[t] + bo       (the weights sum to 1)

`build_graph` makes, from a style code's raw caches, the folded key cache [keys @ Wq^T | keys · bq | 0..] (the
logit offset rides in an extra column, padded to ALIGN) and the folded value cache values @ Wo. The steps and
prepare graphs take those in place of the raw keys and values (`film`), and the engine
folds each style code once (TransitionEngine.film_caches, memoised for read-only codes).

The maths is nets.film's; `tests/inference/test_fused_film.py` checks the fold and the folded block on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import Graph, TensorType, ops
from rsmt_studio.inference.graphs.gpu import blocks as gpu_blocks

BLOCKS = ("embedding_film", "predictor_film")
#: Weights of the fold graph, in input order: each block's transposed query weight, query bias and output weight.
FOLD = tuple((f"{p}.{n}", r) for p in BLOCKS for n, r in (("query_t.w", 2), ("query.b", 1), ("out_proj.w", 2)))
#: Raw cache positions (engine.CACHE_NAMES order) of each block's keys and values.
KEYS_VALUES = {"embedding_film": (2, 3), "predictor_film": (6, 7)}


def fused_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The transposed query weights (`{block}.query_t.w`, zero rows up to ALIGN) from adapted ones."""
    out = {}
    for p in BLOCKS:
        wt = np.ascontiguousarray(weights[f"{p}.query.w"].T)
        padded = np.zeros((gpu_blocks._up(wt.shape[0]), wt.shape[1]), np.float32)
        padded[: wt.shape[0]] = wt
        out[f"{p}.query_t.w"] = padded
    return out


def key_width(width: int) -> int:
    """Width of a folded key cache for a block of this width: the keys, one offset column, zero padding."""
    return gpu_blocks._up(width + 1)


def graph_config(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """The fold graph's config: static weight shapes (gpu_blocks' padding) and the blocks' widths."""
    shapes = {}
    for n, _ in FOLD:
        if n.endswith(".query_t.w"):  # fused_weights' transposed, padded query weight
            rows, cols = weights[n.replace(".query_t.w", ".query.w")].shape
            shapes[n] = [gpu_blocks._up(cols), rows]
        else:
            shapes[n] = list(gpu_blocks.padded_shape(n, weights[n].shape))
    widths = {p: int(weights[f"{p}.query.w"].shape[1]) for p in BLOCKS}
    return {"weight_shapes": shapes, "widths": widths}


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """Inputs: emb_keys, emb_values, pred_keys, pred_values (B, T, D) and the FOLD weights; outputs the folded
    emb_keys (B, T, key_width(D)), emb_values (B, T, D), pred_keys, pred_values."""
    f32 = DType.float32
    types = []
    for p, tag in zip(BLOCKS, ("emb", "pred"), strict=True):
        width = int(config["widths"][p])
        types += [TensorType(f32, ("batch", f"{tag}_t", width), device=device_ref)] * 2
    types += [TensorType(f32, tuple(config["weight_shapes"][n]), device=device_ref) for n, _ in FOLD]
    with Graph("rsmt_film_fold", input_types=types) as g:
        v = [x.tensor for x in g.inputs]
        data, W = v[:4], dict(zip([n for n, _ in FOLD], v[4:], strict=True))
        outs = []
        for i, p in enumerate(BLOCKS):
            outs += fold(W, p, data[2 * i], data[2 * i + 1])
        g.output(*outs)
    return g


def fold(W, prefix: str, keys, values):
    """(folded keys, folded values) of one block (module docstring)."""
    width = int(keys.shape[2])
    kq = gpu_blocks.linear(keys, W[f"{prefix}.query_t.w"], out=width)  # (B, T, D)
    offset = ops.sum(keys * ops.rebind(W[f"{prefix}.query.b"], (width,)), axis=-1)  # (B, T, 1)
    pad = ops.broadcast_to(ops.constant(0.0, DType.float32, device=keys.device),
                           (keys.shape[0], keys.shape[1], key_width(width) - width - 1))
    vo = gpu_blocks.linear(values, W[f"{prefix}.out_proj.w"], out=width)
    return ops.concat([kq, offset, pad], axis=-1), vo


#: nets.py weights the folded blocks no longer read per frame (the fold graph does, once per style).
UNUSED = tuple(f"{p}.{n}" for p in BLOCKS for n in ("query.w", "query.b", "out_proj.w"))


def split_keys(kq, width: int):
    """A folded key cache -> (keys @ Wq^T (B, T, D), logit offsets (B, T)); once per graph call, not per frame."""
    return kq[:, :, :width], ops.squeeze(kq[:, :, width : width + 1], -1)


def input_shape(name: str, shape: tuple, fixed: dict) -> tuple:
    """A data input's shape in a fused graph: graphs.data_inputs' shape with the symbolic dims in `fixed` made
    static, and the key caches widened to key_width (the graphs read folded caches)."""
    dims = tuple(fixed.get(s, s) if isinstance(s, str) else s for s in shape)
    if name in ("emb_keys", "pred_keys"):
        dims = (*dims[:-1], key_width(int(dims[-1])))
    return dims


def block_caches(cache, width: int):
    """(gamma, beta, keys, offsets, values) of one block from its 4 folded cache inputs, split once per call."""
    gamma, beta, kq, vo = cache
    keys, offsets = split_keys(kq, width)
    return gamma, beta, keys, offsets, vo


def film(W, prefix: str, x, gamma, beta, keys, offsets, values):
    """nets.film with the folded caches: x (B, D) or (B, F, D), keys/values (B, T, D), offsets (B, T)."""
    K = gpu_blocks
    b, width = x.shape[0], x.shape[-1]
    frames = len(x.shape) == 3
    gamma = ops.rebind(gamma, (b, width))
    beta = ops.rebind(beta, (b, width))
    if frames:
        gamma, beta = ops.unsqueeze(gamma, 1), ops.unsqueeze(beta, 1)
    y = K.elu((1.0 + gamma) * K.layer_norm(x) + beta)
    q = K.layer_norm(y)
    t = keys.shape[1]
    keys = ops.rebind(keys, (b, t, width))
    values = ops.rebind(values, (b, t, width))
    offsets = ops.rebind(offsets, (b, t))
    scale = ops.rebind(W[f"{prefix}.scale"], (1,))
    if frames:  # every frame of a row attends to that row's tokens: (B, F, T) logits
        logits = ops.squeeze(ops.sum(ops.unsqueeze(keys, 1) * ops.unsqueeze(q, 2), axis=-1), -1)
        att = K.softmax((logits + ops.unsqueeze(offsets, 1)) * scale)
        ctx = ops.squeeze(ops.sum(ops.unsqueeze(att, 3) * ops.unsqueeze(values, 1), axis=2), 2)
    else:  # as gpu_blocks.attend: broadcast multiplies and reductions
        logits = ops.squeeze(ops.sum(keys * ops.unsqueeze(q, 1), axis=-1), -1)  # (B, T)
        att = K.softmax((logits + offsets) * scale)
        ctx = ops.squeeze(ops.sum(ops.unsqueeze(att, 2) * values, axis=1), 1)
    return y + ctx + ops.rebind(W[f"{prefix}.out_proj.b"], (width,))
