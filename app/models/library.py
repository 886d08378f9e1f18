"""The clip library in plain Python: indexed entries grouped by dataset / style / content, a text filter,
and the recent-files list. Indexing a folder only lists files and reads labels (no BVH parsing), so a folder
of thousands of clips is indexed in well under a second and clips load when opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rsmt_studio.app.models.events import Event

MAX_RECENT = 10
UNLABELLED = "(unlabelled)"


@dataclass(frozen=True)
class LibraryEntry:
    """One clip the user can open. ``frame_range`` is set for datasets that cut clips out of long takes."""

    path: Path
    dataset: str  # 'Bandai', '100STYLE' or 'Files'
    style: str
    content: str
    frame_range: tuple[int, int | None] | None = None  # [start, stop) of the file; stop None = to the end

    @property
    def name(self) -> str:
        stem = self.path.stem
        if self.frame_range is None:
            return stem
        start, stop = self.frame_range
        return f"{stem} [{start}\u2013{'end' if stop is None else stop}]"

    def matches(self, text: str) -> bool:
        """Case-insensitive match of every word of ``text`` against name, style, content or dataset."""
        hay = f"{self.name} {self.style} {self.content} {self.dataset}".lower()
        return all(w in hay for w in text.lower().split())


def entry_for_file(path: Path) -> LibraryEntry:
    """Labels from the file's name/location via the motion core (Bandai ``dataset-1_walk-left_tired_001.bvh``,
    100STYLE ``Style/Style_FW.bvh``); anything else is grouped by its folder."""
    from rsmt_studio.motion.datasets import labels_from_path

    path = Path(path)
    style, content = labels_from_path(path)
    if style is not None:
        dataset = "Bandai" if path.stem.startswith("dataset-") else "100STYLE"
        return LibraryEntry(path, dataset, style=style, content=content or UNLABELLED)
    return LibraryEntry(path, "Files", style=path.parent.name or UNLABELLED, content=UNLABELLED)


def index_folder(
    folder: Path,
    progress: Callable[[int, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    batch: Callable[[list[LibraryEntry]], None] | None = None,
    batch_size: int = 500,
) -> list[LibraryEntry]:
    """Every ``*.bvh`` under ``folder`` (recursively, sorted), reported in batches; stops early when cancelled.

    Uses the motion core's dataset indexer where it knows the layout (it also reads 100STYLE frame cuts).
    """
    dataset_entries = _index_with_motion_datasets(Path(folder), cancelled)
    if dataset_entries is not None:
        if batch:
            for i in range(0, len(dataset_entries), batch_size):
                batch(dataset_entries[i : i + batch_size])
        if progress:
            progress(len(dataset_entries), str(folder))
        return dataset_entries
    found: list[LibraryEntry] = []
    pending: list[LibraryEntry] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for fname in sorted(files):
            if cancelled and cancelled():
                return found
            if not fname.lower().endswith(".bvh"):
                continue
            entry = entry_for_file(Path(root) / fname)
            found.append(entry)
            pending.append(entry)
            if len(pending) >= batch_size:
                if batch:
                    batch(pending)
                pending = []
                if progress:
                    progress(len(found), root)
    if pending and batch:
        batch(pending)
    if progress:
        progress(len(found), str(folder))
    return found


def _index_with_motion_datasets(folder: Path, cancelled: Callable[[], bool] | None) -> list[LibraryEntry] | None:
    """A 100STYLE folder goes through the motion core's indexer (it applies Frame_Cuts.csv); None otherwise."""
    from rsmt_studio.motion import datasets

    if not ((folder / "Frame_Cuts.csv").is_file()
            or any((d / f"{d.name}_FW.bvh").is_file() for d in folder.iterdir() if d.is_dir())):
        return None
    ds = datasets.index_100style(folder)
    return [LibraryEntry(e.path, "100STYLE", e.style, e.content, e.frame_range) for e in ds.entries]


class LibraryModel:
    """Entries grouped for the dataset tree, plus recent files. Events say what happened."""

    def __init__(self) -> None:
        self.entries: list[LibraryEntry] = []
        self._paths: set[tuple[Path, tuple[int, int] | None]] = set()
        self.recent: list[Path] = []
        self.entries_added = Event("entries_added")  # (list[LibraryEntry])
        self.cleared = Event("cleared")
        self.recent_changed = Event("recent_changed")  # (list[Path])

    def add_entries(self, entries: Iterable[LibraryEntry]) -> list[LibraryEntry]:
        """Add entries not seen before; returns (and announces) the new ones."""
        new = []
        for e in entries:
            key = (Path(os.path.abspath(e.path)), e.frame_range)  # no syscalls: thousands arrive at once
            if key not in self._paths:
                self._paths.add(key)
                new.append(e)
        if new:
            self.entries.extend(new)
            self.entries_added.emit(new)
        return new

    def add_files(self, paths: Iterable[Path]) -> list[LibraryEntry]:
        return self.add_entries(entry_for_file(Path(p)) for p in paths)

    def clear(self) -> None:
        self.entries.clear()
        self._paths.clear()
        self.cleared.emit()

    def filtered(self, text: str) -> list[LibraryEntry]:
        return [e for e in self.entries if e.matches(text)] if text.strip() else list(self.entries)

    def grouped(self, text: str = "") -> dict[str, dict[str, dict[str, list[LibraryEntry]]]]:
        """dataset -> style -> content -> entries, for the tree view."""
        tree: dict[str, dict[str, dict[str, list[LibraryEntry]]]] = {}
        for e in self.filtered(text):
            tree.setdefault(e.dataset, {}).setdefault(e.style, {}).setdefault(e.content, []).append(e)
        return tree

    # -- recent files -----------------------------------------------------------------------------
    def set_recent(self, paths: Iterable[str | Path]) -> None:
        self.recent = [Path(p) for p in paths][:MAX_RECENT]
        self.recent_changed.emit(list(self.recent))

    def add_recent(self, path: str | Path) -> None:
        p = Path(path).resolve()
        self.recent = [p] + [r for r in self.recent if r != p]
        del self.recent[MAX_RECENT:]
        self.recent_changed.emit(list(self.recent))

    def clear_recent(self) -> None:
        self.recent = []
        self.recent_changed.emit([])
