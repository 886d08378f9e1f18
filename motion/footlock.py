"""Foot lock: a generated foot that touches the ground stays where it touched, the leg bending to keep it there.

Why: the sampler's feet slide while planted (eval: generated foot skate 1.5-1.8x the real clips'), which an
animator sees at once and would otherwise clean up by hand. The lock is the usual post-process of game and DCC
pipelines, done on joint positions so the rest of post-processing (rotations from positions) follows it:

- a foot joint (ankle or toe) is *in contact* on a frame where it is within `height` of the ground, the ground
  being the lowest that joint kind (both ankles, or both toes) sits in the context frames and the keyframe, and
  its horizontal speed is below `speed`;
- while in contact it keeps the horizontal position it had when contact began (its height is the model's);
- on release, and towards the keyframe, the offset to the model's position fades out over `blend` frames, so
  nothing jumps and the last generated frame meets the keyframe as the model made it;
- the ankle is reached by two-bone IK (thigh and shin lengths kept, the knee in the model's bend plane), the toe
  is aimed at its pinned position from the new ankle (its bone length kept), joints below move with them.

The lock is causal and carries its state from one chunk to the next, so a streamed transition and the same
transition made in one call come out the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rsmt_studio.motion.features import ModelSkeleton

HEIGHT_CM = 3.0  # above the ground: the metric's skate weight reaches 0 at 2.5 cm above the planted height
SPEED_CM = 2.0  # horizontal cm per model frame (30 fps): a planted real foot moves < 1, a swinging one 5-15
BLEND_FRAMES = 4


def _subtree(ms: ModelSkeleton, root: int) -> np.ndarray:
    """`root` and every joint below it (parents come before children in a ModelSkeleton)."""
    inside = np.zeros(ms.num_joints, dtype=bool)
    inside[root] = True
    for j in range(root + 1, ms.num_joints):
        inside[j] = inside[ms.parents[j]]
    return np.flatnonzero(inside)


def _smooth_fade(k: np.ndarray | int, n: int) -> np.ndarray:
    """1 at k = 0 falling smoothly to 0 at k = n."""
    x = np.clip(np.asarray(k, dtype=np.float64) / max(n, 1), 0.0, 1.0)
    return 1.0 - x * x * (3.0 - 2.0 * x)


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(knee', ankle') with |knee'-hip| and |ankle'-knee'| as |knee-hip| and |ankle-knee|, ankle' at `target`
    (or as near as the leg reaches), the knee kept in the plane of hip, target and the model's knee. (..., 3)."""
    a = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    b = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    to = target - hip
    d = np.linalg.norm(to, axis=-1, keepdims=True)
    u = to / np.maximum(d, 1e-9)
    d = np.clip(d, np.abs(a - b) + 1e-6, a + b - 1e-6)
    bend = (knee - hip) - np.sum((knee - hip) * u, axis=-1, keepdims=True) * u  # the knee off the hip-target line
    pole = bend / np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-9)
    x = (a * a - b * b + d * d) / (2.0 * d)
    y = np.sqrt(np.maximum(a * a - x * x, 0.0))
    knee2 = hip + u * x + pole * y
    return knee2, hip + u * d


