"""Shared fixtures: where the Bandai data and other rigs' files (external/) live; QSettings isolated per test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANDAI_ROOT = (REPO.parent / "shared" / "data" / "bandai" / "dataset").resolve()
EXTERNAL_ROOT = (REPO.parent / "shared" / "data" / "external").resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _shared_folder(path: Path, what: str) -> Path:
    """`path` if it exists; else skip the test, or fail it under CI=true (CI always has ../shared)."""
    if not path.is_dir():
        msg = f"{what} not found at {path} (expected ../shared beside the checkout)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def bandai_root() -> Path:
    """The Bandai dataset folder; skips where absent, but fails under CI=true."""
    return _shared_folder(BANDAI_ROOT, "Bandai data")


@pytest.fixture(scope="session")
def external_root() -> Path:
    """Real BVH files on other rigs (CMU, Mixamo-named, mocapbank, Geno); skips where absent, fails under CI=true."""
    return _shared_folder(EXTERNAL_ROOT, "external BVH files")


@pytest.fixture(scope="session")
def mef_cache_dir() -> Path:
    """One MEF cache folder for every room's tests and the subprocesses they start (CLI, worker, server):
    `$RSMT_STUDIO_TEST_CACHE_DIR`, else <tmp>/rsmt-studio-test-mef, so graphs compile at most once per machine
    (safe to keep between runs: cache keys include the graph sources, MAX version and CPU target)."""
    path = Path(os.environ.get("RSMT_STUDIO_TEST_CACHE_DIR") or Path(tempfile.gettempdir()) / "rsmt-studio-test-mef")
    path.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("RSMT_STUDIO_CACHE_DIR")
    os.environ["RSMT_STUDIO_CACHE_DIR"] = str(path)  # inherited by subprocesses
    yield path
    if old is None:
        os.environ.pop("RSMT_STUDIO_CACHE_DIR", None)
    else:
        os.environ["RSMT_STUDIO_CACHE_DIR"] = old


@pytest.fixture()
def isolated_qsettings(tmp_path, monkeypatch):
    """Redirect QSettings to a per-test INI folder so tests never share or leak settings."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(tmp_path / "qsettings"))
    monkeypatch.setenv("RSMT_STUDIO_SETTINGS_DIR", str(tmp_path / "qsettings"))
    yield tmp_path / "qsettings"
