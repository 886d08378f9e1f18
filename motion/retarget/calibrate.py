"""The canonical pose C of a rig: each role joint's global rotation when the body stands in a T-pose.

Retargeting copies G_target = G_source · C_source⁻¹ · C_target (note §2.1), so C must describe *the same pose* on
both rigs. A BVH's zero-rotation pose cannot be trusted for that (Bandai's lies along +X, Geno's arms point up,
CMU-max's hang down), so C is constructed the same way on every rig from a real frame of its motion:

1. the calibration frame is the clip's most neutral one (straightest knees and elbows);
2. the world is turned so the file's up axis is +Y (W) and the body faces +Z (a yaw);
3. every role joint's bone is swung onto its canonical direction (spine, neck, head up; arms out to the side;
   legs down; feet and toes forward), keeping the twist the frame had; hips and chest are aligned by two
   directions (up their chain, and across from the left to the right limb).

A hanging arm with the palm towards the thigh swings to a T-pose arm with the palm down, so a walking frame and a
T-pose rest give the same C up to how each person held their forearms that instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rotations as R
from ..clip import Clip
from .roles import SIDES, RoleMap

X, Y, Z = np.eye(3)

#: Canonical bone direction of each role (left side; the right side mirrors X).
CANONICAL_DIRECTION: dict[str, np.ndarray] = {
    "spine": Y, "neck": Y, "head": Y,
    "clavicle": X, "upper_arm": X, "forearm": X, "hand": X,
    "upper_leg": -Y, "lower_leg": -Y, "foot": Z, "toe": Z,
}


@dataclass
class Calibration:
    """C (J,4) for every role and chain joint (identity elsewhere), in the up-aligned world.

    `align` (4,) turns the file's world so its up axis is +Y; `frame` is the calibration frame of the clip;
    `pose_pos` (J,3) are the up-aligned global positions in that frame and `delta` (J,4) = G·C⁻¹ there (the
    rotation from the canonical pose back to that frame, per joint).
    """

    frame: int
    align: np.ndarray
    C: np.ndarray
    pose_pos: np.ndarray
    delta: np.ndarray
    spine_u: np.ndarray  # normalised chain positions of [hips, *spine, chest]
    neck_u: np.ndarray  # normalised chain positions of [chest, *neck, head]


def up_alignment(up: np.ndarray) -> np.ndarray:
    """Quaternion turning the file's up axis onto +Y (a +Z-up file turns about X)."""
    return R.quat_from_two_vectors(np.asarray(up, dtype=np.float64), Y)


def neutral_frame(gpos: np.ndarray, rm: RoleMap) -> int:
    """Frame with the straightest knees and elbows (a standing-like frame); ties go to the earliest."""
    bend = np.zeros(len(gpos))
    for s in SIDES:
        for a, b, c in (("upper_leg", "lower_leg", "foot"), ("upper_arm", "forearm", "hand")):
            pa, pb, pc = (gpos[:, rm.roles[f"{k}.{s}"]] for k in (a, b, c))
            u, v = pb - pa, pc - pb
            cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-12)
            bend += np.arccos(np.clip(cos, -1.0, 1.0)) * (2.0 if a == "upper_leg" else 1.0)
    return int(np.argmin(np.round(bend, 6)))


def chain_u(points: np.ndarray) -> np.ndarray:
    """Normalised arc length (0 at the first point, 1 at the last) of a polyline (N,3)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    total = seg.sum()
    if total <= 1e-12:
        return np.linspace(0.0, 1.0, len(points))
    return np.concatenate([[0.0], np.cumsum(seg) / total])


def _frame_from(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Rotation matrix whose columns are (secondary', primary, secondary' x primary): x across, y along."""
    y = primary / np.linalg.norm(primary)
    x = secondary - (secondary @ y) * y
    x = x / max(np.linalg.norm(x), 1e-12)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def _away(pos: np.ndarray, j: int, k: int, eps: float) -> bool:
    return bool(np.linalg.norm(pos[k] - pos[j]) > eps)


def _tip(clip: Clip, rm: RoleMap, pos: np.ndarray, grot: np.ndarray, j: int) -> np.ndarray | None:
    """Where a leaf-ish role joint points: the mean of its children and End Site (None when it has neither)."""
    sk = clip.skeleton
    pts = [pos[c] for c in sk.children(j)]
    if j in sk.end_sites:
        pts.append(pos[j] + R.quat_rotate(grot[j], sk.end_sites[j]))
    if not pts:
        return None
    tip = np.mean(pts, axis=0)
    return tip if np.linalg.norm(tip - pos[j]) > 1e-6 else None


