"""Fixtures for the authoring tests: one engine worker (child process) for the whole run, one MEF cache.

The worker is started once per test session with the shared MEF folder (`$RSMT_STUDIO_TEST_CACHE_DIR`, else
<tmp>/rsmt-studio-test-mef, the folder tests/inference uses), so graphs compile at most once per machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENE = REPO / "assets" / "default_scene"




class SharedPool:
    """A `WorkerPool` that a studio's shutdown does not close (the session fixture does)."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def __call__(self, device: str):
        return self.pool(device)

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def worker_pool(mef_cache_dir):
    from rsmt_studio.app.models.authoring import WorkerPool

    pool = WorkerPool()
    pool("cpu")  # start (and compile, cold) now, with the shared MEF folder
    yield SharedPool(pool)
    pool.close()


@pytest.fixture(scope="session")
def scene_clips():
    from rsmt_studio.motion import read_bvh

    return (read_bvh(SCENE / "generated_walk_proud.bvh"), read_bvh(SCENE / "generated_walk_tired.bvh"))


@pytest.fixture()
def studio(qtbot, isolated_qsettings, worker_pool, tmp_path):
    """A shown MainWindow with transition authoring installed (autosave into the test's folder)."""
    from rsmt_studio.app.models.session import Autosaver
    from rsmt_studio.app.qt.main_window import MainWindow
    from rsmt_studio.app.qt.transition_panel import install

    w = MainWindow(samples=0)
    qtbot.addWidget(w)
    st = install(w, pool=worker_pool, autosave=Autosaver(tmp_path / "autosave.json"))
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    yield st
    w.cancel_jobs()
    for job in list(w.jobs):
        job.wait(5)
    st.shutdown()
