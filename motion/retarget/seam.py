"""Generated model frames onto the user's rig without a pop at either end of the transition.

Joints the model drives one to one come back exactly. The others (spine and neck joints sampled from the
model's shorter chains, fingers, twist bones) would jump at the seams, because the user's own frames are never
re-expressed: the residual between the user's real local rotation and its round trip through the model rig is
measured at the last source frame and at the target keyframe, and blended across the transition (so fingers
are held from the source and eased into the target's pose, and a four-joint spine keeps its own shape).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rotations as R
from ..clip import Clip
from .transfer import RigBinding


@dataclass
class SeamBlend:
    binding: RigBinding
    carry_lp: np.ndarray  # (J,3) the source's local translations at its last context frame
    carry_lr: np.ndarray  # (J,4)
    start: np.ndarray  # (J,4) residual at the source seam
    end: np.ndarray  # (J,4) residual at the target seam
    length: int  # transition frames at the model's fps

    def apply(self, model_lp: np.ndarray, model_lr: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Model frames `first`.. of the transition (T,Jm,·) -> user local translations (T,J,3), rotations."""
        t = len(model_lp)
        bp = self.binding.back_plan()
        carry_lp = np.broadcast_to(self.carry_lp, (t, *self.carry_lp.shape))
        carry_lr = np.broadcast_to(self.carry_lr, (t, *self.carry_lr.shape))
        lp, lr, g = self.binding._to_user(model_lp, model_lr, carry_lp, carry_lr, self._carried())
        # g: the globals (up-aligned world); the driven joints' are kept exactly
        w = np.minimum((np.arange(first, first + t) + 1.0) / (self.length + 1.0), 1.0)
        fix = bp.fix
        if len(fix):
            lr[:, fix] = R.quat_mul(self._residual(w), R.quat_normalize(lr[:, fix]))
        # Globals below the turned joints follow them, except the driven joints', which stay exact (their local
        # rotations absorb the change); every other joint's global and local rotation is as `to_user` made it.
        align = self.binding.calibration.align
        for free, free_par, relink, relink_par in bp.relink:
            if len(free):
                g[:, free] = R.quat_mul(align if free_par is None else g[:, free_par], R.quat_normalize(lr[:, free]))
            if len(relink):
                lr[:, relink] = R.quat_mul(R.quat_conj(g[:, relink_par]), g[:, relink])
        return lp, R.quat_normalize(lr)

    def _carried(self) -> np.ndarray:
        """The carried joints' rotations relative to their driven ancestors at the source frame (held
        throughout the blend)."""
        cached = self.__dict__.get("_carried_rel")
        if cached is None or cached[0] is not self.carry_lr:
            cached = (self.carry_lr, self.binding.back_plan().carried_rel(self.carry_lr))
            self.__dict__["_carried_rel"] = cached
        return cached[1]

    def _residual(self, w: np.ndarray) -> np.ndarray:
        """(T,F,4) residuals of the blended joints at blend weights w (T,): `quat_slerp(start, end, w)`, with
        what depends only on the two ends (normalising, the shorter arc, the angle) worked out once per blend."""
        ends = self.__dict__.get("_slerp_ends")
        if ends is None or ends[-2] is not self.start or ends[-1] is not self.end:
            fix = self.binding.back_plan().fix
            q0, q1 = R.quat_normalize(self.start[fix]), R.quat_normalize(self.end[fix])
            dot = np.sum(q0 * q1, axis=-1, keepdims=True)
            q1 = np.where(dot < 0, -q1, q1)
            theta = np.arccos(np.clip(np.abs(dot), -1.0, 1.0))
            sin_theta = np.sin(theta)
            near = sin_theta < 1e-6
            ends = (q0, q1, theta, near, np.where(near, 1.0, sin_theta), self.start, self.end)
            self.__dict__["_slerp_ends"] = ends
        q0, q1, theta, near, safe = ends[:5]
        t = w[:, None, None]
        w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
        w1 = np.where(near, t, np.sin(t * theta) / safe)
        return R.quat_normalize(w0 * q0 + w1 * q1)


def round_trip(b: RigBinding, clip: Clip, model: Clip, frame: int) -> np.ndarray:
    """(J,4) local rotations of `clip`'s frame after going to the model rig and back (carrying its own
    undriven joints): what the generated frames would show if the model reproduced that frame exactly."""
    _, lr = b.to_user(model.local_pos[frame:frame + 1], model.local_rot[frame:frame + 1],
                      clip.local_pos[frame][None], clip.local_rot[frame][None])
    return lr[0]


def seam_blend(binding: RigBinding, source: Clip, source_round_trip: np.ndarray, source_frame: int,
               target: Clip | None, target_round_trip: np.ndarray | None, target_frame: int,
               length: int) -> SeamBlend:
    """The blend for one transition. `*_round_trip` are `round_trip` of the clips at their seam frames (the
    studio caches them per clip and frame); `target` is None when it is on another rig (the source's residual
    is then held to the end)."""
    carry_lp = source.local_pos[source_frame].copy()
    carry_lr = source.local_rot[source_frame].copy()
    start = R.quat_normalize(R.quat_mul(carry_lr, R.quat_conj(source_round_trip)))
    end = start
    if target is not None and target_round_trip is not None:
        # driven and chain joints: the target's own residual; carried joints: from the source's pose to the
        # target's (their round trip carries the target's own pose, the generated frames carry the source's)
        end = R.quat_normalize(R.quat_mul(target.local_rot[target_frame], R.quat_conj(target_round_trip)))
        carried = binding.back_plan().carried
        end[carried] = R.quat_normalize(R.quat_mul(target.local_rot[target_frame][carried], R.quat_conj(carry_lr[carried])))
    return SeamBlend(binding, carry_lp, carry_lr, start, end, int(length))
