"""Real OpenGL (Mesa under Xvfb): characters appear where the camera projects them, and only there."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.viewer.pixels import distance_to_segments, hue_mask, image_to_rgb
from rsmt_studio.viewer.renderer import CharacterFrame
from rsmt_studio.viewer.widget import ViewerWidget

pytestmark = pytest.mark.gui

PARENTS = np.array([-1, 0, 1, 2, 2, 4, 2, 6, 0, 8, 9, 0, 11, 12])
POSE = np.array([
    [0, 95, 0], [0, 120, 0], [0, 145, 0], [0, 168, 0],  # hips, spine, neck, head
    [-18, 140, 0], [-45, 120, 5],  # left arm
    [18, 140, 0], [45, 120, 5],  # right arm
    [-10, 90, 0], [-12, 48, 4], [-12, 6, 0],  # left leg
    [10, 90, 0], [12, 48, -4], [12, 6, 0],  # right leg
], float)
ORANGE, BLUE = (0.95, 0.55, 0.18), (0.25, 0.60, 0.95)


@pytest.fixture()
def viewer(qtbot):
    w = ViewerWidget(samples=0)
    w.resize(640, 400)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _segments(cam, pose, w, h):
    px = cam.project(pose, w, h)
    child = np.nonzero(PARENTS >= 0)[0]
    return px, px[PARENTS[child]], px[child]


def test_two_characters_render_in_their_colours_near_their_joints(viewer, qtbot):
    second = POSE + [70, 0, 0]
    viewer.set_characters([CharacterFrame(POSE, PARENTS, ORANGE, radius=3.0),
                           CharacterFrame(second, PARENTS, BLUE, radius=3.0)])
    viewer.frame_all()
    img = image_to_rgb(viewer.grab_image())
    h, w = img.shape[:2]
    assert viewer.renderer.initialized and viewer.gl_renderer_name
    for colour, pose in ((ORANGE, POSE), (BLUE, second)):
        mask = hue_mask(img, colour)
        joints_px, a, b = _segments(viewer.camera, pose, w, h)
        ys, xs = np.nonzero(mask)
        pts = np.stack([xs, ys], 1)
        assert len(pts) > 300, f"too few {colour} pixels: {len(pts)}"
        # Every joint has skeleton-coloured pixels within a few pixels of its projection...
        for jx, jy in joints_px:
            near = np.hypot(xs - jx, ys - jy) < 8
            assert near.any(), f"no {colour} pixel near joint at ({jx:.0f},{jy:.0f})"
        # ...and no skeleton-coloured pixel lies far from a projected bone (shadows and floor are grey).
        assert distance_to_segments(pts, a, b).max() < 12


def test_instancing_uses_constant_draw_calls_and_uploads_only_transforms(viewer):
    chars = [CharacterFrame(POSE + [k * 60, 0, 0], PARENTS, ORANGE, radius=3.0) for k in range(3)]
    viewer.prefs.show_shadows = False
    viewer.set_characters(chars)
    viewer.grab_image()  # forces a paintGL with the new characters
    one_frame = viewer.last_stats
    # sky + grid lines + all bones + all joints = 4 draws, however many characters.
    assert one_frame.draw_calls == 4
    assert one_frame.instances == 3 * (len(PARENTS) - 1) + 3 * len(PARENTS)
    assert one_frame.bytes_uploaded == one_frame.instances * 20 * 4


def test_ghost_is_translucent(viewer):
    viewer.prefs.show_shadows = False
    viewer.set_characters([CharacterFrame(POSE, PARENTS, BLUE, radius=4.0)])
    viewer.frame_characters()
    solid = image_to_rgb(viewer.grab_image())
    viewer.set_characters([CharacterFrame(POSE, PARENTS, BLUE, alpha=0.35, radius=4.0)])
    ghost = image_to_rgb(viewer.grab_image())
    h, w = solid.shape[:2]
    joints = viewer.camera.project(POSE, w, h).round().astype(int)
    s = np.array([solid[y, x] for x, y in joints])
    g = np.array([ghost[y, x] for x, y in joints])
    # Opaque joints are saturated blue; the ghost's are a mix of blue and the grey behind it.
    sat = lambda c: (c.max(1) - c.min(1)) / np.maximum(c.max(1), 1e-6)
    assert np.median(sat(s)) > 0.5
    assert 0.05 < np.median(sat(g)) < np.median(sat(s)) * 0.8


def test_offscreen_render_matches_requested_size(viewer):
    viewer.set_characters([CharacterFrame(POSE, PARENTS, ORANGE, radius=3.0)])
    img = viewer.render_offscreen(1280, 720)
    assert (img.width(), img.height()) == (1280, 720)
    assert hue_mask(image_to_rgb(img), ORANGE).sum() > 500


def test_trajectory_uploaded_once_then_only_transforms(viewer):
    path = np.stack([np.linspace(-100, 100, 500), np.zeros(500), np.zeros(500)], 1)
    viewer.prefs.show_shadows = False
    viewer.set_characters([CharacterFrame(POSE, PARENTS, ORANGE, radius=3.0, trajectory=path)])
    viewer.grab_image()
    first = viewer.last_stats.bytes_uploaded
    viewer.set_characters([CharacterFrame(POSE + [1, 0, 0], PARENTS, ORANGE, radius=3.0, trajectory=path)])
    viewer.grab_image()
    transforms = viewer.last_stats.instances * 20 * 4
    assert first == transforms + path.astype(np.float32).nbytes
    assert viewer.last_stats.bytes_uploaded == transforms


def test_follow_root_keeps_the_camera_on_the_character(viewer):
    viewer.set_characters([CharacterFrame(POSE, PARENTS, ORANGE, radius=3.0)])
    viewer.set_follow_root(True)
    moved = POSE + [250.0, 0.0, -120.0]
    viewer.set_characters([CharacterFrame(moved, PARENTS, ORANGE, radius=3.0)])
    assert viewer.camera.target[[0, 2]] == pytest.approx(moved[0, [0, 2]])
    px = viewer.camera.project(moved[:1], viewer.width(), viewer.height())[0]
    assert abs(px[0] - viewer.width() / 2) < 2  # the root stays in the middle of the view
