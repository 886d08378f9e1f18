"""Vectorised rotation maths on numpy arrays.

Conventions (shared with the RSMT reference code and pytorch3d):
- quaternions are (w, x, y, z), Hamilton product, act on column vectors: v' = q v q*;
- matrices act on column vectors (v' = R @ v);
- Euler angles are *intrinsic* in the given order, i.e. ``order="ZXY"`` means R = Rz(a0) @ Rx(a1) @ Ry(a2),
  exactly how a BVH joint with channels ``Zrotation Xrotation Yrotation`` is composed; angles in radians;
- "6D" is the first two ROWS of the rotation matrix (pytorch3d's ``matrix_to_rotation_6d``), decoded by
  Gram-Schmidt (``rotation_6d_to_matrix``).
Every function broadcasts over leading axes and never loops in Python over elements.
"""

from __future__ import annotations

import numpy as np

_AXIS = {"X": 0, "Y": 1, "Z": 2}


def _parse_order(order: str) -> tuple[int, int, int]:
    order = order.upper()
    if len(order) != 3 or sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"Euler order must be a permutation of 'XYZ', got {order!r}")
    return _AXIS[order[0]], _AXIS[order[1]], _AXIS[order[2]]


def identity_quat(shape: tuple[int, ...] = ()) -> np.ndarray:
    """Identity quaternions of the given leading shape."""
    q = np.zeros((*shape, 4))
    q[..., 0] = 1.0
    return q


