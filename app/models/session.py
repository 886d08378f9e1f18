"""Session files (JSON), autosave with recovery after a crash, and undo/redo of parameter edits.

A session is what it takes to get the same transition again: the clip paths, the frames, the style, the
length, the seed and the device (`AuthoringParams`), plus the file format's version. Writes are atomic
(temp file in the same folder, fsync, `os.replace`), so a process killed mid-write leaves the previous file
whole. The autosave file lives in the settings folder and is removed on a clean save or quit; finding it at
start-up means the app was killed with unsaved work, which `recovery_path()` / `load_session()` restore.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsmt_studio.app.models.authoring import AuthoringParams
from rsmt_studio.motion.atomic import atomic_write_text

FORMAT = "rsmt-studio-session/1"
AUTOSAVE_NAME = "autosave.rsmt-session.json"


class SessionError(ValueError):
    """A session file that cannot be read (the message names the file and the problem)."""


@dataclass
class Session:
    params: AuthoringParams
    clips: list[str] = field(default_factory=list)  # every clip path in the session (source and target first)
    saved_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "params": self.params.to_json(), "clips": list(self.clips),
                "saved_at": self.saved_at}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "session") -> Session:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SessionError(f"{where}: not an rsmt-studio session (format {data.get('format')!r}, "
                               f"expected {FORMAT!r})" if isinstance(data, dict) else f"{where}: not a JSON object")
        try:
            params = AuthoringParams.from_json(data["params"])
        except (KeyError, TypeError) as exc:
            raise SessionError(f"{where}: bad 'params': {exc}") from None
        return cls(params, [str(c) for c in data.get("clips", [])], float(data.get("saved_at", 0.0)))


def save_session(session: Session, path: Path) -> Path:
    """Atomic write: readers (and a crash) only ever see the old file or the new one."""
    import time

    path = Path(path)
    session.saved_at = time.time()
    text = json.dumps(session.to_json(), indent=1)
    atomic_write_text(path, text)
    return path


def load_session(path: Path) -> Session:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    return Session.from_json(data, str(path))


def settings_dir() -> Path:
    override = os.environ.get("RSMT_STUDIO_SETTINGS_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("rsmt-studio", appauthor=False))


def recovery_path() -> Path | None:
    """The autosave left by a session that did not end cleanly, if any."""
    p = settings_dir() / AUTOSAVE_NAME
    return p if p.is_file() else None


class Autosaver:
    """Writes the session to the autosave file after edits (atomically); `discard()` on clean save/quit."""

    def __init__(self, path: Path | None = None) -> None:
        import threading

        self.path = Path(path) if path else settings_dir() / AUTOSAVE_NAME
        self.writes = 0
        self._lock = threading.Lock()
        self._next: Session | None = None
        self._thread: threading.Thread | None = None

    def save(self, session: Session) -> Path:
        with self._lock:
            self.writes += 1
            return save_session(session, self.path)

    def save_in_background(self, session: Session) -> None:
        """Write off the UI thread (fsync can take a second on a busy disk); the newest session wins."""
        import threading

        with self._lock:
            self._next = session
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._drain, name="rsmt-autosave", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                session, self._next = self._next, None
            if session is None:
                return
            self.save(session)

    def flush(self, timeout_s: float = 10.0) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout_s)

    def discard(self) -> None:
        self.flush()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


# ------------------------------------------------------------------------------------------ undo (Qt)
def make_undo_stack(model, parent=None):
    """A QUndoStack whose commands set the authoring model's parameters (imported lazily: models stay Qt-free)."""
    from PySide6.QtGui import QUndoCommand, QUndoStack

    class ParamEdit(QUndoCommand):
        """One edit of the parameters; consecutive edits of the same field merge (spin-box drags)."""

        def __init__(self, before: AuthoringParams, after: AuthoringParams, text: str, field_name: str) -> None:
            super().__init__(text)
            self.before, self.after, self.field_name = before, after, field_name

        def id(self) -> int:
            return hash(self.field_name) & 0x7FFFFFFF

        def mergeWith(self, other) -> bool:
            if getattr(other, "field_name", None) != self.field_name:
                return False
            self.after = other.after
            return True

        def redo(self) -> None:
            model.set_params(self.after)

        def undo(self) -> None:
            model.set_params(self.before)

    stack = QUndoStack(parent)

    def edit(**changes: Any) -> None:
        from dataclasses import replace

        before = model.params
        after = replace(before, **changes)
        if after == before:
            return
        name = ", ".join(changes)
        stack.push(ParamEdit(before, after, f"Change {name}", name))

    stack.edit = edit  # type: ignore[attr-defined]
    return stack


__all__ = ["AUTOSAVE_NAME", "Autosaver", "Session", "SessionError", "load_session", "make_undo_stack",
           "recovery_path", "save_session"]
