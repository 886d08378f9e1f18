"""RSMT features in numpy, shared by training (training/) and inference (inference/, `eval`).

Nothing here imports torch or MAX. Conventions: quaternions (w,x,y,z); "6D" = first two ROWS of the rotation
matrix; y is up; units are the file's (cm for Bandai and 100STYLE); one frame = 1/fps.

The pieces, in the order a transition uses them (docs/model.md has the full contract):

1. `ModelSkeleton` / `model_clip`: drop a static dummy root (Bandai's joint_Root) so the moving hips are the root,
   then split joints into rotation-represented (hip sockets, spine chain, neck, collars: their positions come
   from FK) and position-represented (root, knees, ankles, toes, head, shoulders, elbows, wrists).
2. `canonical_transform`: the yaw + XZ translation that puts the LAST CONTEXT frame's hips at the origin facing
   +Z. Nothing after the context is looked at (the reference's future leak, bug 1, fixed).
3. `frame_state`: per-frame sampler/manifold state in that frame: p (position joints), v = p_t - p_{t-1}, r (6D).
4. `root_space`, `style_features`, `pae_windows`: per-frame root-space features for the style encoder and
   DeepPhase (each frame in its own facing frame).
5. `foot_contacts`, `phase_vector`, and the keyframe protocol (`KeyframeProtocol`, `make_problem`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from . import rotations as R
from .clip import Clip, forward_kinematics
from .skeleton import Skeleton

UP = np.array([0.0, 1.0, 0.0])
N_PAST = 10  # context frames of the keyframe protocol
N_WARMUP = 8  # context frames 1..8 advance the sampler's LSTM; frame 9 is the first state it steps from


# ----------------------------------------------------------------------------------------------- skeleton
def joint_side(name: str) -> int:
    """+1 for a left joint, -1 for a right joint, 0 for a centre joint (by name: Left*, *_L, L_*, LHand)."""
    low = name.lower()
    if "left" in low or re.search(r"(^|[_.\-\s:])l($|[_.\-\s])", low) or re.match(r"^(.*:)?L[A-Z]", name):
        return 1
    if "right" in low or re.search(r"(^|[_.\-\s:])r($|[_.\-\s])", low) or re.match(r"^(.*:)?R[A-Z]", name):
        return -1
    return 0


@dataclass(frozen=True, eq=False)
class ModelSkeleton:
    """The skeleton the networks see, with the joint split and the joints features need.

    `source_joints[j]` is the index in the file's skeleton of model joint j. Offsets are the rest offsets used
    by FK of the rotation joints (the clip's own, so a user's skeleton keeps its proportions).
    """

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) root = -1
    offsets: np.ndarray  # (J,3)
    source_joints: np.ndarray  # (J,) indices into the file skeleton
    pos_joints: np.ndarray  # (Np,) root first, ascending
    rot_joints: np.ndarray  # rotation-represented joints, ascending
    feet: np.ndarray  # (4,) left ankle, left toe, right ankle, right toe
    left_hip: int
    right_hip: int
    mirror: np.ndarray  # (J,) left/right permutation

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def num_pos_joints(self) -> int:
        return len(self.pos_joints)

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]


def _foldable_root(skeleton: Skeleton) -> bool:
    """A root with a single child (Bandai's joint_Root) carries no pose of its own: fold it into the child.

    Bandai's joint_Root is static and zero in nearly every file, but moves in a few short clips
    (e.g. dataset-1_run_normal_001); folding its transform per frame is exact either way."""
    return skeleton.num_joints >= 2 and len(skeleton.children(0)) == 1


def model_skeleton(skeleton: Skeleton, clip: Clip | None = None) -> ModelSkeleton:
    """Split the joints of `skeleton` (dropping a single-child dummy root) by structure:

    - the root (hips) is position-represented;
    - the root's children (hip sockets and the first spine joint) are rotation joints;
    - the spine chain from there up to the first joint with several children (the chest) is rotation;
    - that chest's children (neck and collars) are rotation;
    - every other joint (knees, ankles, toes, head, shoulders, elbows, wrists) is position-represented.

    For 100STYLE this gives exactly RSMT's split ([1,5,9,10,11,12,13,15,19] rotation); for Bandai (after dropping
    joint_Root) UpperLeg_L/R, Spine, Chest, Neck, Shoulder_L/R are rotation joints and 14 are position joints.
    """
    drop = 1 if _foldable_root(skeleton) else 0
    names = tuple(skeleton.names[drop:])
    parents = np.array([-1 if p - drop < 0 else p - drop for p in skeleton.parents[drop:]], dtype=np.int64)
    if clip is not None:
        offsets = clip.local_pos[:, drop:].mean(axis=0)
    else:
        offsets = skeleton.offsets[drop:].copy()
    n = len(names)
    if n < 8 or (parents[1:] < 0).any():
        raise ValueError(f"skeleton with root {skeleton.names[0]!r}: need one root and at least 8 joints")
    children = [list(np.flatnonzero(parents == j)) for j in range(n)]

    def subtree(j: int) -> int:
        return 1 + sum(subtree(c) for c in children[j])

    root_kids = children[0]
    if len(root_kids) < 3:
        raise ValueError(f"skeleton {names[0]!r}: root needs a spine and two legs, has {len(root_kids)} children")
    spine = max(root_kids, key=subtree)
    legs = [c for c in root_kids if c != spine]
    rot = set(root_kids)
    j = spine
    while len(children[j]) == 1:
        rot.add(j)
        j = children[j][0]
    rot.add(j)
    rot.update(children[j])
    rot_joints = np.array(sorted(rot), dtype=np.int64)
    pos_joints = np.array([k for k in range(n) if k not in rot], dtype=np.int64)

    def chain(start: int) -> list[int]:
        out = [start]
        while children[out[-1]]:
            out.append(children[out[-1]][0])
        return out

    sides = {joint_side(names[c]): c for c in legs}
    if 1 not in sides or -1 not in sides:
        raise ValueError(f"cannot tell left from right leg among {[names[c] for c in legs]}")
    left_leg, right_leg = chain(sides[1]), chain(sides[-1])
    if len(left_leg) < 4 or len(right_leg) < 4:
        raise ValueError("legs need hip, knee, ankle and toe joints")
    feet = np.array([left_leg[2], left_leg[3], right_leg[2], right_leg[3]], dtype=np.int64)
    sub = Skeleton(
        names=list(names),
        parents=parents,
        offsets=offsets,
        channels=[("Xrotation", "Yrotation", "Zrotation")] * n,
        rotation_orders=["ZXY"] * n,
    )
    return ModelSkeleton(
        names=names,
        parents=parents,
        offsets=np.asarray(offsets, dtype=np.float64),
        source_joints=np.arange(drop, drop + n),
        pos_joints=pos_joints,
        rot_joints=rot_joints,
        feet=feet,
        left_hip=int(left_leg[0]),
        right_hip=int(right_leg[0]),
        mirror=sub.mirror_indices(),
    )


def model_clip(clip: Clip) -> tuple[Clip, ModelSkeleton]:
    """The clip on its model skeleton: a single-child dummy root is folded (per frame) into its child."""
    ms = model_skeleton(clip.skeleton, clip)
    drop = int(ms.source_joints[0])
    if drop == 0:
        return clip, ms
    lp = clip.local_pos[:, drop:].copy()
    lr = clip.local_rot[:, drop:].copy()
    q0, t0 = clip.local_rot[:, 0], clip.local_pos[:, 0]
    lp[:, 0] = t0 + R.quat_rotate(q0, lp[:, 0])
    lr[:, 0] = R.quat_mul(q0, lr[:, 0])
    sk = clip.skeleton
    new_sk = Skeleton(
        names=list(ms.names),
        parents=ms.parents,
        offsets=sk.offsets[drop:],
        channels=list(sk.channels[drop:]),
        rotation_orders=list(sk.rotation_orders[drop:]),
        end_sites={k - drop: v for k, v in sk.end_sites.items() if k >= drop},
    )
    return replace(clip, skeleton=new_sk, local_pos=lp, local_rot=lr), ms


# ----------------------------------------------------------------------------------------------- frames
def facing(gpos: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """Unit horizontal forward direction (...,3) = cross(left_hip - right_hip, +Y), normalised in XZ."""
    lateral = gpos[..., ms.left_hip, :] - gpos[..., ms.right_hip, :]
    f = np.cross(lateral, UP)
    f[..., 1] = 0.0
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-9)


def yaw_matrix_to_z(forward: np.ndarray) -> np.ndarray:
    """(...,3,3) rotation about +Y that turns horizontal `forward` onto +Z."""
    ang = np.arctan2(forward[..., 0], forward[..., 2])  # heading measured from +Z towards +X
    c, s = np.cos(-ang), np.sin(-ang)
    m = np.zeros((*forward.shape[:-1], 3, 3))
    m[..., 0, 0], m[..., 0, 2] = c, s
    m[..., 1, 1] = 1.0
    m[..., 2, 0], m[..., 2, 2] = -s, c
    return m


@dataclass(frozen=True)
class CanonicalFrame:
    """x_canonical = rot @ (x_world - origin); rotations: R_canonical = rot @ R_world. origin.y = 0."""

    rot: np.ndarray  # (...,3,3)
    origin: np.ndarray  # (...,3)

    def positions(self, gpos: np.ndarray) -> np.ndarray:
        """gpos (...,T,J,3) world -> canonical (leading axes match rot's)."""
        return (gpos - self.origin[..., None, None, :]) @ np.swapaxes(self.rot, -1, -2)[..., None, :, :]

    def rotations(self, grot_m: np.ndarray) -> np.ndarray:
        """Global rotation matrices (...,T,J,3,3) world -> canonical."""
        return self.rot[..., None, None, :, :] @ grot_m

    def inverse_positions(self, cpos: np.ndarray) -> np.ndarray:
        return cpos @ self.rot[..., None, :, :] + self.origin[..., None, None, :]

    def inverse_rotations(self, crot_m: np.ndarray) -> np.ndarray:
        return np.swapaxes(self.rot, -1, -2)[..., None, None, :, :] @ crot_m


def canonical_transform(gpos_frame: np.ndarray, ms: ModelSkeleton) -> CanonicalFrame:
    """From ONE frame's global positions (...,J,3): the last context frame. Hips XZ -> origin, facing -> +Z."""
    origin = gpos_frame[..., 0, :].copy()
    origin[..., 1] = 0.0
    return CanonicalFrame(yaw_matrix_to_z(facing(gpos_frame, ms)), origin)


@dataclass(frozen=True)
class FrameState:
    """Per-frame network state for frames of one window, in the canonical frame."""

    pos: np.ndarray  # (...,T,J,3) every joint (for losses / metrics)
    p: np.ndarray  # (...,T,Np,3) position joints (root first)
    v: np.ndarray  # (...,T,Np,3) p_t - p_{t-1}; frame 0 copies frame 1's
    r: np.ndarray  # (...,T,J,6) global 6D rotations


def frame_state(cpos: np.ndarray, crot_m: np.ndarray, ms: ModelSkeleton) -> FrameState:
    """Canonical positions (...,T,J,3) + rotation matrices (...,T,J,3,3) -> network state."""
    p = cpos[..., ms.pos_joints, :]
    v = np.diff(p, axis=-3)
    v = np.concatenate([v[..., :1, :, :], v], axis=-3)
    r = R.matrix_to_6d(crot_m)
    return FrameState(cpos, p, v, r)


def fk_positions(p: np.ndarray, r: np.ndarray, ms: ModelSkeleton, offsets: np.ndarray | None = None) -> np.ndarray:
    """All joint positions (...,J,3) from position joints p (...,Np,3) and global 6D r (...,J,6): rotation
    joints are placed by FK, pos_parent + R_parent @ offset (parents processed first)."""
    offsets = ms.offsets if offsets is None else offsets
    out = np.zeros((*p.shape[:-2], ms.num_joints, 3))
    out[..., ms.pos_joints, :] = p
    mats = R.sixd_to_matrix(r[..., ms.parents[ms.rot_joints].clip(0), :])
    for k, j in enumerate(ms.rot_joints):
        par = ms.parents[j]
        out[..., j, :] = out[..., par, :] + np.einsum("...ij,j->...i", mats[..., k, :, :], offsets[j])
    return out


# ----------------------------------------------------------------------------------------------- root space
def root_space(gpos: np.ndarray, grot_m: np.ndarray, ms: ModelSkeleton) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each frame in its own facing frame (hips XZ at the origin, facing +Z; y kept absolute).

    Returns pos (T,J,3), vel (T-1,J,3) = R_t (x_{t+1} - x_t), rot6d (T,J,6) = 6D(R_t @ G_t).
    """
    yaw = yaw_matrix_to_z(facing(gpos, ms))  # (T,3,3)
    origin = gpos[:, 0, :].copy()
    origin[:, 1] = 0.0
    pos = np.einsum("tij,tkj->tki", yaw, gpos - origin[:, None])
    vel = np.einsum("tij,tkj->tki", yaw[:-1], np.diff(gpos, axis=0))
    rot = R.matrix_to_6d(np.einsum("tij,tkjl->tkil", yaw, grot_m))
    return pos, vel, rot


def style_features(gpos: np.ndarray, grot_m: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """Style-encoder input (T-1, (J-1)*12) = [pos (J-1)*3 | vel (J-1)*3 | rot6d (J-1)*6], joint-major in each
    block, root joint dropped, unnormalised (the network holds the statistics)."""
    pos, vel, rot = root_space(gpos, grot_m, ms)
    t = len(vel)
    return np.concatenate(
        [pos[:t, 1:].reshape(t, -1), vel[:, 1:].reshape(t, -1), rot[:t, 1:].reshape(t, -1)], axis=-1
    ).astype(np.float32)


def pae_velocities(gpos: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """DeepPhase signal per frame (T, J*3): root-space velocity R_t (x_{t+1} - x_t) in units/frame, joint-major;
    the last frame repeats the one before so every frame has a value."""
    yaw = yaw_matrix_to_z(facing(gpos, ms))
    vel = np.einsum("tij,tkj->tki", yaw[:-1], np.diff(gpos, axis=0)).reshape(len(gpos) - 1, -1)
    return np.concatenate([vel, vel[-1:]], axis=0).astype(np.float32)


def pae_windows(velocities: np.ndarray, window: int, frames: np.ndarray | None = None) -> np.ndarray:
    """(F, J*3, window) DeepPhase inputs centred on each frame in `frames` (default all): indices t-w//2..t+w//2
    clamped to the clip (edge frames repeat), so EVERY frame gets a phase label."""
    t = len(velocities)
    frames = np.arange(t) if frames is None else np.asarray(frames)
    idx = np.clip(frames[:, None] + np.arange(window)[None, :] - window // 2, 0, t - 1)
    return np.ascontiguousarray(velocities[idx].transpose(0, 2, 1))


def phase_vector(amplitude: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Phase-manifold vector P = A * (cos 2piS, sin 2piS) given A (...,C) and the unit direction (...,C,2)."""
    return amplitude[..., None] * unit


def foot_contacts(gpos: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """(T,4) soft contacts of [left ankle, left toe, right ankle, right toe] from speed s (units/frame):
    1 below 0.5, 0 above 1.0, smoothstep 2x^3-3x^2+1 with x = (s-0.5)/0.5 in between (RSMT's rule)."""
    feet = gpos[..., ms.feet, :]
    s = np.linalg.norm(np.diff(feet, axis=-3), axis=-1)
    s = np.concatenate([s[..., :1, :], s], axis=-2)
    x = np.clip((s - 0.5) / 0.5, 0.0, 1.0)
    return 2 * x**3 - 3 * x**2 + 1


# ----------------------------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class KeyframeProtocol:
    """LaFAN1-style: frames 0..n_past-1 are context; transition frames n_past..n_past+L-1 are generated and
    scored; the keyframe K = n_past+L is given (pose + its outgoing velocity from frame K+1) and not scored.
    A window therefore spans n_past + L + 2 frames. Canonical frame = last context frame (n_past-1)."""

    length: int
    n_past: int = N_PAST

    @property
    def keyframe(self) -> int:
        return self.n_past + self.length

    @property
    def window(self) -> int:
        return self.n_past + self.length + 2

    @property
    def scored(self) -> slice:
        return slice(self.n_past, self.n_past + self.length)

    def tta(self, state_frame: int) -> int:
        """Time to arrival used when the sampler steps FROM `state_frame`: keyframe - state_frame."""
        return self.keyframe - state_frame


@dataclass(frozen=True)
class Problem:
    """One canonicalised transition problem (what a sampler gets, plus the ground truth to score)."""

    frame: CanonicalFrame
    state: FrameState  # all window frames (context, ground-truth transition, keyframe, keyframe+1)
    target_p: np.ndarray  # (...,Np,3)
    target_v: np.ndarray  # (...,Np,3) p_{K+1} - p_K
    target_r: np.ndarray  # (...,J,6)
    protocol: KeyframeProtocol


def canonical_window(gpos: np.ndarray, grot_m: np.ndarray, ms: ModelSkeleton, ref: int) -> tuple[CanonicalFrame, FrameState]:
    """Canonicalise windows (...,T,J,3)/(...,T,J,3,3) on frame `ref` (the last context frame)."""
    frame = canonical_transform(gpos[..., ref, :, :], ms)
    return frame, frame_state(frame.positions(gpos), frame.rotations(grot_m), ms)


def make_problem(gpos: np.ndarray, grot_m: np.ndarray, ms: ModelSkeleton, protocol: KeyframeProtocol) -> Problem:
    """gpos/grot_m hold exactly protocol.window frames (leading batch axes allowed)."""
    if gpos.shape[-3] != protocol.window:
        raise ValueError(f"window has {gpos.shape[-3]} frames, protocol needs {protocol.window}")
    frame, st = canonical_window(gpos, grot_m, ms, protocol.n_past - 1)
    k = protocol.keyframe
    return Problem(
        frame=frame,
        state=st,
        target_p=st.p[..., k, :, :],
        target_v=st.p[..., k + 1, :, :] - st.p[..., k, :, :],
        target_r=st.r[..., k, :, :],
        protocol=protocol,
    )


def global_arrays(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """(T,J,3) global positions and (T,J,3,3) global rotation matrices of a (model) clip."""
    gpos, grot = forward_kinematics(clip.skeleton.parents, clip.local_pos, clip.local_rot)
    return gpos, R.quat_to_matrix(grot)
