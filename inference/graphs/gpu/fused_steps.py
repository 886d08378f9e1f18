"""The GPU `steps` graph with the per-frame tails as Mojo custom ops (kernels/sampler_tail.mojo).

Why: at batch 1 on an H100 a captured 40-frame transition is a chain of small kernels, ~76 per frame with
gpu/blocks.py, and its time is their count times ~2.5 µs (bench/gpu_profile.py). About 30 of them were the
maths between the network layers: the phase update, the decoder's input vectors, the expert blend, apply-delta,
Gram-Schmidt, the velocity and the next frame's encoder inputs. Here those are two custom kernels, and the
layers around them take their inputs whole; a third replaces the LSTM's gate maths (three kernels):

- The frame's state travels as one vector `x` (B, x_width) = [p - p_root, v, r, tgt_p - p, tgt_r - r, 0.. |
  at pabs_off: p, 0..]. The state and offset encoders become one block-diagonal MLP over `x` (their inputs
  are its first columns, in nets.py's order; the rest meet zero rows) whose output [state, offset, 0] the
  embedding layer reads through zero rows and h_t reads as its tail: no slice is copied.
- The 8-wide expert gate is padded to 32 logits (MAX's one-row GPU matmul is naive otherwise) whose padding
  has a bias of -1e30, so the softmax gives the padding exactly 0.
- `rsmt_decoder_inputs` turns the predictor's output into `d` (B, d_width) = [new phase, zm, 0.. | at
  expert_off: p - p_root, v, hip_v, r, hip_r, zm, 0..]: the gate network reads d through zero rows after its
  52 inputs, the first expert layer reads it through zero rows before its cond.
- `rsmt_advance` blends the last expert layer (its columns stored expert-minor, so one column's experts are
  adjacent) and makes the next frame's `x`.
- The LSTM state travels as one vector [h, c]; `rsmt_lstm_gates` makes the next one from the gates.
- The positional-encoding rows and the noise ramp of every step are gathered once per call, not per frame.

Everything else is nets.py's maths built from gpu/blocks.py, so the two stay one formulation; the layouts are
the only new thing, and `tests/inference/test_fused_steps.py` checks the graph against numpy on the CPU (the
custom ops run there too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import Graph, TensorType, ops
from rsmt_studio.inference.graphs import networks
from rsmt_studio.inference.graphs.gpu import blocks as gpu_blocks
from rsmt_studio.inference.graphs.gpu import fused_film
from rsmt_studio.inference.graphs.nets import Dims

ALIGN = gpu_blocks.ALIGN
#: The weights this graph takes in place of nets.py's: (name, rank); see `fused_weights`.
FUSED = (("fused.encoders.fc1.w", 2), ("fused.encoders.fc1.b", 1), ("fused.encoders.fc2.w", 2),
         ("fused.encoders.fc2.b", 1), ("fused.embedding_fc.w", 2), ("fused.gate_fc1.w", 2),
         ("fused.gate_fc3.w", 2), ("fused.gate_fc3.b", 1), ("fused.expert1.w", 2), ("fused.expert3.w", 2),
         ("fused.expert3.b", 1))
#: The padded expert-gate logits get this bias: softmax gives them exactly 0.
NO_EXPERT = -1e30
#: nets.py weights the fused ones replace (biases of gate_fc1 and expert1 are used as they are).
REPLACED = ("state_encoder.fc1.w", "state_encoder.fc1.b", "state_encoder.fc2.w", "state_encoder.fc2.b",
            "offset_encoder.fc1.w", "offset_encoder.fc1.b", "offset_encoder.fc2.w", "offset_encoder.fc2.b",
            "embedding_fc.w", "decoder.gate_fc1.w", "decoder.gate_fc3.w", "decoder.gate_fc3.b", "decoder.expert1.w",
            "decoder.expert3.w", "decoder.expert3.b")


def mojo_package() -> Path:
    """The folder of the custom ops (a Mojo package: kernels/__init__.mojo)."""
    import rsmt_studio.kernels as pkg

    return Path(pkg.__file__).resolve().parent


def _up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Layout:
    """Column offsets of the state vector `x` and the decoder-input vector `d` (module docstring)."""

    n_phases: int
    latent: int  # the manifold latent zm
    p3: int  # position columns: n_pos_joints * 3
    r6: int  # rotation columns: n_joints * 6
    n_experts: int

    @classmethod
    def of(cls, d: Dims) -> Layout:
        return cls(d.n_phases, d.manifold_latent, 3 * d.n_pos_joints, 6 * d.n_joints, d.n_experts)

    @property
    def state_width(self) -> int:  # the state encoder's input [p - p_root, v, r]
        return 2 * self.p3 + self.r6

    @property
    def offset_width(self) -> int:  # the offset encoder's input [tgt_p - p, tgt_r - r]
        return self.p3 + self.r6

    @property
    def pabs_off(self) -> int:
        return _up(self.state_width + self.offset_width)

    @property
    def x_width(self) -> int:
        return _up(self.pabs_off + self.p3)

    @property
    def gate_width(self) -> int:  # the gate network's input [phase, zm]
        return 2 * self.n_phases + self.latent

    @property
    def expert_off(self) -> int:
        return _up(self.gate_width)

    @property
    def cond_width(self) -> int:  # the first expert layer's input [p - p_root, v, hip_v, r, hip_r, zm]
        return 2 * self.p3 + 9 + self.r6 + self.latent

    @property
    def d_width(self) -> int:
        return _up(self.expert_off + self.cond_width)


def weight_inputs() -> list[tuple[str, int]]:
    """networks.weight_inputs("steps") with the replaced weights swapped for the fused ones (graph-input order),
    without the FiLM layers that fused_film.py folds into the style caches."""
    drop = REPLACED + fused_film.UNUSED
    return [w for w in networks.weight_inputs("steps") if w[0] not in drop] + list(FUSED)


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """networks.build_graph's steps graph (same data inputs and outputs, config keys "dims", "steps",
    "weight_shapes" for every weight of `weight_inputs()`, "data_dims") built from this module's layouts."""
    d = Dims(**config["dims"])
    steps = int(config["steps"])
    data = networks.data_inputs("steps", d, steps)
    weights = weight_inputs()
    types = input_types(data, weights, config, device_ref)
    with Graph("rsmt_steps_fused", input_types=types, custom_extensions=[mojo_package()]) as g:
        values = [v.tensor for v in g.inputs]
        x = dict(zip([n for n, _, _ in data], values[: len(data)], strict=True))
        W = dict(zip([n for n, _ in weights], values[len(data) :], strict=True))
        caches = [x[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values",
                                 "pred_gamma", "pred_beta", "pred_keys", "pred_values")]
        g.output(*sampler_steps(W, d, steps, x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"], x["tgt_p"],
                                x["tgt_r"], x["tgt_latent"], x["tta"], x["z"], caches))
    return g