@dataclass
class FootLock:
    """The lock of one transition (see the module docstring). `apply` takes its generated frames in order, in
    one call or chunk by chunk; positions are in any frame whose y axis is up (world or canonical)."""

    ms: ModelSkeleton
    last: np.ndarray  # (J, 3) the last context frame
    ground: np.ndarray  # (4,) per foot joint (ms.feet order): the height of the ground for that joint
    length: int  # generated frames in the transition (the keyframe comes after frame length - 1)
    height: float = HEIGHT_CM
    speed: float = SPEED_CM
    blend: int = BLEND_FRAMES
    _made: int = field(default=0, init=False)  # generated frames already through `apply`
    _prev_raw: np.ndarray = field(init=False)
    _prev_out: np.ndarray = field(init=False)
    _pin: np.ndarray = field(init=False)  # (4, 2) pinned xz; NaN when not in contact
    _release: np.ndarray = field(init=False)  # (4, 2) the offset at release
    _since: np.ndarray = field(init=False)  # (4,) frames since release

    def __post_init__(self) -> None:
        feet = self.ms.feet
        self._prev_raw = self.last[feet, :].astype(np.float64)
        self._prev_out = self._prev_raw.copy()
        self._pin = np.full((len(feet), 2), np.nan)
        self._release = np.zeros((len(feet), 2))
        self._since = np.full(len(feet), 10**6)
        self._legs = [(int(self.ms.parents[self.ms.parents[a]]), int(self.ms.parents[a]), int(a), int(t))
                      for a, t in zip(feet[0::2], feet[1::2], strict=True)]
        self._below_ankle = [_subtree(self.ms, a) for _, _, a, _ in self._legs]
        self._below_toe = [_subtree(self.ms, t) for _, _, _, t in self._legs]

    @classmethod
    def for_transition(cls, ms: ModelSkeleton, context: np.ndarray, key: np.ndarray, length: int) -> FootLock:
        """From the context frames (C, J, 3), the last one last, and the keyframe (J, 3): the ground of each foot
        joint kind is the lowest of that kind over both feet in those frames."""
        h = np.concatenate([context[:, ms.feet, 1], key[None, ms.feet, 1]])  # (C+1, 4)
        ankle, toe = h[:, 0::2].min(), h[:, 1::2].min()
        return cls(ms, np.asarray(context[-1], np.float64), np.array([ankle, toe, ankle, toe]), int(length))

    def _offsets(self, f: int, xz: np.ndarray, contact: np.ndarray, taper: np.ndarray) -> np.ndarray:
        """(T, 2) horizontal offsets of foot joint `f` over frames xz (T, 2), run by run of contact / no contact
        (a few per transition), carrying the pin and the release fade across calls."""
        offset = np.zeros_like(xz)
        edges = np.flatnonzero(np.diff(contact.astype(np.int8))) + 1
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(xz)], strict=True):
            if contact[a]:
                if np.isnan(self._pin[f, 0]):  # touch-down: held where it is shown, so nothing jumps
                    self._pin[f] = (xz[a - 1] + offset[a - 1]) if a > 0 else self._prev_out[f, [0, 2]]
                offset[a:b] = (self._pin[f] - xz[a:b]) * taper[a:b]
                continue
            if not np.isnan(self._pin[f, 0]):  # lift-off: the offset fades from here
                self._release[f] = self._pin[f] - xz[a]
                self._since[f] = 0
                self._pin[f] = np.nan
            k = self._since[f] + 1 + np.arange(b - a)
            offset[a:b] = self._release[f] * (_smooth_fade(k, self.blend)[:, None] * taper[a:b])
            self._since[f] = min(int(k[-1]), 10**6)
        return offset

    def apply(self, pos: np.ndarray) -> np.ndarray:
        """The next generated frames (T, J, 3), locked (a new array)."""
        out = np.array(pos, dtype=np.float64, copy=True)
        feet = self.ms.feet
        raw = out[:, feet, :]  # (T, 4, 3)
        xz = raw[..., [0, 2]]  # (T, 4, 2)
        before = np.concatenate([self._prev_raw[None, :, [0, 2]], xz[:-1]])
        contact = (raw[..., 1] - self.ground < self.height) & (np.linalg.norm(xz - before, axis=-1) < self.speed)
        left = self.length - (self._made + np.arange(len(out)))  # frames to the keyframe (1 on the last generated)
        taper = 1.0 - _smooth_fade(left, self.blend)[:, None]
        want = raw.copy()
        for f in range(len(feet)):
            offset = self._offsets(f, xz[:, f], contact[:, f], taper)
            want[:, f, 0] += offset[:, 0]
            want[:, f, 2] += offset[:, 1]
        self._prev_raw = raw[-1]
        self._prev_out = want[-1]
        self._made += len(out)
        for leg, (hip, knee, ankle, toe) in enumerate(self._legs):
            f_ankle, f_toe = 2 * leg, 2 * leg + 1
            moved = np.any(np.abs(want[:, [f_ankle, f_toe]] - raw[:, [f_ankle, f_toe]]) > 1e-9, axis=(1, 2))
            if not moved.any():
                continue
            fr = np.flatnonzero(moved)
            knee2, ankle2 = two_bone_ik(out[fr, hip], out[fr, knee], out[fr, ankle], want[fr, f_ankle])
            shift = ankle2 - out[fr, ankle]
            out[np.ix_(fr, self._below_ankle[leg])] += shift[:, None, :]
            out[fr, knee] = knee2
            bone = np.linalg.norm(out[fr, toe] - out[fr, ankle], axis=-1, keepdims=True)
            aim = want[fr, f_toe] - out[fr, ankle]
            toe2 = out[fr, ankle] + aim / np.maximum(np.linalg.norm(aim, axis=-1, keepdims=True), 1e-9) * bone
            out[np.ix_(fr, self._below_toe[leg])] += (toe2 - out[fr, toe])[:, None, :]
        return out
