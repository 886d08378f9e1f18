"""Fixtures for training tests: a small synthetic folder in the 100STYLE layout (23 joints, 60 fps, Frame_Cuts.csv)
written with our own BVH writer, so the 100STYLE path of the pipeline is exercised without the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import Clip, Skeleton, write_bvh
from rsmt_studio.motion import rotations as R

STYLE100_JOINTS = [
    ("Hips", -1, (0, 0, 0)),
    ("LeftHip", 0, (9, -3, 0)), ("LeftKnee", 1, (0, -44, 0)), ("LeftAnkle", 2, (0, -42, 0)),
    ("LeftToe", 3, (0, -6, 13)),
    ("RightHip", 0, (-9, -3, 0)), ("RightKnee", 5, (0, -44, 0)), ("RightAnkle", 6, (0, -42, 0)),
    ("RightToe", 7, (0, -6, 13)),
    ("Chest", 0, (0, 10, 0)), ("Chest2", 9, (0, 10, 0)), ("Chest3", 10, (0, 10, 0)), ("Chest4", 11, (0, 10, 0)),
    ("Neck", 12, (0, 12, 0)), ("Head", 13, (0, 10, 0)),
    ("LeftCollar", 12, (4, 8, 0)), ("LeftShoulder", 15, (12, 0, 0)), ("LeftElbow", 16, (27, 0, 0)),
    ("LeftWrist", 17, (24, 0, 0)),
    ("RightCollar", 12, (-4, 8, 0)), ("RightShoulder", 19, (-12, 0, 0)), ("RightElbow", 20, (-27, 0, 0)),
    ("RightWrist", 21, (-24, 0, 0)),
]
STYLES = {"Happy": (1.3, 0.4), "Tired": (0.8, 0.15), "Proud": (1.0, 0.3)}  # (cadence Hz scale, arm swing)
KINDS = {"FW": 1.0, "BW": -0.7, "ID": 0.0}


def style100_skeleton() -> Skeleton:
    names = [n for n, _, _ in STYLE100_JOINTS]
    return Skeleton(
        names=names,
        parents=[p for _, p, _ in STYLE100_JOINTS],
        offsets=[o for _, _, o in STYLE100_JOINTS],
        channels=[("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")]
        + [("Zrotation", "Yrotation", "Xrotation")] * (len(names) - 1),
        rotation_orders=["ZYX"] * len(names),
    )


def synthetic_walk(style: str, kind: str, frames: int = 420, fps: float = 60.0, seed: int = 0) -> Clip:
    """A periodic gait: legs and arms swing, the root moves along its (slowly turning) facing direction."""
    sk = style100_skeleton()
    cadence, swing = STYLES[style]
    speed = KINDS[kind]
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    ph = 2 * np.pi * cadence * t + rng.uniform(0, 2 * np.pi)
    j = sk.num_joints
    euler = np.zeros((frames, j, 3))  # radians, applied as X rotations (index 0 of "XYZ")
    amp = 0.5 if speed else 0.08
    euler[:, 1, 0], euler[:, 5, 0] = amp * np.sin(ph), -amp * np.sin(ph)
    euler[:, 2, 0], euler[:, 6, 0] = 0.6 * np.maximum(0, np.sin(ph + 1)), 0.6 * np.maximum(0, np.sin(-ph + 1))
    euler[:, 16, 0], euler[:, 20, 0] = -swing * np.sin(ph), swing * np.sin(ph)
    euler[:, 13, 0] = 0.1 * np.sin(2 * ph)
    yaw = 0.3 * np.sin(0.2 * t)
    rot = R.euler_to_quat(euler, "XYZ")
    rot[:, 0] = R.quat_mul(R.quat_from_yaw(yaw), rot[:, 0])
    heading = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1)
    root = np.cumsum(heading * speed * 120.0 / fps * cadence, axis=0)
    root[:, 1] = 92.0 + 1.5 * np.sin(2 * ph)
    lp = np.repeat(sk.offsets[None], frames, axis=0)
    lp[:, 0] = root
    return Clip(skeleton=sk, fps=fps, local_pos=lp, local_rot=rot, name=f"{style}_{kind}")


@pytest.fixture(scope="session")
def style100_root(tmp_path_factory) -> Path:
    """<root>/<Style>/<Style>_<Kind>.bvh for 3 styles x 3 kinds, plus Frame_Cuts.csv (one kind cut to NA)."""
    root = tmp_path_factory.mktemp("style100")
    rows = ["STYLE_NAME,FW_START,FW_STOP,BW_START,BW_STOP,ID_START,ID_STOP"]
    for i, style in enumerate(STYLES):
        (root / style).mkdir()
        for k, kind in enumerate(KINDS):
            write_bvh(synthetic_walk(style, kind, seed=10 * i + k), root / style / f"{style}_{kind}.bvh")
        rows.append(f"{style},10,410,0,400,{'NA,NA' if style == 'Tired' else '20,380'}")
    (root / "Frame_Cuts.csv").write_text("\n".join(rows) + "\n")
    return root