def input_types(data, weights, config: dict[str, Any], device_ref) -> list[TensorType]:
    """The static input types of a fused graph: `data` (networks.data_inputs) with config["data_dims"] fixed and
    the key caches folded, then `weights` with config["weight_shapes"]."""
    types = [TensorType(dt, fused_film.input_shape(name, shape, config["data_dims"]), device=device_ref)
             for name, shape, dt in data]
    return types + [TensorType(DType.float32, tuple(config["weight_shapes"][name]), device=device_ref)
                    for name, _ in weights]


def graph_config(weights: dict[str, np.ndarray], d: Dims, steps: int) -> dict[str, Any]:
    """The spec config for adapted `weights` (static shapes: gpu_blocks' padding, the fused weights')."""
    fused = fused_shapes(weights, d)
    shapes = {n: list(fused[n]) if n in fused else list(gpu_blocks.padded_shape(n, weights[n].shape))
              for n, _ in weight_inputs()}
    return {"dims": d.to_json(), "steps": int(steps), "weight_shapes": shapes, "data_dims": networks.width_dims(weights)}


def fused_shapes(weights: dict[str, np.ndarray], d: Dims) -> dict[str, tuple[int, ...]]:
    """The fused weights' shapes, without building them (for the graph's static input types)."""
    lay = Layout.of(d)
    h_s, h_o = weights["state_encoder.fc1.w"].shape[1], weights["offset_encoder.fc1.w"].shape[1]
    l_s, l_o = weights["state_encoder.fc2.w"].shape[1], weights["offset_encoder.fc2.w"].shape[1]
    return {"fused.encoders.fc1.w": (lay.x_width, h_s + h_o), "fused.encoders.fc1.b": (h_s + h_o,),
            "fused.encoders.fc2.w": (h_s + h_o, l_s + 2 * l_o), "fused.encoders.fc2.b": (l_s + 2 * l_o,),
            "fused.embedding_fc.w": (l_s + 2 * l_o, weights["embedding_fc.w"].shape[1]),
            "fused.gate_fc3.w": (weights["decoder.gate_fc3.w"].shape[0], _up(lay.n_experts)),
            "fused.gate_fc3.b": (_up(lay.n_experts),),
            "fused.gate_fc1.w": (lay.d_width, weights["decoder.gate_fc1.w"].shape[1]),
            "fused.expert1.w": (lay.d_width, weights["decoder.expert1.w"].shape[1]),
            "fused.expert3.w": (_up(weights["decoder.expert3.w"].shape[0]), weights["decoder.expert3.w"].shape[1]),
            "fused.expert3.b": weights["decoder.expert3.b"].shape}


