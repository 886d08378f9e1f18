"""Left/right mirroring that keeps the skeleton's own offsets.

Why not just negate quaternion components? That is only right when every joint's rest frame is aligned with
the world (100STYLE). Bandai's joints carry Maya-style orients (bones along local +X), so a world reflection
is a *different* reflection in each joint's frame. We find, per joint p, the reflection A_p of its frame that
maps each child's rest vector onto the rest vector of that child's partner (A_p r_j = r_sigma(j)), then

    root:      R'' = M R_sigma A_root,        t'' = M t_sigma
    others:    R'' = A_p^T R_sigma A_j,       t'' = A_p^T t_sigma

where M reflects the world. Global positions are then exactly the reflected, swapped ones (see the tests),
and local translations still equal the skeleton offsets on a symmetric rig.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from . import rotations as R

if TYPE_CHECKING:
    from .clip import Clip


def _reflection(axis: int) -> np.ndarray:
    m = np.eye(3)
    m[axis, axis] = -1.0
    return m


def _procrustes_reflection(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Orthogonal A with det -1 minimising ||A src_i - dst_i||."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.eye(3)
    d[2, 2] = -1.0 if np.linalg.det(u @ vt) > 0 else 1.0  # flip the weakest axis so that det(A) = -1
    return u @ d @ vt


def joint_reflections(clip: Clip, perm: np.ndarray, axis: int = 0) -> np.ndarray:
    """(J,3,3) reflection of each joint's local frame used by :func:`mirror_clip`."""
    sk = clip.skeleton
    nj = sk.num_joints
    # Rest vector of each joint in its parent's frame: its translation where constant over the clip.
    lp = clip.local_pos
    constant = np.ptp(lp, axis=0).max(axis=-1) < 1e-6 if len(lp) else np.ones(nj, bool)
    rest = lp[0] if len(lp) else sk.offsets
    scale = max(float(np.abs(sk.offsets).max(initial=0.0)), 1.0)
    tol = (1e-6 * scale) ** 2
    world = _reflection(axis)
    out = np.empty((nj, 3, 3))
    for p in range(nj):
        src, dst = [], []
        for c in sk.children(p):
            if constant[c] and constant[perm[c]]:
                src.append(rest[c])
                dst.append(rest[perm[c]])
        if p in sk.end_sites and perm[p] in sk.end_sites:
            src.append(sk.end_sites[p])
            dst.append(sk.end_sites[perm[p]])
        inherited = world if sk.parents[p] < 0 else out[sk.parents[p]]
        cands = [inherited, _reflection(0), _reflection(1), _reflection(2)]
        if src:
            s, d = np.array(src), np.array(dst)
            cands.append(_procrustes_reflection(s, d))  # exact for one vector too (rank-1 SVD)
            scores = [float(np.sum((s @ a.T - d) ** 2)) for a in cands]
            best = min(scores)
            out[p] = next(a for a, sc in zip(cands, scores) if sc <= best + tol)
        else:
            out[p] = inherited
    return out


def mirror_clip(clip: Clip, axis: int = 0) -> Clip:
    """See the module docstring; `axis` is the world axis that changes sign (0 = X)."""
    sk = clip.skeleton
    perm = sk.mirror_indices()
    a = joint_reflections(clip, perm, axis)
    world = _reflection(axis)
    rot = R.quat_to_matrix(clip.local_rot[:, perm])  # (T,J,3,3)
    pos = clip.local_pos[:, perm]
    left = np.empty_like(a)
    for j, p in enumerate(sk.parents):
        left[j] = world if p < 0 else a[p].T
    new_rot = left[None] @ rot @ a[None]
    new_pos = np.einsum("jab,tjb->tja", left, pos)
    q = R.quat_continuity(R.matrix_to_quat(new_rot), axis=0)
    name = f"{clip.name} (mirrored)" if clip.name else "mirrored"
    return replace(clip, local_pos=new_pos, local_rot=q, name=name)
