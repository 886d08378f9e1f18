"""Spliced cross-style sampler rows (issue 14, training/batches.py: spliced_sampler_batch) on the synthetic
100STYLE folder: context from take a (style A), everything after the junction from take b (style B, same
content, same mirror parity), keyframe/phases/contacts from b, deterministic with a seed."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.motion import features as Fe
from rsmt_studio.training import batches as Bt
from rsmt_studio.training import data as D

N_PAST, LENGTH, STYLE_FRAMES = Fe.N_PAST, 20, 60


@pytest.fixture(scope="module")
def spliced_setup(style100_root, tmp_path_factory):
    records = D.list_100style(style100_root)
    out = tmp_path_factory.mktemp("splice") / "s100.npz"
    D.preprocess(records, set(), out)  # every take on the training side
    md = D.MotionData.load(out)
    f = len(md.gpos)
    # frame-index labels: a row's phases/frequencies say which global frame they were copied from
    phase = np.repeat(np.arange(f, dtype=np.float32)[:, None, None], 2, 1).repeat(2, 2)
    labels = Bt.PhaseLabels(phase, np.arange(f, dtype=np.float32)[:, None].repeat(2, 1))
    return md, labels, Bt.SplicePool(md, dataset="100STYLE")


def _batch(setup, seed, **kw):
    md, labels, pool = setup
    return Bt.spliced_sampler_batch(md, labels, False, LENGTH, STYLE_FRAMES, 12, np.random.default_rng(seed),
                                    pool=pool, **kw)


def test_rows_pair_another_style_with_the_same_content_and_parity(spliced_setup):
    md, _, pool = spliced_setup
    b = _batch(spliced_setup, 0)
    w = N_PAST + LENGTH + 2
    assert b.window.pos.shape == (12, w, md.ms.num_joints, 3) and b.window.r.shape == (12, w, md.ms.num_joints, 6)
    assert b.window.phase.shape == (12, w, 2, 2) and b.window.contacts.shape == (12, w, 4)
    assert b.style.shape == (12, STYLE_FRAMES - 1, 12 * (md.ms.num_joints - 1))
    assert b.length == LENGTH and np.isfinite(b.window.pos).all()
    for a, a0, s, s0 in b.sources:
        assert md.styles[a] != b.style_name == md.styles[s]
        assert md.contents[a] == md.contents[s] and a % pool.k == s % pool.k
        assert md.starts[a] <= a0 and a0 + w <= md.starts[a] + md.lengths[a]
        assert md.starts[s] <= s0 and s0 + w <= md.starts[s] + md.lengths[s]


def test_context_from_a_rest_and_keyframe_from_b(spliced_setup):
    md, labels, _ = spliced_setup
    b = _batch(spliced_setup, 1, half_life=1e-4)  # no blend: frames after the junction are b's exactly
    w, last, k = N_PAST + LENGTH + 2, N_PAST - 1, N_PAST + LENGTH
    a_idx = b.sources[:, 1:2] + np.arange(w)
    b_idx = b.sources[:, 3:4] + np.arange(w)
    wa = Bt.window_batch(md, labels, a_idx, ref=last)  # a's window in its own canonical frame
    wb = Bt.window_batch(md, labels, b_idx, ref=last)  # b's window, canonical on b's junction frame
    np.testing.assert_allclose(b.window.pos[:, :N_PAST], wa.pos[:, :N_PAST], atol=1e-3)
    np.testing.assert_allclose(b.window.r[:, :N_PAST], wa.r[:, :N_PAST], atol=1e-4)
    # splice_window puts b's junction frame on a's hips XZ and facing, so in the window's canonical frame b's
    # frames are b's own canonical frames: the keyframe, its outgoing frame and the whole transition
    np.testing.assert_allclose(b.window.pos[:, N_PAST:], wb.pos[:, N_PAST:], atol=1e-3)
    np.testing.assert_allclose(b.window.r[:, k], wb.r[:, k], atol=1e-4)
    # phases, frequencies and contacts: a's in the context, b's after it
    np.testing.assert_array_equal(b.window.phase[:, :N_PAST, 0, 0], a_idx[:, :N_PAST])
    np.testing.assert_array_equal(b.window.phase[:, N_PAST:, 0, 0], b_idx[:, N_PAST:])
    np.testing.assert_array_equal(b.window.frequency[:, N_PAST:, 0], b_idx[:, N_PAST:])
    np.testing.assert_array_equal(b.window.contacts[:, N_PAST:], md.contacts[b_idx[:, N_PAST:]])
    np.testing.assert_array_equal(b.window.contacts[:, :N_PAST], md.contacts[a_idx[:, :N_PAST]])


def test_junction_blend_decays_the_pose_gap(spliced_setup):
    md, labels, _ = spliced_setup
    hard = _batch(spliced_setup, 2, half_life=1e-4)
    soft = _batch(spliced_setup, 2)  # same seed: same takes, same junctions
    np.testing.assert_array_equal(hard.sources, soft.sources)
    w, last = N_PAST + LENGTH + 2, N_PAST - 1
    wa = Bt.window_batch(md, labels, soft.sources[:, 1:2] + np.arange(w), ref=last)
    wb = Bt.window_batch(md, labels, soft.sources[:, 3:4] + np.arange(w), ref=last)
    gap = wa.pos[:, last] - wb.pos[:, last]  # a's junction pose minus b's, both in the window's frame
    assert np.abs(gap).max() > 0.1
    decay = 0.5 ** (np.arange(1, w - last) / 4.0)  # half-life 4 frames
    np.testing.assert_allclose(soft.window.pos[:, N_PAST:] - hard.window.pos[:, N_PAST:],
                               decay[None, :, None, None] * gap[:, None], atol=2e-3)
    np.testing.assert_array_equal(soft.window.pos[:, :N_PAST], hard.window.pos[:, :N_PAST])
    rot_gap = lambda t: np.abs(soft.window.r[:, t] - hard.window.r[:, t]).max()
    assert rot_gap(N_PAST + LENGTH) < 0.1 * rot_gap(N_PAST) and rot_gap(N_PAST) > 0


def test_deterministic_with_a_seed(spliced_setup):
    x, y, z = _batch(spliced_setup, 3), _batch(spliced_setup, 3), _batch(spliced_setup, 4)
    assert x.style_name == y.style_name
    np.testing.assert_array_equal(x.sources, y.sources)
    np.testing.assert_array_equal(x.window.pos, y.window.pos)
    np.testing.assert_array_equal(x.style, y.style)
    assert not np.array_equal(x.sources, z.sources)
