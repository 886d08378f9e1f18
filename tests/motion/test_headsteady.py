"""Head steadiness (motion/headsteady.py) on a real walk: the head turns `keep` as far off the straight way to the
keyframe, the other joints and every position stay, and chunk by chunk equals one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import read_bvh
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.features import fk_positions, global_arrays, model_clip
from rsmt_studio.motion.headsteady import HeadSteady, head_and_neck

WALK = "Bandai-Namco-Research-Motiondataset-2/data/dataset-2_walk_normal_001.bvh"
START, LENGTH = 100, 30


@pytest.fixture(scope="module")
def walk(bandai_root: Path):
    """(model skeleton, global 6D rotations (T, J, 6), global positions) of a real dataset-2 walk."""
    mclip, ms = model_clip(read_bvh(bandai_root / WALK))
    gpos, grot = global_arrays(mclip)
    return ms, R.matrix_to_6d(grot), gpos


def head_on_neck(ms, r6: np.ndarray) -> np.ndarray:
    head, neck = head_and_neck(ms)
    g = R.sixd_to_matrix(r6)
    return np.swapaxes(g[..., neck, :, :], -1, -2) @ g[..., head, :, :]


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    rel = np.swapaxes(a, -1, -2) @ b
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def steady(ms, r6, keep: float) -> HeadSteady:
    return HeadSteady.for_transition(ms, r6[START - 1], r6[START + LENGTH], LENGTH, keep)


def test_a_wobbling_head_turns_keep_as_far_off_the_straight_way(walk):
    """A head shaken ±20° about its neck comes out turned `keep` as far off the slerp path; nothing else moves."""
    ms, r6, _ = walk
    head, _ = head_and_neck(ms)
    frames = r6[START:START + LENGTH].copy()
    shake = R.quat_to_matrix(R.axis_angle_to_quat(np.array([0.0, 1.0, 0.0]),
                                                  np.radians(20.0) * np.sin(np.arange(LENGTH) * 0.7)))
    g = R.sixd_to_matrix(frames)
    g[:, head] = g[:, head] @ shake
    wobbly = R.matrix_to_6d(g)
    straight = steady(ms, r6, 0.0).apply(wobbly)
    for keep in (0.25, 0.5):
        out = steady(ms, r6, keep).apply(wobbly)
        off_in = angle_deg(head_on_neck(ms, straight), head_on_neck(ms, wobbly))
        off_out = angle_deg(head_on_neck(ms, straight), head_on_neck(ms, out))
        assert off_in.max() > 15.0
        np.testing.assert_allclose(off_out, keep * off_in, atol=1e-6)
        others = np.arange(ms.num_joints) != head
        np.testing.assert_allclose(out[:, others], wobbly[:, others], atol=1e-12)
    # keep 0 is the straight way itself: from the context frame's head towards the keyframe's, evenly
    path = head_on_neck(ms, straight)
    start, key = head_on_neck(ms, r6[START - 1]), head_on_neck(ms, r6[START + LENGTH])
    steps = angle_deg(np.concatenate([start[None], path[:-1]]), path)
    np.testing.assert_allclose(steps, angle_deg(start, key) / (LENGTH + 1), atol=1e-6)
    np.testing.assert_allclose(steady(ms, r6, 1.0).apply(wobbly), wobbly)


def test_no_position_moves_and_chunks_equal_one_call(walk):
    """The head is a leaf: FK positions are the same with or without it; chunks carry the frame count."""
    ms, r6, gpos = walk
    frames = r6[START:START + LENGTH]
    whole = steady(ms, r6, 0.5).apply(frames)
    s = steady(ms, r6, 0.5)
    chunked = np.concatenate([s.apply(frames[a:a + 8]) for a in range(0, LENGTH, 8)])
    np.testing.assert_allclose(chunked, whole, atol=1e-12)
    p = gpos[START:START + LENGTH][:, ms.pos_joints]
    np.testing.assert_allclose(fk_positions(p, whole, ms), fk_positions(p, frames, ms), atol=1e-9)
    assert not np.allclose(whole, frames)  # the real head does leave the straight way a little
