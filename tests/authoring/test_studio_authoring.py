"""End to end through the studio window (real OpenGL under Xvfb, the real engine worker process)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import read_bvh

WAIT_MS = 180_000


def bandai(root: Path, name: str) -> Path:
    return root / "Bandai-Namco-Research-Motiondataset-1" / "data" / f"dataset-1_{name}.bvh"


class LoopProbe:
    """Event-loop latency: gaps between ticks of a 5 ms timer on the UI thread, and which of them held a repaint of
    the 3D view (`viewer`: its renderer's `render` calls are timed).

    Why repaints apart: under Xvfb the view is drawn by Mesa's software rasteriser, and one repaint with its
    composition takes 50-80 ms of the UI thread on the shared 2-core machine, against a millisecond or two on any
    GPU. How many repaints fall into the probe's window depends on how fast transitions arrive (faster CPU graphs
    made the window shorter and the same repaints a larger share of it), so the generation's own cost on the UI
    thread is judged on the gaps without a repaint, and every gap, repaint or not, must stay short of a freeze."""

    def __init__(self, viewer=None) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self.painted: list[bool] = []
        self._paints = 0
        self._seen = 0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self._viewer = viewer
        if viewer is not None:
            self._render = viewer.renderer.render

            def counted(*args, **kwargs):
                self._paints += 1
                return self._render(*args, **kwargs)
            viewer.renderer.render = counted

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1e3)
        self.painted.append(self._paints != self._seen)
        self._seen = self._paints
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._seen = self._paints
        self.timer.start()

    def stop(self) -> np.ndarray:
        self.timer.stop()
        if self._viewer is not None:
            self._viewer.renderer.render = self._render
        return np.asarray(self.gaps)


def _select(box, data) -> None:
    i = box.findData(data)
    assert i >= 0, data
    box.setCurrentIndex(i)
    box.activated.emit(i)


def test_load_pick_generate_scrub_export_reimport(studio, qtbot, bandai_root, tmp_path):
    w, panel, model = studio.window, studio.panel, studio.model
    src_path, tgt_path = bandai(bandai_root, "walk_normal_001"), bandai(bandai_root, "walk_tired_001")
    # load two clips through the window's own loader; the second one triggers a first transition
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        w.open_paths([src_path, tgt_path], replace=True)
    assert model.params.source == str(src_path) and model.params.target == str(tgt_path)

    # the idle window's event-loop latency (baseline: what the shared machine itself costs)
    probe = LoopProbe()
    probe.start()
    qtbot.wait(1500)
    idle = probe.stop()

    # pick frames and a style in the panel, measuring the UI thread's latency while it regenerates
    probe = LoopProbe(w.viewer)
    probe.start()
    panel.source_frame.setValue(90)
    panel.target_frame.setValue(50)
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        _select(panel.style_box, "@source")
    # a few more runs for a steadier percentile, and more while too few gaps went without a repaint (a faster machine
    # makes each transition's window shorter: 18 quiet gaps in five runs on one), then seed 0 last
    seeds = [1, 2, 3, 4]
    while seeds:
        with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
            panel.seed.setValue(seeds.pop(0))
        if not seeds and sum(not x for x in probe.painted) <= 20 and panel.seed.value() < 16:
            seeds.append(panel.seed.value() + 1)
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.seed.setValue(0)
    gaps = probe.stop()
    result = blocker.args[0]
    p = result.params
    assert (p.source_frame, p.target_frame, p.style, p.length, p.seed) == (90, 50, "@source", 40, 0)
    painted = np.asarray(probe.painted)
    quiet = gaps[~painted]  # gaps in which the 3D view was not redrawn: the generation's own cost
    assert len(quiet) > 20
    p95 = float(np.percentile(quiet, 95))
    load = os.getloadavg()[0]
    why = (f"during generation: p95 {p95:.1f} ms over {len(quiet)} gaps without a repaint (all {len(gaps)}: p95 "
           f"{np.percentile(gaps, 95):.1f}, max {gaps.max():.0f} ms; {int(painted.sum())} held a repaint, max "
           f"{gaps[painted].max() if painted.any() else 0:.0f} ms); idle window p95 {np.percentile(idle, 95):.1f} ms "
           f"(max {idle.max():.0f}); 1-min load {load:.1f} on {os.cpu_count()} cores")
    print(why)
    assert p95 < 50.0, why
    # no freeze, repaints included; a stall the idle window saw too is the shared machine's, not ours (CI
    # 2026-12-03: 316 ms during generation with a 324 ms stall in the idle window; two reruns passed)
    assert gaps.max() < 250.0 + idle.max(), why

    # the timeline is source -> transition -> target with coloured regions; the ghost sits at the target
    regions = w.scene.regions
    assert [r.label for r in regions] == ["source", "transition", "target"]
    assert (regions[1].start, regions[1].end) == (91, 130)
    assert w.playback.num_frames == regions[2].end + 1
    assert studio.ghost_char is not None and studio.ghost_char.alpha < 1

    # scrub into the transition: the viewer shows the generated pose, drawn in the transition colour
    stitched = result.stitched().fk()[0]
    for frame in (95, 110, 129):
        w.playback.seek(frame)
        qtbot.wait(10)
        shown = next(pz for pz in w.scene.poses(frame) if pz.character is studio.stitched_char)
        np.testing.assert_allclose(shown.positions, stitched[frame], atol=1e-9)
    image = w.viewer.render_offscreen(640, 360)
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())[:, : 640 * 4]
    rgb = arr.reshape(360, 640, 4)[..., :3].astype(int)
    b, _g, r = rgb[..., 0], rgb[..., 1], rgb[..., 2]  # QImage ARGB32 is BGRA in memory
    blue = (b > 150) & (b > r + 60)
    assert blue.sum() > 200, "no transition-coloured pixels in the viewport"

    # export the stitched sequence, re-import it, compare joint positions
    out = studio.export(tmp_path / "stitched.bvh", "stitched")
    back = read_bvh(out)
    assert back.skeleton.names == read_bvh(src_path).skeleton.names
    assert np.abs(back.fk()[0] - stitched).max() < 1e-4

    # undo through the Edit menu restores the style; the latency panel kept its UI cost under 1 ms per frame
    w.actions["undo"].trigger()  # the seed edits (merged into one step)
    assert model.params.style == "@source"
    w.actions["undo"].trigger()
    assert model.params.style == "@target"
    w.actions["redo"].trigger()
    assert model.params.style == "@source"
    assert studio.latency.ui_ms and float(np.median(studio.latency.ui_ms)) < 1.0
    assert studio.latency.log.stats()["frames"] >= 80


def test_default_scene_opens_with_a_transition_ready_to_play(studio, qtbot):
    w = studio.window
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        assert w.open_default_scene()
    result = blocker.args[0]
    assert result.transition.num_frames == 40
    assert [r.label for r in w.scene.regions] == ["source", "transition", "target"]
    # phases arrive after the transition; the phase view then covers the whole stitched timeline
    qtbot.waitUntil(lambda: studio.phase_view.series is not None, timeout=60_000)
    s = studio.phase_view.series
    assert s["x"][0] == 0 and s["x"][-1] == w.playback.num_frames - 1
    assert s["amplitude"].shape[1] == 10 and np.isfinite(s["amplitude"]).all()
    # pick the source frame from the timeline, and give the length in seconds
    w.playback.seek(50)
    panel = studio.panel
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.source_pick.click()
    assert blocker.args[0].params.source_frame == 50
    g0 = w.scene.regions[2].start
    w.playback.seek(g0 + 5)  # on the target part: target frame = its keyframe + 5
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.target_pick.click()
    assert blocker.args[0].params.target_frame == result.params.target_frame + 5
    panel.length_unit.setCurrentText("seconds")
    panel.length_unit.activated.emit(1)
    assert panel.length.suffix() == " s" and abs(panel.length.value() - 40 / 30) < 0.01
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.length.setValue(1.0)
    assert blocker.args[0].transition.num_frames == 30 and blocker.args[0].params.length_unit == "seconds"
    # the foot lock is on by default; switching it off regenerates with the feet as the model made them
    assert panel.foot_lock.isChecked() and blocker.args[0].params.foot_lock
    locked = blocker.args[0].transition.global_positions()
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.foot_lock.setChecked(False)
    assert blocker.args[0].params.foot_lock is False
    assert blocker.args[0].transition.global_positions().shape == locked.shape
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        studio.undo.undo()
    assert panel.foot_lock.isChecked()
    # so is the steady head; off, only the head's rotation changes (every position is the model's)
    assert panel.head_steady.isChecked() and blocker.args[0].params.head_steady
    steady = blocker.args[0].transition
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS) as blocker:
        panel.head_steady.setChecked(False)
    free = blocker.args[0].transition
    assert blocker.args[0].params.head_steady is False
    assert np.allclose(free.global_positions(), steady.global_positions(), atol=1e-5)
    assert not np.allclose(free.local_rot, steady.local_rot, atol=1e-5)
    # play: frames advance across the regions
    w.playback.seek(55)
    w.playback.play()
    qtbot.waitUntil(lambda: w.playback.frame > 70, timeout=10_000)
    w.playback.pause()


def test_session_save_and_reopen_restores_the_transition(studio, qtbot, tmp_path):
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        studio.open_default_scene()
    studio.undo.edit(length=24, seed=3)
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        pass
    path = studio.save_session_to(tmp_path / "s.json")
    qtbot.wait(AUTOSAVE_WAIT_MS)
    studio.autosaver.flush()
    assert studio.autosaver.path.is_file()  # autosave happened after the edit
    first = studio.model.result.transition.fk()[0]
    studio.undo.edit(length=10)
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        studio.open_session(path)
    assert studio.model.params.length == 24 and studio.model.params.seed == 3
    np.testing.assert_allclose(studio.model.result.transition.fk()[0], first, atol=1e-4)  # same seed, same motion


AUTOSAVE_WAIT_MS = 600


def test_a_bad_request_shows_its_reason_and_the_studio_keeps_working(studio, qtbot):
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        studio.open_default_scene()
    studio.model.add_clip(studio.model.clips[studio.model.params.source].slice(0, 5), "short")
    studio.undo.edit(source="short", source_frame=4)
    qtbot.waitUntil(lambda: "Could not generate" in studio.panel.status.text(), timeout=60_000)
    assert "frame" in studio.panel.status.text()
    studio.window.actions["undo"].trigger()
    with qtbot.waitSignal(studio.transition_shown, timeout=WAIT_MS):
        pass


@pytest.mark.parametrize("what", ["window", "latency", "phases"])
def test_cli_screenshot_of_the_default_scene_writes_png_and_bvh(tmp_path, mef_cache_dir, isolated_qsettings, what):
    import os
    import subprocess
    import sys

    out = tmp_path / f"{what}.png"
    bvh = tmp_path / "default.bvh"
    env = dict(os.environ, RSMT_STUDIO_CACHE_DIR=str(mef_cache_dir))
    cmd = [sys.executable, "-m", "rsmt_studio.app.cli.studio", "--screenshot", str(out), "--screenshot-what", what,
           "--export", str(bvh)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and out.stat().st_size > 10_000
    assert f"wrote {bvh}" in proc.stdout
    assert read_bvh(bvh).num_frames == 61 + 40 + 80
    if os.environ.get("RSMT_STUDIO_DOC_IMAGES"):  # refresh the docs' screenshots from this run
        import shutil

        name = {"window": "studio-transition.png", "latency": "latency-panel.png", "phases": "phase-view.png"}[what]
        shutil.copyfile(out, Path(__file__).resolve().parents[2] / "docs" / "img" / name)