def fused_weights(weights: dict[str, np.ndarray], d: Dims) -> dict[str, np.ndarray]:
    """The fused weights from adapted ones (blocks.py layouts, as `adapt_all` gives them)."""
    lay = Layout.of(d)
    shapes = fused_shapes(weights, d)
    out = {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}
    s1, o1 = weights["state_encoder.fc1.w"], weights["offset_encoder.fc1.w"]
    s2, o2 = weights["state_encoder.fc2.w"], weights["offset_encoder.fc2.w"]
    if s1.shape[0] != lay.state_width or o1.shape[0] != lay.offset_width:
        raise ValueError(f"encoder inputs {s1.shape[0]}, {o1.shape[0]} do not match the skeleton's "
                         f"{lay.state_width}, {lay.offset_width}")
    w1 = out["fused.encoders.fc1.w"]
    w1[: lay.state_width, : s1.shape[1]] = s1
    w1[lay.state_width : lay.state_width + lay.offset_width, s1.shape[1] :] = o1
    out["fused.encoders.fc1.b"][:] = np.concatenate([weights["state_encoder.fc1.b"], weights["offset_encoder.fc1.b"]])
    w2 = out["fused.encoders.fc2.w"]
    w2[: s2.shape[0], : s2.shape[1]] = s2
    w2[s2.shape[0] :, s2.shape[1] : s2.shape[1] + o2.shape[1]] = o2
    out["fused.encoders.fc2.b"][: s2.shape[1] + o2.shape[1]] = np.concatenate(
        [weights["state_encoder.fc2.b"], weights["offset_encoder.fc2.b"]])
    out["fused.embedding_fc.w"][: s2.shape[1]] = weights["embedding_fc.w"]
    g3 = weights["decoder.gate_fc3.w"]
    out["fused.gate_fc3.w"][:, : g3.shape[1]] = g3
    out["fused.gate_fc3.b"][:] = NO_EXPERT
    out["fused.gate_fc3.b"][: g3.shape[1]] = weights["decoder.gate_fc3.b"]
    g1 = weights["decoder.gate_fc1.w"]
    if g1.shape[0] != lay.gate_width:
        raise ValueError(f"gate input {g1.shape[0]} does not match {lay.gate_width}")
    out["fused.gate_fc1.w"][: lay.gate_width] = g1
    e1 = weights["decoder.expert1.w"]
    if e1.shape[0] != lay.cond_width:
        raise ValueError(f"expert input {e1.shape[0]} does not match {lay.cond_width}")
    out["fused.expert1.w"][lay.expert_off : lay.expert_off + lay.cond_width] = e1
    # The last expert layer's columns expert-minor (m*E + e instead of e*O + m), for rsmt_advance's blend.
    e3, e3b = weights["decoder.expert3.w"], weights["decoder.expert3.b"]
    n_out = e3.shape[1] // lay.n_experts
    if n_out != lay.p3 + lay.r6:
        raise ValueError(f"expert output {n_out} does not match {lay.p3 + lay.r6}")
    out["fused.expert3.w"][: e3.shape[0]] = e3.reshape(-1, lay.n_experts, n_out).transpose(0, 2, 1).reshape(e3.shape)
    out["fused.expert3.b"][:] = e3b.reshape(lay.n_experts, n_out).T.reshape(-1)
    return out


