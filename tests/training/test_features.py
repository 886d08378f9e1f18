"""motion.features: joint split, canonical frame on the last context frame, FK of rotation joints, protocol."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.motion import features as Fe
from rsmt_studio.motion import read_bvh

from .conftest import style100_skeleton, synthetic_walk


def test_100style_split_matches_rsmt_reference():
    ms = Fe.model_skeleton(style100_skeleton())
    assert ms.num_joints == 23
    assert ms.rot_joints.tolist() == [1, 5, 9, 10, 11, 12, 13, 15, 19]
    assert ms.pos_joints.tolist() == [0, 2, 3, 4, 6, 7, 8, 14, 16, 17, 18, 20, 21, 22]
    assert [ms.names[j] for j in ms.feet] == ["LeftAnkle", "LeftToe", "RightAnkle", "RightToe"]
    assert ms.names[ms.mirror[1]] == "RightHip" and ms.names[ms.mirror[14]] == "Head"


def test_bandai_dummy_root_folded_and_split(bandai_root):
    path = next(bandai_root.glob("*-2/data/dataset-2_walk_normal_001.bvh"))
    clip = read_bvh(path)
    mclip, ms = Fe.model_clip(clip)
    assert ms.num_joints == 21 and ms.names[0] == "Hips"
    assert sorted(ms.names[j] for j in ms.rot_joints) == sorted(
        ["Spine", "Chest", "Neck", "Shoulder_L", "Shoulder_R", "UpperLeg_L", "UpperLeg_R"])
    assert ms.num_pos_joints == 14
    g_file, _ = clip.fk()
    g_model, _ = Fe.global_arrays(mclip)
    np.testing.assert_allclose(g_model, g_file[:, 1:], atol=1e-9)
    # the walk goes forward: the facing direction agrees with the root's travel
    f = Fe.facing(g_model, ms)
    travel = np.diff(g_model[:, 0], axis=0)
    assert np.mean(np.sum(f[:-1] * travel, -1)) > 1.0


def _world(clip):
    mclip, ms = Fe.model_clip(clip)
    g, r = Fe.global_arrays(mclip)
    return g, r, ms


def test_canonical_frame_uses_last_context_frame_only():
    g, r, ms = _world(synthetic_walk("Happy", "FW", frames=200, fps=30.0))
    proto = Fe.KeyframeProtocol(20)
    win_g, win_r = g[:proto.window].copy(), r[:proto.window].copy()
    prob = Fe.make_problem(win_g, win_r, ms, proto)
    last = proto.n_past - 1
    # hips of the last context frame at the origin (y kept), facing +Z
    np.testing.assert_allclose(prob.state.pos[last, 0, [0, 2]], 0.0, atol=1e-9)
    f = Fe.facing(prob.state.pos[last], ms)
    np.testing.assert_allclose(f, [0, 0, 1], atol=1e-9)
    # changing anything after the context must not change the context's canonical coordinates
    win_g2 = win_g.copy()
    win_g2[proto.n_past:] += np.array([50.0, 0.0, -30.0])
    prob2 = Fe.make_problem(win_g2, win_r, ms, proto)
    np.testing.assert_allclose(prob2.state.pos[:proto.n_past], prob.state.pos[:proto.n_past], atol=1e-9)
    assert proto.keyframe == 30 and proto.window == 32 and proto.tta(9) == 21


def test_fk_positions_reproduce_rotation_joints():
    g, r, ms = _world(synthetic_walk("Proud", "BW", frames=80, fps=30.0))
    _, st = Fe.canonical_window(g[None], r[None], ms, 9)
    np.testing.assert_allclose(Fe.fk_positions(st.p[0], st.r[0], ms), st.pos[0], atol=1e-6)


def test_root_space_and_style_features_are_heading_invariant():
    g, r, ms = _world(synthetic_walk("Tired", "FW", frames=90, fps=30.0))
    yaw = np.array([[np.cos(1.0), 0, np.sin(1.0)], [0, 1, 0], [-np.sin(1.0), 0, np.cos(1.0)]])
    g2 = g @ yaw.T + np.array([100.0, 0.0, -40.0])
    r2 = np.einsum("ij,tkjl->tkil", yaw, r)
    np.testing.assert_allclose(Fe.style_features(g2, r2, ms), Fe.style_features(g, r, ms), atol=1e-4)
    np.testing.assert_allclose(Fe.pae_velocities(g2, ms), Fe.pae_velocities(g, ms), atol=1e-4)
    assert Fe.style_features(g, r, ms).shape == (89, 22 * 12)


def test_pae_windows_label_every_frame_clamped_at_edges():
    vel = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 6), np.float32)
    w = Fe.pae_windows(vel, 5)
    assert w.shape == (10, 6, 5)
    assert w[0, 0].tolist() == [0, 0, 0, 1, 2] and w[9, 0].tolist() == [7, 8, 9, 9, 9]


def test_contacts_are_one_when_still_zero_when_fast():
    g, _, ms = _world(synthetic_walk("Happy", "ID", frames=60, fps=30.0))
    still = np.repeat(g[:1], 10, axis=0)
    assert np.allclose(Fe.foot_contacts(still, ms), 1.0)
    fast = still + np.arange(10)[:, None, None] * np.array([3.0, 0, 0])
    assert np.allclose(Fe.foot_contacts(fast, ms)[1:], 0.0)


def test_protocol_rejects_wrong_window():
    g, r, ms = _world(synthetic_walk("Happy", "FW", frames=60, fps=30.0))
    with pytest.raises(ValueError, match="protocol needs 32"):
        Fe.make_problem(g[:31], r[:31], ms, Fe.KeyframeProtocol(20))


def test_precomputed_style_rows_equal_window_features(style100_root, tmp_path):
    from rsmt_studio.training import data as D

    records = D.list_100style(style100_root)[:2]
    out = tmp_path / "two.npz"
    D.preprocess(records, set(), out)
    md = D.MotionData.load(out, mirror=False)
    a = int(md.starts[1]) + 7
    idx = np.arange(a, a + 40)
    direct = Fe.style_features(md.gpos[idx].astype(np.float64), md.grot[idx].astype(np.float64), md.ms)
    np.testing.assert_allclose(md.style_feat[idx[:-1]], direct, atol=1e-3)


def test_canonical_frame_inverse_round_trips():
    g, r, ms = _world(synthetic_walk("Happy", "FW", frames=40, fps=30.0))
    frame = Fe.canonical_transform(g[9], ms)
    np.testing.assert_allclose(frame.inverse_positions(frame.positions(g)), g, atol=1e-9)
    np.testing.assert_allclose(frame.inverse_rotations(frame.rotations(r)), r, atol=1e-12)
    # batched frames (leading axis) agree with one-by-one
    gb = np.stack([g, g + 5.0])
    fb = Fe.canonical_transform(gb[:, 9], ms)
    np.testing.assert_allclose(fb.positions(gb)[1], Fe.canonical_transform(gb[1, 9], ms).positions(gb[1]), atol=1e-9)
