"""The whole sampler rollout in ONE graph call: `ops.while_loop` around the sampler step.

This is the "loop inside the graph" alternative to one `steps` call per frame (graphs.py). The loop body is the
same `nets.sampler_step`; outputs go into fixed (B, max_frames, ...) buffers (a one-hot select per step), so a
transition of up to `max_frames` frames costs one call. It lives in its own module so that adding it did not
change the cache keys of the other graphs; the benchmark compares it with `steps1`.

Inputs: the `steps` graph's data inputs with `tta` replaced by `tta0` (B,) int64 (time to arrival at the first
step) and `n` (scalar int64, steps to run), then the `steps` graph's weights.
Outputs: p (B, max_frames, Np, 3), r (B, max_frames, J, 6), phase (B, max_frames, C, 2), final v, h, c.
"""

from __future__ import annotations

from typing import Any

from max.dtype import DType
from max.graph import DeviceRef, Graph, TensorType, ops
from rsmt_studio.inference import graphs, nets
from rsmt_studio.inference.nets import Dims


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    d = Dims(**config["dims"])
    max_frames = int(config["max_frames"])
    data = [(n, s, t) for n, s, t in graphs.data_inputs("steps", d, 1) if n != "tta"]
    weights = graphs.weight_inputs("steps")
    K = graphs.blocks_for(device_ref, config)
    types = [TensorType(dt, shape, device=device_ref) for _, shape, dt in data]
    types.append(TensorType(DType.int64, ("batch",), device=device_ref))  # tta0
    types.append(TensorType(DType.int64, (), device=DeviceRef.CPU()))  # n (host scalar for the predicate)
    for name, rank in weights:
        types.append(TensorType(DType.float32, tuple(f"{name.replace('.', '_')}_d{i}" for i in range(rank)),
                                device=device_ref))
    with Graph("rsmt_rollout_loop", input_types=types) as g:
        values = [v.tensor for v in g.inputs]
        x = dict(zip([n for n, _, _ in data], values[: len(data)], strict=True))
        tta0, n_steps = values[len(data)], values[len(data) + 1]
        W = dict(zip([n for n, _ in weights], values[len(data) + 2 :], strict=True))
        caches = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values",
                                 "pred_gamma", "pred_beta", "pred_keys", "pred_values")]
        b = x["p"].shape[0]
        f32 = DType.float32

        def zeros(*shape):
            return ops.broadcast_to(ops.constant(0.0, f32, device=device_ref), shape)

        out_p = zeros(b, max_frames, d.n_pos_joints, 3)
        out_r = zeros(b, max_frames, d.n_joints, 6)
        out_ph = zeros(b, max_frames, d.n_phases, 2)
        i0 = ops.constant(0, DType.int64, device=DeviceRef.CPU())
        frames = ops.range(0, max_frames, 1, dtype=DType.int64, device=device_ref)

        def predicate(i, *_):
            return i < n_steps

        def body(i, p, v, r, phase, h, c, op, orr, oph):
            i_dev = ops.transfer_to(i, device_ref) if device_ref != DeviceRef.CPU() else i
            tta = ops.max(tta0 - i_dev, ops.constant(0, DType.int64, device=device_ref))
            p, v, r, phase, h, c = nets.sampler_step(K, W, d, p, v, r, phase, h, c, x["tgt_p"], x["tgt_r"],
                                                     x["tgt_latent"], tta, x["z"], caches)
            hot = ops.cast(frames == i_dev, f32)
            hot_p = ops.reshape(hot, (1, max_frames, 1, 1))
            op = op * (1.0 - hot_p) + ops.unsqueeze(p, 1) * hot_p
            orr = orr * (1.0 - hot_p) + ops.unsqueeze(r, 1) * hot_p
            oph = oph * (1.0 - hot_p) + ops.unsqueeze(phase, 1) * hot_p
            return [i + 1, p, v, r, phase, h, c, op, orr, oph]

        res = ops.while_loop([i0, x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"], out_p, out_r, out_ph],
                             predicate, body)
        _, _, v, _, _, h, c, op, orr, oph = res
        g.output(op, orr, oph, v, h, c)
    return g


def loop_config(d: Dims, max_frames: int = 64) -> dict[str, Any]:
    return {"dims": d.to_json(), "max_frames": int(max_frames)}
