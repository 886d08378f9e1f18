"""The building blocks of blocks.py with the weight layers as Mojo CPU kernels (the CPU graphs use this module).

Why: at batch 1 MAX 26.7's CPU matmul ran the sampler step's wide layers (the LSTM cell 896 x 1536, predictor
fc1/fc2, the three 8-expert layers) at 1-5 GB/s with cache-resident weights, 82-88 % of a step, and every small
layer cost 12-93 µs (bench/cpu_profile.py; docs/performance.md, "CPU step: profile and floor"). The kernels of
kernels/cpu_dense.mojo read the weights once per call. A batch of fewer than 8 rows (the studio's batch 1) runs
as one task: there a second worker task (MAX's runtime, `sync_parallelize`) cost more than it saved. From 8 rows on
the layer's columns are split between `WORKERS` tasks: at batch 64 one task ran at one core's FMA rate while MAX's
own matmul used both cores, and two tasks took a whole transition from 0.83x to 0.90-0.94x of the old formulation
with batch 1 unchanged (docs/performance.md, "Batch 64: where the time goes"):

- `linear` on a batch of vectors (rank 2, with a bias) is `rsmt_dense`; other ranks (the style tokens) stay
  blocks.py's matmul.
- `moe_linear` is `rsmt_moe_dense`: every expert's output and the gate blend in one pass over the weights.
- `lstm_cell` is `rsmt_lstm_cell`: the gate matmul over [x, h] without the concatenation, and the gate maths.
- `film_elu` is `rsmt_film_elu`: a whole FiLM block over the style tokens (two layer norms, the modulation, the
  query layer, the attention, the output layer) and the ELU after it, ~35 small graph ops in blocks.py.
- `step_head` and `step_advance` (nets._step uses them where a backend has them; blocks.py and numpy_blocks.py
  compose the same maths) are `rsmt_step_head` (the phase update, the hip rotation and the decoder's two input
  vectors) and `rsmt_step_advance` (apply-delta, Gram-Schmidt, the velocity and the next frame's encoder inputs):
  ~110 small graph ops a step in blocks.py's form (docs/performance.md, "The step's tails as two Mojo ops").

Same weight layouts and maths as blocks.py (tests/inference/test_cpu_kernels.py checks each op against numpy,
and the parity tests check the graphs against PyTorch). Everything not overridden here is blocks.py's (module
`__getattr__`), so nets.py builds with either module. Graphs built from it need the kernels' package
(`kernels_package`) in scope: cpu.py builds them inside `default_custom_extensions_scope`.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from max.dtype import DType
from max.graph import TensorType, TensorValue, ops
from rsmt_studio.inference.graphs import blocks as _base

#: Worker tasks per kernel call from 8 batch rows on (compile-time parameter of the kernels; the kernels'
#: PARALLEL_ROWS and PARALLEL_MACS keep small calls in one task): see the module docstring.
WORKERS = 2

#: How a builder below emits its custom op: `ops.custom`'s (name, device, values, out_types, parameters) -> outputs.
#: cpu_timed.py passes one that emits the op's timed twin instead (the profile's kernel stages).
Emit = Callable[..., list]


def __getattr__(name: str) -> Any:
    return getattr(_base, name)


def kernels_package() -> Path:
    """The folder of the Mojo custom ops (a Mojo package: kernels/__init__.mojo)."""
    return Path(importlib.util.find_spec("rsmt_studio.kernels").origin).resolve().parent


def _out(x: TensorValue, *dims) -> TensorType:
    return TensorType(DType.float32, dims, device=x.device)


def linear(x: TensorValue, w: TensorValue, b: TensorValue | None = None, out=None, *, emit: Emit = ops.custom) -> TensorValue:
    """x @ w + b with w shaped (in, out), as blocks.linear; `rsmt_dense` for a batch of vectors with a bias."""
    if x.rank != 2 or b is None:
        return _base.linear(x, w, b, out)
    w = ops.rebind(w, (x.shape[1], w.shape[1] if out is None else out))
    b = ops.rebind(b, (w.shape[1],))
    return emit("rsmt_dense", device=x.device, values=[x, w, b], out_types=[_out(x, x.shape[0], w.shape[1])],
                      parameters={"act": 0, "workers": WORKERS})[0]


def moe_linear(x: TensorValue, gate: TensorValue, w: TensorValue, b: TensorValue, n_experts: int, *,
               emit: Emit = ops.custom) -> TensorValue:
    """sum_e gate[:, e] * (x @ W_e + b_e) with w (in, E*out) all experts side by side, as blocks.moe_linear."""
    w = ops.rebind(w, (x.shape[1], w.shape[1]))
    b = ops.rebind(b, (w.shape[1],))
    gate = ops.rebind(gate, (x.shape[0], n_experts))
    return emit("rsmt_moe_dense", device=x.device, values=[x, gate, w, b],
                      out_types=[_out(x, x.shape[0], w.shape[1] // n_experts)],
                      parameters={"act": 0, "workers": WORKERS, "n_experts": n_experts})[0]


def lstm_cell(x: TensorValue, h: TensorValue, c: TensorValue, w: TensorValue,
              b: TensorValue, *, emit: Emit = ops.custom) -> tuple[TensorValue, TensorValue]:
    """torch.nn.LSTMCell as blocks.lstm_cell (w = [W_ih; W_hh]^T, b = b_ih + b_hh): returns (h, c)."""
    batch, hidden = x.shape[0], h.shape[1]
    h = ops.rebind(h, (batch, hidden))
    c = ops.rebind(c, (batch, hidden))
    w = ops.rebind(w, (x.shape[1] + hidden, 4 * hidden))
    b = ops.rebind(b, (4 * hidden,))
    c_new, h_new, _ = emit("rsmt_lstm_cell", device=x.device, values=[x, h, c, w, b],
                                 out_types=[_out(x, batch, hidden), _out(x, batch, hidden), _out(x, batch, 4 * hidden)],
                                 parameters={"workers": WORKERS})
    return h_new, c_new


def film_elu(x: TensorValue, gamma: TensorValue, beta: TensorValue, keys: TensorValue, values: TensorValue,
             wq: TensorValue, bq: TensorValue, scale: TensorValue, wo: TensorValue, bo: TensorValue, *,
             emit: Emit = ops.custom) -> TensorValue:
    """blocks.film_elu (a FiLM block and the ELU after it) as one op, `rsmt_film_elu`: x, gamma, beta (B, D); keys,
    values (B, T, D); wq, wo (D, D); bq, bo (D,); scale (1,). The op's scratch outputs are dropped."""
    batch, d = x.shape[0], x.shape[1]
    n_t = keys.shape[1]
    args = [x, ops.rebind(gamma, (batch, d)), ops.rebind(beta, (batch, d)), ops.rebind(keys, (batch, n_t, d)),
            ops.rebind(values, (batch, n_t, d)), ops.rebind(wq, (d, d)), ops.rebind(bq, (d,)), ops.rebind(scale, (1,)),
            ops.rebind(wo, (d, d)), ops.rebind(bo, (d,))]
    return emit("rsmt_film_elu", device=x.device, values=args,
                      out_types=[_out(x, batch, d), _out(x, batch, d), _out(x, batch, d), _out(x, batch, d),
                                 _out(x, batch, n_t)],
                      parameters={"workers": WORKERS})[0]


