"""Background work for the window: reading BVH clips (+FK) and indexing folders off the GUI thread.

The work runs in a plain Python thread that never touches Qt: it posts messages to a queue, and a
QTimer on the GUI thread drains the queue and emits the job's signals there. (Emitting Qt signals
from Python threads crashes some PySide6 releases, PYSIDE-3124; a queue also lets us bound how much
GUI work one event-loop turn does.) Jobs check ``cancelled`` between files.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from rsmt_studio.app.models import library

#: GUI-thread time one drain of the queue may take before yielding back to the event loop
DRAIN_BUDGET_S = 0.008


def describe_error(path: Path, exc: BaseException) -> str:
    """One line naming the file and the problem (BVHError already says file:line: ...)."""
    text = str(exc).strip() or type(exc).__name__
    if str(path) in text or path.name in text:
        return text
    return f"{path}: {text}"


class BackgroundJob(QObject):
    """Base: a cancellable worker thread with progress. Subclasses implement ``work()`` and call
    ``post(signal_name, *args)`` from it; the signal is emitted on the GUI thread."""

    progress = Signal(int, int, str)  # done, total (0 = unknown), what
    finished = Signal(bool)  # cancelled?

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._pump = QTimer(self)
        self._pump.setInterval(10)
        self._pump.timeout.connect(self._drain)
        self.started_at = 0.0
        self.done = False

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._pump.start()
        self._thread = threading.Thread(target=self._run, name=self.title, daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def checkpoint(self) -> bool:
        """Called by the worker between items: hands the GIL to the GUI thread, says whether to stop."""
        time.sleep(0)  # releases the GIL so a waiting GUI thread runs now, not after the 5 ms switch interval
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return not self.done

    def wait(self, timeout: float | None = None) -> None:
        """Join the worker thread (messages still pending are dropped with the job)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def post(self, signal_name: str, *args) -> None:
        """From the worker: emit ``signal_name(*args)`` on the GUI thread soon."""
        self._inbox.put((signal_name, args))

    def _run(self) -> None:
        try:
            self.work()
        except Exception:  # noqa: BLE001 - a bug in a job must surface, not vanish with the thread
            traceback.print_exc()
        finally:
            self._inbox.put(("finished", (self.cancelled,)))

    def _drain(self) -> None:
        deadline = time.perf_counter() + DRAIN_BUDGET_S
        while time.perf_counter() < deadline:
            try:
                name, args = self._inbox.get_nowait()
            except queue.Empty:
                return
            if name == "finished":
                self._pump.stop()
                self.done = True
            getattr(self, name).emit(*args)

    def work(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class LoadClipsJob(BackgroundJob):
    """Read BVH files and run FK once each, emitting every clip as soon as it is ready."""

    clip_loaded = Signal(object, object, object)  # LibraryEntry, Clip, global positions (T,J,3)
    load_failed = Signal(str, str)  # path, message naming file and problem

    def __init__(self, entries: list[library.LibraryEntry], cache=None) -> None:
        super().__init__("Loading clips")
        self.entries = list(entries)
        self.cache = cache  # motion.cache.ClipCache, or None to parse every time
        self.replace_scene = False  # read by the window: whether the next clip replaces what is shown

    def work(self) -> None:
        from rsmt_studio.motion.datasets import ClipEntry

        total = len(self.entries)
        for i, entry in enumerate(self.entries):
            if self.checkpoint():
                return
            self.post("progress", i, total, entry.path.name)
            try:
                # The motion core parses (through its on-disk cache), cuts the frame range and labels the clip.
                clip = ClipEntry(name=entry.name, path=entry.path, style=entry.style, content=entry.content,
                                 frame_range=entry.frame_range, collection=entry.dataset).load(self.cache)
                positions = clip.fk()[0]
            except Exception as exc:  # noqa: BLE001 - BVHError, OSError, ValueError from odd files
                self.post("load_failed", str(entry.path), describe_error(entry.path, exc))
                continue
            self.post("clip_loaded", entry, clip, positions)
        self.post("progress", total, total, "done")


class IndexFolderJob(BackgroundJob):
    """List a folder's clips with their labels, in batches, without parsing them."""

    entries_found = Signal(object)  # list[LibraryEntry] (object: no conversion through QVariantList)

    def __init__(self, folder: Path) -> None:
        super().__init__("Indexing folder")
        self.folder = Path(folder)
        self.count = 0

    def work(self) -> None:
        def progress(n: int, where: str) -> None:
            self.count = n
            self.post("progress", n, 0, where)

        library.index_folder(self.folder, progress=progress, cancelled=self.checkpoint,
                             batch=lambda entries: self.post("entries_found", entries))