def _zeros(batch, n: int, device):
    return ops.broadcast_to(ops.constant(0.0, DType.float32, device=device), (batch, n))


def _flat(x):
    return ops.reshape(x, (x.shape[0], int(x.shape[1]) * int(x.shape[2])))


def decoder_inputs(lay: Layout, d: Dims, y, dprev, x):
    """The custom op rsmt_decoder_inputs (kernels/sampler_tail.mojo): d of the frame."""
    t = TensorType(DType.float32, (x.shape[0], lay.d_width), device=x.device)
    return ops.custom("rsmt_decoder_inputs", device=x.device, values=[y, dprev, x], out_types=[t],
                      parameters={"n_phases": lay.n_phases, "latent": lay.latent, "p3": lay.p3, "r6": lay.r6,
                                  "expert_off": lay.expert_off, "dt": float(d.dt)})[0].tensor


def advance(lay: Layout, e3, alpha, dvec, x, tgt_p, tgt_r):
    """The custom op rsmt_advance: the next frame's x."""
    t = TensorType(DType.float32, (x.shape[0], lay.x_width), device=x.device)
    return ops.custom("rsmt_advance", device=x.device, values=[e3, alpha, dvec, x, tgt_p, tgt_r], out_types=[t],
                      parameters={"p3": lay.p3, "r6": lay.r6, "n_experts": lay.n_experts,
                                  "expert_off": lay.expert_off, "pabs_off": lay.pabs_off})[0].tensor


def lstm_gates(gates, hc):
    """The custom op rsmt_lstm_gates: [h, c] of this step from the pre-activations and the last [h, c]."""
    hidden = int(hc.shape[1]) // 2
    return ops.custom("rsmt_lstm_gates", device=hc.device, values=[gates, hc], out_types=[hc.type],
                      parameters={"hidden": hidden})[0].tensor


def step_additions(W, d: Dims, tta, tgt_latent, z):
    """What nets.lstm_input adds per step, for every step of a call at once (tta (B, S)): the positional rows of
    the FiLM width (B, S, film) for h_state, and for h_t the pair [pe, target latent + pe] (B, S, 2 latent) and
    the noise ramp lam z (B, S, 2 latent)."""
    K = gpu_blocks
    b = tta.shape[0]
    idx = K.clamp_index(tta, d.max_tta)  # (B, S)
    lat = int(W["pe_latent"].shape[1])
    pe_small = ops.gather(W["pe_latent"], idx, axis=0)  # (B, S, lat)
    pe_big = ops.gather(W["pe_film"], idx, axis=0)  # (B, S, film)
    lam = ops.min(ops.max((ops.unsqueeze(K.to_float(tta), 2) - 5.0) / 25.0, 0.0), 1.0)  # (B, S, 1)
    tgt_lat = ops.unsqueeze(ops.rebind(tgt_latent, (b, lat)), 1)
    z3 = ops.unsqueeze(ops.rebind(z, (b, 2 * lat)), 1)
    return pe_big, ops.concat([pe_small, tgt_lat + pe_small], axis=-1), lam * z3


