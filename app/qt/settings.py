"""Where the studio keeps its settings (window layout, recent files, view preferences).

Tests redirect it with the ``isolated_qsettings`` fixture (QSettings paths + RSMT_STUDIO_SETTINGS_DIR).
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANISATION = "rsmt-studio"
APPLICATION = "studio"


def studio_settings() -> QSettings:
    """The studio's QSettings (INI everywhere so files are readable and tests can point them elsewhere)."""
    override = os.environ.get("RSMT_STUDIO_SETTINGS_DIR")
    if override:
        Path(override).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(override) / "studio.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def settings_dir() -> Path:
    """The folder holding the studio's settings files (``RSMT_STUDIO_SETTINGS_DIR`` wins, as for QSettings)."""
    override = os.environ.get("RSMT_STUDIO_SETTINGS_DIR")
    if override:
        return Path(override)
    ini = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION).fileName()
    return Path(ini).parent


def corrections_path() -> Path:
    """The JSON file of the user's rig-mapping corrections (per skeleton signature), beside the settings, so
    a correction made once is reused for every clip on that rig, across sessions."""
    return settings_dir() / "mapping-corrections.json"


def _to_bool(v) -> bool:
    return v in (True, "true", "1", 1)


def save_dataclass(settings: QSettings, group: str, obj) -> None:
    """Store a flat dataclass's bool/float fields (e.g. ViewPrefs) under ``group``."""
    settings.beginGroup(group)
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, (bool, int, float)):
            settings.setValue(f.name, value)
    settings.endGroup()


def load_dataclass(settings: QSettings, group: str, obj) -> None:
    """Read back what ``save_dataclass`` wrote, ignoring missing or malformed values."""
    settings.beginGroup(group)
    for f in fields(obj):
        current = getattr(obj, f.name)
        if not settings.contains(f.name) or not isinstance(current, (bool, int, float)):
            continue
        raw = settings.value(f.name)
        try:
            if isinstance(current, bool):
                setattr(obj, f.name, _to_bool(raw))
            elif isinstance(current, int):
                setattr(obj, f.name, int(raw))
            else:
                setattr(obj, f.name, float(raw))
        except (TypeError, ValueError):
            pass
    settings.endGroup()
