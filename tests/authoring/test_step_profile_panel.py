"""The latency panel's "Profile step" (issue 17): the real studio window, engine worker and timed steps graph.

Clicking the button returns at once and the breakdown (bars + table, with the device and the time of the
measurement) arrives later from the background; a compile of the profiling graph can be cancelled; without an
engine the button is off, and a GPU engine's refusal is shown as a message. The first run compiles the timed steps
graph into the shared test MEF folder (minutes on two cores), hence `slow`.
"""

from __future__ import annotations

import time

import pytest

WAIT_MS = 900_000  # a cold compile of the timed steps graph on the loaded 2-core machine, and the profile


@pytest.mark.slow
def test_clicking_profile_step_shows_the_breakdown(studio, qtbot):
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(studio.transition_shown, timeout=180_000):
        studio.open_default_scene()
    panel = studio.latency
    assert panel.profile_button.isEnabled() and not panel.profile_plot.isVisible()
    t0 = time.perf_counter()
    qtbot.mouseClick(panel.profile_button, Qt.MouseButton.LeftButton)
    click_s = time.perf_counter() - t0
    assert click_s < 0.5  # the click only starts the background run
    assert not panel.profile_button.isEnabled() and panel.profile_cancel.isEnabled()
    assert panel.profile_status.text()  # "Profiling the current transition…", then progress lines
    with qtbot.waitSignal(panel.profile_shown, timeout=WAIT_MS) as shown:
        pass
    profile = shown.args[0]
    assert panel.profile_plot.isVisible() and panel.profile_table.isVisible()
    assert len(panel.profile_bars) == 7
    html = panel.profile_table.text()
    for label in ("dense layers", "8-expert MoE layers", "LSTM cell", "FiLM blocks", "step tails",
                  "rest of the graph call", "post-processing"):
        assert label in html
    assert "CPU (" in html and "measured " in html and time.strftime("%Y-%m-%d") in html
    assert all(v > 0 for v in profile.stages.values()) and profile.kernel_ms < profile.call_ms
    assert profile.frames == studio.model.params.length
    assert panel.profile_button.isEnabled() and not panel.profile_cancel.isEnabled()
    # the studio still generates afterwards
    with qtbot.waitSignal(studio.transition_shown, timeout=180_000):
        studio.model.set_params(seed=3)


def test_profile_compile_can_be_cancelled(worker_pool, scene_clips, tmp_path, monkeypatch):
    """With the timed graph missing from the cache (an empty one), the model compiles it in a child process;
    `cancel` stops that child and the run ends as cancelled, quickly."""
    from rsmt_studio.app.models.authoring import AuthoringModel
    from rsmt_studio.app.models.step_profile import StepProfileModel

    m = AuthoringModel(worker_pool)
    src, tgt = (m.add_clip(c) for c in scene_clips)
    m.set_params(source=src, target=tgt, source_frame=20, target_frame=10, length=16, regenerate=False)
    worker_pool("cpu")  # the worker is up (it keeps the shared cache: only this process looks at the empty one)
    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", str(tmp_path / "empty-cache"))
    prof = StepProfileModel(m)
    lines, cancelled = [], []
    prof.profile_progress.connect(lines.append)
    prof.profile_cancelled.connect(lambda: cancelled.append(True))
    assert prof.start() > 0
    deadline = time.monotonic() + 120
    while not any("compiling" in s for s in lines) and time.monotonic() < deadline:
        prof.poll()
        time.sleep(0.05)
    assert any("compiling" in s for s in lines), lines
    t0 = time.perf_counter()
    prof.cancel()
    assert prof.wait(60) is None and cancelled == [True] and prof.status == "cancelled"
    assert time.perf_counter() - t0 < 30
    assert not list((tmp_path / "empty-cache" / "mef").glob("*.mef"))  # nothing half-written was kept
    prof.close()
    m.close()


class _GpuEngineAnswer:
    """What the worker of a GPU engine answers to `profile_spec` (the test machines have no GPU): the engine's own
    refusal, `step_profile.profile_spec` on a GPU device."""

    def profile_spec(self):
        from types import SimpleNamespace

        from rsmt_studio.inference.runtime.devices import DeviceChoice
        from rsmt_studio.inference.step_profile import profile_spec

        return profile_spec(SimpleNamespace(device=DeviceChoice("gpu"), capture=True))


def test_panel_without_engine_and_a_refusal(qtbot, scene_clips):
    """No profiler: the button is off. A GPU engine's refusal (`ProfileUnavailable`) is shown as a message."""
    from rsmt_studio.app.models.authoring import AuthoringModel
    from rsmt_studio.app.models.step_profile import StepProfileModel
    from rsmt_studio.app.qt.latency_panel import LatencyPanel

    bare = LatencyPanel()
    qtbot.addWidget(bare)
    assert not bare.profile_button.isEnabled()

    m = AuthoringModel(lambda device: _GpuEngineAnswer())
    panel = LatencyPanel(profiler=StepProfileModel(m))
    qtbot.addWidget(panel)
    assert panel.start_profile() == -1 and "Load a source" in panel.profile_status.text()
    src, tgt = (m.add_clip(c) for c in scene_clips)
    m.set_params(source=src, target=tgt, source_frame=20, target_frame=10, device="gpu", regenerate=False)
    assert panel.start_profile() > 0
    qtbot.waitUntil(lambda: "No step profile" in panel.profile_status.text(), timeout=10_000)
    assert "GPU" in panel.profile_status.text() and panel.profile_button.isEnabled()
    assert not panel.profile_plot.isVisible()
    m.close()