def sampler_steps(W, d: Dims, steps: int, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches):
    """nets.sampler_steps (same inputs and outputs) with the fused layouts; W holds the fused weights, the
    caches' keys and values are fused_film.py's folded ones."""
    K = gpu_blocks
    lay = Layout.of(d)
    b, dev = p.shape[0], p.device
    emb_folded = fused_film.block_caches(caches[0:4], int(W["embedding_film.out_proj.b"].shape[0]))
    pred_folded = fused_film.block_caches(caches[4:8], int(W["predictor_film.out_proj.b"].shape[0]))

    tp, tr, pf, rf = _flat(tgt_p), _flat(tgt_r), _flat(p), _flat(r)
    x = ops.concat([_flat(p - p[:, 0:1, :]), _flat(v), rf, tp - pf, tr - rf,
                    _zeros(b, lay.pabs_off - lay.state_width - lay.offset_width, dev), pf,
                    _zeros(b, lay.x_width - lay.pabs_off - lay.p3, dev)], axis=-1)
    dvec = ops.concat([_flat(phase), _zeros(b, lay.d_width - 2 * lay.n_phases, dev)], axis=-1)
    # Per-call: every step's positional-encoding rows and noise ramp (nets.lstm_input's per-step inputs).
    pe_big, pe_pair, noise = step_additions(W, d, tta, tgt_latent, z)
    ht_add = pe_pair + noise  # (B, S, 2 lat)
    lat = int(W["pe_latent"].shape[1])
    hidden = int(W["fused.encoders.fc2.w"].shape[1]) - 2 * lat  # the state encoder's output width
    lstm = int(h.shape[1])
    hc = ops.concat([h, ops.rebind(c, (b, lstm))], axis=-1)  # the LSTM state travels as one vector
    ps, rs, phs = [], [], []
    for k in range(steps):
        enc = K.linear(K.elu(K.linear(x, W["fused.encoders.fc1.w"], W["fused.encoders.fc1.b"])),
                       W["fused.encoders.fc2.w"], W["fused.encoders.fc2.b"])
        # enc = [state, offset, 0]: the embedding layer reads it through zero rows, h_t is its tail plus
        # this step's additions (elementwise, so MAX fuses it into the concatenations that read it).
        emb = K.elu(fused_film.film(W, "embedding_film", K.linear(enc, W["fused.embedding_fc.w"], W["embedding_fc.b"]),
                                    *emb_folded))
        h_state = emb + ops.rebind(pe_big[:, k], (b, emb.shape[1]))
        h_t = ops.rebind(enc[:, hidden:], (b, 2 * lat)) + ht_add[:, k]
        gates = K.linear(ops.concat([h_state, h_t, hc[:, :lstm]], axis=-1), W["lstm.w"], W["lstm.b"], out=4 * lstm)
        hc = lstm_gates(gates, hc)
        y = K.elu(K.linear(ops.concat([hc[:, :lstm], dvec[:, : 2 * lay.n_phases], h_t], axis=-1),
                           W["predictor_fc1.w"], W["predictor_fc1.b"]))
        y = K.linear(y, W["predictor_fc2.w"], W["predictor_fc2.b"])
        y = K.elu(fused_film.film(W, "predictor_film", y, *pred_folded))
        y = K.linear(K.elu(K.linear(y, W["predictor_fc3.w"], W["predictor_fc3.b"])), W["predictor_fc4.w"],
                     W["predictor_fc4.b"])
        dvec = decoder_inputs(lay, d, y, dvec, x)
        g = K.elu(K.linear(dvec, W["fused.gate_fc1.w"], W["decoder.gate_fc1.b"]))
        g = K.elu(K.linear(g, W["decoder.gate_fc2.w"], W["decoder.gate_fc2.b"]))
        e = d.n_experts
        alpha = K.softmax(K.linear(g, W["fused.gate_fc3.w"], W["fused.gate_fc3.b"]))  # (B, 32): 0 past E
        zm = dvec[:, 2 * lay.n_phases : 2 * lay.n_phases + lay.latent]
        h1 = K.elu(K.moe_linear(dvec, alpha[:, :e], W["fused.expert1.w"], W["decoder.expert1.b"], e))
        h2 = K.elu(K.moe_linear(ops.concat([h1, zm], axis=-1), alpha[:, :e], W["decoder.expert2.w"],
                                W["decoder.expert2.b"], e))
        e3 = K.linear(h2, W["fused.expert3.w"], W["fused.expert3.b"])
        x = advance(lay, e3, alpha, dvec, x, tp, tr)
        ps.append(x[:, lay.pabs_off : lay.pabs_off + lay.p3])
        rs.append(x[:, 2 * lay.p3 : 2 * lay.p3 + lay.r6])
        phs.append(dvec[:, : 2 * lay.n_phases])
    np_, nj, cp = d.n_pos_joints, d.n_joints, d.n_phases
    return (ops.reshape(ops.stack(ps, 1), (b, steps, np_, 3)), ops.reshape(ops.stack(rs, 1), (b, steps, nj, 6)),
            ops.reshape(ops.stack(phs, 1), (b, steps, cp, 2)),
            ops.reshape(x[:, lay.p3 : 2 * lay.p3], (b, np_, 3)), hc[:, :lstm], hc[:, lstm:])
