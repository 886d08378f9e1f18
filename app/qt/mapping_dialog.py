"""The Mapping dialog: how a clip's rig maps onto the model's roles, and the user's corrections to it.

The roles table is editable (one combo box of the rig's joints per role; required roles cannot be emptied).
*Apply* re-runs the mapping with the choices; a choice that does not map is shown inline in red and nothing is
saved, a choice that maps is saved for the rig's signature (`MappingModel.save`), so every clip on that rig
uses it. All logic is in `app/models/mapping.py`; this module only shows it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from rsmt_studio.app.models.mapping import (
    ALL_ROLES,
    REQUIRED,
    ClipMapping,
    MappingModel,
    leftover_fate,
    overrides_from,
)
from rsmt_studio.motion.clip import Clip

NONE_TEXT = "(none)"
ERROR_STYLE = "color: #c62828;"
EDITED_TEXT = "changed: press Apply"


class MappingDialog(QDialog):
    """Report + corrections for one clip's rig (see the module docstring)."""

    corrections_saved = Signal(str)  # rig signature whose corrections were just saved (or cleared)

    def __init__(self, clip: Clip, mappings: MappingModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clip = clip
        self.mappings = mappings
        self.setWindowTitle(f"Rig mapping \u2014 {clip.name or clip.source_path}")
        self.setModal(False)
        lay = QVBoxLayout(self)
        self.status_label = QLabel()
        f = QFont(self.status_label.font())
        f.setBold(True)
        self.status_label.setFont(f)
        self.status_label.setWordWrap(True)
        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(len(ALL_ROLES), 3)
        self.table.setHorizontalHeaderLabels(["Role", "Joint", "Confidence"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.hint_label = QLabel("* required role. Choose another joint where the mapping is wrong and press "
                                 "Apply: your choices are kept for every clip on this rig.")
        self.hint_label.setWordWrap(True)
        self.chains_label = QLabel()
        self.chains_label.setWordWrap(True)
        self.leftover = QTreeWidget()
        self.leftover.setHeaderLabels(["Joints not driven by the model", "What happens to them"])
        self.leftover.setRootIsDecorated(True)
        self.leftover.setColumnWidth(0, 250)
        self.leftover.setMaximumHeight(120)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Map the rig with these choices and, if it maps, keep them for every clip on it")
        self.reset_button = QPushButton("Reset to found")
        self.reset_button.setToolTip("Forget your corrections for this rig")
        self.buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.ApplyRole)
        self.buttons.addButton(self.reset_button, QDialogButtonBox.ButtonRole.ResetRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.apply)
        self.reset_button.clicked.connect(self.reset)
        for w in (self.status_label, self.file_label, self.error_label, self.table, self.hint_label,
                  self.chains_label):
            lay.addWidget(w)
        lay.addWidget(self.leftover)
        lay.addWidget(self.notes_label)
        lay.addWidget(self.buttons)
        lay.setStretch(lay.indexOf(self.table), 3)
        lay.setStretch(lay.indexOf(self.leftover), 1)
        self._combos: dict[str, QComboBox] = {}
        self._found = mappings.found(clip) if not mappings.of(clip).model_rig else None
        self._filling = False
        self.table.verticalHeader().setDefaultSectionSize(QComboBox().sizeHint().height() + 2)
        self.resize(720, 830)
        self.show_mapping(mappings.of(clip))

    # -- showing ----------------------------------------------------------------------------------
    def found_roles(self) -> dict[str, str | None]:
        return self._found.roles() if self._found is not None else {}

    def show_mapping(self, cm: ClipMapping) -> None:
        """Show a mapping: status, roles, chains, leftover joints and what happens to them, notes."""
        self.current = cm
        self.status_label.setText(cm.status)
        self.status_label.setStyleSheet("" if cm.ok else ERROR_STYLE)
        self.file_label.setText(f"{cm.report.file}\nrig signature {cm.report.signature}")
        store = self.mappings.store_problem
        text = f"Saved corrections ignored: {store}" if store else ""
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
        model_rig = cm.model_rig
        for w in (self.table, self.hint_label, self.leftover, self.chains_label, self.apply_button,
                  self.reset_button):
            w.setVisible(not model_rig)
        if model_rig:
            self.notes_label.setText("Clips on the model's own rig go to the model as they are: nothing to map.")
            return
        self._fill_table(cm)
        r = cm.report
        self.chains_label.setText(
            f"Spine chain: {' > '.join(r.spine) or '(none)'}    Neck chain: {' > '.join(r.neck) or '(none)'}"
            "    (in-between joints are driven by sampling the model's chain by length)" if r.ok else "")
        self.leftover.clear()
        for kind, joints in r.leftover.items():
            if not joints:
                continue
            top = QTreeWidgetItem(self.leftover, [f"{kind} ({len(joints)})", leftover_fate(kind)])
            top.setToolTip(0, ", ".join(joints))
            top.setToolTip(1, leftover_fate(kind))
            for name in joints:
                QTreeWidgetItem(top, [name, ""])
        self.notes_label.setText("\n".join(f"Note: {n}" for n in r.notes))
        self.notes_label.setVisible(bool(r.notes))
        self.apply_button.setEnabled(False)
        self.reset_button.setEnabled(bool(self.mappings.corrections(r.signature)))

    def show_error(self, message: str) -> None:
        """A choice that was not applied: why, inline; the table keeps the user's choices to fix."""
        self.error_label.setText(f"Cannot apply: {message}")
        self.error_label.setVisible(True)
        self.apply_button.setEnabled(True)

    def _fill_table(self, cm: ClipMapping) -> None:
        chosen = {**self.found_roles(), **{k: (v or None) for k, v in cm.corrections.items()}}
        shown = {line.role: line for line in cm.report.roles}
        names = list(self.clip.skeleton.names)
        self._filling = True
        try:
            for row, role in enumerate(ALL_ROLES):
                joint = shown[role].joint if role in shown else chosen.get(role)
                item = QTableWidgetItem(role + (" *" if role in REQUIRED else ""))
                item.setToolTip("required" if role in REQUIRED else "optional: empty means it turns with its parent")
                self.table.setItem(row, 0, item)
                combo = self._combos.get(role)
                if combo is None:
                    combo = QComboBox()
                    combo.setMaxVisibleItems(20)
                    combo.currentIndexChanged.connect(lambda _i, r=role: self._edited(r))
                    self._combos[role] = combo
                    self.table.setCellWidget(row, 1, combo)
                combo.clear()
                if role not in REQUIRED or joint is None:  # a required role can be filled, never emptied
                    combo.addItem(NONE_TEXT, None)
                for n in names:
                    combo.addItem(n, n)
                combo.setCurrentIndex(max(0, combo.findData(joint)) if joint is not None else 0)
                conf = shown[role].confidence if role in shown else ""
                self.table.setItem(row, 2, QTableWidgetItem(conf))
        finally:
            self._filling = False

    def _edited(self, role: str) -> None:
        if self._filling:
            return
        self.table.setItem(ALL_ROLES.index(role), 2, QTableWidgetItem(EDITED_TEXT))
        self.apply_button.setEnabled(True)

    # -- reading and acting -------------------------------------------------------------------------
    def chosen(self) -> dict[str, str | None]:
        """role -> joint name the combos show now (None for an empty role)."""
        return {role: c.currentData() for role, c in self._combos.items()}

    def shown_roles(self) -> dict[str, tuple[str | None, str]]:
        """role -> (joint, confidence) as displayed (tests, accessibility)."""
        out = {}
        for row, role in enumerate(ALL_ROLES):
            c = self._combos.get(role)
            conf = self.table.item(row, 2)
            out[role] = (c.currentData() if c is not None else None, conf.text() if conf is not None else "")
        return out

    def set_joint(self, role: str, joint: str | None) -> None:
        """Choose a joint for a role as a user would (raises if the combo does not offer it)."""
        combo = self._combos[role]
        i = combo.findData(joint)
        if i < 0:
            raise ValueError(f"{role}: {joint!r} is not offered")
        combo.setCurrentIndex(i)

    def error_text(self) -> str:
        return "" if self.error_label.isHidden() else self.error_label.text()

    def apply(self) -> bool:
        """Map with the chosen joints; save if it maps (True), else show why inline (False)."""
        overrides = overrides_from(self.chosen(), self.found_roles())
        try:
            cm = self.mappings.save(self.clip, overrides)
        except OSError as exc:
            self.show_error(f"could not save the corrections: {exc}")
            return False
        if not cm.ok and overrides:
            self.show_error(cm.error or "")
            return False
        self.show_mapping(cm)
        self.corrections_saved.emit(cm.report.signature)
        return True

    def reset(self) -> None:
        """Forget this rig's corrections and show what the mapper finds by itself."""
        try:
            cm = self.mappings.save(self.clip, {})
        except OSError as exc:
            self.show_error(f"could not save the corrections: {exc}")
            return
        self.show_mapping(cm)
        self.corrections_saved.emit(cm.report.signature)


def open_mapping_dialog(clip: Clip, mappings: MappingModel, parent: QWidget | None = None) -> MappingDialog:
    """Show the dialog non-modally (the studio stays usable while it is open) and return it."""
    dlg = MappingDialog(clip, mappings, parent)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dlg.show()
    return dlg


__all__ = ["MappingDialog", "open_mapping_dialog"]
