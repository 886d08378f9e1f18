"""motion.metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.motion import metrics as M
from rsmt_studio.motion import rotations as R


def _quats(rng, shape):
    return R.quat_normalize(rng.normal(size=(*shape, 4)))


def test_l2p_zero_for_identical_and_known_offset():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 5, 4, 3)) * 10
    mean, std = M.position_stats(gt)
    assert M.l2p(gt, gt, mean, std) == 0.0
    pred = gt.copy()
    pred[..., 2, 1] += 6.0  # one coordinate moved by 6 units in every frame
    assert M.l2p(pred, gt, mean, std) == pytest.approx(6.0 / std[2 * 3 + 1])
    pred[..., 0, 0] += 8.0  # a second coordinate: per-frame norm of the two normalised offsets
    want = np.hypot(6.0 / std[7], 8.0 / std[0])
    assert M.l2p(pred, gt, mean, std) == pytest.approx(want)


def test_position_stats_per_coordinate():
    pos = np.zeros((2, 2, 1, 3))
    pos[0, :, 0, 0] = 1.0
    pos[1, :, 0, 0] = 3.0
    mean, std = M.position_stats(pos)
    assert mean == pytest.approx([2.0, 0.0, 0.0])
    assert std[0] == pytest.approx(1.0)
    assert std[1] > 0  # zero-variance coordinates are floored, never divided by zero


def test_l2q_zero_for_identical_and_sign_flips():
    rng = np.random.default_rng(1)
    gt = R.quat_continuity(_quats(rng, (6, 2, 3)).transpose(1, 0, 2, 3), axis=1)  # (B=2,T=6,J=3,4)
    ref = gt[:, 0]
    assert M.l2q(gt, gt, ref) == 0.0
    flipped = gt * np.where(rng.random((2, 6, 3, 1)) < 0.5, -1.0, 1.0)  # same rotations, random signs
    assert M.l2q(flipped, gt, ref) == pytest.approx(0.0, abs=1e-12)
    assert M.npss(flipped, gt, ref) == pytest.approx(0.0, abs=1e-12)


def test_l2q_known_angle():
    """Identity vs a rotation by theta on one of two joints: per frame |q - 1| = 2 sin(theta/4)."""
    theta = 0.7
    b, t = 2, 4
    gt = np.zeros((b, t, 2, 4))
    gt[..., 0] = 1.0
    pred = gt.copy()
    pred[:, :, 1] = R.axis_angle_to_quat(np.array([0.0, 0.0, 1.0]), np.array(theta))
    assert M.l2q(pred, gt, gt[:, 0]) == pytest.approx(2 * np.sin(theta / 4))


def test_fast_npss_hand_computed():
    """gt [1,0]: FFT real [1,1], power [1,1], cdf [.5,1]; pred [1,1]: FFT [2,0], cdf [1,1] -> EMD 0.5."""
    gt = np.array([[[1.0], [0.0]]])
    pred = np.array([[[1.0], [1.0]]])
    assert M.fast_npss(gt, pred) == pytest.approx(0.5)
    assert M.fast_npss(gt, gt) == 0.0
    # power weighting: a second channel identical in both, with gt power 8 (values [2,2]: FFT [4,0])
    gt2 = np.concatenate([gt, [[[2.0], [2.0]]]], axis=-1)
    pred2 = np.concatenate([pred, [[[2.0], [2.0]]]], axis=-1)
    assert M.fast_npss(gt2, pred2) == pytest.approx(0.5 * 2 / (2 + 16))
    # an all-zero channel has no power: it is skipped, not NaN
    gt3 = np.concatenate([gt, np.zeros((1, 2, 1))], axis=-1)
    pred3 = np.concatenate([pred, np.zeros((1, 2, 1))], axis=-1)
    assert M.fast_npss(gt3, pred3) == pytest.approx(0.5)


def test_foot_skate_weights_and_values():
    planted = np.array([10.0, 2.0])
    feet = np.array([1, 2])
    b, t, j = 2, 3, 3
    prev = np.zeros((b, j, 3))
    prev[:, 1, 1], prev[:, 2, 1] = 10.0, 2.0
    pos = np.repeat(prev[:, None], t, axis=1)
    assert M.foot_skate(pos, prev, feet, planted) == 0.0  # planted and still
    slide = pos.copy()
    slide[:, :, 1, 0] = np.arange(1, t + 1) * 1.5  # ankle slides 1.5 units/frame at its planted height
    # half of the foot-joint frames slide at weight 1
    assert M.foot_skate(slide, prev, feet, planted) == pytest.approx(1.5 / 2)
    lifted = slide.copy()
    lifted[:, :, 1, 1] = 10.0 + M.SKATE_HEIGHT  # lifted by the full threshold: weight 0
    assert M.foot_skate(lifted, prev, feet, planted) == 0.0
    half = slide.copy()
    half[:, :, 1, 1] = 10.0 + M.SKATE_HEIGHT / 2  # weight 2 - sqrt(2)
    assert M.foot_skate(half, prev, feet, planted) == pytest.approx(1.5 / 2 * (2 - np.sqrt(2)))
    vertical = pos.copy()
    vertical[:, :, 2, 1] = 2.0 - np.arange(1, t + 1) * 0.1  # vertical motion only: not skating
    assert M.foot_skate(vertical, prev, feet, planted) == 0.0


def test_planted_heights_are_per_joint():
    pos = np.zeros((1, 100, 3, 3))
    pos[0, :, 1, 1] = np.linspace(15, 40, 100)  # an ankle: planted ~15
    pos[0, :, 2, 1] = np.linspace(4, 20, 100)  # a toe: planted ~4
    h = M.planted_heights(pos, np.array([1, 2]))
    assert h[0] == pytest.approx(15 + 0.05 * 25 * 99 / 99, abs=0.2)
    assert h[1] == pytest.approx(4 + 0.05 * 16, abs=0.2)


def test_style_accuracy():
    assert M.style_accuracy(["a", "b", "b", "c"], ["a", "b", "c", "c"]) == 0.75
    with pytest.raises(ValueError):
        M.style_accuracy(["a"], ["a", "b"])


def test_head_turn_measures_the_head_on_its_parent_from_the_last_context_frame():
    from rsmt_studio.motion import metrics as M
    from rsmt_studio.motion import rotations as R

    b, t, j, head, neck = 2, 5, 3, 2, 1
    last = np.broadcast_to(np.eye(3), (b, j, 3, 3)).copy()
    frames = np.broadcast_to(np.eye(3), (b, t, j, 3, 3)).copy()
    turn = R.quat_to_matrix(R.axis_angle_to_quat(np.array([0.0, 0.0, 1.0]), np.radians(30.0)))
    frames[0, 3, head] = turn  # window 0 nods 30 degrees in one frame
    frames[1, :, neck] = turn  # window 1 turns the neck and the head with it: the head does not move on its parent
    frames[1, :, head] = turn
    got = M.head_turn_deg(frames, last, head, neck)
    assert got == pytest.approx([30.0, 0.0], abs=1e-6)


def test_seam_jump_is_the_mean_local_rotation_change_across_each_seam():
    from rsmt_studio.motion import metrics as M
    from rsmt_studio.motion import rotations as R

    b, t, j = 2, 4, 3
    parents = np.array([-1, 0, 1])
    eye = np.broadcast_to(np.eye(3), (b, j, 3, 3)).copy()
    frames = np.broadcast_to(np.eye(3), (b, t, j, 3, 3)).copy()
    turn = R.quat_to_matrix(R.axis_angle_to_quat(np.array([0.0, 1.0, 0.0]), np.radians(30.0)))
    frames[0, :, 0] = turn  # window 0: the root turns 30 degrees at the first frame and stays; children follow
    frames[0, :, 1] = turn
    frames[0, :, 2] = turn
    frames[1, -1, 2] = turn  # window 1: the last joint turns on its parent in the last frame only
    seam_in, seam_out = M.seam_jump_deg(frames, eye, eye, parents)
    assert seam_in == pytest.approx([10.0, 0.0], abs=1e-6)  # 30 degrees at one joint of three
    assert seam_out == pytest.approx([10.0, 10.0], abs=1e-6)


def test_lowest_foot_is_the_mean_of_each_frame_s_lowest_foot_joint():
    from rsmt_studio.motion import metrics as M

    pos = np.zeros((1, 2, 4, 3))
    pos[0, :, :, 1] = [[5.0, 3.0, 9.0, 1.0], [2.0, 4.0, 8.0, 6.0]]
    assert M.lowest_foot_cm(pos, np.array([1, 2, 3])) == pytest.approx([(1.0 + 4.0) / 2])
