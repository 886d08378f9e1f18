"""Fixtures for the studio window tests: a MainWindow with isolated settings, a real Bandai clip."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def bandai_clip(bandai_root: Path) -> Path:
    path = bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data" / "dataset-1_walk_normal_001.bvh"
    assert path.is_file(), path
    return path


@pytest.fixture()
def make_window(qtbot, isolated_qsettings, tmp_path, monkeypatch):
    """Factory: a shown MainWindow on the isolated settings (several per test to check persistence)."""
    from rsmt_studio.app.qt.main_window import MainWindow

    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", str(tmp_path / "clip-cache"))

    made = []

    def make(**kwargs):
        w = MainWindow(samples=0, **kwargs)
        qtbot.addWidget(w)
        w.resize(1100, 700)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.cancel_jobs()
        for job in list(w.jobs):
            job.wait(5)


@pytest.fixture()
def window(make_window):
    return make_window()