def calibrate(clip: Clip, rm: RoleMap, frame: int | None = None) -> Calibration:
    """The canonical pose of `clip`'s rig, from `frame` (default: the most neutral frame)."""
    gpos, grot = clip.fk()
    if frame is None:
        frame = neutral_frame(gpos, rm)
    align = up_alignment(rm.up)
    pos = R.quat_rotate(align, gpos[frame])
    rot = R.quat_mul(align, grot[frame])
    ro = rm.roles
    lateral = pos[ro["upper_leg.L"]] - pos[ro["upper_leg.R"]]
    fwd = np.cross(lateral, Y)
    fwd[1] = 0.0
    yaw = R.quat_from_two_vectors(fwd, Z) if np.linalg.norm(fwd) > 1e-9 else R.identity_quat()
    pos = R.quat_rotate(yaw, pos)
    rot = R.quat_mul(yaw, rot)
    eps = 1e-6 * float(np.abs(pos).max() + 1.0)

    n = clip.num_joints
    C = R.identity_quat((n,))
    done = np.zeros(n, dtype=bool)
    sk = clip.skeleton

    def relative(j: int) -> np.ndarray:
        """j's rotation if its nearest calibrated ancestor stood in the canonical pose (pose-relative twist)."""
        a = int(sk.parents[j])
        while a >= 0 and not done[a]:
            a = int(sk.parents[a])
        if a < 0:
            return rot[j]
        return R.quat_mul(C[a], R.quat_mul(R.quat_conj(rot[a]), rot[j]))

    def swing_to(j: int, target_pos: np.ndarray | None, direction: np.ndarray) -> None:
        """C[j]: j turned (relative to its calibrated parent) so its bone points along `direction`."""
        a = relative(j)
        if target_pos is not None:
            bone_world = target_pos - pos[j]  # the bone in the pose, moved into j's relative frame:
            local = R.quat_rotate(R.quat_conj(rot[j]), bone_world)
            C[j] = R.quat_mul(R.quat_from_two_vectors(R.quat_rotate(a, local), direction), a)
        else:
            C[j] = a
        done[j] = True

    def first_away(j: int, chain: list[int], fallback: int) -> int:
        return next((k for k in chain if _away(pos, j, k, eps)), fallback)

    def align_frame(j: int, up_to: int, left: int, right: int) -> None:
        current = _frame_from(pos[up_to] - pos[j], pos[left] - pos[right])
        C[j] = R.quat_mul(R.matrix_to_quat(current.T), rot[j])  # canonical frame: x left, y up, z forward
        done[j] = True

    spine = [ro["hips"], *rm.spine, ro["chest"]]
    neck = [ro["chest"], *rm.neck, ro["head"]]
    arms = [ro.get(f"clavicle.{s}", ro[f"upper_arm.{s}"]) for s in SIDES]
    align_frame(ro["hips"], first_away(ro["hips"], spine[1:], ro["chest"]), ro["upper_leg.L"], ro["upper_leg.R"])
    for i, j in enumerate(spine[1:-1], start=1):
        swing_to(j, pos[first_away(j, spine[i + 1:], spine[-1])], Y)
    sides = [a if _away(pos, ro["chest"], a, eps) else ro[f"upper_arm.{s}"] for a, s in zip(arms, SIDES)]
    align_frame(ro["chest"], first_away(ro["chest"], neck[1:], ro["head"]), sides[0], sides[1])
    for i, j in enumerate(neck[1:-1], start=1):
        swing_to(j, pos[first_away(j, neck[i + 1:], neck[-1])], Y)
    swing_to(ro["head"], _tip(clip, rm, pos, rot, ro["head"]), Y)
    for s in SIDES:
        mirror = np.array([1.0 if s == "L" else -1.0, 1.0, 1.0])
        for chain in (("clavicle", "upper_arm", "forearm", "hand"), ("upper_leg", "lower_leg", "foot", "toe")):
            for i, role in enumerate(chain):
                j = ro.get(f"{role}.{s}")
                if j is None:
                    continue
                k = next((ro[f"{r}.{s}"] for r in chain[i + 1:] if f"{r}.{s}" in ro), None)
                target = pos[k] if k is not None and _away(pos, j, k, eps) and role not in ("hand", "toe") else \
                    _tip(clip, rm, pos, rot, j)
                d = CANONICAL_DIRECTION[role] * (mirror if chain[0] == "clavicle" else 1.0)
                swing_to(j, target, d)
    C = R.quat_normalize(C)
    mapped = np.zeros(clip.num_joints, dtype=bool)
    mapped[list(rm.mapped_joints())] = True
    C[~mapped] = R.identity_quat((int((~mapped).sum()),))
    # delta = G C^-1 in the up-aligned (not yawed) world: the yaw is part of where the frame stood.
    g_aligned = R.quat_mul(align, grot[frame])
    delta = R.quat_mul(g_aligned, R.quat_conj(C))
    return Calibration(
        frame=int(frame), align=align, C=C, pose_pos=R.quat_rotate(align, gpos[frame]), delta=delta,
        spine_u=chain_u(R.quat_rotate(align, gpos[frame][spine])),
        neck_u=chain_u(R.quat_rotate(align, gpos[frame][neck])),
    )
