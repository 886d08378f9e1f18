"""The building blocks of blocks.py in numpy, with the same weight layouts.

They are the reference for the MAX blocks' tests and power the numpy engine in the benchmark.
"""

from __future__ import annotations

import builtins

import numpy as np


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, out=None) -> np.ndarray:
    y = x @ w
    return y if b is None else y + b


def elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))).astype(x.dtype, copy=False)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def layer_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def lstm_cell(x, h, c, w, b):
    gates = np.concatenate([x, h], axis=-1) @ w + b
    i, f, g, o = np.split(gates, 4, axis=-1)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def moe_linear(x, gate, w, b, n_experts: int):
    y = (x @ w + b).reshape(x.shape[0], n_experts, -1)
    return (y * gate[:, :, None]).sum(axis=1)


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, padding: int = 0,
           taps: int | None = None) -> np.ndarray:
    """x (B, T, Cin), w (K, Cin, Cout) -> (B, T + 2p - K + 1, Cout). `taps` (the static K) is only checked."""
    k = w.shape[0]
    if taps is not None and taps != k:
        raise ValueError(f"conv1d: weights have {k} taps, the network expects {taps}")
    xp = np.pad(x, ((0, 0), (padding, padding), (0, 0)))
    t_out = xp.shape[1] - k + 1
    y = builtins.sum(xp[:, j : j + t_out, :] @ w[j] for j in range(k))
    return y if b is None else y + b


def attend(q: np.ndarray, keys: np.ndarray, values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Single-query attention: q (B, D), keys/values (B, T, D) -> (B, D)."""
    att = softmax((keys @ q[:, :, None])[..., 0] * scale)  # (B, T)
    return (att[:, None, :] @ values)[:, 0]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def film_elu(x, gamma, beta, keys, values, wq, bq, scale, wo, bo) -> np.ndarray:
    """One FiLM block over the style tokens and the ELU after it, as blocks.film_elu: x, gamma, beta (B, D); keys,
    values (B, T, D); wq, wo (D, D); bq, bo (D,); scale (1,)."""
    y = elu((1.0 + gamma) * layer_norm(x) + beta)
    q = linear(layer_norm(y), wq, bq)
    ctx = attend(q, keys, values, scale)
    return elu(y + linear(ctx, wo, bo))


def rebind(x: np.ndarray, shape) -> np.ndarray:
    return x


def concat(xs, axis: int) -> np.ndarray:
    return np.concatenate(list(xs), axis=axis)


def stack(xs, axis: int) -> np.ndarray:
    return np.stack(list(xs), axis=axis)


def reshape(x: np.ndarray, shape) -> np.ndarray:
    return np.reshape(x, tuple(int(s) for s in shape))


def unsqueeze(x: np.ndarray, axis: int) -> np.ndarray:
    return np.expand_dims(x, axis)


def squeeze(x: np.ndarray, axis: int) -> np.ndarray:
    return np.squeeze(x, axis)


def transpose(x: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.swapaxes(x, a, b)


def mean(x: np.ndarray, axis: int) -> np.ndarray:
    return x.mean(axis=axis, keepdims=True)


def sum(x: np.ndarray, axis: int) -> np.ndarray:
    return x.sum(axis=axis, keepdims=True)


tanh = np.tanh
exp = np.exp
sqrt = np.sqrt
sin = np.sin
cos = np.cos
minimum = np.minimum
maximum = np.maximum


def softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def gather_rows(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return table[idx]


def to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def clamp_index(idx: np.ndarray, hi: int) -> np.ndarray:
    return np.minimum(idx, hi)
