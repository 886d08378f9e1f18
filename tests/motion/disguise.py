"""The disguise suite's rigs: Bandai motion re-expressed on synthetic skeletons, with exact ground truth.

Each disguise keeps every joint's world motion and changes only how the file says it: other names (the note's
conventions), other joint orients (so the zero-rotation pose is a T-pose, an A-pose, arms down, arms up, or
random), Z up, other units, other Euler orders, other frame rates, and inserted joints (finger chains, twist
bones, an extra spine joint) that never replace an original one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.clip import Clip
from rsmt_studio.motion.retarget import ModelRig
from rsmt_studio.motion.skeleton import Skeleton

BANDAI = ("Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
          "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
          "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R")


NAMINGS: dict[str, dict[str, str]] = {
    "mixamo": dict(zip(BANDAI, ["mixamorig:Hips", "mixamorig:Spine", "mixamorig:Spine2", "mixamorig:Neck",
                                "mixamorig:Head", "mixamorig:LeftShoulder", "mixamorig:LeftArm",
                                "mixamorig:LeftForeArm", "mixamorig:LeftHand", "mixamorig:RightShoulder",
                                "mixamorig:RightArm", "mixamorig:RightForeArm", "mixamorig:RightHand",
                                "mixamorig:LeftUpLeg", "mixamorig:LeftLeg", "mixamorig:LeftFoot",
                                "mixamorig:LeftToeBase", "mixamorig:RightUpLeg", "mixamorig:RightLeg",
                                "mixamorig:RightFoot", "mixamorig:RightToeBase"])),
    "cmu_max": dict(zip(BANDAI, ["Hips", "lowerback", "Chest2", "Neck", "Head", "LeftCollar", "LeftShoulder",
                                 "LeftElbow", "LeftWrist", "RightCollar", "RightShoulder", "RightElbow",
                                 "RightWrist", "LeftHip", "LeftKnee", "LeftAnkle", "LeftToe", "RightHip",
                                 "RightKnee", "RightAnkle", "RightToe"])),
    "unreal": dict(zip(BANDAI, ["pelvis", "spine_01", "spine_03", "neck_01", "head", "clavicle_l", "upperarm_l",
                                "lowerarm_l", "hand_l", "clavicle_r", "upperarm_r", "lowerarm_r", "hand_r",
                                "thigh_l", "calf_l", "foot_l", "ball_l", "thigh_r", "calf_r", "foot_r",
                                "ball_r"])),
    "smpl": dict(zip(BANDAI, ["pelvis", "spine1", "spine3", "neck", "head", "left_collar", "left_shoulder",
                              "left_elbow", "left_wrist", "right_collar", "right_shoulder", "right_elbow",
                              "right_wrist", "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip",
                              "right_knee", "right_ankle", "right_foot"])),
    # no side words at all: sides must come from geometry
    "anonymous": {b: f"j{i:02d}" for i, b in enumerate(BANDAI)},
}


@dataclass
class Disguise:
    naming: str = "mixamo"
    zero_pose: str = "random"  # random | T | A | down | up
    z_up: bool = False
    unit: float = 1.0  # file units per cm
    fps: float = 30.0
    extra: tuple[str, ...] = ()  # fingers, twist, spine, pivot
    seed: int = 0
    orders: str = "ZXY"  # or "random"
    names: dict[str, str] = field(default_factory=dict)  # filled: Bandai name -> disguised name


def _pose_globals(rig: ModelRig, kind: str) -> np.ndarray:
    """Model-rig global rotations (21,4) of the canonical T-pose turned into the wanted zero pose."""
    g = rig.C.copy()
    angle = {"T": 0.0, "A": 45.0, "down": 85.0, "up": -85.0}[kind]
    for s, sign in (("L", 1.0), ("R", -1.0)):
        q = R.axis_angle_to_quat(np.array([0.0, 0.0, 1.0]), np.deg2rad(-angle * sign))
        for n in (f"UpperArm_{s}", f"LowerArm_{s}", f"Hand_{s}"):
            k = rig.index(n)
            g[k] = R.quat_mul(q, g[k])
    return g


def disguise(clip: Clip, rig: ModelRig, d: Disguise) -> Clip:
    """`clip` (on the model rig: 21 joints, hips as root) on a disguised rig with the same world motion."""
    rng = np.random.default_rng(d.seed)
    sk = clip.skeleton
    n = sk.num_joints
    names = NAMINGS[d.naming]
    d.names = dict(names)
    # joint orients O: new local = O_p^-1 L O_j, new offset = O_p^-1 offset (world motion unchanged)
    if d.zero_pose == "random":
        o = R.quat_normalize(rng.normal(size=(n, 4)))
    else:
        pose = _pose_globals(rig, d.zero_pose)
        o = R.quat_conj(pose)  # zero rotation <=> the pose (C is in the model's Y-up world)
    lr = clip.local_rot.copy()
    lp = clip.local_pos.copy()
    par = sk.parents
    new_lr = np.empty_like(lr)
    new_lr[:, 0] = R.quat_mul(lr[:, 0], o[0])
    new_lr[:, 1:] = R.quat_mul(R.quat_mul(R.quat_conj(o[par[1:]]), lr[:, 1:]), o[1:])
    new_lp = lp.copy()
    new_lp[:, 1:] = R.quat_rotate(R.quat_conj(o[par[1:]]), lp[:, 1:])
    offsets = new_lp.mean(axis=0)
    offsets[0] = 0.0
    joint_names = [names[x] for x in sk.names]
    parents = list(par)
    end_sites = {}
    # world: Z up, units
    if d.z_up:
        w = R.axis_angle_to_quat(np.array([1.0, 0.0, 0.0]), np.pi / 2)  # +Y -> +Z
        new_lr[:, 0] = R.quat_mul(w, new_lr[:, 0])
        new_lp[:, 0] = R.quat_rotate(w, new_lp[:, 0])
    new_lp *= d.unit
    offsets *= d.unit
    # inserted joints (appended; parents always earlier)
    rot_list = [new_lr[:, j] for j in range(n)]
    pos_list = [new_lp[:, j] for j in range(n)]
    offs = [offsets[j] for j in range(n)]

    def add(name: str, parent: int, offset: np.ndarray, local=None) -> int:
        joint_names.append(name)
        parents.append(parent)
        offs.append(np.asarray(offset, dtype=np.float64))
        t = clip.num_frames
        rot_list.append(np.broadcast_to(R.identity_quat() if local is None else local, (t, 4)).copy())
        pos_list.append(np.broadcast_to(offs[-1], (t, 3)).copy())
        return len(joint_names) - 1

    if "spine" in d.extra:  # split Spine -> Chest into two bones: Spine -> SpineMid -> Chest
        spine, chest = sk.names.index("Spine"), sk.names.index("Chest")
        half = offs[chest] * 0.5
        mid = add(names["Spine"] + "_mid", spine, half)
        parents[chest] = mid
        offs[chest] = half.copy()
        pos_list[chest] = pos_list[chest] * 0.5
    if "pivot" in d.extra:  # a zero-length pivot between the hips and each thigh (CMU's LHipJoint)
        hips = 0
        for s in ("L", "R"):
            thigh = sk.names.index(f"UpperLeg_{s}")
            piv = add(f"{s}HipJoint", hips, np.zeros(3))
            parents[thigh] = piv
    for s in ("L", "R"):
        hand = sk.names.index(f"Hand_{s}")
        if "fingers" in d.extra:
            for f, spread in (("Index", 0.3), ("Middle", 0.0), ("Pinky", -0.3), ("Thumb", 0.6)):
                base = offs[hand] * 0.4 + np.array([0.0, spread, 0.0]) * d.unit * 3.0
                a = add(f"{joint_names[hand]}{f}1", hand, base,
                        R.quat_normalize(rng.normal(size=4) * 0.1 + [1, 0, 0, 0]))
                b = add(f"{joint_names[hand]}{f}2", a, offs[hand] * 0.15)
                end_sites[b] = offs[hand] * 0.1
        elif hand in sk.end_sites:
            end_sites[hand] = R.quat_rotate(R.quat_conj(o[hand]), sk.end_sites[hand]) * d.unit
        if "twist" in d.extra:
            upper, lower = sk.names.index(f"UpperArm_{s}"), sk.names.index(f"LowerArm_{s}")
            add(f"{joint_names[upper]}_twist_01", upper, offs[lower] * 0.5)
    for j in (sk.names.index(x) for x in ("Head", "Toes_L", "Toes_R")):
        if j in sk.end_sites:
            end_sites[j] = R.quat_rotate(R.quat_conj(o[j]), sk.end_sites[j]) * d.unit
    # reorder so parents come before children (inserted joints were appended after their children)
    order = _topological(parents)
    inv = {old: new for new, old in enumerate(order)}
    m = len(order)
    orders = ["ZXY"] * m if d.orders == "ZXY" else ["".join(rng.permutation(list("XYZ"))) for _ in range(m)]
    channels = []
    for k, old in enumerate(order):
        rot = tuple(f"{a}rotation" for a in orders[k])
        channels.append(("Xposition", "Yposition", "Zposition", *rot) if parents[old] < 0 else rot)
    new_sk = Skeleton([joint_names[o_] for o_ in order], [inv[parents[o_]] if parents[o_] >= 0 else -1 for o_ in order],
                      np.array([offs[o_] for o_ in order]), channels, orders,
                      end_sites={inv[k]: v for k, v in end_sites.items()})
    out = Clip(new_sk, clip.fps, np.stack([pos_list[o_] for o_ in order], axis=1),
               np.stack([rot_list[o_] for o_ in order], axis=1), name=f"{clip.name}-{d.naming}-{d.zero_pose}")
    if d.fps != clip.fps:
        out = out.resample(d.fps)
    return out


def _topological(parents: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(p, []).append(j)
    out, stack = [], list(reversed(children.get(-1, [])))
    while stack:
        j = stack.pop()
        out.append(j)
        stack.extend(reversed(children.get(j, [])))
    return out


def world_to_original(gpos: np.ndarray, d: Disguise) -> np.ndarray:
    """Positions of a disguised file back in the original's world and units."""
    out = gpos / d.unit
    if d.z_up:
        out = R.quat_rotate(R.axis_angle_to_quat(np.array([1.0, 0.0, 0.0]), -np.pi / 2), out)
    return out
