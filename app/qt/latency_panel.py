"""Latency panel: per generated frame, the time of each stage, live (pyqtgraph).

Stages per frame, as measured where they run:
- sampler + manifold decoder: the engine's `steps` graph (one MAX call makes 8 frames; on the CPU the studio's
  first call makes one, so the first frame comes sooner; sampler step and decoder are fused in that graph, so
  they are timed together and divided over its frames);
- post-processing (canonical -> world, bone lengths, rotations, FK) in the engine process;
- delivery: FK for display in the UI process's runner thread (the pipe transfer is included in the gaps).
Once per transition: style encoding (only when a style is first used: it is memoised), features, prepare
(target latent + LSTM warm-up). The rolling plot shows the last `WINDOW` frames stacked, the histogram the
per-frame totals; p50/p95/p99, frames per second and the device sit above; a dashed line marks 33 ms
(30 fps). It redraws once per finished transition (each redraw also re-composites the window's GL view, which
costs tens of ms on software GL, so not per streamed chunk); the UI cost per frame is measured and shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

WINDOW = 400  # frames in the rolling plot
BUDGET_MS = 1000.0 / 30.0
STAGES = ("sampler_ms", "postprocess_ms", "deliver_ms")
STAGE_LABELS = {"sampler_ms": "sampler + decoder", "postprocess_ms": "post-processing", "deliver_ms": "delivery"}
STAGE_COLOURS = {"sampler_ms": (80, 160, 240), "postprocess_ms": (240, 150, 50), "deliver_ms": (120, 200, 120)}


@dataclass
class LatencyLog:
    """Plain-Python record of frame timings (kept bounded)."""

    capacity: int = 4000
    frames: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STAGES})
    transitions: list[dict[str, float]] = field(default_factory=list)
    device: str = ""

    def add_frames(self, timing: dict[str, float]) -> int:
        n = int(timing.get("frames", 1))
        for k in STAGES:
            self.frames[k].extend([float(timing.get(k, 0.0))] * n)
            del self.frames[k][: -self.capacity]
        return n

    def add_transition(self, times) -> None:
        self.device = times.device
        frames = max(len(times.per_frame), 1)
        self.transitions.append({"style_ms": times.style_ms, "features_ms": times.features_ms,
                                 "prepare_ms": times.prepare_ms, "total_ms": times.total_ms,
                                 "fps": frames / max(times.total_ms / 1e3, 1e-9)})
        del self.transitions[:-200]

    def totals(self) -> np.ndarray:
        return np.sum([np.asarray(self.frames[k]) for k in STAGES], axis=0) if self.frames[STAGES[0]] else np.zeros(0)

    def stats(self) -> dict[str, float]:
        tot = self.totals()
        if len(tot) == 0:
            return {}
        p50, p95, p99 = np.percentile(tot, [50, 95, 99])
        out = {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "frames": len(tot)}
        if self.transitions:
            out.update(self.transitions[-1])
        return out


class LatencyPanel:
    """Factory for the Qt widget (keeps this module importable without Qt for the log)."""

    def __new__(cls, log: LatencyLog | None = None, parent=None):
        return _make_panel(log or LatencyLog(), parent)


def _make_panel(log: LatencyLog, parent):
    import pyqtgraph as pg
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    class _Panel(QWidget):
        def __init__(self) -> None:
            super().__init__(parent)
            self.log = log
            self.ui_ms: list[float] = []  # UI cost per frame (add + redraw), measured
            self._pending_frames = 0
            self._pending_ms = 0.0
            lay = QVBoxLayout(self)
            lay.setContentsMargins(4, 4, 4, 4)
            self.summary = QLabel("No transition yet.")
            self.summary.setWordWrap(True)
            lay.addWidget(self.summary)
            self.rolling = pg.PlotWidget(background="w")
            self.rolling.setLabel("left", "ms per frame")
            self.rolling.setLabel("bottom", "generated frame")
            self.rolling.addLegend(offset=(5, 5))
            self.curves = {}
            for k in STAGES:  # stacked: each curve is the cumulative sum (no fills: they cost ~10x on software GL)
                self.curves[k] = self.rolling.plot([], [], pen=pg.mkPen(STAGE_COLOURS[k], width=1.5),
                                                   name=STAGE_LABELS[k])
            self.rolling.addItem(pg.InfiniteLine(BUDGET_MS, angle=0, pen=pg.mkPen((200, 30, 30), style=pg.QtCore.Qt.PenStyle.DashLine),
                                                 label="33 ms (30 fps)", labelOpts={"position": 0.9, "color": (200, 30, 30)}))
            lay.addWidget(self.rolling, 3)
            self.hist = pg.PlotWidget(background="w")
            self.hist.setLabel("bottom", "ms per frame (all stages)")
            self.hist.setLabel("left", "frames")
            self.hist_curve = self.hist.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                             brush=pg.mkBrush(80, 160, 240, 150), pen=pg.mkPen((40, 90, 160)))
            self.hist.addItem(pg.InfiniteLine(BUDGET_MS, angle=90, pen=pg.mkPen((200, 30, 30), style=pg.QtCore.Qt.PenStyle.DashLine)))
            lay.addWidget(self.hist, 2)
            self._dirty = False

        # add_frames per streamed chunk; add_transition + refresh per finished transition
        def add_frames(self, timing: dict[str, float]) -> None:
            t0 = time.perf_counter()
            self._pending_frames += self.log.add_frames(timing)
            self._dirty = True
            self._pending_ms += (time.perf_counter() - t0) * 1e3

        def add_transition(self, times) -> None:
            t0 = time.perf_counter()
            self.log.add_transition(times)
            self._dirty = True
            self._pending_ms += (time.perf_counter() - t0) * 1e3

        def refresh(self) -> None:
            if not self._dirty:
                return
            t0 = time.perf_counter()
            self._dirty = False
            n = len(self.log.frames[STAGES[0]])
            lo = max(0, n - WINDOW)
            x = np.arange(lo, n, dtype=float)
            acc = np.zeros(n - lo)
            for k in STAGES:
                acc = acc + np.asarray(self.log.frames[k][lo:], float)
                self.curves[k].setData(x, acc)
            tot = self.log.totals()
            if len(tot):
                top = max(float(np.percentile(tot, 99.5)), BUDGET_MS * 1.1)
                counts, edges = np.histogram(np.minimum(tot, top), bins=40, range=(0.0, top))
                self.hist_curve.setData(edges, counts)
            self.summary.setText(self.summary_text())
            self._pending_ms += (time.perf_counter() - t0) * 1e3
            if self._pending_frames:
                self.ui_ms.append(self._pending_ms / self._pending_frames)
                del self.ui_ms[:-500]
                self._pending_frames = 0
                self._pending_ms = 0.0

        def summary_text(self) -> str:
            s = self.log.stats()
            if not s:
                return "No transition yet."
            ui = f"{np.median(self.ui_ms):.3f}" if self.ui_ms else "—"
            return (f"<b>{self.log.device or '?'}</b> · {s['frames']} frames · per frame p50 {s['p50_ms']:.2f} ms, "
                    f"p95 {s['p95_ms']:.2f}, p99 {s['p99_ms']:.2f} · last transition {s.get('total_ms', 0):.0f} ms = "
                    f"{s.get('fps', 0):.0f} frames/s<br>once per transition: style encode {s.get('style_ms', 0):.1f} ms "
                    f"(0 = cached style), features {s.get('features_ms', 0):.1f}, prepare {s.get('prepare_ms', 0):.1f} ms"
                    f" · panel cost {ui} ms/frame")

    return _Panel()


__all__ = ["BUDGET_MS", "STAGES", "LatencyLog", "LatencyPanel"]
