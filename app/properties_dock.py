"""Clip properties dock: one block per character in the scene (joints, frames, fps, duration, labels)."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem
from rsmt_studio.app.scene import SceneCharacter, SceneModel


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
    """Read-only view of the scene's characters; rebuilt when the scene changes."""

    def __init__(self, scene: SceneModel, parent=None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.setHeaderLabels(["Property", "Value"])
        self.setColumnWidth(0, 120)
        self.setRootIsDecorated(True)
        for ev in (scene.character_added, scene.character_removed, scene.character_changed, scene.cleared):
            ev.connect(lambda *_: self.refresh())

    def refresh(self) -> None:
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
            top.setExpanded(True)

    def value(self, character_index: int, label: str) -> str | None:
        """The shown value of one row (used by tests and accessibility tools)."""
        top = self.topLevelItem(character_index)
        for i in range(top.childCount() if top else 0):
            if top.child(i).text(0) == label:
                return top.child(i).text(1)
        return None
