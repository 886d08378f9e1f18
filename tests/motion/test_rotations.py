"""Rotation conversions: hypothesis properties plus a few hand-checked values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rsmt_studio.motion import rotations as R

ORDERS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
angles3 = arrays(np.float64, (8, 3), elements=st.floats(-4 * np.pi, 4 * np.pi, allow_nan=False))
quat_raw = arrays(np.float64, (8, 4), elements=st.floats(-1, 1, allow_nan=False))


def _unit(q: np.ndarray) -> np.ndarray:
    q = q.copy()
    q[np.linalg.norm(q, axis=-1) < 1e-3] = [1, 0, 0, 0]
    return R.quat_normalize(q)


def _axis_matrix(axis: str, a: np.ndarray) -> np.ndarray:
    """Elementary rotation matrices written out by hand (independent of the module)."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {
        "X": [[o, z, z], [z, c, -s], [z, s, c]],
        "Y": [[c, z, s], [z, o, z], [-s, z, c]],
        "Z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return np.moveaxis(np.array(rows), (0, 1), (-2, -1))


def same_rotation(q1: np.ndarray, q2: np.ndarray, tol: float = 1e-9) -> bool:
    return bool(np.all(np.abs(np.abs(np.sum(q1 * q2, axis=-1)) - 1.0) < tol))


@settings(max_examples=60, deadline=None)
@given(angles3, st.sampled_from(ORDERS))
def test_euler_to_quat_matches_intrinsic_matrix_product(angles, order):
    m = _axis_matrix(order[0], angles[:, 0]) @ _axis_matrix(order[1], angles[:, 1]) @ _axis_matrix(
        order[2], angles[:, 2])
    np.testing.assert_allclose(R.quat_to_matrix(R.euler_to_quat(angles, order)), m, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(quat_raw, st.sampled_from(ORDERS))
def test_quat_euler_quat_round_trip(q, order):
    q = _unit(q)
    back = R.euler_to_quat(R.quat_to_euler(q, order), order)
    assert same_rotation(q, back, 1e-9)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_at_gimbal_lock(order):
    angles = np.array([[0.3, np.pi / 2, -0.7], [1.0, -np.pi / 2, 0.2], [0.1, np.pi / 2 - 1e-10, 0.4]])
    q = R.euler_to_quat(angles, order)
    assert same_rotation(q, R.euler_to_quat(R.quat_to_euler(q, order), order), 1e-9)


@settings(max_examples=80, deadline=None)
@given(quat_raw)
def test_matrix_quat_6d_round_trips(q):
    q = _unit(q)
    m = R.quat_to_matrix(q)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    assert same_rotation(R.matrix_to_quat(m), q)
    six = R.quat_to_6d(q)
    assert six.shape == (8, 6)
    np.testing.assert_allclose(six, m[:, :2, :].reshape(8, 6))  # first two ROWS (pytorch3d)
    np.testing.assert_allclose(R.sixd_to_matrix(six), m, atol=1e-12)
    assert same_rotation(R.sixd_to_quat(six), q)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (5, 6), elements=st.floats(-10, 10, allow_nan=False)))
