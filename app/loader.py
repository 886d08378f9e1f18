"""Background work for the window: reading BVH clips (+FK) and indexing folders off the GUI thread.

Each job runs in a Python thread and reports through Qt signals, which Qt queues onto the GUI thread.
Jobs check ``cancelled`` between files, so Cancel takes effect within one file.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from rsmt_studio.app import library


def describe_error(path: Path, exc: BaseException) -> str:
    """One line naming the file and the problem (BVHError already says file:line: ...)."""
    text = str(exc).strip() or type(exc).__name__
    if str(path) in text or path.name in text:
        return text
    return f"{path}: {text}"


class BackgroundJob(QObject):
    """Base: a cancellable thread with progress. Subclasses implement ``work()``."""

    progress = Signal(int, int, str)  # done, total (0 = unknown), what
    finished = Signal(bool)  # cancelled?

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=self.title, daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.work()
        except Exception:  # noqa: BLE001 - a bug in a job must surface, not vanish with the thread
            traceback.print_exc()
        finally:
            self.finished.emit(self.cancelled)

    def work(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class LoadClipsJob(BackgroundJob):
    """Read BVH files and run FK once each, emitting every clip as soon as it is ready."""

    clip_loaded = Signal(object, object, object)  # LibraryEntry, Clip, global positions (T,J,3)
    load_failed = Signal(str, str)  # path, message naming file and problem

    def __init__(self, entries: list[library.LibraryEntry]) -> None:
        super().__init__("Loading clips")
        self.entries = list(entries)

    def work(self) -> None:
        from rsmt_studio.motion import read_bvh

        total = len(self.entries)
        for i, entry in enumerate(self.entries):
            if self.cancelled:
                return
            self.progress.emit(i, total, entry.path.name)
            try:
                clip = read_bvh(entry.path)
                if entry.frame_range is not None:
                    clip = _cut(clip, entry.frame_range)
                positions = clip.fk()[0]
            except Exception as exc:  # noqa: BLE001 - BVHError, OSError, ValueError from odd files
                self.load_failed.emit(str(entry.path), describe_error(entry.path, exc))
                continue
            self.clip_loaded.emit(entry, clip, positions)
        self.progress.emit(total, total, "done")


def _cut(clip, frame_range: tuple[int, int]):
    """Frames [start, end) of a clip, via the motion core's slicing where it has one."""
    start, end = frame_range
    if hasattr(clip, "slice"):
        return clip.slice(start, end)
    return clip[start:end]


class IndexFolderJob(BackgroundJob):
    """List a folder's clips with their labels, in batches, without parsing them."""

    entries_found = Signal(list)  # list[LibraryEntry]

    def __init__(self, folder: Path) -> None:
        super().__init__("Indexing folder")
        self.folder = Path(folder)
        self.count = 0

    def work(self) -> None:
        def progress(n: int, where: str) -> None:
            self.count = n
            self.progress.emit(n, 0, where)

        library.index_folder(self.folder, progress=progress, cancelled=lambda: self.cancelled,
                             batch=self.entries_found.emit)
