"""The building blocks of blocks.py, formulated for MAX 26.7's GPU kernels (the graphs use this module on GPUs).

Why: on an H100 a captured 40-frame transition at batch 1 is a chain of ~4 000 small kernels, and its time is
their count times ~2.5 µs plus a few slow ones (bench/gpu_profile.py). Each override below either removes a slow
kernel or lets MAX fuse several into one; the maths is unchanged (tests/inference/test_gpu_blocks.py checks every
override against numpy on the CPU, and bench/inference.py --gpu checks whole transitions on the GPU).

- Widths padded to multiples of 32: MAX's one-row GPU matmul (GEVM) needs both widths to be multiples of the
  warp size and otherwise runs a naive kernel; seven such layers cost 3.6 ms of an 11 ms transition at batch 1.
  `device_layout` pads the weights with zero rows (and, where later slices ignore them, zero columns) once at
  load, and `linear` pads its input with zero columns to match. Multiplying by a transposed weight instead
  (`x @ w.T`) was measured first: MAX 26.7 did not turn it into its transposed-B kernels, the naive ones stayed.
  The padding needs static widths, so GPU graphs are built for the weights' shapes (configs with
  "weight_shapes"), one compiled model per set of widths.
- Layer norm as MAX's fused `layer_norm` op: one kernel instead of two reductions and their elementwise glue.
- The mixture-of-experts blend as 8 unrolled multiply-adds (elementwise, fusable) instead of a reduction.
- conv1d as one matmul over unfolded windows (MAX's GPU conv2d is a naive kernel: 52 ms for the initial-phase
  predictor at batch 1 on an H100). (Attention over the style tokens is fused_film.film's: broadcast multiplies
  and reductions, since MAX's batched GPU matmul for (B, T, D) x (B, D, 1) is a naive kernel.)

Everything not overridden here is blocks.py's (module `__getattr__`), so nets.py builds with either module.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import TensorValue, ops
from rsmt_studio.inference.graphs import blocks as _base

#: Matmul widths are padded to multiples of this (the GPU warp size GEVM requires).
ALIGN = 32
#: Layers whose extra (zero) output columns are harmless: their outputs are only ever sliced at fixed offsets.
PAD_OUTPUTS = ("predictor_fc4", "phase_predictor.fc")


def __getattr__(name: str) -> Any:
    return getattr(_base, name)


def _up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def padded_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape `device_layout` gives the weight `name` of this (blocks.py layout) shape."""
    if name.endswith(".w") and len(shape) == 2:  # right-multiplied: zero rows, and columns where harmless
        return _up(shape[0]), _up(shape[1]) if name[:-2] in PAD_OUTPUTS else shape[1]
    if name.endswith(".b") and name[:-2] in PAD_OUTPUTS:
        return (_up(shape[0]),)
    return tuple(shape)


