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
from ..clip import Clip, depth_levels
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
        aligned: list[np.ndarray] = []
        lp, lr = self.binding.to_user(model_lp, model_lr, np.broadcast_to(self.carry_lp, (t, *self.carry_lp.shape)),
                                      np.broadcast_to(self.carry_lr, (t, *self.carry_lr.shape)), aligned)
        exact = aligned[0]  # driven joints' globals (up-aligned world), kept exactly
        w = np.minimum((np.arange(first, first + t) + 1.0) / (self.length + 1.0), 1.0)
        fix = (~self.binding.driven_joints() | _chain_joints(self.binding)) & ~_above_hips(self.binding)
        resid = R.quat_slerp(np.broadcast_to(self.start[fix], (t, int(fix.sum()), 4)),
                             np.broadcast_to(self.end[fix], (t, int(fix.sum()), 4)), w[:, None])
        sk = self.binding.roles.skeleton
        align = self.binding.calibration.align
        lr[:, fix] = R.quat_normalize(R.quat_mul(resid, lr[:, fix]))
        driven = self.binding.driven_joints() & ~_chain_joints(self.binding)
        g = np.empty_like(lr)
        for idx, par in depth_levels(tuple(int(p) for p in sk.parents)):
            if par is None:
                g[:, idx] = R.quat_mul(align, lr[:, idx])
                continue
            d = driven[idx]
            keep, free = idx[d], idx[~d]
            if len(keep):
                lr[:, keep] = R.quat_mul(R.quat_conj(g[:, par[d]]), exact[:, keep])
                g[:, keep] = exact[:, keep]
            if len(free):
                g[:, free] = R.quat_mul(g[:, par[~d]], lr[:, free])
        return lp, R.quat_normalize(lr)


def _chain_joints(b: RigBinding) -> np.ndarray:
    return np.array([kind == "chain" for kind, _ in b.user_plan])


def _above_hips(b: RigBinding) -> np.ndarray:
    """A dummy root above the hips keeps the source's transform (the target's is in another place)."""
    sk = b.roles.skeleton
    out = np.zeros(sk.num_joints, dtype=bool)
    p = int(sk.parents[b.roles.roles["hips"]])
    while p >= 0:
        out[p] = True
        p = int(sk.parents[p])
    return out


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
        carried = ~binding.driven_joints()
        end[carried] = R.quat_normalize(R.quat_mul(target.local_rot[target_frame][carried],
                                                   R.quat_conj(carry_lr[carried])))
    return SeamBlend(binding, carry_lp, carry_lr, start, end, int(length))
