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
- `sampler_step` (nets._step uses it where a backend has it; blocks.py and numpy_blocks.py compose the same maths)
  is `rsmt_sampler_step` (kernels/cpu_step.mojo): a whole sampler step as one op, calling the kernels above and the
  step's tails (the phase update and decoder inputs; apply-delta, Gram-Schmidt, the velocity and the next frame's
  encoder inputs) on its own scratch. A step was ~57 graph ops, and a call of many steps costs what a few do only
  when each step is cheap to add: docs/performance.md, "The whole step as one op".

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


#: `rsmt_sampler_step`'s weights, in its input order (kernels/cpu_step.mojo).
STEP_WEIGHTS = (
    "state_encoder.fc1.w", "state_encoder.fc1.b", "state_encoder.fc2.w", "state_encoder.fc2.b",
    "offset_encoder.fc1.w", "offset_encoder.fc1.b", "offset_encoder.fc2.w", "offset_encoder.fc2.b",
    "embedding_fc.w", "embedding_fc.b", "embedding_film.query.w", "embedding_film.query.b",
    "embedding_film.out_proj.w", "embedding_film.out_proj.b", "embedding_film.scale", "pe_latent", "pe_film",
    "lstm.w", "lstm.b", "predictor_fc1.w", "predictor_fc1.b", "predictor_fc2.w", "predictor_fc2.b",
    "predictor_fc3.w", "predictor_fc3.b", "predictor_fc4.w", "predictor_fc4.b", "predictor_film.query.w",
    "predictor_film.query.b", "predictor_film.out_proj.w", "predictor_film.out_proj.b", "predictor_film.scale",
    "decoder.gate_fc1.w", "decoder.gate_fc1.b", "decoder.gate_fc2.w", "decoder.gate_fc2.b", "decoder.gate_fc3.w",
    "decoder.gate_fc3.b", "decoder.expert1.w", "decoder.expert1.b", "decoder.expert2.w", "decoder.expert2.b",
    "decoder.expert3.w", "decoder.expert3.b")


def sampler_step(d, W, p: TensorValue, r: TensorValue, phase: TensorValue, h: TensorValue, c: TensorValue,
                 tgt_p: TensorValue, tgt_r: TensorValue, tgt_latent: TensorValue, tta: TensorValue, z: TensorValue,
                 caches, features, *, emit: Emit = ops.custom) -> tuple[TensorValue, ...]:
    """nets._step as one op, `rsmt_sampler_step` (kernels/cpu_step.mojo): the frame's encoder inputs `features`
    (state, offset), p (B, Np, 3), r (B, J, 6), phase (B, C, 2), h, c (B, H), the target's p, r and latent, tta (B,)
    int64, z (B, 2L) and both FiLM blocks' style caches. Returns (p, v, r, phase, h, c, [state, offset]) of the next
    frame."""
    batch, hidden = p.shape[0], h.shape[1]
    state_in, offset_in = features
    values = [state_in, offset_in, p, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, *caches,
              *(W[name] for name in STEP_WEIGHTS)]
    outs = emit("rsmt_sampler_step", device=p.device, values=values,
                out_types=[_out(p, batch, p.shape[1], 3), _out(p, batch, p.shape[1], 3), _out(p, batch, r.shape[1], 6),
                           _out(p, batch, d.n_phases, 2), _out(p, batch, hidden), _out(p, batch, hidden),
                           _out(p, batch, state_in.shape[1]), _out(p, batch, offset_in.shape[1])],
                parameters={"n_phases": d.n_phases, "latent": d.manifold_latent, "p3": 3 * d.n_pos_joints,
                            "ang_scale": 2.0 * math.pi * d.dt, "max_tta": d.max_tta, "n_experts": d.n_experts,
                            "workers": WORKERS})
    p_next, v_next, r_next, phase_next, h_next, c_next, state_next, offset_next = (o.tensor for o in outs)
    return p_next, v_next, r_next, phase_next, h_next, c_next, [state_next, offset_next]
