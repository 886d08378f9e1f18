"""The same graphs as graphs.py, but with weights as static-shape `Weight`s bound at load time.

Why it exists: weights that are graph *inputs* keep one MEF valid for every width; `Weight`s (MAX 26.7 only
accepts them with static shapes) cost one compile per set of widths but might let MAX prepare them at load.
Measured on the shipped widths (docs/performance.md): ~5 % faster per step, so the engine keeps inputs; this
module stays as the tested alternative. config = graphs.py's config plus "weight_shapes": {name: shape}.
"""

from __future__ import annotations

from typing import Any

from max.dtype import DType
from max.graph import Graph, TensorType, Weight
from rsmt_studio.inference import graphs, nets
from rsmt_studio.inference.nets import Dims


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    graph = config["graph"]
    d = Dims(**config["dims"])
    steps = int(config.get("steps", 1))
    shapes = config["weight_shapes"]
    K = graphs.blocks_for(device_ref, config)
    data = graphs.data_inputs(graph, d, steps)
    with Graph(f"rsmt_{graph}_static", input_types=[TensorType(dt, s, device=device_ref) for _, s, dt in data]) as g:
        x = dict(zip([n for n, _, _ in data], [v.tensor for v in g.inputs], strict=True))
        W = {name: Weight(name, DType.float32, tuple(shapes[name]), device=device_ref)
             for name, _ in graphs.weight_inputs(graph)}
        W = {k: g.add_weight(w) for k, w in W.items()}
        if graph != "steps":
            raise ValueError("only the steps graph has a static variant")
        caches = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values",
                                 "pred_gamma", "pred_beta", "pred_keys", "pred_values")]
        g.output(*nets.sampler_steps(K, W, d, steps, x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"],
                                     x["tgt_p"], x["tgt_r"], x["tgt_latent"], x["tta"], x["z"], caches))
    return g


def static_config(d: Dims, steps: int, weights: dict) -> dict[str, Any]:
    cfg = graphs.graph_config("steps", d, steps)
    cfg["weight_shapes"] = {n: list(weights[n].shape) for n, _ in graphs.weight_inputs("steps")}
    return cfg
