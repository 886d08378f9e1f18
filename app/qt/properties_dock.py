"""Clip properties dock: one block per character in the scene (joints, frames, fps, duration, labels, and for
a clip how its rig maps onto the model's, with a *Mapping…* button opening the mapping dialog)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QToolButton, QTreeWidget, QTreeWidgetItem
from rsmt_studio.app.models.mapping import MappingModel
from rsmt_studio.app.models.scene import SceneCharacter, SceneModel

if TYPE_CHECKING:
    from rsmt_studio.app.qt.mapping_dialog import MappingDialog

MAPPING_LABEL = "Mapping"


def character_rows(ch: SceneCharacter) -> list[tuple[str, str]]:
    """(label, value) rows describing a character, from its clip where it has one."""
    clip = ch.clip
    rows = [
        ("Role", ch.role),
        ("Joints", str(ch.positions.shape[1])),
        ("Frames", str(ch.num_frames)),
        ("FPS", f"{ch.fps:g}"),
        ("Duration", f"{ch.num_frames / ch.fps:.2f} s" if ch.fps else "?"),
        ("Height", f"{ch.height:.3g} (file units)"),
    ]
    for key in ("dataset", "style", "content"):
        value = ch.labels.get(key) or (getattr(clip, key, None) if clip is not None else None)
        if value:
            rows.append((key.capitalize(), str(value)))
    if clip is not None:
        fr = getattr(clip, "frame_range", None)
        if fr:
            rows.append(("Frame range", f"[{fr[0]}, {'end' if fr[1] is None else fr[1]}) of the file"))
        src = getattr(clip, "source_path", None)
        if src:
            rows.append(("File", str(src)))
    if ch.frame_offset:
        rows.append(("Starts at", f"frame {ch.frame_offset}"))
    return rows


class PropertiesWidget(QTreeWidget):
    """Read-only view of the scene's characters; rebuilt when the scene (or a rig's mapping) changes."""

    mapping_dialog_opened = Signal(object)  # the MappingDialog just shown for a clip

    def __init__(self, scene: SceneModel, parent=None, mappings: MappingModel | None = None) -> None:
        super().__init__(parent)
        self.scene = scene
        if mappings is None:
            from rsmt_studio.app.qt.settings import corrections_path

            mappings = MappingModel(corrections_path())
        self.mappings = mappings
        self.mapping_dialog = None
        mappings.mapping_changed.connect(lambda *_: self.refresh())
        self.setHeaderLabels(["Property", "Value"])
        self.setColumnWidth(0, 120)
        self.setRootIsDecorated(True)
        for ev in (scene.character_added, scene.character_removed, scene.character_changed, scene.cleared):
            ev.connect(lambda *_: self.refresh())

    def refresh(self) -> None:
        self._generation = getattr(self, "_generation", 0) + 1  # buttons queued for an older tree are dropped
        self.clear()
        for ch in self.scene.characters:
            top = QTreeWidgetItem(self, [ch.name, ""])
            top.setFirstColumnSpanned(True)
            top.setToolTip(0, ch.name)
            r, g, b = (int(c * 255) for c in ch.colour)
            top.setForeground(0, QBrush(QColor(r, g, b)))
            for label, value in character_rows(ch):
                item = QTreeWidgetItem(top, [label, value])
                item.setToolTip(1, value)
            if ch.clip is not None:
                self._mapping_row(top, ch)
            top.setExpanded(True)

    def _mapping_row(self, top: QTreeWidgetItem, ch: SceneCharacter) -> None:
        """"Mapping" row: the rig's one-line status, and a button (over the label) opening the dialog."""
        cm = self.mappings.of(ch.clip)
        status = cm.status
        item = QTreeWidgetItem(top, ["", status])  # the button shows the label (text under it would show through)
        item.setData(0, Qt.ItemDataRole.UserRole, MAPPING_LABEL)
        item.setToolTip(1, status)
        if not cm.ok:
            item.setForeground(1, QBrush(QColor(198, 40, 40)))
        # An item widget costs ~30 ms to make (style polish): made on the next turn of the event loop so a
        # refresh during loading never holds the UI for the sum of both.
        generation = self._generation
        QTimer.singleShot(0, lambda: self._attach_button(generation, item, ch.clip))

    def _attach_button(self, generation: int, item: QTreeWidgetItem, clip) -> None:
        if generation != self._generation:  # the tree was rebuilt since: `item` is gone
            return
        button = QToolButton(text="Mapping\u2026")
        button.setToolTip("How this clip's rig maps onto the model's, and your corrections")
        button.clicked.connect(lambda _c=False, clip=clip: self.open_mapping(clip))
        self.setItemWidget(item, 0, button)

    def open_mapping(self, clip) -> MappingDialog:
        """Open the mapping dialog for a clip (non-modal; one at a time)."""
        from rsmt_studio.app.qt.mapping_dialog import open_mapping_dialog

        if self.mapping_dialog is not None:
            try:
                self.mapping_dialog.close()
            except RuntimeError:  # already deleted by Qt
                pass
        dlg = open_mapping_dialog(clip, self.mappings, self.window())
        self.mapping_dialog = dlg
        dlg.destroyed.connect(lambda *_: self._forget_dialog(dlg))
        self.mapping_dialog_opened.emit(dlg)
        return dlg

    def _forget_dialog(self, dlg) -> None:
        if self.mapping_dialog is dlg:
            self.mapping_dialog = None

    def mapping_button(self, character_index: int) -> QToolButton | None:
        """The *Mapping…* button of one character (tests)."""
        top = self.topLevelItem(character_index)
        for i in range(top.childCount() if top else 0):
            if _label(top.child(i)) == MAPPING_LABEL:
                return self.itemWidget(top.child(i), 0)
        return None

    def value(self, character_index: int, label: str) -> str | None:
        """The shown value of one row (used by tests and accessibility tools)."""
        top = self.topLevelItem(character_index)
        for i in range(top.childCount() if top else 0):
            if _label(top.child(i)) == label:
                return top.child(i).text(1)
        return None


def _label(item: QTreeWidgetItem) -> str:
    """A row's label: its text, or (for a row whose label is a button) the label kept in its data."""
    return item.text(0) or str(item.data(0, Qt.ItemDataRole.UserRole) or "")
