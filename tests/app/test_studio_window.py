"""The studio window end to end under Xvfb with real OpenGL, through the same code paths as a user."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from rsmt_studio.viewer.pixels import distance_to_segments, hue_mask, image_to_rgb

pytestmark = pytest.mark.gui


def _open(window, qtbot, paths):
    """File > Open / drag-and-drop / command line all end in open_paths; wait until every job it started ends
    (not for the next `loading_finished`, which may still be an earlier job's)."""
    window.open_paths([Path(p) for p in paths])
    assert window.jobs
    qtbot.waitUntil(lambda: not window.jobs, timeout=30000)


def test_open_bandai_clip_play_pause_scrub_speed(window, qtbot, bandai_clip):
    _open(window, qtbot, [bandai_clip])
    assert len(window.scene.characters) == 1
    ch = window.scene.characters[0]
    assert ch.positions.shape[1] == 22 and window.playback.num_frames == ch.num_frames
    assert window.properties_widget.value(0, "Frames") == str(ch.num_frames)
    assert window.properties_widget.value(0, "Style") == "normal"
    assert "Loaded" in window.statusBar().currentMessage()

    # Space plays (the window-level shortcut), Space pauses.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.viewer.setFocus()
    qtbot.keyClick(window.viewer, Qt.Key.Key_Space)
    assert window.playback.playing
    qtbot.waitUntil(lambda: window.playback.frame >= 5, timeout=5000)
    qtbot.keyClick(window.viewer, Qt.Key.Key_Space)
    assert not window.playback.playing
    paused_at = window.playback.frame
    qtbot.wait(150)
    assert window.playback.frame == paused_at
    assert window.timeline.frame_box.value() == paused_at

    # Right / Left step one frame.
    qtbot.keyClick(window.viewer, Qt.Key.Key_Right)
    assert window.playback.frame == paused_at + 1
    qtbot.keyClick(window.viewer, Qt.Key.Key_Left)
    assert window.playback.frame == paused_at

    # Scrub: click the middle of the scrubber.
    scrubber = window.timeline.scrubber
    qtbot.mouseClick(scrubber, Qt.MouseButton.LeftButton, pos=QPoint(scrubber.width() // 2, 10))
    mid = (window.playback.num_frames - 1) / 2
    assert abs(window.playback.frame - mid) <= 2

    # Speed 2x from the combo box doubles the playhead rate (measured against the wall clock).
    window.timeline.speed_box.setCurrentIndex(window.timeline.speed_box.findData(2.0))
    assert window.playback.speed == 2.0
    window.playback.seek(0)
    t0 = time.perf_counter()
    window.playback.play()
    qtbot.waitUntil(lambda: window.playback.frame >= 60, timeout=5000)
    elapsed = time.perf_counter() - t0
    window.playback.pause()
    rate = window.playback.frame / elapsed
    assert 1.4 * 30 < rate < 2.6 * 30, rate  # about 60 frames/s of a 30 fps clip


def test_rendered_frame_shows_skeleton_near_projected_joints_only(window, qtbot, bandai_clip):
    _open(window, qtbot, [bandai_clip])
    # Turn the orange trajectory line and the contact discs off through the View menu actions.
    window.actions["show_trajectory"].setChecked(False)
    window.actions["show_contacts"].setChecked(False)
    window.playback.seek(30)
    viewer = window.viewer
    viewer.camera.zoom(0.3)  # a close view...
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_F)  # ...then F frames everything again
    img = image_to_rgb(viewer.grab_image())
    h, w = img.shape[:2]
    ch = window.scene.characters[0]
    pos = ch.positions[30]
    shown = np.nonzero(ch.joint_mask)[0]
    px = viewer.camera.project(pos, w, h)
    assert ((px >= 0) & (px < [w, h])).all(), "frame-all left joints off screen"
    mask = hue_mask(img, ch.colour)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 200
    for j in shown:
        assert (np.hypot(xs - px[j, 0], ys - px[j, 1]) < 8).any(), ch.joint_names[j]
    child = np.array([j for j in shown if ch.parents[j] >= 0 and ch.bone_mask[j]])
    dist = distance_to_segments(np.stack([xs, ys], 1), px[ch.parents[child]], px[child])
    assert dist.max() < 10


def test_recent_files_persist_across_sessions(make_window, qtbot, bandai_clip):
    first = make_window()
    _open(first, qtbot, [bandai_clip])
    assert first.library.recent[0] == bandai_clip.resolve()
    first.actions["show_grid"].setChecked(False)
    first.close()  # saves settings
    second = make_window()
    assert second.library.recent[0] == bandai_clip.resolve()
    assert not second.viewer.prefs.show_grid and not second.actions["show_grid"].isChecked()
    actions = [a for a in second.recent_menu.actions() if a.text().endswith(bandai_clip.name)]
    assert actions
    assert [i.text(0) for i in second.library_widget.recent_items()] == [bandai_clip.name]  # library's Recent group
    # Reopening from the Recent menu loads the clip again.
    with qtbot.waitSignal(second.clip_loaded, timeout=30000):
        actions[0].trigger()
    assert len(second.scene.characters) == 1


def test_broken_file_shows_error_dialog_and_app_stays_usable(window, qtbot, tmp_path, bandai_clip):
    bad = tmp_path / "broken.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 3 Xposition Yposition\n")
    with qtbot.waitSignal(window.clip_failed, timeout=30000) as sig:
        window.open_paths([bad])
    path, message = sig.args
    assert path == str(bad) and "broken.bvh" in message and ":" in message
    dialog = window.errors.last_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert "broken.bvh" in dialog.text()
    # The app keeps working: a good clip opens and plays while the dialog is still up.
    _open(window, qtbot, [bandai_clip])
    assert len(window.scene.characters) == 1
    window.playback.play()
    qtbot.waitUntil(lambda: window.playback.frame > 3, timeout=5000)
    window.playback.pause()
    dialog.close()


TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Head
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 90 0 0 0 0 0 0 0
1 90 0 0 0 0 0 0 0
"""


def test_opening_a_folder_of_1000_clips_never_freezes_the_ui(window, qtbot, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1000):
        (folder / f"dataset-1_walk_style{i % 10}_{i:03d}.bvh").write_text(TINY_BVH)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    probe.start()
    qtbot.wait(50)
    gaps.clear()
    qtbot.wait(300)  # the idle window's own latency on this machine, for the failure message
    idle_max = max(gaps)
    gaps.clear()
    with qtbot.waitSignal(window.folder_indexed, timeout=60000) as sig:
        window.open_folder(folder)  # what File > Open Folder calls
    qtbot.waitUntil(lambda: window.library_widget.pending_count == 0, timeout=60000)
    qtbot.wait(50)
    probe.stop()
    assert sig.args == [1000]
    assert len(window.library_widget.entry_items()) == 1000
    assert len(window.library.grouped()["Bandai"]) == 10
    print(f"1000-clip folder: max event-loop gap {max(gaps) * 1000:.1f} ms, p95 "
          f"{sorted(gaps)[int(0.95 * len(gaps))] * 1000:.1f} ms over {len(gaps)} ticks")
    # Indexing 1000 files on the GUI thread would stall it for seconds. One pause of 100-250 ms among ~30 ticks is
    # the shared 2-core machine (fresh-clone CI runs on 2026-12-02 saw single 122-168 ms gaps, every other tick
    # ~5 ms, in a test that runs no engine), not a freeze; two such pauses, or one longer, still fail.
    slow = [g for g in gaps if g >= 0.100]
    assert len(slow) <= 1 and max(gaps) < 0.250, (
        f"event loop stalled {max(gaps) * 1000:.0f} ms ({len(slow)} gaps over 100 ms; idle window before opening: "
        f"{idle_max * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f})")
    # Opening one of them from the tree is a normal load.
    item = window.library_widget.entry_items()[0]
    with qtbot.waitSignal(window.clip_loaded, timeout=30000):
        window.library_widget.tree.itemActivated.emit(item, 0)
    assert window.scene.characters[0].num_frames == 2


def test_about_dialog_names_data_licence(window):
    from PySide6.QtWidgets import QTextBrowser

    window.actions["about"].trigger()
    text = window.about.findChild(QTextBrowser).toPlainText()
    assert window.about.isVisible()
    assert "© 2022 Bandai Namco Research Inc., CC BY-NC 4.0" in text
    window.about.close()


def test_drag_and_drop_of_a_bvh_file_opens_it(window, qtbot, bandai_clip):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bandai_clip))])
    drop = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.clip_loaded, timeout=30000):
        window.dropEvent(drop)
    assert window.scene.characters[0].clip.source_path == bandai_clip


def test_loading_can_be_cancelled_and_broken_files_share_one_dialog(window, qtbot, tmp_path, bandai_clip):
    bad = []
    for i in range(3):
        p = tmp_path / f"bad{i}.bvh"
        p.write_text("HIERARCHY\nROOT Hips\n{\n")
        bad.append(p)
    with qtbot.waitSignal(window.loading_finished, timeout=30000):
        window.open_paths(bad)
    assert len(window.errors.reports) == 3
    assert "3 problems" in window.errors.last_dialog.text()
    assert all(p.name in window.errors.last_dialog.detailedText() for p in bad)
    window.errors.last_dialog.close()
    # Cancel a load of many clips: it stops early, reports cancelled, and the app stays usable.
    from rsmt_studio.app.models.library import entry_for_file

    with qtbot.waitSignal(window.loading_finished, timeout=60000) as sig:
        job = window.load_entries([entry_for_file(bandai_clip)] * 200)
        window.cancel_button.click()
    assert sig.args == [True]
    assert len(window.scene.characters) < 200 and not window.jobs and not window.cancel_button.isVisible()
    assert job.done


def test_extension_points_for_transitions_ghost_regions_and_docks(window, qtbot, bandai_clip):
    """What issue 7 builds on: stitched sequences with offsets, a ghost pose, timeline regions, a new dock."""
    from PySide6.QtWidgets import QLabel
    from rsmt_studio.app.models.scene import TimelineRegion

    _open(window, qtbot, [bandai_clip])
    source = window.scene.characters[0]
    n = source.num_frames
    target_pose = source.positions[-1:] + [0, 0, 80]
    ghost = window.scene.add_sequence("target ghost", target_pose, source.parents, source.fps,
                                      joint_names=source.joint_names, ghost=True, frame_offset=n)
    follow = window.scene.add_sequence("transition", source.positions[::-1], source.parents, source.fps,
                                       joint_names=source.joint_names, role="transition", frame_offset=n)
    assert window.playback.num_frames == 2 * n  # the timeline grew to cover the stitched sequence
    window.scene.set_regions([TimelineRegion(0, n - 1, "source", (0.9, 0.5, 0.2)),
                              TimelineRegion(n, 2 * n - 1, "transition", (0.3, 0.6, 0.9))])
    assert [r.label for r in window.timeline.scrubber.regions] == ["source", "transition"]
    window.playback.seek(n + 5)
    frames = window.character_frames(window.playback.frame)
    assert [f.alpha < 1 for f in frames] == [False, True, False]
    assert follow.local_frame(n + 5) == 5 and ghost.local_frame(n + 5) == 0
    img = image_to_rgb(window.viewer.grab_image())
    assert hue_mask(img, follow.colour).sum() > 100
    dock = window.add_dock("Latency", QLabel("p50"), Qt.DockWidgetArea.RightDockWidgetArea)
    assert dock.toggleViewAction() in window.menus["panels"].actions()


def test_in_out_keys_and_looping_inside_the_range(window, qtbot, bandai_clip):
    _open(window, qtbot, [bandai_clip])
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.viewer.setFocus()
    pb = window.playback
    pb.seek(20)
    qtbot.keyClick(window.viewer, Qt.Key.Key_I)
    pb.seek(35)
    qtbot.keyClick(window.viewer, Qt.Key.Key_O)
    assert (pb.in_frame, pb.out_frame) == (20, 35)
    assert "In 20" in window.timeline.range_label.text()
    qtbot.keyClick(window.viewer, Qt.Key.Key_BracketRight)  # faster: 1.5x
    assert pb.speed == 1.5
    qtbot.keyClick(window.viewer, Qt.Key.Key_Space)
    seen: list[int] = []
    pb.frame_changed.connect(seen.append)
    qtbot.waitUntil(lambda: len(seen) > 25, timeout=10000)  # more frames than the range holds: it looped
    qtbot.keyClick(window.viewer, Qt.Key.Key_Space)
    assert set(seen) <= set(range(20, 36))
    assert any(b < a for a, b in itertools.pairwise(seen))  # wrapped from the out point to the in point


def test_100style_folder_opens_clips_cut_by_frame_cuts(window, qtbot, tmp_path):
    root = tmp_path / "100STYLE"
    (root / "Zombie").mkdir(parents=True)
    rows = "\n".join(f"{i} 90 0 0 0 0 0 0 0" for i in range(40))
    (root / "Zombie" / "Zombie_FW.bvh").write_text(TINY_BVH.replace("Frames: 2", "Frames: 40").split("MOTION")[0]
                                                  + "MOTION\nFrames: 40\nFrame Time: 0.033333\n" + rows + "\n")
    (root / "Frame_Cuts.csv").write_text("STYLE_NAME,FW_START,FW_STOP\nZombie,10,25\n")
    with qtbot.waitSignal(window.folder_indexed, timeout=30000):
        window.open_folder(root)
    qtbot.waitUntil(lambda: window.library_widget.pending_count == 0, timeout=10000)
    (item,) = window.library_widget.entry_items()
    assert item.text(0) == "Zombie_FW [10\u201325]"
    with qtbot.waitSignal(window.clip_loaded, timeout=30000):
        window.library_widget.tree.itemActivated.emit(item, 0)
    ch = window.scene.characters[0]
    assert ch.num_frames == 15 and ch.positions[0, 0, 0] == pytest.approx(10.0)  # frames 10..24 of the file
    assert window.properties_widget.value(0, "Content") == "forward-walk"


def test_same_clip_in_metres_frames_and_draws_the_same(window, qtbot, tmp_path, bandai_clip):
    """Unit independence end to end: the Bandai clip rewritten in metres looks the same on screen."""
    from dataclasses import replace

    from rsmt_studio.motion import read_bvh, write_bvh

    clip = read_bvh(bandai_clip)
    metres = tmp_path / "walk_in_metres.bvh"
    write_bvh(replace(clip, skeleton=replace(clip.skeleton, offsets=clip.skeleton.offsets * 0.01),
                      local_pos=clip.local_pos * 0.01), metres)
    shots = []
    for path in (bandai_clip, metres):
        _open(window, qtbot, [path])
        window.actions["show_trajectory"].setChecked(False)
        window.actions["show_contacts"].setChecked(False)
        window.playback.seek(30)
        window.viewer.frame_all()
        ch = window.scene.characters[0]
        shots.append((ch.height, window.viewer.camera.distance, hue_mask(image_to_rgb(window.viewer.grab_image()),
                                                                        ch.colour)))
    (h_cm, d_cm, m_cm), (h_m, d_m, m_m) = shots
    assert h_m == pytest.approx(h_cm * 0.01, rel=1e-3) and d_m == pytest.approx(d_cm * 0.01, rel=1e-3)
    overlap = (m_cm & m_m).sum() / max(m_cm.sum(), 1)
    assert m_cm.sum() > 200 and 0.8 < m_m.sum() / m_cm.sum() < 1.25 and overlap > 0.8
