"""Classical transition baselines in numpy: zero-velocity hold, LERP/SLERP interpolation, inertialization.

They see exactly what the RSMT sampler sees under the keyframe protocol (docs/model.md §3): the context (the
last two context frames: pose and velocity) and the keyframe with its outgoing velocity. Every baseline returns
frames `n_past - 1 .. K` (the last context frame, the L transition frames, the keyframe), so its ends can be
checked against the inputs; the eval scores the L frames between them.

- zero-velocity: every transition frame holds the last context pose (LaFAN1's weakest baseline).
- interpolation: LERP of the root position and SLERP of each joint's local quaternion from the last context
  frame to the keyframe, t = i / (L + 1) (LaFAN1's interpolation baseline, with the keyframe at K = n_past + L;
  the RSMT repository's baseline used frame K + 1, reference bug 2).
- inertialization (Bollo, GDC 2018): the target motion is the keyframe pose, its root moving back in time with
  the keyframe's outgoing horizontal root velocity; the offset "last context frame minus target" (root position, and each
  local rotation as a rotation vector) and its velocity decay to zero over t1 = L + 1 frames along a quintic
  whose position, velocity and acceleration vanish at t1. The transition starts with the context's pose and
  velocity and arrives exactly on the keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rotations as R
from .clip import forward_kinematics


@dataclass(frozen=True)
class Endpoints:
    """What a baseline may use, batch B, local form: root positions (B,3) and local quaternions (B,J,4)."""

    root_prev: np.ndarray  # frame n_past - 2
    root_last: np.ndarray  # frame n_past - 1 (last context frame)
    rot_prev: np.ndarray
    rot_last: np.ndarray
    root_key: np.ndarray  # keyframe K
    root_key_next: np.ndarray  # K + 1 (only its velocity is used)
    rot_key: np.ndarray
    offsets: np.ndarray  # (B,J,3) local translations of non-root joints
    parents: np.ndarray  # (J,)


@dataclass(frozen=True)
class Motion:
    """Global positions (B,T,J,3) and global quaternions (B,T,J,4)."""

    pos: np.ndarray
    quat: np.ndarray


def local_quats(grot_m: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Global rotation matrices (...,J,3,3) -> local quaternions (...,J,4) (root: global)."""
    gq = R.matrix_to_quat(grot_m)
    lq = gq.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            lq[..., j, :] = R.quat_mul(R.quat_conj(gq[..., p, :]), gq[..., j, :])
    return R.quat_normalize(lq)


def endpoints(gpos: np.ndarray, grot_m: np.ndarray, parents: np.ndarray, offsets: np.ndarray, length: int,
              n_past: int = 10) -> Endpoints:
    """From windows of global positions (B,W,J,3) / rotation matrices (B,W,J,3,3) under the keyframe protocol
    (W >= n_past + length + 2): the frames a baseline may use. `offsets` (B,J,3) or (J,3)."""
    k = n_past + length
    if gpos.shape[1] < k + 2:
        raise ValueError(f"windows have {gpos.shape[1]} frames, need {k + 2} for length {length}")
    sel = [n_past - 2, n_past - 1, k]
    lq = local_quats(np.asarray(grot_m, np.float64)[:, sel], parents)
    b = gpos.shape[0]
    return Endpoints(
        root_prev=gpos[:, n_past - 2, 0].astype(np.float64), root_last=gpos[:, n_past - 1, 0].astype(np.float64),
        rot_prev=lq[:, 0], rot_last=lq[:, 1], root_key=gpos[:, k, 0].astype(np.float64),
        root_key_next=gpos[:, k + 1, 0].astype(np.float64), rot_key=lq[:, 2],
        offsets=np.broadcast_to(np.asarray(offsets, np.float64), (b, *gpos.shape[2:])).copy(),
        parents=np.asarray(parents),
    )


def _motion(ep: Endpoints, root: np.ndarray, lq: np.ndarray) -> Motion:
    """root (B,T,3), local quats (B,T,J,4) -> global Motion by FK."""
    t = root.shape[1]
    lp = np.repeat(ep.offsets[:, None], t, axis=1)
    lp[:, :, 0] = root
    gpos, gq = forward_kinematics(ep.parents, lp, R.quat_normalize(lq))
    return Motion(gpos, gq)


def _times(length: int) -> np.ndarray:
    """Frames from the last context frame (t=0) to the keyframe (t=L+1)."""
    return np.arange(length + 2, dtype=np.float64)


