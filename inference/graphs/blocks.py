"""Small MAX graph building blocks for the RSMT networks, written out explicitly.

Weights are graph *inputs* with their own symbolic dims (MAX 26.7 rejects `Weight`s with symbolic shapes), so
one compiled model serves every layer width; each block `rebind`s a weight to the dims its input implies, which
MAX checks at run time. Weights arrive in the layouts the adapters produce (linear: (in, out); conv: (K, in,
out); LSTM: [W_ih; W_hh] stacked to (in + hidden, 4*hidden)), so no transposes happen per call.

MAX 26.7 lacks `elu` and `conv1d`; they are composed here from ops that exist. These are the CPU's blocks;
gpu/blocks.py overrides some of them for MAX's GPU kernels.
"""

from __future__ import annotations

import sys

from max.graph import TensorValue, ops


def linear(x: TensorValue, w: TensorValue, b: TensorValue | None = None, out=None) -> TensorValue:
    """x @ w + b with w shaped (in, out); works for x of any rank >= 2. `out` asserts the output width."""
    w = ops.rebind(w, (x.shape[-1], w.shape[1] if out is None else out))
    y = x @ w
    if b is not None:
        y = y + ops.rebind(b, (w.shape[1],))
    return y


def elu(x: TensorValue) -> TensorValue:
    """ELU with alpha 1 (`ops.elu` does not exist): x if x > 0 else exp(x) - 1."""
    return ops.where(x > 0, x, ops.exp(ops.min(x, 0.0)) - 1.0)


def relu(x: TensorValue) -> TensorValue:
    return ops.relu(x)


def layer_norm(x: TensorValue, eps: float = 1e-5) -> TensorValue:
    """Affine-free layer norm over the last axis (biased variance, as torch's layer/instance norm)."""
    mean = ops.mean(x, axis=-1)
    centred = x - mean
    var = ops.mean(centred * centred, axis=-1)
    return centred / ops.sqrt(var + eps)


def layer_norm_affine(x: TensorValue, gamma: TensorValue, beta: TensorValue, eps: float = 1e-5) -> TensorValue:
    gamma = ops.rebind(gamma, (x.shape[-1],))
    beta = ops.rebind(beta, (x.shape[-1],))
    return layer_norm(x, eps) * gamma + beta


def lstm_cell(
    x: TensorValue, h: TensorValue, c: TensorValue, w: TensorValue, b: TensorValue
) -> tuple[TensorValue, TensorValue]:
    """torch.nn.LSTMCell with one fused matmul: w = [W_ih; W_hh]^T (in + hidden, 4*hidden), b = b_ih + b_hh.

    Gate order is torch's (input, forget, cell, output).
    """
    hidden = h.shape[-1]
    xh = ops.concat([x, h], axis=-1)
    w = ops.rebind(w, (xh.shape[-1], 4 * hidden))
    gates = xh @ w + ops.rebind(b, (4 * hidden,))
    return lstm_gates(gates, c, x.shape[0], hidden)


def lstm_gates(gates: TensorValue, c: TensorValue, batch, hidden) -> tuple[TensorValue, TensorValue]:
    """(h, c) of an LSTM cell from its pre-activation gates (batch, 4*hidden) and the previous cell state."""
    gates = ops.reshape(gates, (batch, 4, hidden))
    i = ops.sigmoid(gates[:, 0, :])
    f = ops.sigmoid(gates[:, 1, :])
    g = ops.tanh(gates[:, 2, :])
    o = ops.sigmoid(gates[:, 3, :])
    c_new = f * ops.rebind(c, (batch, hidden)) + i * g
    h_new = o * ops.tanh(c_new)
    return h_new, c_new


def moe_linear(x: TensorValue, gate: TensorValue, w: TensorValue, b: TensorValue, n_experts: int) -> TensorValue:
    """Mixture of experts blending expert *outputs*: y = sum_e gate[:, e] * (x @ W_e + b_e).

    w is all experts side by side, (in, E*out), so the whole layer is one matmul; b is (E*out,).
    """
    batch = x.shape[0]
    w = ops.rebind(w, (x.shape[-1], w.shape[1]))
    y = x @ w + ops.rebind(b, (w.shape[1],))
    out = w.shape[1] // n_experts
    y = ops.rebind(y, (batch, out * n_experts))
    y = ops.reshape(y, (batch, n_experts, out))
    g = ops.reshape(ops.rebind(gate, (batch, n_experts)), (batch, n_experts, 1))
    return ops.sum(y * g, axis=1).reshape((batch, out))


def conv1d(x: TensorValue, w: TensorValue, b: TensorValue | None = None, padding: int = 0,
           taps: int | None = None) -> TensorValue:
    """1-D convolution over time via conv2d with H = 1 (MAX has no conv1d).

    x is (B, T, Cin) channels-last, w is (K, Cin, Cout) (torch's (Cout, Cin, K) transposed by the adapter).
    `taps` (the static kernel size) is what gpu/blocks.py's form needs; the CPU's does not use it.
    """
    w = ops.rebind(w, (w.shape[0], x.shape[-1], w.shape[2]))
    y = ops.conv2d(ops.unsqueeze(x, 1), ops.unsqueeze(w, 0), padding=(0, 0, padding, padding))
    y = ops.squeeze(y, 1)
    if b is not None:
        y = y + ops.rebind(b, (w.shape[2],))
    return y