def device_layout(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Adapted weights (blocks.py layouts) -> this module's: every matrix multiplied from the right (`*.w` of
    rank 2: linear layers, the LSTM, the experts) gets zero rows up to a multiple of ALIGN; the PAD_OUTPUTS
    layers also get zero columns (and bias entries)."""
    out = {}
    for name, w in weights.items():
        shape = padded_shape(name, w.shape)
        if shape == w.shape:
            out[name] = w
            continue
        padded = np.zeros(shape, np.float32)
        padded[tuple(slice(0, n) for n in w.shape)] = w
        out[name] = padded
    return out


def _static(dim) -> int:
    try:
        return int(dim)
    except TypeError:
        raise ValueError("gpu_blocks needs static widths: build the graph with the weights' shapes") from None


def pad_width(x: TensorValue) -> TensorValue:
    """x with zero columns appended up to a multiple of ALIGN (the rows device_layout added to the weights)."""
    k = _static(x.shape[-1])
    if k % ALIGN == 0:
        return x
    zeros = ops.broadcast_to(ops.constant(0.0, DType.float32, device=x.device), (*x.shape[:-1], _up(k) - k))
    return ops.concat([x, zeros], axis=-1)


def _matmul(x: TensorValue, w: TensorValue, n_out) -> TensorValue:
    x = pad_width(x)
    return x @ ops.rebind(w, (x.shape[-1], n_out))


def linear(x: TensorValue, w: TensorValue, b: TensorValue | None = None, out=None) -> TensorValue:
    """x @ w + b with w padded by device_layout; x of any rank >= 2. `out` asserts the output width."""
    n_out = w.shape[1] if out is None else out
    y = _matmul(x, w, n_out)
    if b is not None:
        y = y + ops.rebind(b, (n_out,))
    return y


def moe_linear(x: TensorValue, gate: TensorValue, w: TensorValue, b: TensorValue, n_experts: int) -> TensorValue:
    """y = sum_e gate[:, e] * (x @ W_e + b_e), w = all experts side by side (in, E*out); the blend unrolled."""
    batch = x.shape[0]
    y = _matmul(x, w, w.shape[1]) + ops.rebind(b, (w.shape[1],))
    out = w.shape[1] // n_experts
    y = ops.reshape(ops.rebind(y, (batch, out * n_experts)), (batch, n_experts, out))
    g = ops.rebind(gate, (batch, n_experts))
    acc = y[:, 0, :] * g[:, 0:1]
    for e in range(1, n_experts):
        acc = acc + y[:, e, :] * g[:, e : e + 1]
    return acc


def layer_norm(x: TensorValue, eps: float = 1e-5) -> TensorValue:
    """Affine-free layer norm over the last axis as MAX's fused op (unit scale, zero shift)."""
    width = x.shape[-1]
    one = ops.broadcast_to(ops.constant(1.0, DType.float32, device=x.device), (width,))
    zero = ops.broadcast_to(ops.constant(0.0, DType.float32, device=x.device), (width,))
    return ops.layer_norm(x, one, zero, eps)


def conv1d(x: TensorValue, w: TensorValue, b: TensorValue | None = None, padding: int = 0,
           taps: int | None = None) -> TensorValue:
    """blocks.conv1d as one matmul over unfolded windows, given the static kernel size `taps`."""
    if taps is None:
        return _base.conv1d(x, w, b, padding)
    if padding:
        x = ops.pad(x, [0, 0, padding, padding, 0, 0])
    return conv1d_unfolded(x, w, b, taps)


def conv1d_unfolded(x: TensorValue, w: TensorValue, b: TensorValue | None, taps: int) -> TensorValue:
    """'valid' 1-D convolution as im2col + matmul: x (B, T, Cin), w (taps, Cin, Cout); T may be symbolic."""
    t_out = x.shape[1] - (taps - 1)
    cin = x.shape[2]
    w = ops.rebind(w, (taps, cin, w.shape[2]))
    w2 = ops.reshape(w, (taps * cin, w.shape[2]))
    parts = [ops.rebind(x[:, i : (i - taps + 1) or None, :], (x.shape[0], t_out, cin)) for i in range(taps)]
    cols = ops.concat(parts, axis=2) if taps > 1 else parts[0]  # (B, T_out, taps*Cin)
    y = ops.rebind(cols, (x.shape[0], t_out, w2.shape[0])) @ w2
    if b is not None:
        y = y + ops.rebind(b, (w.shape[2],))
    return y


def film_elu(x: TensorValue, gamma: TensorValue, beta: TensorValue, keys: TensorValue, values: TensorValue,
             wq: TensorValue, bq: TensorValue, scale: TensorValue, wo: TensorValue, bo: TensorValue) -> TensorValue:
    """blocks.film_elu composed from this module's layer norm and padded linear layers (as nets.film did before
    it became one backend function; the fused GPU graphs use fused_film.film instead)."""
    return _base.film_elu(x, gamma, beta, keys, values, wq, bq, scale, wo, bo, K=sys.modules[__name__])


# Not done, and why: sums over the tiny last axes (phase vectors of 2, rotation halves of 3) as slice additions
# would fuse into elementwise kernels instead of launching reductions, but MAX 26.7 miscompiled that form inside
# the Gram-Schmidt step of a symbolic-batch graph (every row but the first wrong on the CPU); ops.sum stays.
