"""Shared fixtures: where the Bandai data and other rigs' files (external/) live; QSettings isolated per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANDAI_ROOT = (REPO.parent / "shared" / "data" / "bandai" / "dataset").resolve()
EXTERNAL_ROOT = (REPO.parent / "shared" / "data" / "external").resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def bandai_root() -> Path:
    """The Bandai dataset folder; skips where absent, but fails under CI=true."""
    if not BANDAI_ROOT.is_dir():
        msg = f"Bandai data not found at {BANDAI_ROOT} (expected ../shared beside the checkout)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return BANDAI_ROOT


@pytest.fixture(scope="session")
def external_root() -> Path:
    """Real BVH files on other rigs (CMU, Mixamo-named, mocapbank, Geno); skips where absent, fails under CI=true."""
    if not EXTERNAL_ROOT.is_dir():
        msg = f"external BVH files not found at {EXTERNAL_ROOT} (expected ../shared beside the checkout)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return EXTERNAL_ROOT


@pytest.fixture()
def isolated_qsettings(tmp_path, monkeypatch):
    """Redirect QSettings to a per-test INI folder so tests never share or leak settings."""
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(tmp_path / "qsettings"))
    monkeypatch.setenv("RSMT_STUDIO_SETTINGS_DIR", str(tmp_path / "qsettings"))
    yield tmp_path / "qsettings"
