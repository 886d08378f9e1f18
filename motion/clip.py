"""A motion clip: a skeleton plus per-frame local translations and rotations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import rotations as R
from .skeleton import Skeleton


def forward_kinematics(parents: np.ndarray, local_pos: np.ndarray, local_rot: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (...,J,3) and rotations (...,J,4) from parent-relative ones.

    Loops over depth levels of the tree (all joints of one depth at once; parents come first), vectorised over
    every leading axis: a 75-joint rig with fingers costs ~10 steps, not 75.
    """
    local_pos = np.asarray(local_pos, dtype=np.float64)
    local_rot = np.asarray(local_rot, dtype=np.float64)
    gpos = np.empty_like(local_pos)
    grot = np.empty_like(local_rot)
    for idx, par in depth_levels(tuple(int(p) for p in parents)):
        if par is None:
            gpos[..., idx, :] = local_pos[..., idx, :]
            grot[..., idx, :] = local_rot[..., idx, :]
        else:
            grot[..., idx, :] = R.quat_mul(grot[..., par, :], local_rot[..., idx, :])
            gpos[..., idx, :] = gpos[..., par, :] + R.quat_rotate(grot[..., par, :], local_pos[..., idx, :])
    return gpos, grot


@lru_cache(maxsize=256)
def depth_levels(parents: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Joints grouped by depth, each group with its parents' indices (None for the roots), shallowest first."""
    depth = []
    for p in parents:
        depth.append(0 if p < 0 else depth[p] + 1)
    depth_arr = np.array(depth)
    par = np.array(parents)
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for d in range(int(depth_arr.max()) + 1 if parents else 0):
        idx = np.flatnonzero(depth_arr == d)
        out.append((idx, None if d == 0 else par[idx]))
    return out


@dataclass(eq=False)
class Clip:
    """Skeleton + fps + local translations (T,J,3) + local unit quaternions (T,J,4), with labels.

    ``local_pos[:, j]`` equals the joint's OFFSET where the file has no position channels for it, so FK never
    needs to look at the channel layout.
    """

    skeleton: Skeleton
    fps: float
    local_pos: np.ndarray
    local_rot: np.ndarray
    name: str = ""
    style: str | None = None
    content: str | None = None
    source_path: Path | None = None
    frame_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.local_pos = np.asarray(self.local_pos, dtype=np.float64)
        self.local_rot = np.asarray(self.local_rot, dtype=np.float64)
        j = self.skeleton.num_joints
        if self.local_pos.ndim != 3 or self.local_pos.shape[1:] != (j, 3):
            raise ValueError(f"local_pos must be (T,{j},3), got {self.local_pos.shape}")
        if self.local_rot.shape != (*self.local_pos.shape[:2], 4):
            raise ValueError(f"local_rot must be (T,{j},4), got {self.local_rot.shape}")
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.source_path is not None:
            self.source_path = Path(self.source_path)

    # --- basic properties ---------------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return int(self.local_pos.shape[0])

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def frame_time(self) -> float:
        return 1.0 / self.fps

    @property
    def duration(self) -> float:
        """Seconds covered by the frames: (T - 1) / fps, 0 for a single frame."""
        return max(self.num_frames - 1, 0) / self.fps

    @property
    def root_pos(self) -> np.ndarray:
        """(T,3) local translation of joint 0 (for Bandai that is the static joint_Root; see root_joint)."""
        return self.local_pos[:, 0]

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        label = f" style={self.style!r} content={self.content!r}" if (self.style or self.content) else ""
        return f"Clip({self.name!r}, {self.num_frames} frames @ {self.fps:g} fps, {self.num_joints} joints{label})"

    # --- kinematics ---------------------------------------------------------------------------------------

    def fk(self) -> tuple[np.ndarray, np.ndarray]:
        """Global positions (T,J,3) and global rotations (T,J,4)."""
        return forward_kinematics(self.skeleton.parents, self.local_pos, self.local_rot)

    def global_positions(self) -> np.ndarray:
        return self.fk()[0]

    def end_site_positions(self) -> dict[int, np.ndarray]:
        """Global positions (T,3) of each End Site, keyed by the joint that owns it."""
        gpos, grot = self.fk()
        return {j: gpos[:, j] + R.quat_rotate(grot[:, j], off) for j, off in self.skeleton.end_sites.items()}

    # --- editing ------------------------------------------------------------------------------------------

    def copy(self) -> Clip:
        return replace(self, skeleton=self.skeleton, local_pos=self.local_pos.copy(),
                       local_rot=self.local_rot.copy())

    def slice(self, start: int, stop: int) -> Clip:
        """Frames [start, stop) as a new clip; frame_range is kept relative to the source file."""
        t = self.num_frames
        start, stop, _ = slice(start, stop).indices(t)
        if stop <= start:
            raise ValueError(f"empty slice [{start}, {stop}) of a {t}-frame clip")
        base = self.frame_range[0] if self.frame_range else 0
        return replace(self, local_pos=self.local_pos[start:stop].copy(), local_rot=self.local_rot[start:stop].copy(),
                       frame_range=(base + start, base + stop))

    def resample(self, fps: float, start: float = 0.0) -> Clip:
        """The same motion at another frame rate: translations lerped, rotations slerped. The first new frame
        is at `start` (in this clip's frames, 0 <= start < T), so a chosen frame can land exactly on a sample."""
        if not (fps > 0 and np.isfinite(fps)):
            raise ValueError(f"fps must be positive, got {fps}")
        t = self.num_frames
        if not 0.0 <= start <= t - 1:
            raise ValueError(f"resample start {start} outside the clip's {t} frames")
        n = int(np.floor((t - 1 - start) * fps / self.fps + 1e-9)) + 1
        src = start + np.arange(n) * (self.fps / fps)
        i0 = np.clip(np.floor(src).astype(np.int64), 0, t - 1)
        i1 = np.minimum(i0 + 1, t - 1)
        w = (src - i0)[:, None]
        pos = self.local_pos[i0] * (1 - w[..., None]) + self.local_pos[i1] * w[..., None]
        rot = R.quat_slerp(self.local_rot[i0], self.local_rot[i1], np.broadcast_to(w, (n, self.num_joints)))
        return replace(self, fps=float(fps), local_pos=pos, local_rot=rot, frame_range=None)

    def with_continuity(self) -> Clip:
        """Quaternion signs made continuous over time (each joint separately)."""
        return replace(self, local_rot=R.quat_continuity(self.local_rot, axis=0), local_pos=self.local_pos.copy())

    def mirror(self, axis: int = 0) -> Clip:
        """Mirror image across the world plane normal to `axis` (default X), left and right joints swapped.

        Keeps the same skeleton (offsets unchanged), so a network sees the mirrored clip on its own rig. The
        global positions are exactly the reflected, L/R-swapped ones whenever the skeleton is symmetric.
        """
        from .mirror import mirror_clip

        return mirror_clip(self, axis)
