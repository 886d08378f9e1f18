"""The "Variants" dock: the authored transition in several styles (or seeds) side by side in the 3D viewer.

`VariantsModel` (app/models/variants.py) makes the N transitions in one batched engine call off the UI thread;
this dock starts it, lists the variants (colour swatch, style and seed, "Use this one") and adds each stitched result to the
scene as a character of role "variant", offset sideways from the main transition (perpendicular to its travel),
in the swatch's colour. "Use this one" sets the authoring style and seed to the variant's; the main transition
regenerates as that variant and the variant characters leave the scene.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from rsmt_studio.app.models.variants import DEFAULT_COUNT, Variant, VariantsModel

VARIANT_COLOURS = [(0.95, 0.35, 0.35), (0.95, 0.80, 0.25), (0.55, 0.85, 0.35), (0.75, 0.45, 0.95),
                   (0.30, 0.85, 0.85), (0.95, 0.55, 0.80), (0.70, 0.70, 0.70), (0.95, 0.60, 0.20)]
SPACING = 0.6  # sideways gap between neighbours, in skeleton heights


class _Waker(QObject):
    woke = Signal()


def sideways_offsets(positions: np.ndarray, count: int, height: float) -> np.ndarray:
    """(count, 3) offsets in the ground plane (y up), perpendicular to the sequence's travel, 1..count gaps."""
    travel = positions[-1].mean(0) - positions[0].mean(0)
    travel[1] = 0.0
    side = np.cross([0.0, 1.0, 0.0], travel)
    norm = np.linalg.norm(side)
    side = np.array([1.0, 0.0, 0.0]) if norm < 1e-6 else side / norm
    return np.arange(1, count + 1)[:, None] * (SPACING * height) * side[None]


class VariantsPanel(QWidget):
    """Mode (styles or seeds), count, Generate/Cancel, then one row per variant with "Use this one"."""

    variants_shown = Signal(list)  # list[Variant] now in the scene

    def __init__(self, studio, parent=None) -> None:
        super().__init__(parent)
        self.studio = studio
        self.window = studio.window
        self._waker = _Waker()
        self._waker.woke.connect(self._poll, Qt.ConnectionType.QueuedConnection)
        self.model = VariantsModel(studio.model, wake=self._waker.woke.emit)
        self.characters: list = []
        lay = QVBoxLayout(self)
        self.mode = QComboBox()
        self.mode.addItem("Styles", "styles")
        self.mode.addItem("Seeds", "seeds")
        self.mode.setToolTip("Styles: the current style and the next bank styles. Seeds: the current style, "
                             "consecutive seeds.")
        self.count = QSpinBox(minimum=2, maximum=len(VARIANT_COLOURS), value=DEFAULT_COUNT)
        self.generate_button = QPushButton("Generate variants")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        top = QHBoxLayout()
        for wdg in (self.mode, self.count, self.generate_button, self.cancel_button):
            top.addWidget(wdg)
        lay.addLayout(top)
        self.status = QLabel("Variants of the current transition, side by side in the viewer.")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.rows = QVBoxLayout()
        lay.addLayout(self.rows)
        lay.addStretch(1)
        self.use_buttons: list[QPushButton] = []
        self.generate_button.clicked.connect(lambda: self.generate())
        self.cancel_button.clicked.connect(self.model.cancel)
        self.model.variants_ready.connect(self._on_ready)
        self.model.variants_failed.connect(self._on_failed)
        self.model.variants_cancelled.connect(self._on_cancelled)
        self.window.scene.cleared.connect(self._on_scene_cleared)

    def generate(self) -> int:
        """Start the batched run for the panel's mode and count; returns the run id (-1: no transition yet)."""
        run = self.model.generate(mode=self.mode.currentData(), count=self.count.value())
        if run < 0:
            self.status.setText("Load a source and a target clip first.")
            return run
        self.status.setText(f"Generating {self.count.value()} variants in one batched call\u2026")
        self.generate_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        return run

    def choose(self, index: int) -> None:
        """Make variant `index` the authored transition (style and seed), undoably, and clear the variants."""
        v = self.model.variants[index]
        self.studio.undo.edit(style=v.spec.style, seed=v.spec.seed)
        self.model.variant_chosen.emit(v)
        self.status.setText(f"Using {v.label}.")
        self.clear()

    def clear(self) -> None:
        scene = self.window.scene
        for ch in self.characters:
            if ch in scene.characters:
                scene.remove(ch)
        self.characters = []
        self.use_buttons = []
        while self.rows.count():
            item = self.rows.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def close_model(self) -> None:
        self.model.close()

    # -- model events -------------------------------------------------------------------------------
    def _poll(self) -> None:
        self.model.poll()

    def _idle(self) -> None:
        self.generate_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_ready(self, variants: list[Variant]) -> None:
        self._idle()
        self.clear()
        if not variants:
            return
        scene = self.window.scene
        src = variants[0].result.source
        first = variants[0].result.positions
        height = float(np.ptp(first[0, :, 1])) or 1.0
        offsets = sideways_offsets(first, len(variants), height)
        for i, (v, off) in enumerate(zip(variants, offsets)):
            colour = VARIANT_COLOURS[i % len(VARIANT_COLOURS)]
            ch = scene.add_sequence(f"variant {i + 1}: {v.label}", v.result.positions + off, src.skeleton.parents,
                                    src.fps, joint_names=list(src.skeleton.names), colour=colour, role="variant",
                                    labels={"style": v.spec.style, "seed": str(v.spec.seed)})
            self.characters.append(ch)
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            swatch = QLabel("\u25a0")
            swatch.setStyleSheet("color: rgb({},{},{})".format(*(int(c * 255) for c in colour)))
            use = QPushButton("Use this one")
            use.clicked.connect(lambda _c=False, k=i: self.choose(k))
            h.addWidget(swatch)
            h.addWidget(QLabel(f"{i + 1}. {v.label}"), 1)
            h.addWidget(use)
            self.rows.addWidget(row)
            self.use_buttons.append(use)
        self.status.setText(f"{len(variants)} variants from {self.model.batches} batched call(s); "
                            "each sits beside the main transition in its swatch colour.")
        self.variants_shown.emit(variants)

    def _on_failed(self, message: str) -> None:
        self._idle()
        self.status.setText(f"Could not generate variants: {message}")

    def _on_cancelled(self) -> None:
        self._idle()
        self.status.setText("Variants cancelled.")

    def _on_scene_cleared(self) -> None:
        self.characters = []


def install_variants(studio) -> VariantsPanel:
    """A "Variants" dock (tabified with Latency) plus a "Variants…" button in the transition panel and in Edit."""
    from PySide6.QtGui import QAction

    w = studio.window
    panel = VariantsPanel(studio)
    dock = w.add_dock("Variants", panel, Qt.DockWidgetArea.RightDockWidgetArea)
    w.tabifyDockWidget(studio.latency_dock, dock)
    studio.latency_dock.raise_()

    def open_variants() -> None:
        dock.show()
        dock.raise_()
        panel.generate()

    button = QPushButton("Variants\u2026", toolTip="The same transition in several styles or seeds, side by side")
    button.clicked.connect(open_variants)
    studio.panel.layout().insertRow(studio.panel.layout().rowCount() - 1, button)
    act = QAction("&Variants\u2026", w)
    act.triggered.connect(lambda _c=False: open_variants())
    w.menus["edit"].addSeparator()
    w.menus["edit"].addAction(act)
    w.actions["variants"] = act
    studio.variants_panel, studio.variants_dock, studio.variants_button = panel, dock, button
    return panel


__all__ = ["VariantsPanel", "install_variants", "sideways_offsets"]