# Hamilton product as one contraction: out[k] = sum_i a[i] * b[_MUL_IDX[k, i]] * _MUL_SGN[k, i].
_MUL_IDX = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 3, 0, 1], [3, 2, 1, 0]])
_MUL_SGN = np.array([[1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, -1.0], [1.0, -1.0, 1.0, 1.0], [1.0, 1.0, -1.0, 1.0]])
_EINSUM_MAX = 1000  # quaternions; above this the gathered copy costs more than the saved calls (40 x 5..55 joints)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b (apply b first, then a).

    Small arrays (a transition's frames x joints) are dominated by numpy's per-call overhead, so they go through
    one `einsum` over b's components in the product's sign pattern: the same sums in the same order, in a few
    calls instead of thirty."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if max(a.size, b.size) <= 4 * _EINSUM_MAX:
        return np.einsum("...i,...ki,ki->...k", a, b[..., _MUL_IDX], _MUL_SGN)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate; the inverse for unit quaternions."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_inv(q: np.ndarray) -> np.ndarray:
    """Inverse (conjugate divided by squared norm), valid for non-unit quaternions too."""
    q = np.asarray(q, dtype=np.float64)
    return quat_conj(q) / np.sum(q * q, axis=-1, keepdims=True)


def quat_normalize(q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Unit quaternions; all-zero inputs become the identity rather than NaN."""
    q = np.asarray(q, dtype=np.float64)
    n = np.sqrt(np.add.reduce(q * q, axis=-1, keepdims=True))  # what linalg.norm computes, without its overhead
    out = q / np.maximum(n, eps)
    small = n[..., 0] < eps
    if np.any(small):
        out[small] = np.array([1.0, 0.0, 0.0, 0.0])
    return out


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (...,3) by unit quaternions q (...,4); shapes broadcast."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * cross(u, v)
    return v + w * t + cross(u, t)


_C1, _C2 = np.array([1, 2, 0]), np.array([2, 0, 1])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross for (...,3) arrays without its axis bookkeeping: the same products in seven numpy calls."""
    return a[..., _C1] * b[..., _C2] - a[..., _C2] * b[..., _C1]


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (...,4) to rotation matrices (...,3,3)."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = np.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        axis=-1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (...,3,3) to unit quaternions with w >= 0 (numerically stable branch per element)."""
    m = np.asarray(m, dtype=np.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions, each accurate where its leading component is large (Shepperd's method).
    cands = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], axis=-1),
            np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], axis=-1),
            np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], axis=-1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], axis=-1),
        ],
        axis=-2,
    )
    diag = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = quat_normalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quat(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions for rotations by `angle` (radians) about unit `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(axis (...,3), angle (...) in [0, pi]); axis is +X where the angle is 0."""
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(s, q[..., 0])
    axis = np.where(s[..., None] > 1e-12, q[..., 1:] / np.maximum(s, 1e-12)[..., None], [1.0, 0.0, 0.0])
    return axis, angle


def euler_to_quat(angles: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """Intrinsic Euler angles (radians, angles[..., i] about order[i]) to quaternions.

    Closed form of q_i(a0) * q_j(a1) * q_k(a2): one pass of sines and cosines, no general products.
    """
    angles = np.asarray(angles, dtype=np.float64)
    i, j, k = _parse_order(order)
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    half = 0.5 * angles
    c = np.cos(half)
    sn = np.sin(half)
    c1, c2, c3 = c[..., 0], c[..., 1], c[..., 2]
    s1, s2, s3 = sn[..., 0], sn[..., 1], sn[..., 2]
    q = np.empty((*angles.shape[:-1], 4))
    q[..., 0] = c1 * c2 * c3 - s * s1 * s2 * s3
    q[..., 1 + i] = s1 * c2 * c3 + s * c1 * s2 * s3
    q[..., 1 + j] = c1 * s2 * c3 - s * s1 * c2 * s3
    q[..., 1 + k] = c1 * c2 * s3 + s * s1 * s2 * c3
    return q


def matrix_to_euler(m: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """Rotation matrices to intrinsic Euler angles (radians); at gimbal lock the last angle is set to 0."""
    m = np.asarray(m, dtype=np.float64)
    i, j, k = _parse_order(order)
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    rii, rij, rik = m[..., i, i], m[..., i, j], m[..., i, k]
    cos_b = np.hypot(rii, rij)
    b = np.arctan2(s * rik, cos_b)
    a = np.arctan2(-s * m[..., j, k], m[..., k, k])
    c = np.arctan2(-s * rij, rii)
    locked = cos_b < 1e-9
    if np.any(locked):
        # R = Ri(a) Rj(b) with c = 0: column j of R is Ri(a) e_j = cos(a) e_j + s sin(a) e_k.
        a = np.where(locked, np.arctan2(s * m[..., k, j], m[..., j, j]), a)
        c = np.where(locked, 0.0, c)
    return np.stack([a, b, c], axis=-1)


def quat_to_euler(q: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """Unit quaternions to intrinsic Euler angles (radians) in `order`."""
    return matrix_to_euler(quat_to_matrix(quat_normalize(q)), order)


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    """First two rows of each rotation matrix, flattened to (...,6) (pytorch3d convention)."""
    m = np.asarray(m, dtype=np.float64)
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Gram-Schmidt decoding of (...,6) into rotation matrices (rows b1, b2, b1 x b2)."""
    d6 = np.asarray(d6, dtype=np.float64)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = b2 / np.maximum(np.linalg.norm(b2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-2)


def quat_to_6d(q: np.ndarray) -> np.ndarray:
    """Quaternions to the 6D representation."""
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6: np.ndarray) -> np.ndarray:
    """6D representation to unit quaternions (w >= 0)."""
    return matrix_to_quat(sixd_to_matrix(d6))


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` so consecutive quaternions lie in the same hemisphere (dot >= 0).

    q and -q are the same rotation; networks and slerp need the sign chosen consistently over time.
    """
    q = np.asarray(q, dtype=np.float64)
    q = np.moveaxis(q, axis, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumsum(dots < 0, axis=0) % 2  # each negative dot toggles every later sign
    sign = np.concatenate([np.ones_like(flips[:1]), 1 - 2 * flips], axis=0)
    return np.moveaxis(q * sign[..., None], 0, axis)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Shortest-path spherical interpolation; t broadcasts against the leading shape."""
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Alias of :func:`quat_from_two_vectors`."""
    return quat_from_two_vectors(a, b)


def quat_from_two_vectors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternions rotating direction a onto direction b (180 deg handled)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    a, b = np.broadcast_arrays(a, b)
    # Half-vector form: q = (a.h, a x h) with h = (a+b)/|a+b|. Unlike w = 1 + a.b it keeps full precision
    # for nearly opposite directions (1 + a.b cancels to ~1e-10 there and the 180-degree fallback
    # would throw away the remaining 1e-5 rad).
    h = a + b
    norm = np.linalg.norm(h, axis=-1, keepdims=True)
    opposite = norm[..., 0] < 1e-12
    h = h / np.maximum(norm, 1e-300)
    w = np.sum(a * h, axis=-1, keepdims=True)
    xyz = np.cross(a, h)
    if np.any(opposite):
        # Any axis perpendicular to a: cross with the coordinate axis least aligned with a.
        helper = np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        perp = np.cross(a, helper)
        perp = perp / np.linalg.norm(perp, axis=-1, keepdims=True)
        xyz = np.where(opposite[..., None], perp, xyz)
        w = np.where(opposite[..., None], 0.0, w)
    return quat_normalize(np.concatenate([w, xyz], axis=-1))


# --- yaw / facing (Y is up) -------------------------------------------------------------------------------

def yaw_quat(q: np.ndarray, up_axis: int = 1) -> np.ndarray:
    """Twist part of q about the up axis (swing-twist decomposition): the heading without tilt."""
    q = np.asarray(q, dtype=np.float64)
    out = np.zeros_like(q)
    out[..., 0] = q[..., 0]
    out[..., 1 + up_axis] = q[..., 1 + up_axis]
    return quat_normalize(out)


def quat_from_yaw(angle: np.ndarray, up_axis: int = 1) -> np.ndarray:
    """Rotations by `angle` radians about the up axis."""
    angle = np.asarray(angle, dtype=np.float64)
    axis = np.zeros(3)
    axis[up_axis] = 1.0
    return axis_angle_to_quat(axis, angle)


def yaw_angle(q: np.ndarray, up_axis: int = 1) -> np.ndarray:
    """Signed heading angle (radians) of the twist of q about the up axis."""
    t = yaw_quat(q, up_axis)
    return 2.0 * np.arctan2(t[..., 1 + up_axis], t[..., 0])


def facing_from_lateral(lateral: np.ndarray, up: np.ndarray = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Unit horizontal facing directions from a left-to-right (or right-to-left) body axis.

    RSMT uses facing = cross(pos[RightHip] - pos[LeftHip], +Y); pass that difference as `lateral` to match.
    """
    up = np.asarray(up, dtype=np.float64)
    f = np.cross(np.asarray(lateral, dtype=np.float64), up)
    f = f - np.sum(f * up, axis=-1, keepdims=True) * up
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)


def yaw_quat_to_direction(direction: np.ndarray, target: np.ndarray = (1.0, 0.0, 0.0),
                          up_axis: int = 1) -> np.ndarray:
    """Pure-yaw quaternions that turn horizontal `direction` onto horizontal `target` (RSMT: onto +X)."""
    d = np.array(direction, dtype=np.float64)
    t = np.broadcast_to(np.asarray(target, dtype=np.float64), d.shape).copy()
    d[..., up_axis] = 0.0
    t[..., up_axis] = 0.0
    h = [a for a in range(3) if a != up_axis]  # the two horizontal axes, right-handed with up
    if up_axis == 1:
        h = [2, 0]  # rotation about +Y turns +Z towards +X
    ang = np.arctan2(t[..., h[1]], t[..., h[0]]) - np.arctan2(d[..., h[1]], d[..., h[0]])
    return quat_from_yaw(ang, up_axis)
