"""An orbit camera in plain numpy: orbit / pan / zoom around a target, fitted to whatever unit the data uses.

Kept free of Qt and OpenGL so its maths can be tested directly and reused by the benchmark.
The world is Y-up (the BVH convention); matrices are column-vector style, stored row-major in numpy
(upload with ``transpose=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL-style projection matrix (clip z in [-w, w])."""
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2.0)
    m = np.zeros((4, 4), dtype=np.float32)
    m[0, 0] = f / max(aspect, 1e-6)
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """View matrix that puts ``eye`` at the origin looking down -Z towards ``target``."""
    f = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    f /= max(np.linalg.norm(f), 1e-12)
    s = np.cross(f, up)
    s /= max(np.linalg.norm(s), 1e-12)
    u = np.cross(s, f)
    m = np.eye(4, dtype=np.float64)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ np.asarray(eye, np.float64)
    return m.astype(np.float32)


@dataclass
class OrbitCamera:
    """Spherical camera around ``target``: yaw about +Y, pitch above the horizon, ``distance`` from target.

    ``scale`` is the size of the thing being looked at (a skeleton's height) in the data's own unit;
    near/far planes, zoom limits and pan speed derive from it so centimetres and metres both work.
    """

    target: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float64))
    distance: float = 4.0
    yaw_deg: float = 35.0
    pitch_deg: float = 15.0
    fov_y_deg: float = 40.0
    scale: float = 1.7

    # -- matrices ---------------------------------------------------------------------------------
    @property
    def eye(self) -> np.ndarray:
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        offset = np.array(
            [math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)]
        )
        return np.asarray(self.target, np.float64) + self.distance * offset

    def view_matrix(self) -> np.ndarray:
        return look_at(self.eye, self.target, np.array([0.0, 1.0, 0.0]))

    def near_far(self) -> tuple[float, float]:
        near = max(self.distance * 0.01, self.scale * 1e-3)
        far = self.distance + self.scale * 200.0
        return near, far

    def projection_matrix(self, aspect: float) -> np.ndarray:
        near, far = self.near_far()
        return perspective(self.fov_y_deg, aspect, near, far)

    def view_projection(self, aspect: float) -> np.ndarray:
        return self.projection_matrix(aspect) @ self.view_matrix()

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """World points (N,3) -> pixel coordinates (N,2), origin top-left (as in a QImage)."""
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        homo = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
        clip = homo @ self.view_projection(width / max(height, 1)).astype(np.float64).T
        ndc = clip[:, :3] / clip[:, 3:4]
        x = (ndc[:, 0] * 0.5 + 0.5) * width
        y = (1.0 - (ndc[:, 1] * 0.5 + 0.5)) * height
        return np.stack([x, y], axis=1)

    # -- interaction ------------------------------------------------------------------------------
    def orbit(self, d_yaw_deg: float, d_pitch_deg: float) -> None:
        self.yaw_deg = (self.yaw_deg + d_yaw_deg) % 360.0
        self.pitch_deg = float(np.clip(self.pitch_deg + d_pitch_deg, -89.0, 89.0))

    def zoom(self, factor: float) -> None:
        """Multiply the distance by ``factor`` (< 1 moves closer), within limits relative to ``scale``."""
        self.distance = float(np.clip(self.distance * factor, self.scale * 0.05, self.scale * 500.0))

    def pan(self, dx_px: float, dy_px: float, viewport_height_px: int) -> None:
        """Move target in the view plane so the scene follows the mouse by (dx, dy) pixels."""
        view = self.view_matrix()
        right, up = view[0, :3].astype(np.float64), view[1, :3].astype(np.float64)
        world_per_px = 2.0 * self.distance * math.tan(math.radians(self.fov_y_deg) / 2.0)
        world_per_px /= max(viewport_height_px, 1)
        self.target = np.asarray(self.target, np.float64) + (-dx_px * right + dy_px * up) * world_per_px

    def frame_bounds(self, lo: np.ndarray, hi: np.ndarray, aspect: float = 16 / 9) -> None:
        """Aim at the box [lo, hi] and back off until its bounding sphere fits the view."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        centre = (lo + hi) / 2.0
        radius = max(float(np.linalg.norm(hi - lo)) / 2.0, 1e-6)
        half_fov = math.radians(self.fov_y_deg) / 2.0
        if aspect < 1.0:  # portrait: the horizontal field is the narrower one
            half_fov = math.atan(math.tan(half_fov) * aspect)
        self.target = centre
        self.distance = radius / math.sin(half_fov) * 1.05
        self.scale = max(self.scale, 1e-6)

    def fit_skeleton(self, positions: np.ndarray, aspect: float = 16 / 9) -> None:
        """Default view for a pose or a clip (..., J, 3): scale from the skeleton height, whatever the unit."""
        pts = np.asarray(positions, np.float64).reshape(-1, 3)
        height = skeleton_height(positions)
        self.scale = height
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        # A little floor around the feet so a still pose does not fill the screen edge to edge.
        pad = np.array([0.12, 0.0, 0.12]) * height
        lo, hi = lo - pad, hi + pad
        lo[1] = min(lo[1], 0.0)
        self.frame_bounds(lo, hi, aspect)


def skeleton_height(positions: np.ndarray) -> float:
    """Height of a skeleton from its joint positions (..., J, 3): the Y extent of one pose (median over frames).

    Works for any unit (Bandai cm, CMU inches/metres) and never returns 0.
    """
    pos = np.asarray(positions, np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    pos = pos.reshape(-1, pos.shape[-2], 3)
    extent = pos[..., 1].max(axis=1) - pos[..., 1].min(axis=1)
    h = float(np.median(extent)) if extent.size else 0.0
    if h <= 1e-9:  # lying flat or a single joint: fall back to the largest extent
        h = float(np.ptp(pos.reshape(-1, 3), axis=0).max()) if pos.size else 0.0
    return h if h > 1e-9 else 1.0


def nice_grid_step(height: float) -> float:
    """Grid cell size near a third of a body height, rounded to 1, 2 or 5 x 10^k in the data's unit."""
    target = max(height, 1e-9) / 3.0
    k = math.floor(math.log10(target))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**k >= target:
            return m * 10**k
    return 10.0 ** (k + 1)
