"""Quaternion helpers for the per-transition hot path (`to_user`, the seam blend): `rotations`' arithmetic,
in fewer numpy calls.

`rotations.quat_mul` spends most of its time in numpy call overhead on the small arrays of one transition
(40 frames x a few joints): thirty ufunc calls and a stack. `qmul` gathers `b`'s components into the product's
4x4 sign pattern and contracts once (`einsum`), up to twice as fast there, with the same sums in the same order
(bit for bit the same results); above about a thousand quaternions it hands over to `quat_mul`.
"""

from __future__ import annotations

import numpy as np

from .. import rotations as R

# out[k] = sum_i a[i] * b[_IDX[k, i]] * _SGN[k, i]  (Hamilton product a*b: apply b first, then a)
_IDX = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
_SGN = np.array([[1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, -1.0], [1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, 1.0]])
_EINSUM_MAX = 1000  # quaternions; above this the plain formula is as fast (measured on 40 x 5..55 joints)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`rotations.quat_mul(a, b)` for float64 arrays (...,4); shapes broadcast."""
    if max(np.size(a), np.size(b)) > 4 * _EINSUM_MAX:  # big arrays: the gathered copy costs more than it saves
        return R.quat_mul(a, b)
    return np.einsum("...i,...ki,ki->...k", a, np.asarray(b)[..., _IDX], _SGN)


_C1, _C2 = np.array([1, 2, 0]), np.array([2, 0, 1])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of (...,3) arrays as `rotations._cross` computes it, in seven numpy calls instead of twenty."""
    return a[..., _C1] * b[..., _C2] - a[..., _C2] * b[..., _C1]


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`rotations.quat_rotate(q, v)` (same arithmetic) for float64 arrays."""
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + q[..., :1] * t + cross(u, t)


def unit(q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """`rotations.quat_normalize(q)` (same arithmetic) for float64 arrays, without `linalg.norm`'s overhead."""
    n = np.sqrt(np.add.reduce(q * q, axis=-1, keepdims=True))
    out = q / np.maximum(n, eps)
    small = n[..., 0] < eps
    if small.any():
        out[small] = np.array([1.0, 0.0, 0.0, 0.0])
    return out


def swing(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rotations.quat_from_two_vectors(a, b)` for (N,3) arrays, with the two vectors' lengths (N,)."""
    na = np.sqrt(np.add.reduce(a * a, axis=-1, keepdims=True))
    nb = np.sqrt(np.add.reduce(b * b, axis=-1, keepdims=True))
    an, bn = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    h = an + bn
    norm = np.sqrt(np.add.reduce(h * h, axis=-1, keepdims=True))
    if (norm[..., 0] < 1e-12).any():  # nearly opposite somewhere: the general routine's fallback
        return R.quat_from_two_vectors(a, b), na[..., 0], nb[..., 0]
    h = h / np.maximum(norm, 1e-300)
    q = np.concatenate([np.add.reduce(an * h, axis=-1, keepdims=True), cross(an, h)], axis=-1)
    return unit(q), na[..., 0], nb[..., 0]


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """`rotations.quat_slerp(q0, q1, t)` (same arithmetic) for float64 arrays."""
    q0, q1 = unit(q0), unit(q1)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.add.reduce(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    theta = np.arccos(np.clip(np.abs(dot), -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return unit(w0 * q0 + w1 * q1)
