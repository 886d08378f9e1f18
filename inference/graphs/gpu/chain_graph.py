"""A tiny graph that takes the last frame of a `steps` call's outputs: the next call's state, on the device.

Why: a `steps` call returns the k frames it made (B, k, ...); the next call starts from the last of them. On
the CPU numpy slices that for free. On a GPU with captured device graphs (`inference/runtime/device_graphs.py`) the
state must stay on the device and the whole chain of calls must be replayable, so the slice is a captured
graph too.
"""

from __future__ import annotations

from typing import Any

from max.dtype import DType
from max.graph import Graph, TensorType
from rsmt_studio.inference.graphs.nets import Dims


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """config = {"dims": Dims json, "steps": k}: (ps, rs, phs) of one steps call -> (p, r, phase) of its last."""
    d = Dims(**config["dims"])
    k = int(config["steps"])
    shapes = [("batch", k, d.n_pos_joints, 3), ("batch", k, d.n_joints, 6), ("batch", k, d.n_phases, 2)]
    types = [TensorType(DType.float32, s, device=device_ref) for s in shapes]
    with Graph("rsmt_chain", input_types=types) as g:
        g.output(*(v.tensor[:, k - 1] for v in g.inputs))
    return g


def chain_config(d: Dims, steps: int) -> dict[str, Any]:
    return {"dims": d.to_json(), "steps": int(steps)}
