"""Kill a real studio process (SIGKILL) after unsaved edits; the next start recovers them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from rsmt_studio.app.models.session import AUTOSAVE_NAME, load_session

DRIVER = r"""
import sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from rsmt_studio.app.qt.main_window import MainWindow
from rsmt_studio.app.qt.transition_panel import install
w = MainWindow(samples=0)
studio = install(w)
w.show()
w.open_default_scene()
studio.undo.edit(length=23)
studio.undo.edit(seed=9)
print("edited", flush=True)
while True:  # run like the app until killed
    app.processEvents()
    time.sleep(0.01)
"""


def test_unsaved_edits_survive_sigkill_and_are_recovered(qtbot, tmp_path, mef_cache_dir, worker_pool,
                                                         isolated_qsettings):
    settings = tmp_path / "settings"
    env = dict(os.environ, RSMT_STUDIO_SETTINGS_DIR=str(settings), RSMT_STUDIO_CACHE_DIR=str(mef_cache_dir))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "edited"
        autosave = settings / AUTOSAVE_NAME
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if autosave.is_file() and load_session(autosave).params.seed == 9:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the studio did not autosave its edits within 60 s")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    saved = load_session(autosave)  # whole and valid after the kill
    assert (saved.params.length, saved.params.seed) == (23, 9)

    # the next start (same settings folder) opens the recovered session instead of the default scene
    from rsmt_studio.app.models.session import Autosaver
    from rsmt_studio.app.qt.main_window import MainWindow
    from rsmt_studio.app.qt.transition_panel import install

    w = MainWindow(samples=0)
    qtbot.addWidget(w)
    studio = install(w, pool=worker_pool, autosave=Autosaver(autosave))
    w.show()
    try:
        with qtbot.waitSignal(studio.transition_shown, timeout=180_000) as blocker:
            assert w.open_default_scene()
        assert blocker.args[0].params == saved.params
        assert blocker.args[0].transition.num_frames == 23
        assert "Recovered" in w.statusBar().currentMessage()
    finally:
        studio.shutdown()
    assert not autosave.exists()  # a clean end drops the autosave
