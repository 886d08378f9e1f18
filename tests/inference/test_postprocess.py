"""Rotations from positions (inference/postprocess.py): bones point where the positions say, and a leaf (head,
hand, toe) keeps the rotation the model gave it on its parent, so a correction of the neck is not a head turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rsmt_studio.inference.postprocess import rotations_from_positions
from rsmt_studio.motion import features as Fe
from rsmt_studio.motion import read_bvh
from rsmt_studio.motion import rotations as R

SCENE = Path(__file__).resolve().parents[2] / "assets" / "default_scene" / "generated_walk_proud.bvh"


def _noisy_frames(ms: Fe.ModelSkeleton, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    q = R.quat_normalize(rng.normal(size=(n, ms.num_joints, 4)))
    grot = R.quat_to_matrix(q)
    pos = np.zeros((n, ms.num_joints, 3))
    for j in range(1, ms.num_joints):  # global FK from the global rotations, then nudged off them
        par = ms.parents[j]
        pos[:, j] = pos[:, par] + np.einsum("tij,j->ti", grot[:, par], ms.offsets[j])
    return pos + rng.normal(scale=2.0, size=pos.shape), grot


def test_bones_point_at_their_child_and_leaves_keep_their_rotation_on_the_parent():
    _, ms = Fe.model_clip(read_bvh(SCENE))
    pos, grot = _noisy_frames(ms)
    out = rotations_from_positions(pos, grot, ms)
    head = ms.names.index("Head")
    neck = int(ms.parents[head])
    bone = np.einsum("tij,j->ti", out[:, neck], ms.offsets[head])
    actual = pos[:, head] - pos[:, neck]
    cos = (bone * actual).sum(-1) / np.linalg.norm(bone, axis=-1) / np.linalg.norm(actual, axis=-1)
    assert np.allclose(cos, 1.0, atol=1e-9)  # the neck was swung onto the head's position
    assert not np.allclose(out[:, neck], grot[:, neck], atol=1e-3)
    leaves = [j for j in range(1, ms.num_joints) if not (ms.parents == j).any()]
    assert head in leaves and len(leaves) == 5  # head, two hands, two toes
    for leaf in leaves:
        par = int(ms.parents[leaf])
        on_parent_before = np.swapaxes(grot[:, par], -1, -2) @ grot[:, leaf]
        on_parent_after = np.swapaxes(out[:, par], -1, -2) @ out[:, leaf]
        assert np.allclose(on_parent_after, on_parent_before, atol=1e-9), ms.names[leaf]
