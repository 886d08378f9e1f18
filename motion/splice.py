"""Cross-take splices: a window's context followed by another take's frames, joined where the poses match.

Why: dataset-2 has every locomotion content in all seven styles, so a context of style A followed by a take of
style B (same content) is a real style switch with ground truth. The eval's switch scenario uses it
(app/eval/style.py); a training recipe with spliced cross-style rows can use the same function (training/ may
import motion/ only).
"""

from __future__ import annotations

import numpy as np

from .features import ModelSkeleton, canonical_transform, facing, yaw_matrix_to_z


def root_poses(gpos: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """Per frame, positions in that frame's own facing frame (hips XZ at 0, y absolute): (…,T,J,3)."""
    yaw = yaw_matrix_to_z(facing(gpos, ms))
    origin = gpos[..., 0, :].copy()
    origin[..., 1] = 0.0
    return np.einsum("...ij,...kj->...ki", yaw, gpos - origin[..., None, :])


def splice_window(window_p: np.ndarray, window_r: np.ndarray, gpos: np.ndarray, grot: np.ndarray,
                  ms: ModelSkeleton, n_past: int, match: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """Frames n_past.. of `window` (W,J,3)/(W,J,3,3) replaced by frames of the take `gpos`/`grot`: from the start
    whose `match` frames up to the junction best match the window's (mean per-joint distance of root-space poses,
    a cheap phase match), moved so both junction frames share hips XZ and facing. Returns the spliced window
    and the start in the take. Raises ValueError when the take is shorter than the window."""
    w, last = len(window_p), n_past - 1
    if len(gpos) < w:
        raise ValueError(f"take of {len(gpos)} frames is shorter than a {w}-frame window")
    src = root_poses(window_p[last - match + 1 : last + 1], ms)
    poses = root_poses(gpos, ms)
    starts = np.arange(0, len(gpos) - w + 1)
    d = sum(np.linalg.norm(poses[starts + last - match + 1 + k] - src[k], axis=-1).mean(-1) for k in range(match))
    s = int(starts[np.argmin(d)])
    ca = canonical_transform(window_p[last], ms)
    cb = canonical_transform(gpos[s + last], ms)
    bp = ca.inverse_positions(cb.positions(gpos[s : s + w]))
    br = ca.inverse_rotations(cb.rotations(grot[s : s + w]))
    return np.concatenate([window_p[:n_past], bp[n_past:]]), np.concatenate([window_r[:n_past], br[n_past:]]), s


__all__ = ["root_poses", "splice_window"]
