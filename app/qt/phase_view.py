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
        """Plot items are made once and only get new data (building pyqtgraph items costs ~10 ms each)."""

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
            self.ph.setYRange(0, 1)
            lay.addWidget(self.amp)
            lay.addWidget(self.ph)
            self.cursors = [pg.InfiniteLine(0, angle=90, pen=pg.mkPen((200, 30, 30))) for _ in range(2)]
            self.regions = {}
            for plot in (self.amp, self.ph):
                for name in ("source", "transition", "target"):
                    region = pg.LinearRegionItem((0, 0), movable=False, brush=pg.mkBrush(*SEGMENT_BRUSH[name]),
                                                 pen=pg.mkPen(None))
                    plot.addItem(region)
                    self.regions.setdefault(name, []).append(region)
            self.amp.addItem(self.cursors[0])
            self.ph.addItem(self.cursors[1])
            self.curves: list[tuple] = []
            self.series: dict[str, np.ndarray] | None = None

        def _ensure_curves(self, n: int) -> None:
            while len(self.curves) < n:
                c = len(self.curves)
                pen = pg.mkPen(pg.intColor(c, 10), width=1.2)
                self.curves.append((self.amp.plot([], [], pen=pen), self.ph.plot([], [], pen=pen, connect="finite")))

        def show_result(self, result, phases: dict) -> None:
            self.series = s = phase_series(result, phases)
            n_ch = s["amplitude"].shape[1]
            self._ensure_curves(n_ch)
            for (a, b), name in zip(result.regions, ("source", "transition", "target"), strict=True):
                for region in self.regions[name]:
                    region.setRegion((a - 0.5, b + 0.5))
            x = s["x"]
            for c, (amp_curve, ph_curve) in enumerate(self.curves):
                if c >= n_ch:
                    amp_curve.setData([], [])
                    ph_curve.setData([], [])
                    continue
                amp_curve.setData(x, s["amplitude"][:, c])
                y = s["phase"][:, c].copy()
                y[1:][np.abs(np.diff(y)) > 0.5] = np.nan  # break the line where the phase wraps
                ph_curve.setData(x, y)

        def set_frame(self, frame: int) -> None:
            for c in self.cursors:
                c.setValue(frame)

    return PhaseView()


__all__ = ["make_phase_view", "phase_series"]