def step_head(d, y: TensorValue, phase: TensorValue, state: TensorValue, *,
              emit: Emit = ops.custom) -> tuple[TensorValue, TensorValue, TensorValue]:
    """nets' maths from the predictor's output y (B, >= 4C + 9 + L) to the decoder's inputs, as one op,
    `rsmt_step_head`: the phase update (nets.update_phase) of the last phase (B, C, 2), the hip rotation, and the
    gate network's and first expert layer's input vectors, the latter from the frame's encoder input `state`
    [p - p_root, v, r] (nets.encoder_inputs). Returns (new phase (B, C, 2), [new phase, zm], [cond, zm])."""
    batch, c, lat = y.shape[0], d.n_phases, d.manifold_latent
    outs = emit("rsmt_step_head", device=y.device, values=[y, phase, state],
                      out_types=[_out(y, batch, c, 2), _out(y, batch, 2 * c + lat), _out(y, batch, state.shape[1] + 9 + lat)],
                      parameters={"n_phases": c, "latent": lat, "p3": 3 * d.n_pos_joints,
                                  "ang_scale": 2.0 * math.pi * d.dt})
    return outs[0].tensor, outs[1].tensor, outs[2].tensor


def step_advance(d, delta: TensorValue, y: TensorValue, p: TensorValue, r: TensorValue, tgt_p: TensorValue,
                 tgt_r: TensorValue, *, emit: Emit = ops.custom) -> tuple[TensorValue, ...]:
    """nets.apply_delta (Gram-Schmidt included), the velocity and the next frame's encoder inputs
    (nets.encoder_inputs) as one op, `rsmt_step_advance`: delta (B, p3 + r6) the decoder's output, y the
    predictor's (hip_v, hip_d6), p (B, Np, 3), r (B, J, 6) and the target's. Returns (p, v, r, state input, offset
    input) of the next frame."""
    batch, n_p, n_j = p.shape[0], d.n_pos_joints, d.n_joints
    p3, r6 = 3 * n_p, 6 * n_j
    outs = emit("rsmt_step_advance", device=p.device, values=[ops.rebind(delta, (batch, p3 + r6)), y, p, r, tgt_p, tgt_r],
                      out_types=[_out(p, batch, n_p, 3), _out(p, batch, n_p, 3), _out(p, batch, n_j, 6),
                                 _out(p, batch, 2 * p3 + r6), _out(p, batch, p3 + r6)],
                      parameters={"n_phases": d.n_phases})
    return tuple(o.tensor for o in outs)

