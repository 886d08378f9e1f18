"""Atomic file writes: a temp file in the same folder, flushed to disk, then `os.replace`.

Why one helper: a reader (the app, a second process, a crash) must never see half a file, and a failed write
must never leave the old file damaged. Every room may import motion/, so this is the one place for it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> Path:
    """Replace `path` with `data` atomically (world-readable `mode`, not mkstemp's 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o644) -> Path:
    """UTF-8 text with '\\n' line endings, written atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)
