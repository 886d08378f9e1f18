"""The four networks' graphs of a transition, built from nets.py with a device's blocks (`build`).

- `deephase`: DeepPhase encoder over a batch of windows (phase labels for every frame of a clip).
- `style`: style encoder + both FiLM caches, once per style clip.
- `prepare`: target latent, LSTM warm-up over the context frames and the initial-phase predictor, once per
  transition.
- `steps`: `steps` sampler steps unrolled (each = per-step encoders, LSTM, phase predictor, phase update and
  the mixture-of-experts manifold decoder), so a 40-frame transition costs 40/steps calls.

Every graph has a symbolic batch; weights are graph inputs, in the layouts of the blocks the graph is built
from: with symbolic dims on the CPU (cpu.py: one MEF serves every width), with the weights' static shapes on GPUs
(gpu/encoders.py; gpu/fused_*.py take the same data inputs). The static structure (`Dims`) and `steps` are part
of the cache key. Inputs are data first, then weights in the order of `weight_inputs(graph)`.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from max.dtype import DType
from max.graph import Graph, TensorType
from rsmt_studio.inference.graphs import nets
from rsmt_studio.inference.graphs.nets import Dims

GRAPHS = ("deephase", "style", "prepare", "steps")


def _linear(prefix: str) -> list[tuple[str, int]]:
    return [(f"{prefix}.w", 2), (f"{prefix}.b", 1)]


def _mlp2(prefix: str) -> list[tuple[str, int]]:
    return _linear(f"{prefix}.fc1") + _linear(f"{prefix}.fc2")


def _film_step(prefix: str) -> list[tuple[str, int]]:
    return _linear(f"{prefix}.query") + _linear(f"{prefix}.out_proj") + [(f"{prefix}.scale", 1)]


def _film_cache(prefix: str) -> list[tuple[str, int]]:
    return functools.reduce(operator.iadd, (_linear(f"{prefix}.{n}") for n in ("ada_fc1", "ada_fc2", "key", "value")), [])


def _lstm_input_weights() -> list[tuple[str, int]]:
    return (_mlp2("state_encoder") + _mlp2("offset_encoder") + _linear("embedding_fc")
            + _film_step("embedding_film") + [("pe_latent", 2), ("pe_film", 2), ("lstm.w", 2), ("lstm.b", 1)])


def weight_inputs(graph: str) -> list[tuple[str, int]]:
    """(adapted weight name, rank) in graph-input order."""
    if graph == "deephase":
        return [("phase.conv1.w", 3), ("phase.conv1.b", 1), ("phase.conv2.w", 3), ("phase.conv2.b", 1),
                ("phase.phase_weight", 3), ("phase.phase_bias", 2), ("phase.dft_cos", 2), ("phase.dft_sin", 2),
                ("phase.freqs", 1)]
    if graph == "style":
        convs = [(f"style.conv{i}.{k}", 3 if k == "w" else 1) for i in range(1, 5) for k in ("w", "b")]
        return ([("style.input_mean", 1), ("style.input_std", 1)] + convs + _film_cache("embedding_film")
                + _film_cache("predictor_film"))
    if graph == "prepare":
        pp = [(f"phase_predictor.conv{i}.{k}", 3 if k == "w" else 1) for i in range(1, 4) for k in ("w", "b")]
        return _mlp2("target_encoder") + _lstm_input_weights() + pp + _linear("phase_predictor.fc")
    if graph == "steps":
        predictor = functools.reduce(operator.iadd, (_linear(f"predictor_fc{i}") for i in range(1, 5)), []) + _film_step("predictor_film")
        decoder = functools.reduce(operator.iadd, (_linear(f"decoder.gate_fc{i}") for i in range(1, 4)), [])
        decoder += functools.reduce(operator.iadd, (_linear(f"decoder.expert{i}") for i in range(1, 4)), [])
        return _lstm_input_weights() + predictor + decoder
    raise ValueError(f"unknown graph {graph!r}; expected one of {GRAPHS}")


def data_inputs(graph: str, d: Dims, steps: int = 1) -> list[tuple[str, tuple, DType]]:
    """(name, shape, dtype) of the per-call inputs; strings are symbolic dims."""
    f32, i64 = DType.float32, DType.int64
    B, J, Np, C = "batch", d.n_joints, d.n_pos_joints, d.n_phases
    cache = [("emb_gamma", (B, "emb_w"), f32), ("emb_beta", (B, "emb_w"), f32),
             ("emb_keys", (B, "emb_t", "emb_w"), f32), ("emb_values", (B, "emb_t", "emb_w"), f32)]
    pred_cache = [("pred_gamma", (B, "pred_w"), f32), ("pred_beta", (B, "pred_w"), f32),
                  ("pred_keys", (B, "pred_t", "pred_w"), f32), ("pred_values", (B, "pred_t", "pred_w"), f32)]
    if graph == "deephase":
        return [("windows", (B, J * 3, d.window), f32)]
    if graph == "style":
        return [("features", (B, "frames", (J - 1) * 12), f32)]
    if graph == "prepare":
        w = d.n_warmup
        return [("ctx_p", (B, w, Np, 3), f32), ("ctx_v", (B, w, Np, 3), f32), ("ctx_r", (B, w, J, 6), f32),
                ("tgt_p", (B, Np, 3), f32), ("tgt_v", (B, Np, 3), f32), ("tgt_r", (B, J, 6), f32),
                ("tta", (B, w), i64), ("z", (B, "zdim"), f32), *cache,
                ("h0", (B, "lstm"), f32), ("c0", (B, "lstm"), f32)]
    if graph == "steps":
        return [("p", (B, Np, 3), f32), ("v", (B, Np, 3), f32), ("r", (B, J, 6), f32), ("phase", (B, C, 2), f32),
                ("h", (B, "lstm"), f32), ("c", (B, "lstm"), f32), ("tgt_p", (B, Np, 3), f32),
                ("tgt_r", (B, J, 6), f32), ("tgt_latent", (B, "latent"), f32), ("tta", (B, steps), i64),
                ("z", (B, "zdim"), f32), *cache, *pred_cache]
    raise ValueError(f"unknown graph {graph!r}")


def build(config: dict[str, Any], device_ref, K) -> Graph:
    """The graph of config = {"graph": name, "dims": Dims json, "steps": int (steps graph only), optional
    "weight_shapes": {weight name: static shape} and "data_dims": {symbolic data dim: value}} from the blocks
    module `K` (blocks.py on the CPU, gpu/blocks.py on GPUs)."""
    graph = config["graph"]
    d = Dims(**config["dims"])
    steps = int(config.get("steps", 1))
    data = data_inputs(graph, d, steps)
    weights = weight_inputs(graph)
    fixed = config.get("data_dims", {})  # symbolic widths made static (GPU graphs, with "weight_shapes")
    types = [TensorType(dt, tuple(fixed.get(s, s) if isinstance(s, str) else s for s in shape), device=device_ref)
             for _, shape, dt in data]
    shapes = config.get("weight_shapes", {})  # static widths (the GPU graphs: gpu_blocks pads to them)
    for name, rank in weights:
        dims = tuple(shapes[name]) if name in shapes else tuple(f"{name.replace('.', '_')}_d{i}" for i in range(rank))
        types.append(TensorType(DType.float32, dims, device=device_ref))
    with Graph(f"rsmt_{graph}", input_types=types) as g:
        values = [v.tensor for v in g.inputs]
        x = dict(zip([n for n, _, _ in data], values[: len(data)]))
        W = dict(zip([n for n, _ in weights], values[len(data):]))
        if graph == "deephase":
            g.output(*nets.deephase_encode(K, W, x["windows"], d))
        elif graph == "style":
            g.output(*nets.style_caches(K, W, x["features"]))
        elif graph == "prepare":
            cache = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values")]
            g.output(*nets.prepare(K, W, d, x["ctx_p"], x["ctx_v"], x["ctx_r"], x["tgt_p"], x["tgt_v"], x["tgt_r"],
                                   x["tta"], x["z"], cache, x["h0"], x["c0"]))
        else:
            caches = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values",
                                     "pred_gamma", "pred_beta", "pred_keys", "pred_values")]
            g.output(*nets.sampler_steps(K, W, d, steps, x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"],
                                         x["tgt_p"], x["tgt_r"], x["tgt_latent"], x["tta"], x["z"], caches))
    return g


def graph_config(graph: str, d: Dims, steps: int = 1) -> dict[str, Any]:
    cfg: dict[str, Any] = {"graph": graph, "dims": d.to_json()}
    if graph == "steps":
        cfg["steps"] = int(steps)
    return cfg


def width_dims(weights: dict) -> dict[str, int]:
    """The data inputs' width dims that the weights fix (the rest, batch and token counts, stay symbolic)."""
    latent = int(weights["offset_encoder.fc2.w"].shape[1])
    return {"lstm": int(weights["lstm.w"].shape[1]) // 4, "latent": latent, "zdim": 2 * latent,
            "emb_w": int(weights["embedding_fc.w"].shape[1]), "pred_w": int(weights["predictor_film.query.w"].shape[1])}