def test_sixd_gram_schmidt_gives_rotations(d6):
    a1, a2 = d6[:, :3], d6[:, 3:]
    ok = (np.linalg.norm(a1, axis=1) > 1e-3) & (np.linalg.norm(np.cross(a1, a2), axis=1) > 1e-3)
    m = R.sixd_to_matrix(d6[ok])
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(quat_raw, arrays(np.float64, (8, 3), elements=finite))
def test_quat_rotate_matches_matrix(q, v):
    q = _unit(q)
    np.testing.assert_allclose(R.quat_rotate(q, v), np.einsum("nij,nj->ni", R.quat_to_matrix(q), v), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(quat_raw, quat_raw)
def test_quat_mul_composes_like_matrices_and_inverse(a, b):
    a, b = _unit(a), _unit(b)
    np.testing.assert_allclose(R.quat_to_matrix(R.quat_mul(a, b)), R.quat_to_matrix(a) @ R.quat_to_matrix(b),
                               atol=1e-12)
    assert same_rotation(R.quat_mul(a, R.quat_inv(a)), R.identity_quat((8,)))
    np.testing.assert_allclose(R.quat_inv(a), R.quat_conj(a), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(quat_raw, quat_raw, st.floats(0, 1))
def test_slerp_endpoints_and_constant_speed(a, b, t):
    a, b = _unit(a), _unit(b)
    assert same_rotation(R.quat_slerp(a, b, 0.0), a)
    assert same_rotation(R.quat_slerp(a, b, 1.0), b)
    mid = R.quat_slerp(a, b, t)
    _, total = R.quat_to_axis_angle(R.quat_mul(R.quat_conj(a), b))
    _, part = R.quat_to_axis_angle(R.quat_mul(R.quat_conj(a), mid))
    np.testing.assert_allclose(part, t * total, atol=1e-6)


def test_continuity_removes_sign_flips_only():
    rng = np.random.default_rng(0)
    smooth = R.quat_slerp(R.identity_quat((50,)), R.euler_to_quat([[0.0, 2.5, 0.0]] * 50, "XYZ"),
                          np.linspace(0, 1, 50))
    flipped = smooth * np.where(rng.random(50) < 0.5, -1.0, 1.0)[:, None]
    fixed = R.quat_continuity(flipped, axis=0)
    assert (np.sum(fixed[1:] * fixed[:-1], axis=-1) >= 0).all()
    assert same_rotation(fixed, smooth)
    # per-joint along a (T, J, 4) array
    both = np.stack([flipped, -flipped], axis=1)
    fixed2 = R.quat_continuity(both, axis=0)
    assert (np.sum(fixed2[1:] * fixed2[:-1], axis=-1) >= 0).all()


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (6, 3), elements=st.floats(-5, 5, allow_nan=False)),
       arrays(np.float64, (6, 3), elements=st.floats(-5, 5, allow_nan=False)))
def test_quat_from_two_vectors(a, b):
    ok = (np.linalg.norm(a, axis=1) > 1e-2) & (np.linalg.norm(b, axis=1) > 1e-2)
    a, b = a[ok], b[ok]
    q = R.quat_from_two_vectors(a, b)
    got = R.quat_rotate(q, a / np.linalg.norm(a, axis=1, keepdims=True))
    np.testing.assert_allclose(got, b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-7)


def test_quat_from_two_vectors_opposite():
    a = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.3, -0.2, 0.9]])
    q = R.quat_from_two_vectors(a, -a)
    np.testing.assert_allclose(R.quat_rotate(q, a), -a, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(quat_raw)
def test_yaw_twist_decomposition(q):
    q = _unit(q)
    yaw = R.yaw_quat(q)
    assert np.allclose(yaw[:, [1, 3]], 0.0)
    swing = R.quat_mul(R.quat_conj(yaw), q)  # q = yaw * swing, swing has no twist about +Y
    keep = np.abs(q[:, 0]) + np.abs(q[:, 2]) > 1e-6  # twist undefined when w = y = 0
    np.testing.assert_allclose(swing[keep, 2], 0.0, atol=1e-9)
    assert same_rotation(R.quat_from_yaw(R.yaw_angle(q))[keep], yaw[keep])


def test_facing_and_yaw_to_direction():
    # RSMT: facing = cross(right_hip - left_hip, +Y); X cross Y = Z, so a hip axis along +X gives +Z.
    f = R.facing_from_lateral(np.array([[2.0, 0.3, 0.0]]))
    np.testing.assert_allclose(f, [[0, 0, 1]], atol=1e-12)
    d = np.array([[0.0, 0, 1], [1, 0, 0], [-1, 0, 1]])
    q = R.yaw_quat_to_direction(d, target=(1.0, 0.0, 0.0))
    got = R.quat_rotate(q, d / np.linalg.norm(d, axis=1, keepdims=True))
    np.testing.assert_allclose(got, np.broadcast_to([1.0, 0, 0], got.shape), atol=1e-12)


def test_known_values():
    q = R.euler_to_quat(np.deg2rad([[90.0, 0, 0]]), "ZXY")  # 90 deg about Z maps +X to +Y
    np.testing.assert_allclose(R.quat_rotate(q, [1.0, 0, 0]), [[0, 1, 0]], atol=1e-12)
    with pytest.raises(ValueError):
        R.euler_to_quat([0.0, 0, 0], "XXY")