def zero_velocity(ep: Endpoints, length: int) -> Motion:
    """Hold the last context pose for the L transition frames; the keyframe closes the sequence."""
    root = np.repeat(ep.root_last[:, None], length + 2, axis=1)
    lq = np.repeat(ep.rot_last[:, None], length + 2, axis=1)
    root[:, -1], lq[:, -1] = ep.root_key, ep.rot_key
    return _motion(ep, root, lq)


def interpolation(ep: Endpoints, length: int) -> Motion:
    """LERP root, SLERP local rotations from the last context frame to the keyframe."""
    t = _times(length) / (length + 1)
    root = ep.root_last[:, None] + t[None, :, None] * (ep.root_key - ep.root_last)[:, None]
    lq = R.quat_slerp(ep.rot_last[:, None], ep.rot_key[:, None], t[None, :, None])
    lq[:, 0], lq[:, -1] = ep.rot_last, ep.rot_key  # exact ends (slerp may renormalise by an ulp)
    return _motion(ep, root, lq)


def quintic_decay(x0: np.ndarray, v0: np.ndarray, t1: float, t: np.ndarray) -> np.ndarray:
    """Bollo's inertialization polynomial per channel: x(0)=x0, x'(0)=v0, x''(0)=a0=(-8v0t1-20x0)/t1²,
    x(t1)=x'(t1)=x''(t1)=0. x0, v0 (...,); t (T,) -> (..., T); zero from t1 on."""
    x0, v0 = np.asarray(x0, np.float64)[..., None], np.asarray(v0, np.float64)[..., None]
    a0 = (-8.0 * v0 * t1 - 20.0 * x0) / t1**2
    a = -(a0 * t1**2 + 6.0 * v0 * t1 + 12.0 * x0) / (2.0 * t1**5)
    b = (3.0 * a0 * t1**2 + 16.0 * v0 * t1 + 30.0 * x0) / (2.0 * t1**4)
    c = -(3.0 * a0 * t1**2 + 12.0 * v0 * t1 + 20.0 * x0) / (2.0 * t1**3)
    tt = np.minimum(np.asarray(t, np.float64), t1)
    x = a * tt**5 + b * tt**4 + c * tt**3 + 0.5 * a0 * tt**2 + v0 * tt + x0
    return np.where(tt >= t1, 0.0, x)


def _rotvec(q: np.ndarray) -> np.ndarray:
    axis, angle = R.quat_to_axis_angle(q)
    return axis * angle[..., None]


def _from_rotvec(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v, axis=-1)
    axis = np.where(angle[..., None] > 1e-12, v / np.maximum(angle, 1e-12)[..., None], [1.0, 0.0, 0.0])
    return R.axis_angle_to_quat(axis, angle)


def inertialization(ep: Endpoints, length: int) -> Motion:
    """Offset inertialization from the last context frame onto the keyframe (see the module docstring)."""
    t1 = float(length + 1)
    t = _times(length)
    v_key = ep.root_key_next - ep.root_key
    v_key[:, 1] = 0.0  # extrapolate over the ground only: a bob's vertical speed over 40 frames is no path
    target_root = ep.root_key[:, None] + v_key[:, None] * (t - t1)[None, :, None]  # (B,T,3)
    x0 = ep.root_last - target_root[:, 0]
    v0 = (ep.root_last - ep.root_prev) - v_key
    root = target_root + np.moveaxis(quintic_decay(x0, v0, t1, t), -1, 1)
    q_off = _rotvec(R.quat_mul(ep.rot_last, R.quat_conj(ep.rot_key)))  # (B,J,3)
    w0 = _rotvec(R.quat_mul(ep.rot_last, R.quat_conj(ep.rot_prev)))  # angular velocity per frame
    off = np.moveaxis(quintic_decay(q_off, w0, t1, t), -1, 1)  # (B,T,J,3)
    lq = R.quat_mul(_from_rotvec(off), np.broadcast_to(ep.rot_key[:, None], off.shape[:-1] + (4,)))
    root[:, 0], root[:, -1] = ep.root_last, ep.root_key
    lq[:, 0], lq[:, -1] = ep.rot_last, ep.rot_key
    return _motion(ep, root, lq)


BASELINES = {"zero_velocity": zero_velocity, "slerp": interpolation, "inertialization": inertialization}

__all__ = [
    "BASELINES",
    "Endpoints",
    "Motion",
    "endpoints",
    "inertialization",
    "interpolation",
    "local_quats",
    "quintic_decay",
    "zero_velocity",
]
