"""Phase view: the DeepPhase channels (amplitude and phase) over the stitched timeline (pyqtgraph).

Source and target come from DeepPhase over the clips; the transition's are what the sampler predicted
(its phase-manifold vectors: amplitude = their length, phase = their angle). Why show it: a transition whose
predicted phases jump or stall against the clips' is the first sign of a bad one (foot sliding, stutter).
"""

from __future__ import annotations

import numpy as np

SEGMENT_BRUSH = {"source": (240, 140, 50, 30), "transition": (80, 160, 240, 40), "target": (120, 200, 120, 30)}


def phase_series(result, phases: dict) -> dict[str, np.ndarray]:
    """x (timeline frames), amplitude (N, C) and phase in cycles [0, 1) (N, C) over source|transition|target."""
    p = result.params
    fps = result.source.fps
    parts = []
    src, tgt = phases.get("source"), phases.get("target")
    (s0, s1), (t0, t1), (g0, g1) = result.regions
    if src is not None:
        idx = np.clip(np.round(np.arange(s0, s1 + 1) * src.fps / fps).astype(int), 0, len(src.phase) - 1)
        parts.append((np.arange(s0, s1 + 1), src.phase[idx]))
    trans = result.phase
    ti = np.clip(np.round(np.arange(t1 - t0 + 1) * 30.0 / fps).astype(int), 0, len(trans) - 1)
    parts.append((np.arange(t0, t1 + 1), trans[ti]))
    if tgt is not None:
        frames = np.arange(g1 - g0 + 1) + p.target_frame
        idx = np.clip(np.round(frames * tgt.fps / fps).astype(int), 0, len(tgt.phase) - 1)
        parts.append((np.arange(g0, g1 + 1), tgt.phase[idx]))
    x = np.concatenate([a for a, _ in parts]).astype(float)
    vec = np.concatenate([b for _, b in parts])
    amp = np.linalg.norm(vec, axis=-1)
    cyc = (np.arctan2(vec[..., 1], vec[..., 0]) / (2 * np.pi)) % 1.0
    return {"x": x, "amplitude": amp, "phase": cyc}


def make_phase_view(parent=None):
    import pyqtgraph as pg
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    class PhaseView(QWidget):
        def __init__(self) -> None:
            super().__init__(parent)
            lay = QVBoxLayout(self)
            lay.setContentsMargins(4, 4, 4, 4)
            self.amp = pg.PlotWidget(background="w")
            self.amp.setLabel("left", "amplitude")
            self.ph = pg.PlotWidget(background="w")
            self.ph.setLabel("left", "phase (cycles)")
            self.ph.setLabel("bottom", "timeline frame")
            self.ph.setXLink(self.amp)
            lay.addWidget(self.amp)
            lay.addWidget(self.ph)
            self.cursors = [pg.InfiniteLine(0, angle=90, pen=pg.mkPen((200, 30, 30))) for _ in range(2)]
            self.amp.addItem(self.cursors[0])
            self.ph.addItem(self.cursors[1])
            self._items: list = []
            self.series: dict[str, np.ndarray] | None = None

        def show_result(self, result, phases: dict) -> None:
            for plot, item in self._items:
                plot.removeItem(item)
            self._items.clear()
            self.series = s = phase_series(result, phases)
            n_ch = s["amplitude"].shape[1]
            for plot in (self.amp, self.ph):
                for (a, b), name in zip(result.regions, ("source", "transition", "target"), strict=True):
                    region = pg.LinearRegionItem((a - 0.5, b + 0.5), movable=False,
                                                 brush=pg.mkBrush(*SEGMENT_BRUSH[name]), pen=pg.mkPen(None))
                    plot.addItem(region)
                    self._items.append((plot, region))
            for c in range(n_ch):
                pen = pg.mkPen(pg.intColor(c, n_ch), width=1.2)
                for plot, y in ((self.amp, s["amplitude"][:, c]), (self.ph, s["phase"][:, c])):
                    item = pg.PlotDataItem(s["x"], y, pen=pen) if plot is self.amp else pg.PlotDataItem(
                        s["x"], y, pen=None, symbol="o", symbolSize=2, symbolPen=None,
                        symbolBrush=pg.intColor(c, n_ch))
                    plot.addItem(item)
                    self._items.append((plot, item))

        def set_frame(self, frame: int) -> None:
            for c in self.cursors:
                c.setValue(frame)

    return PhaseView()


__all__ = ["make_phase_view", "phase_series"]
