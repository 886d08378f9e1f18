"""motion.baselines: each baseline starts on the last context frame and lands exactly on the keyframe."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.motion import baselines as B
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.clip import forward_kinematics

PARENTS = np.array([-1, 0, 1, 2, 0, 4])
N_PAST = 10


def _windows(rng, b: int, length: int):
    """Smooth random motion on a small skeleton: global positions and rotation matrices (B,W,J,...)."""
    w = N_PAST + length + 2
    t = np.arange(w)[None, :, None]
    j = len(PARENTS)
    offsets = rng.normal(size=(j, 3)) * 10
    axis = R.quat_normalize(rng.normal(size=(b, 1, j, 3)) * np.ones((1, 1, 1, 3)))[..., :3]
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = 0.3 * np.sin(0.15 * t + rng.normal(size=(b, 1, j)))
    lq = R.axis_angle_to_quat(np.broadcast_to(axis, (b, w, j, 3)), angle)
    lp = np.broadcast_to(offsets, (b, w, j, 3)).copy()
    lp[:, :, 0] = rng.normal(size=(b, 1, 3)) + np.arange(w)[None, :, None] * np.array([1.0, 0.0, 2.0])
    gpos, gq = forward_kinematics(PARENTS, lp, lq)
    return gpos, R.quat_to_matrix(gq), offsets


def _same_rotation(qa, qb):
    return np.abs(np.abs(np.sum(qa * qb, axis=-1)) - 1.0).max() < 1e-9


@pytest.mark.parametrize("length", [1, 10, 40])
@pytest.mark.parametrize("name", sorted(B.BASELINES))
def test_baselines_hit_context_and_keyframe(name, length):
    rng = np.random.default_rng(length)
    gpos, grot, offsets = _windows(rng, 3, length)
    ep = B.endpoints(gpos, grot, PARENTS, offsets, length)
    mo = B.BASELINES[name](ep, length)
    assert mo.pos.shape == (3, length + 2, len(PARENTS), 3)
    k = N_PAST + length
    gq = R.matrix_to_quat(grot)
    np.testing.assert_allclose(mo.pos[:, 0], gpos[:, N_PAST - 1], atol=1e-9)
    np.testing.assert_allclose(mo.pos[:, -1], gpos[:, k], atol=1e-9)
    assert _same_rotation(mo.quat[:, 0], gq[:, N_PAST - 1])
    assert _same_rotation(mo.quat[:, -1], gq[:, k])
    assert np.isfinite(mo.pos).all()


def test_zero_velocity_holds_the_last_context_pose():
    rng = np.random.default_rng(3)
    gpos, grot, offsets = _windows(rng, 2, 8)
    mo = B.zero_velocity(B.endpoints(gpos, grot, PARENTS, offsets, 8), 8)
    np.testing.assert_allclose(mo.pos[:, 1:-1], np.repeat(gpos[:, N_PAST - 1 : N_PAST], 8, axis=1), atol=1e-9)


def test_interpolation_is_linear_in_the_root_and_halfway_slerp():
    rng = np.random.default_rng(4)
    length = 9  # t = 5/10 at frame 5 of 0..10
    gpos, grot, offsets = _windows(rng, 2, length)
    ep = B.endpoints(gpos, grot, PARENTS, offsets, length)
    mo = B.interpolation(ep, length)
    np.testing.assert_allclose(mo.pos[:, 5, 0], 0.5 * (ep.root_last + ep.root_key), atol=1e-9)
    steps = np.diff(mo.pos[:, :, 0], axis=1)
    np.testing.assert_allclose(steps, np.repeat(steps[:, :1], length + 1, axis=1), atol=1e-9)
    half = R.quat_slerp(ep.rot_last, ep.rot_key, 0.5)
    assert _same_rotation(mo.quat[:, 5, 0], half[:, 0])


def test_quintic_decay_boundary_conditions():
    x0, v0, t1 = np.array([3.0, -2.0]), np.array([0.5, 1.0]), 11.0
    t = np.array([0.0, 1e-6, t1 - 1e-6, t1, t1 + 3])
    x = B.quintic_decay(x0, v0, t1, t)
    np.testing.assert_allclose(x[:, 0], x0)
    np.testing.assert_allclose((x[:, 1] - x[:, 0]) / 1e-6, v0, rtol=1e-4)
    np.testing.assert_allclose(x[:, 2:], 0.0, atol=1e-9)


def test_inertialization_starts_with_the_context_velocity():
    """The root's first step continues the context's velocity (to second order), unlike interpolation."""
    rng = np.random.default_rng(5)
    length = 30
    gpos, grot, offsets = _windows(rng, 2, length)
    ep = B.endpoints(gpos, grot, PARENTS, offsets, length)
    mo = B.inertialization(ep, length)
    v_ctx = ep.root_last - ep.root_prev
    first = mo.pos[:, 1, 0] - mo.pos[:, 0, 0]
    assert np.abs(first - v_ctx).max() < 0.05 * np.abs(v_ctx).max() + 0.05


def test_endpoints_needs_the_whole_window():
    rng = np.random.default_rng(6)
    gpos, grot, offsets = _windows(rng, 1, 5)
    with pytest.raises(ValueError, match="need"):
        B.endpoints(gpos, grot, PARENTS, offsets, 6)
