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

"Profile step" (with a `StepProfileModel`, app/models/step_profile.py) looks inside "sampler + decoder" on the
CPU: the engine runs the current transition through the steps graph with its kernels timed and the panel shows,
per generated frame, the time in the dense, 8-expert and LSTM-cell kernels, the rest of the graph calls and
post-processing, as bars and a table, with the device and the time it was measured. It runs in the background
(the first time it compiles that graph, for minutes, in a child process; Cancel stops it); on a GPU engine the
panel says why there is none.
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


#: Bar colours of the step profile's stages (kernels in blues, the rest grey, post-processing as above).
PROFILE_COLOURS = {"dense_ms": (60, 120, 200), "moe_ms": (110, 170, 235), "lstm_ms": (30, 70, 140),
                   "film_ms": (90, 150, 160), "tails_ms": (140, 190, 200), "rest_ms": (170, 170, 170), "postprocess_ms": STAGE_COLOURS["postprocess_ms"]}


def profile_table_html(profile) -> str:
    """The step profile as a small HTML table: stage, ms per frame (median, range over the runs), share."""
    from rsmt_studio.app.models.step_profile import breakdown_rows, caption

    rows = "".join(f"<tr><td>{r['label']}</td><td align='right'>{r['ms']:.3f}</td>"
                   f"<td align='right'>{r['range'][0]:.3f}–{r['range'][1]:.3f}</td>"
                   f"<td align='right'>{100 * r['share']:.0f} %</td></tr>" for r in breakdown_rows(profile))
    ops = ", ".join(f"{n} {k}" for k, n in profile.kernel_ops.items())
    return (f"<b>Step profile</b> · {caption(profile)}<br>"
            "<table cellspacing='0' cellpadding='3'><tr><th align='left'>per generated frame</th><th>ms</th>"
            f"<th>range</th><th>share</th></tr>{rows}<tr><td><i>graph calls (kernels + rest)</i></td>"
            f"<td align='right'>{profile.call_ms:.3f}</td><td></td><td></td></tr></table>"
            f"kernel launches per frame: {ops}; kernel time is wall time inside each kernel")


class LatencyPanel:
    """Factory for the Qt widget (keeps this module importable without Qt for the log). `profiler`: a
    `StepProfileModel` behind the "Profile step" button (without one the button is disabled)."""

    def __new__(cls, log: LatencyLog | None = None, parent=None, profiler=None):
        return _make_panel(log or LatencyLog(), parent, profiler)


def _make_panel(log: LatencyLog, parent, profiler):
    import pyqtgraph as pg
    from PySide6.QtCore import QObject, Qt, Signal
    from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

    class _Waker(QObject):
        woke = Signal()

    class _Panel(QWidget):
        profile_shown = Signal(object)  # the StepProfile now on screen

        def __init__(self) -> None:
            super().__init__(parent)
            self.log = log
            self.profiler = profiler
            self.ui_ms: list[float] = []  # UI cost per frame (add + redraw), measured
            self._pending_frames = 0
            self._pending_ms = 0.0
            lay = QVBoxLayout(self)
            lay.setContentsMargins(4, 4, 4, 4)
            self.summary = QLabel("No transition yet.")
            self.summary.setWordWrap(True)
            lay.addWidget(self.summary)
            self._build_profile(lay)
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

        # -- the step profile ("Profile step"; the model runs it off the UI thread, `_poll_profile` shows it)
        def _build_profile(self, lay) -> None:
            row = QHBoxLayout()
            self.profile_button = QPushButton("Profile step")
            self.profile_button.setToolTip("Time the current transition's step inside the graph: the dense, "
                                           "8-expert and LSTM-cell kernels, the rest of the graph and "
                                           "post-processing, per frame (CPU; compiles a profiling graph once)")
            self.profile_cancel = QPushButton("Cancel", enabled=False)
            self.profile_status = QLabel("")
            self.profile_status.setWordWrap(True)
            row.addWidget(self.profile_button)
            row.addWidget(self.profile_cancel)
            row.addWidget(self.profile_status, 1)
            lay.addLayout(row)
            self.profile_plot = pg.PlotWidget(background="w")
            self.profile_plot.setLabel("bottom", "ms per generated frame")
            self.profile_plot.setMouseEnabled(False, False)
            self.profile_plot.hideButtons()
            self.profile_bars: list = []
            self.profile_plot.setVisible(False)
            lay.addWidget(self.profile_plot, 2)
            self.profile_table = QLabel("")
            self.profile_table.setWordWrap(True)
            self.profile_table.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.profile_table.setVisible(False)
            lay.addWidget(self.profile_table)
            if self.profiler is None:
                self.profile_button.setEnabled(False)
                self.profile_button.setToolTip("No engine attached to this panel")
                return
            self._waker = _Waker()
            self._waker.woke.connect(self._poll_profile, Qt.ConnectionType.QueuedConnection)
            self.profiler.wake = self._waker.woke.emit
            self.profile_button.clicked.connect(self.start_profile)
            self.profile_cancel.clicked.connect(self.profiler.cancel)
            self.profiler.profile_progress.connect(self.profile_status.setText)
            self.profiler.profile_ready.connect(self.show_profile)
            self.profiler.profile_unavailable.connect(lambda msg: self._profile_done(f"No step profile: {msg}"))
            self.profiler.profile_failed.connect(lambda msg: self._profile_done(f"Profile failed: {msg}"))
            self.profiler.profile_cancelled.connect(lambda: self._profile_done("Profile cancelled."))

        def start_profile(self) -> int:
            """Ask the engine for a step profile of the current transition, in the background."""
            run = self.profiler.start()
            if run < 0:
                self.profile_status.setText("Load a source and a target clip first.")
                return run
            self.profile_button.setEnabled(False)
            self.profile_cancel.setEnabled(True)
            self.profile_status.setText("Profiling the current transition…")
            return run

        def _poll_profile(self) -> None:
            self.profiler.poll()

        def _profile_done(self, text: str) -> None:
            self.profile_button.setEnabled(True)
            self.profile_cancel.setEnabled(False)
            self.profile_status.setText(text)

        def show_profile(self, profile) -> None:
            """Bars (one per stage, ms per generated frame) and the table, captioned with device and time."""
            from rsmt_studio.app.models.step_profile import breakdown_rows

            self._profile_done("")
            rows = breakdown_rows(profile)
            for bar in self.profile_bars:
                self.profile_plot.removeItem(bar)
            self.profile_bars = []
            for i, r in enumerate(rows):
                y = len(rows) - 1 - i  # first stage on top
                bar = pg.BarGraphItem(x0=[0.0], y=[y], width=[max(r["ms"], 0.0)], height=0.6,
                                      brush=pg.mkBrush(*PROFILE_COLOURS[r["stage"]]), pen=pg.mkPen(None))
                self.profile_plot.addItem(bar)
                self.profile_bars.append(bar)
            self.profile_plot.getAxis("left").setTicks([[(len(rows) - 1 - i, r["label"]) for i, r in enumerate(rows)]])
            self.profile_plot.setYRange(-0.6, len(rows) - 0.4, padding=0)
            self.profile_plot.setXRange(0, max(r["ms"] for r in rows) * 1.1 or 1.0, padding=0)
            self.profile_table.setText(profile_table_html(profile))
            self.profile_plot.setVisible(True)
            self.profile_table.setVisible(True)
            self.profile_shown.emit(profile)

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


__all__ = ["BUDGET_MS", "STAGES", "LatencyLog", "LatencyPanel", "profile_table_html"]
