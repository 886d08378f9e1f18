"""Head steadiness: the generated head turns on its neck no more than a fraction of what the sampler gives it.

Why: the sampler's head turns on the neck farther than real clips' (issue 14: at 10 frames 9.4° at its farthest
against real 6.6°; docs/quality.md, iteration 17), and four training terms that aimed at it traded it against the
feet, the skate or the style. An animator sees the wobble at once, so the studio steadies the head the way game
pipelines stabilise a head or a camera, as it locks the feet (motion/footlock.py):

- the *path* is the straight turn (slerp) of the head on the neck from the last context frame to the keyframe,
  over the transition's frames and the keyframe;
- each generated frame keeps `keep` of its own turn away from that path (the angle scaled, the axis kept), so the
  head still leads, nods and lands where the model puts it, only less far off the way;
- the head is a leaf of the model skeleton, so no joint position moves: L2P, the feet and the skate are the
  sampler's; only the head's rotation changes.

Causal in the sense the streamed chunks need: frame t depends only on the context, the keyframe, the length and
frame t itself, so chunk by chunk and in one call come out the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.features import ModelSkeleton

KEEP = 0.5  # the share of the head's turn off the path that stays (docs/quality.md, iteration 17)


def head_and_neck(ms: ModelSkeleton) -> tuple[int, int] | None:
    """The model skeleton's head joint and its parent, or None when it names no head (or the head is the root)."""
    if "Head" not in ms.names:
        return None
    head = ms.names.index("Head")
    return (head, int(ms.parents[head])) if head > 0 else None


def _on_parent(r: np.ndarray, joint: int, parent: int) -> tuple[np.ndarray, np.ndarray]:
    """The parent's global rotation matrix and the joint's rotation on it (..., 3, 3), from global 6D r (..., J, 6).
    Only the two joints are converted: it runs on every streamed chunk, and converting all J made an 8-frame chunk
    cost 0.67 ms against 0.35 ms (08b5d4e, measured on the loaded machine)."""
    g = R.sixd_to_matrix(np.asarray(r, np.float64)[..., [parent, joint], :])
    return g[..., 0, :, :], np.swapaxes(g[..., 0, :, :], -1, -2) @ g[..., 1, :, :]


def _positive(q: np.ndarray) -> np.ndarray:
    return np.where(q[..., :1] < 0, -q, q)


@dataclass
class HeadSteady:
    """The steadiness of one transition (see the module docstring). `apply` takes its generated frames' global 6D
    rotations in order, in one call or chunk by chunk, in any frame (world or canonical)."""

    head: int
    neck: int
    start: np.ndarray  # (4,) the head on the neck in the last context frame (quaternion)
    key: np.ndarray  # (4,) ... in the keyframe, on the shorter way from `start`
    length: int  # generated frames in the transition (the keyframe comes after frame length - 1)
    keep: float = KEEP
    _made: int = field(default=0, init=False)  # generated frames already through `apply`

    @classmethod
    def for_transition(cls, ms: ModelSkeleton, last_r: np.ndarray, key_r: np.ndarray, length: int,
                       keep: float = KEEP) -> HeadSteady | None:
        """From the last context frame's and the keyframe's global 6D rotations (J, 6); None without a head."""
        joints = head_and_neck(ms)
        if joints is None:
            return None
        head, neck = joints
        # both heads in one call: the setup runs before the first frame is shown
        start, key = R.matrix_to_quat(_on_parent(np.stack([last_r, key_r]), head, neck)[1])
        start = _positive(start)
        key = np.where(np.dot(start, key) < 0, -key, key)
        return cls(head, neck, start, key, int(length), float(keep))

    def apply(self, r: np.ndarray) -> np.ndarray:
        """The next generated frames' global 6D rotations (T, J, 6), the head steadied (a new array)."""
        out = np.array(r, dtype=np.float64, copy=True)
        t = np.minimum(self._made + 1 + np.arange(len(out)), max(self.length, 1))
        self._made += len(out)
        if self.keep >= 1.0 or not len(out):
            return out
        neck, on_neck = _on_parent(out, self.head, self.neck)
        path = R.quat_slerp(np.broadcast_to(self.start, (len(out), 4)), np.broadcast_to(self.key, (len(out), 4)),
                            t / (self.length + 1.0))  # these frames' points on the straight way
        off = _positive(R.quat_mul(R.quat_conj(path), R.matrix_to_quat(on_neck)))  # the turn off the way, shorter
        sin_half = np.linalg.norm(off[:, 1:], axis=-1, keepdims=True)
        half = np.arctan2(sin_half, off[:, :1]) * self.keep  # the kept half-angle, about the same axis
        kept = np.concatenate([np.cos(half), off[:, 1:] * (np.sin(half) / np.maximum(sin_half, 1e-12))], axis=-1)
        out[:, self.head] = R.matrix_to_6d(neck @ R.quat_to_matrix(R.quat_mul(path, kept)))
        return out
