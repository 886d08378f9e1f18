"""The clip library dock: a filter box and a tree of clips grouped dataset -> style -> content.

Entries arrive in batches from the indexing thread; the tree is filled incrementally (a few hundred
items per event-loop turn) so a folder of thousands of clips never stalls the UI.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from rsmt_studio.app.models.library import LibraryEntry, LibraryModel

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
ITEMS_PER_TURN = 500  # ~8 ms of item creation; each turn that changes the tree also costs one repaint
REPAINT_EVERY_S = 0.5
FEED_INTERVAL_MS = 20  # gaps between turns let input and timers through and coalesce repaints


class LibraryWidget(QWidget):
    """Shows a ``LibraryModel``. ``entries_activated`` = open (replace scene), ``entries_added_to_scene`` = add."""

    entries_activated = Signal(object)  # list[LibraryEntry]
    entries_added_to_scene = Signal(object)
    open_files_requested = Signal()
    open_folder_requested = Signal()

    def __init__(self, model: LibraryModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.filter_box = QLineEdit(placeholderText="Filter: style, content, name\u2026")
        self.filter_box.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Clip", "Clips"])
        self.tree.setColumnWidth(0, 250)
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, self.tree.header().ResizeMode.Stretch)
        # Fixed count column: ResizeToContents would measure every row on each change (slow with 1000s).
        self.tree.header().setSectionResizeMode(1, self.tree.header().ResizeMode.Fixed)
        self.tree.setColumnWidth(1, 48)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        open_files = QPushButton("Open Files\u2026")
        open_folder = QPushButton("Open Folder\u2026")
        buttons = QHBoxLayout()
        buttons.addWidget(open_files)
        buttons.addWidget(open_folder)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter_box)
        lay.addWidget(self.tree, 1)
        lay.addLayout(buttons)

        self._groups: dict[tuple[str, ...], QTreeWidgetItem] = {}
        self._pending: list[LibraryEntry] = []
        self._last_repaint = 0.0
        self._recent_item: QTreeWidgetItem | None = None
        self._feeder = QTimer(self, interval=FEED_INTERVAL_MS)
        self._feeder.timeout.connect(self._feed)
        self._filter_timer = QTimer(self, singleShot=True, interval=150)
        self._filter_timer.timeout.connect(self.rebuild)

        open_files.clicked.connect(self.open_files_requested)
        open_folder.clicked.connect(self.open_folder_requested)
        self.filter_box.textChanged.connect(lambda _: self._filter_timer.start())
        self.tree.itemActivated.connect(self._on_activated)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        model.entries_added.connect(self._on_entries_added)
        model.cleared.connect(self.rebuild)
        model.recent_changed.connect(self._refresh_recent)

    # -- filling ----------------------------------------------------------------------------------
    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def _on_entries_added(self, entries: list[LibraryEntry]) -> None:
        text = self.filter_box.text()
        self._pending.extend(e for e in entries if e.matches(text) or not text.strip())
        if not self._feeder.isActive():
            self._feeder.start()
            self._feed()  # the first chunk at once; the rest on the timer

    def _feed(self) -> None:
        chunk, self._pending = self._pending[:ITEMS_PER_TURN], self._pending[ITEMS_PER_TURN:]
        self.tree.setUpdatesEnabled(False)
        for e in chunk:
            self._add_item(e)
        # Repaint at most every REPAINT_EVERY_S while entries keep coming: with a QOpenGLWidget in the window
        # every repaint re-composites the whole window, which software GL on a busy machine pays dearly for.
        now = time.monotonic()
        if not self._pending or now - self._last_repaint >= REPAINT_EVERY_S:
            self.tree.setUpdatesEnabled(True)
            self._last_repaint = now
        if not self._pending:
            self._feeder.stop()

    def _group(self, key: tuple[str, ...]) -> QTreeWidgetItem:
        item = self._groups.get(key)
        if item is None:
            parent = self.tree.invisibleRootItem() if len(key) == 1 else self._group(key[:-1])
            item = QTreeWidgetItem(parent, [key[-1], "0"])
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
            if len(key) == 1:
                item.setExpanded(True)
            self._groups[key] = item
        return item

    def _add_item(self, e: LibraryEntry) -> None:
        parent = self._group((e.dataset, e.style, e.content))
        item = QTreeWidgetItem(parent, [e.name, ""])
        item.setData(0, ENTRY_ROLE, e)
        item.setToolTip(0, str(e.path))
        for k in range(1, 4):
            g = self._groups[(e.dataset, e.style, e.content)[:k]]
            g.setText(1, str(int(g.text(1)) + 1))

    def rebuild(self) -> None:
        """Refill the tree from the model with the current filter."""
        self._feeder.stop()
        self.tree.clear()
        self._recent_item = None
        self._refresh_recent()
        self._groups.clear()
        self._pending = self.model.filtered(self.filter_box.text())
        if self._pending:
            self._feeder.start()

    # -- reading ----------------------------------------------------------------------------------
    def entry_items(self) -> list[QTreeWidgetItem]:
        out = []

        def walk(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if child.data(0, ENTRY_ROLE) is not None:
                    out.append(child)
                walk(child)

        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            if root.child(i) is not self._recent_item:
                walk(root.child(i))
        return out

    def recent_items(self) -> list[QTreeWidgetItem]:
        item = self._recent_item
        return [item.child(i) for i in range(item.childCount())] if item is not None else []

    def _refresh_recent(self, paths=None) -> None:
        """A 'Recent' group at the top of the tree (collapsed), mirroring File > Open Recent."""
        from rsmt_studio.app.models.library import entry_for_file

        paths = self.model.recent if paths is None else paths
        if self._recent_item is not None:
            index = self.tree.indexOfTopLevelItem(self._recent_item)
            if index >= 0:
                self.tree.takeTopLevelItem(index)
            self._recent_item = None
        if not paths:
            return
        group = QTreeWidgetItem(["Recent", str(len(paths))])
        for path in paths:
            entry = entry_for_file(path)
            item = QTreeWidgetItem(group, [entry.path.name, ""])
            item.setData(0, ENTRY_ROLE, entry)
            item.setToolTip(0, str(entry.path))
        self.tree.insertTopLevelItem(0, group)
        self._recent_item = group

    def reveal(self, path) -> bool:
        """Expand to, select and scroll to the entry of ``path`` (a just-opened clip); False if not listed."""
        from pathlib import Path

        target = Path(path).resolve()
        for item in self.entry_items():
            if Path(item.data(0, ENTRY_ROLE).path).resolve() == target:
                parent = item.parent()
                while parent is not None:
                    parent.setExpanded(True)
                    parent = parent.parent()
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item, QTreeWidget.ScrollHint.PositionAtCenter)
                return True
        return False

    def selected_entries(self) -> list[LibraryEntry]:
        return [i.data(0, ENTRY_ROLE) for i in self.tree.selectedItems() if i.data(0, ENTRY_ROLE) is not None]

    def _on_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        entry = item.data(0, ENTRY_ROLE)
        if entry is not None:
            chosen = self.selected_entries() or [entry]
            self.entries_activated.emit(chosen if entry in chosen else [entry])

    def _context_menu(self, pos) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.entries_activated.emit(entries))
        menu.addAction("Add to Scene", lambda: self.entries_added_to_scene.emit(entries))
        menu.popup(self.tree.viewport().mapToGlobal(pos))
