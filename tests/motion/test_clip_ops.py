"""Clip and Skeleton operations on synthetic data: FK, slice, resample, mirror, mirror pairs, validation."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.motion import Clip, Skeleton, parse_bvh
from rsmt_studio.motion import rotations as R


def _skeleton(names, parents, offsets) -> Skeleton:
    n = len(names)
    return Skeleton(names=names, parents=parents, offsets=np.asarray(offsets, float),
                    channels=[("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")] * n,
                    rotation_orders=["ZXY"] * n)


def _style100_like(t: int = 40, seed: int = 0) -> Clip:
    """A world-aligned symmetric rig named like 100STYLE, with random motion."""
    names = ["Hips", "Chest", "LeftHip", "LeftKnee", "RightHip", "RightKnee", "LeftShoulder", "RightShoulder"]
    parents = [-1, 0, 0, 2, 0, 4, 1, 1]
    offsets = [[0, 90, 0], [0, 20, 0], [9, -4, 0], [0, -40, 1], [-9, -4, 0], [0, -40, 1], [15, 10, -2],
               [-15, 10, -2]]
    sk = _skeleton(names, parents, offsets)
    rng = np.random.default_rng(seed)
    pos = np.broadcast_to(sk.offsets, (t, len(names), 3)).copy()
    pos[:, 0] += rng.normal(size=(t, 3)) * 10
    rot = R.quat_normalize(rng.normal(size=(t, len(names), 4)))
    return Clip(skeleton=sk, fps=60.0, local_pos=pos, local_rot=rot, name="synthetic")


def test_fk_simple_chain():
    sk = _skeleton(["a", "b", "c"], [-1, 0, 1], [[1, 2, 3], [0, 10, 0], [0, 5, 0]])
    rot = R.identity_quat((1, 3))
    rot[0, 1] = R.axis_angle_to_quat(np.array([0, 0, 1.0]), np.pi / 2)  # b turns 90 deg about Z
    clip = Clip(skeleton=sk, fps=30, local_pos=np.broadcast_to(sk.offsets, (1, 3, 3)), local_rot=rot)
    gpos, grot = clip.fk()
    np.testing.assert_allclose(gpos[0], [[1, 2, 3], [1, 12, 3], [-4, 12, 3]], atol=1e-12)
    np.testing.assert_allclose(grot[0, 2], rot[0, 1], atol=1e-12)


def test_properties_and_slice(tiny_bvh):
    clip = parse_bvh(tiny_bvh + "")
    assert clip.duration == pytest.approx(1 / 30)
    part = clip.slice(1, 2)
    assert part.num_frames == 1 and part.frame_range == (1, 2)
    np.testing.assert_allclose(part.root_pos, clip.root_pos[1:2])
    assert part.slice(0, 1).frame_range == (1, 2)  # ranges stay relative to the source file
    with pytest.raises(ValueError):
        clip.slice(2, 2)


def test_resample_down_is_a_subset_and_up_interpolates():
    clip = _style100_like(41)
    half = clip.resample(30)
    assert half.num_frames == 21 and half.fps == 30
    np.testing.assert_allclose(half.global_positions(), clip.global_positions()[::2], atol=1e-9)
    double = clip.resample(120)
    assert double.num_frames == 81
    assert double.duration == pytest.approx(clip.duration)
    np.testing.assert_allclose(double.local_pos[1::2], 0.5 * (clip.local_pos[:-1] + clip.local_pos[1:]), atol=1e-12)
    mid = R.quat_slerp(clip.local_rot[:-1], clip.local_rot[1:], 0.5)
    assert np.all(np.abs(np.abs(np.sum(double.local_rot[1::2] * mid, -1)) - 1) < 1e-9)


def test_mirror_world_aligned_rig():
    clip = _style100_like()
    perm = clip.skeleton.mirror_indices()
    assert [clip.skeleton.names[i] for i in perm] == [
        "Hips", "Chest", "RightHip", "RightKnee", "LeftHip", "LeftKnee", "RightShoulder", "LeftShoulder"]
    mirrored = clip.mirror()
    np.testing.assert_allclose(mirrored.global_positions(), clip.global_positions()[:, perm] * [-1, 1, 1],
                               atol=1e-9)
    # On a world-aligned symmetric rig this is the textbook rule: negate the y and z quaternion parts.
    np.testing.assert_allclose(np.abs(np.sum(mirrored.local_rot * (clip.local_rot[:, perm] * [1, 1, -1, -1]), -1)),
                               1.0, atol=1e-9)
    np.testing.assert_allclose(mirrored.local_pos[:, 1:], clip.local_pos[:, 1:], atol=1e-9)  # offsets kept
    np.testing.assert_allclose(mirrored.mirror().global_positions(), clip.global_positions(), atol=1e-9)


@pytest.mark.parametrize("left,right", [
    ("LeftArm", "RightArm"), ("mixamorig:LeftHand", "mixamorig:RightHand"), ("Hand_L", "Hand_R"),
    ("hand.l", "hand.r"), ("L_Foot", "R_Foot"), ("LThigh", "RThigh"), ("Bip01 L Calf", "Bip01 R Calf"),
    ("left_toe", "right_toe"),
])
def test_mirror_pairs_by_name(left, right):
    sk = _skeleton(["Root", left, right, "Lamp"], [-1, 0, 0, 0], np.zeros((4, 3)))
    np.testing.assert_array_equal(sk.mirror_indices(), [0, 2, 1, 3])


def test_skeleton_validation_and_lookup():
    sk = _skeleton(["a", "b"], [-1, 0], np.zeros((2, 3)))
    assert sk.index("b") == 1 and sk.children(0) == [1] and sk.num_joints == 2 and sk.roots == [0]
    with pytest.raises(KeyError, match="nope"):
        sk.index("nope")
    with pytest.raises(ValueError, match="parent"):
        _skeleton(["a", "b"], [1, -1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(T,2,4\)"):
        Clip(skeleton=sk, fps=30, local_pos=np.zeros((3, 2, 3)), local_rot=np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="fps"):
        Clip(skeleton=sk, fps=0, local_pos=np.zeros((3, 2, 3)), local_rot=np.zeros((3, 2, 4)))


def test_continuity_keeps_pose():
    clip = _style100_like()
    flipped = Clip(skeleton=clip.skeleton, fps=clip.fps, local_pos=clip.local_pos, local_rot=-clip.local_rot)
    cont = flipped.with_continuity()
    assert (np.sum(cont.local_rot[1:] * cont.local_rot[:-1], -1) >= 0).all()
    np.testing.assert_allclose(cont.global_positions(), clip.global_positions(), atol=1e-9)


def test_mirror_rig_with_arbitrary_rest_frames():
    """Each joint's frame turned by a random fixed rotation (like Maya joint orients, but not axis-aligned)."""
    base = _style100_like(seed=3)
    sk0 = base.skeleton
    rng = np.random.default_rng(7)
    q_frame = R.quat_normalize(rng.normal(size=(sk0.num_joints, 4)))  # new frame j = old frame j * q_frame[j]
    offsets = sk0.offsets.copy()
    rot = base.local_rot.copy()
    pos = base.local_pos.copy()
    for j, p in enumerate(sk0.parents):
        if p >= 0:
            offsets[j] = R.quat_rotate(R.quat_conj(q_frame[p]), sk0.offsets[j])
            pos[:, j] = R.quat_rotate(R.quat_conj(q_frame[p]), base.local_pos[:, j])
            rot[:, j] = R.quat_mul(R.quat_mul(R.quat_conj(q_frame[p]), base.local_rot[:, j]), q_frame[j])
        else:
            rot[:, j] = R.quat_mul(base.local_rot[:, j], q_frame[j])
    sk = Skeleton(names=sk0.names, parents=sk0.parents, offsets=offsets, channels=sk0.channels,
                  rotation_orders=sk0.rotation_orders)
    clip = Clip(skeleton=sk, fps=base.fps, local_pos=pos, local_rot=rot)
    np.testing.assert_allclose(clip.global_positions(), base.global_positions(), atol=1e-9)
    perm = sk.mirror_indices()
    mirrored = clip.mirror()
    np.testing.assert_allclose(mirrored.global_positions(), clip.global_positions()[:, perm] * [-1, 1, 1],
                               atol=1e-9)
    np.testing.assert_allclose(mirrored.local_pos[:, 1:], clip.local_pos[:, 1:], atol=1e-9)