def attend(q: TensorValue, keys: TensorValue, values: TensorValue, scale: TensorValue) -> TensorValue:
    """Single-query attention: q (B, D), keys/values (B, T, D), scale (1,) -> (B, D), as batched matmuls."""
    logits = (keys @ ops.unsqueeze(q, 2)) * scale  # (B, T, 1)
    att = softmax(transpose(logits, 1, 2))  # (B, 1, T)
    return ops.reshape(att @ values, (q.shape[0], q.shape[1]))


def softmax(x: TensorValue) -> TensorValue:
    return ops.softmax(x, axis=-1)


def film_elu(x: TensorValue, gamma: TensorValue, beta: TensorValue, keys: TensorValue, values: TensorValue,
             wq: TensorValue, bq: TensorValue, scale: TensorValue, wo: TensorValue, bo: TensorValue,
             K=None) -> TensorValue:
    """One FiLM block over the style tokens and the ELU after it (nets.film_elu): x, gamma, beta (B, D); keys,
    values (B, T, D); the query and output layers wq, wo (D, D), bq, bo (D,); scale (1,).

    Composed from the primitives of `K` (default: this module; gpu/blocks.py passes itself, so its layer norm and
    padded linear layers are used); cpu_blocks.py runs the same maths as one custom op."""
    K = K or sys.modules[__name__]
    b, d = x.shape[0], x.shape[1]
    gamma = K.rebind(gamma, (b, d))
    beta = K.rebind(beta, (b, d))
    y = K.elu((1.0 + gamma) * K.layer_norm(x) + beta)
    q = K.linear(K.layer_norm(y), wq, bq, out=d)  # (B, D)
    keys = K.rebind(keys, (b, keys.shape[1], d))
    values = K.rebind(values, (b, keys.shape[1], d))
    ctx = K.attend(q, keys, values, K.rebind(scale, (1,)))  # (B, D)
    return K.elu(y + K.linear(ctx, wo, bo, out=d))


# --- the rest of the backend interface shared with numpy_blocks (see nets.py) -------------------------------
def rebind(x: TensorValue, shape) -> TensorValue:
    """Assert a shape (checked at run time); how symbolic weight dims are tied to the data's dims."""
    return ops.rebind(x, shape)


def concat(xs, axis: int) -> TensorValue:
    return ops.concat(list(xs), axis=axis)


def stack(xs, axis: int) -> TensorValue:
    return ops.stack(list(xs), axis=axis)


def reshape(x: TensorValue, shape) -> TensorValue:
    return ops.reshape(x, shape)


def unsqueeze(x: TensorValue, axis: int) -> TensorValue:
    return ops.unsqueeze(x, axis)


def squeeze(x: TensorValue, axis: int) -> TensorValue:
    return ops.squeeze(x, axis)


def transpose(x: TensorValue, a: int, b: int) -> TensorValue:
    return ops.transpose(x, a, b)


def mean(x: TensorValue, axis: int) -> TensorValue:
    """Mean keeping the reduced axis (size 1), as MAX's reductions do."""
    return ops.mean(x, axis=axis)


def sum(x: TensorValue, axis: int) -> TensorValue:
    return ops.sum(x, axis=axis)


def tanh(x: TensorValue) -> TensorValue:
    return ops.tanh(x)


def sigmoid(x: TensorValue) -> TensorValue:
    return ops.sigmoid(x)


def exp(x: TensorValue) -> TensorValue:
    return ops.exp(x)


def sqrt(x: TensorValue) -> TensorValue:
    return ops.sqrt(x)


def sin(x: TensorValue) -> TensorValue:
    return ops.sin(x)


def cos(x: TensorValue) -> TensorValue:
    return ops.cos(x)


def minimum(x: TensorValue, y) -> TensorValue:
    return ops.min(x, y)


def maximum(x: TensorValue, y) -> TensorValue:
    return ops.max(x, y)


def softplus(x: TensorValue) -> TensorValue:
    """log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)."""
    return ops.max(x, 0.0) + ops.log(1.0 + ops.exp(-ops.abs(x)))


def gather_rows(table: TensorValue, idx: TensorValue) -> TensorValue:
    """table[idx] for an integer index vector (B,) -> (B, D)."""
    return ops.gather(table, idx, axis=0)


def to_float(x: TensorValue) -> TensorValue:
    from max.dtype import DType

    return ops.cast(x, DType.float32)


def clamp_index(idx: TensorValue, hi: int) -> TensorValue:
    """min(idx, hi) for int64 indices (time-to-arrival into the positional-encoding table)."""
    from max.dtype import DType

    return ops.min(idx, ops.constant(hi, DType.int64, device=idx.device))
