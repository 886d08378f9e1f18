"""The foot lock (motion/footlock.py) on a real walk: planted feet stop sliding, bones keep their lengths, the rest
of the body is untouched, and chunked application equals one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import metrics as M
from rsmt_studio.motion import read_bvh
from rsmt_studio.motion.features import global_arrays, model_clip
from rsmt_studio.motion.footlock import FootLock, two_bone_ik

WALK = "Bandai-Namco-Research-Motiondataset-2/data/dataset-2_walk_normal_001.bvh"
CTX, START, LENGTH = 10, 100, 40


@pytest.fixture(scope="module")
def walk(bandai_root: Path):
    """(model skeleton, global positions (T, J, 3)) of a real dataset-2 walk."""
    mclip, ms = model_clip(read_bvh(bandai_root / WALK))
    gpos, _ = global_arrays(mclip)
    return ms, gpos


def moonwalk(gpos: np.ndarray, cm_per_frame: float) -> np.ndarray:
    """The whole body slid forward frame by frame, so every planted foot skates and bone lengths stay true."""
    out = gpos.copy()
    out[..., 2] += cm_per_frame * np.arange(len(gpos))[:, None]
    return out


def lock_for(ms, seq: np.ndarray) -> FootLock:
    return FootLock.for_transition(ms, seq[START - CTX:START], seq[START + LENGTH], LENGTH)


def bone_lengths(ms, pos: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pos[:, 1:] - pos[:, ms.parents[1:]], axis=-1)


def test_two_bone_ik_reaches_the_target_and_keeps_both_lengths():
    rng = np.random.default_rng(0)
    hip = rng.normal(size=(64, 3))
    knee = hip + rng.normal(size=(64, 3))
    ankle = knee + rng.normal(size=(64, 3))
    a, b = np.linalg.norm(knee - hip, axis=-1), np.linalg.norm(ankle - knee, axis=-1)
    reach = np.abs(a - b) + (a + b - np.abs(a - b)) * rng.uniform(0.1, 0.9, 64)
    direction = rng.normal(size=(64, 3))
    target = hip + direction / np.linalg.norm(direction, axis=-1, keepdims=True) * reach[:, None]
    knee2, ankle2 = two_bone_ik(hip, knee, ankle, target)
    np.testing.assert_allclose(ankle2, target, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(knee2 - hip, axis=-1), a, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ankle2 - knee2, axis=-1), b, atol=1e-6)


def test_a_sliding_planted_foot_is_held_and_nothing_else_moves(walk):
    ms, gpos = walk
    slid = moonwalk(gpos, 1.0)  # 1 cm per frame: under the lock's speed limit, as a planted foot's slide is
    raw = slid[START:START + LENGTH]
    out = lock_for(ms, slid).apply(raw)
    planted = M.planted_heights(gpos, ms.feet)
    real = M.foot_skate(gpos[None, START:START + LENGTH], gpos[START - 1][None], ms.feet, planted)
    before = M.foot_skate(raw[None], slid[START - 1][None], ms.feet, planted)
    after = M.foot_skate(out[None], slid[START - 1][None], ms.feet, planted)
    # most of the added slide is gone; what stays is landing and take-off (low but fast: not a contact), as real
    assert after - real < 0.5 * (before - real), (real, before, after)
    np.testing.assert_allclose(bone_lengths(ms, out), bone_lengths(ms, raw), atol=1e-6)
    legs = set()
    for hip in (ms.left_hip, ms.right_hip):
        legs |= {j for j in range(ms.num_joints) if hip in _ancestors(ms, j) | {j}}
    others = [j for j in range(ms.num_joints) if j not in legs]
    np.testing.assert_array_equal(out[:, others], raw[:, others])  # hips, spine, arms, head as the model made them
    shift = np.linalg.norm(out[:, ms.feet] - raw[:, ms.feet], axis=-1).max(axis=1)
    assert shift.max() > 1.0  # it did hold something
    assert shift[-1] <= 0.2 * shift.max()  # and lets go before the keyframe


def test_chunk_by_chunk_equals_one_call(walk):
    ms, gpos = walk
    slid = moonwalk(gpos, 1.0)
    raw = slid[START:START + LENGTH]
    whole = lock_for(ms, slid).apply(raw)
    lock = lock_for(ms, slid)
    chunked = np.concatenate([lock.apply(raw[i:i + 8]) for i in range(0, LENGTH, 8)])
    np.testing.assert_allclose(chunked, whole, atol=1e-9)


def test_a_real_walk_is_barely_touched(walk):
    """Real planted feet hardly slide, so the lock has little to do on real motion (the model's own is judged by
    eval: docs/quality.md). What it does move: an ankle held through the heel's roll before take-off (up to ~5 cm
    on real walks), let go over the blend frames."""
    ms, gpos = walk
    raw = gpos[START:START + LENGTH]
    out = lock_for(ms, gpos).apply(raw)
    shift = np.linalg.norm(out[:, ms.feet] - raw[:, ms.feet], axis=-1)
    assert shift.mean() < 1.5 and shift.max() < 6.0, (shift.mean(), shift.max())


def _ancestors(ms, j: int) -> set[int]:
    out = set()
    while j >= 0:
        j = int(ms.parents[j])
        if j >= 0:
            out.add(j)
    return out
