"""Orbit camera maths: projection, framing in any unit, zoom/pan limits."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.viewer.camera import OrbitCamera, nice_grid_step, skeleton_height


def _stick_figure(scale: float) -> np.ndarray:
    return np.array([[0, 0, 0], [0, 0.9, 0], [0, 1.5, 0], [0, 1.7, 0], [-0.3, 1.4, 0], [0.3, 1.4, 0]]) * scale


@pytest.mark.parametrize("scale", [1.0, 100.0, 0.0254])  # metres, centimetres, a CMU-like odd unit
def test_fit_skeleton_frames_any_unit_the_same_way(scale):
    cam = OrbitCamera()
    pose = _stick_figure(scale)
    cam.fit_skeleton(pose, aspect=16 / 9)
    px = cam.project(pose, 1280, 720)
    # Same picture whatever the unit: every joint on screen and the figure 30-95 % of the height.
    assert np.all((px[:, 0] > 0) & (px[:, 0] < 1280) & (px[:, 1] > 0) & (px[:, 1] < 720))
    span = px[:, 1].max() - px[:, 1].min()
    assert 0.3 * 720 < span < 0.95 * 720
    assert cam.scale == pytest.approx(1.7 * scale)
    near, far = cam.near_far()
    assert near < cam.distance - 1.0 * scale and far > cam.distance + 2.0 * scale


def test_project_puts_target_in_the_centre():
    cam = OrbitCamera(target=np.array([10.0, 20.0, 30.0]), distance=50.0, yaw_deg=70, pitch_deg=25)
    assert cam.project(cam.target, 800, 600)[0] == pytest.approx([400, 300], abs=1e-3)


def test_orbit_clamps_pitch_and_zoom_respects_scale():
    cam = OrbitCamera(scale=170.0, distance=400.0)
    cam.orbit(10, 500)
    assert cam.pitch_deg == 89.0
    for _ in range(100):
        cam.zoom(0.5)
    assert cam.distance == pytest.approx(170.0 * 0.05)


def test_pan_moves_target_in_view_plane_following_the_mouse():
    cam = OrbitCamera(target=np.zeros(3), distance=10.0, yaw_deg=0.0, pitch_deg=0.0)
    before = cam.project(np.zeros(3), 800, 600)[0]
    cam.pan(100, 0, 600)
    after = cam.project(np.zeros(3), 800, 600)[0]
    # The world origin follows the drag: 100 px to the right.
    assert after[0] - before[0] == pytest.approx(100, abs=0.5)
    assert after[1] == pytest.approx(before[1], abs=0.5)


def test_skeleton_height_and_grid_step_follow_units():
    clip = np.stack([_stick_figure(100.0)] * 5)
    assert skeleton_height(clip) == pytest.approx(170.0)
    assert nice_grid_step(170.0) == 100.0
    assert nice_grid_step(1.7) == 1.0
    assert skeleton_height(np.zeros((3, 4, 3))) == 1.0  # degenerate input never gives 0
