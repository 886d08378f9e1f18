"""The timeline dock's widget: a scrubber (regions, in/out range, playhead) and transport controls.

It only shows a ``PlaybackModel`` and asks it to change; coloured ``TimelineRegion``s (issue 7's
source -> transition -> target) come from the scene via ``set_regions``.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from rsmt_studio.app.models.playback import SPEEDS, PlaybackModel
from rsmt_studio.app.models.scene import TimelineRegion


def _qcolor(rgb: tuple[float, float, float], alpha: int = 255) -> QColor:
    return QColor(int(rgb[0] * 255), int(rgb[1] * 255), int(rgb[2] * 255), alpha)


class Scrubber(QWidget):
    """Click or drag to seek; shows ticks, the in/out range, coloured regions and the playhead."""

    scrubbed = Signal(int)  # frame the user dragged to

    def __init__(self, playback: PlaybackModel, parent=None) -> None:
        super().__init__(parent)
        self.playback = playback
        self.regions: list[TimelineRegion] = []
        self.setMinimumHeight(38)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(False)
        for ev in (playback.frame_changed, playback.range_changed, playback.length_changed):
            ev.connect(lambda *_: self.update())

    def sizeHint(self) -> QSize:
        return QSize(600, 40)

    def set_regions(self, regions: list[TimelineRegion]) -> None:
        self.regions = list(regions)
        self.update()

    def _x_for(self, frame: float) -> float:
        n = max(self.playback.num_frames - 1, 1)
        return 8 + (self.width() - 16) * frame / n

    def frame_at(self, x: float) -> int:
        n = max(self.playback.num_frames - 1, 1)
        return round((x - 8) / max(self.width() - 16, 1) * n)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._scrub(event.position().x())

    def contextMenuEvent(self, event) -> None:
        """Right-click: set the in or out point at the clicked frame, or clear the range."""
        f = min(max(self.frame_at(event.pos().x()), 0), max(self.playback.num_frames - 1, 0))
        pb = self.playback
        menu = QMenu(self)
        menu.addAction(f"Set In Point at {f}", lambda: pb.set_range(f, max(f, pb.out_frame)))
        menu.addAction(f"Set Out Point at {f}", lambda: pb.set_range(min(f, pb.in_frame), f))
        menu.addAction("Clear In/Out", pb.clear_range)
        menu.popup(event.globalPos())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._scrub(event.position().x())

    def _scrub(self, x: float) -> None:
        f = self.frame_at(x)
        self.playback.seek(f)
        self.scrubbed.emit(self.playback.frame)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        pb = self.playback
        track = QRectF(8, 6, w - 16, h - 18)
        p.fillRect(track, pal.alternateBase())
        if pb.num_frames > 0:
            for r in self.regions:
                x0, x1 = self._x_for(r.start), self._x_for(r.end)
                p.fillRect(QRectF(x0, track.top(), max(x1 - x0, 1.0), track.height()), _qcolor(r.colour, 110))
                p.setPen(pal.text().color())
                p.setFont(QFont(p.font().family(), 8))
                p.drawText(QRectF(x0 + 3, track.top(), max(x1 - x0 - 3, 1), track.height()),
                           Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, r.label)
            # Outside the in/out range is dimmed.
            dim = QColor(0, 0, 0, 90)
            xin, xout = self._x_for(pb.in_frame), self._x_for(pb.out_frame)
            p.fillRect(QRectF(track.left(), track.top(), xin - track.left(), track.height()), dim)
            p.fillRect(QRectF(xout, track.top(), track.right() - xout, track.height()), dim)
            # Ticks every ~80 px at round frame counts.
            p.setPen(QPen(pal.mid().color(), 1))
            n = pb.num_frames
            step = max(1, _nice_step(n * 80 / max(w, 1)))
            p.setFont(QFont(p.font().family(), 7))
            for f in range(0, n, step):
                x = self._x_for(f)
                p.drawLine(int(x), int(track.bottom()), int(x), int(track.bottom() + 4))
                p.drawText(int(x + 2), h - 1, str(f))
            # In/out markers and playhead.
            p.setPen(QPen(QColor(90, 170, 255), 2))
            p.drawLine(int(xin), int(track.top()), int(xin), int(track.bottom()))
            p.drawLine(int(xout), int(track.top()), int(xout), int(track.bottom()))
            x = self._x_for(pb.frame)
            p.setPen(QPen(QColor(255, 120, 40), 2))
            p.drawLine(int(x), 2, int(x), int(track.bottom()))
        p.end()


def _nice_step(raw: float) -> int:
    for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if s >= raw:
            return s
    return 10000


class TimelineWidget(QWidget):
    """Transport row (play, step, loop, speed, frame counter) above the scrubber."""

    def __init__(self, playback: PlaybackModel, parent=None) -> None:
        super().__init__(parent)
        self.playback = playback
        self.scrubber = Scrubber(playback, self)

        style = self.style()
        self._play_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self._pause_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.play_button = QToolButton(text="Play")
        self.play_button.setIcon(self._play_icon)
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(playback.toggle)
        self.back_button = QToolButton(text="Back")
        self.back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward))
        self.back_button.setToolTip("Step back (Left)")
        self.back_button.clicked.connect(lambda: playback.step(-1))
        self.forward_button = QToolButton(text="Forward")
        self.forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward))
        self.forward_button.setToolTip("Step forward (Right)")
        self.forward_button.clicked.connect(lambda: playback.step(1))
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setChecked(playback.loop)
        self.loop_box.toggled.connect(playback.set_loop)
        self.speed_box = QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}\u00d7", s)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.setToolTip("Playback speed ([ slower, ] faster)")
        self.speed_box.currentIndexChanged.connect(lambda i: playback.set_speed(SPEEDS[i]))
        self.frame_box = QSpinBox()
        self.frame_box.setToolTip("Current frame")
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.valueChanged.connect(playback.seek)
        self.total_label = QLabel("/ 0")
        self.time_label = QLabel("0.00 s")
        self.range_label = QLabel("")

        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 0)
        for wdg in (self.back_button, self.play_button, self.forward_button):
            row.addWidget(wdg)
        row.addSpacing(8)
        row.addWidget(QLabel("Frame"))
        row.addWidget(self.frame_box)
        row.addWidget(self.total_label)
        row.addSpacing(8)
        row.addWidget(self.time_label)
        row.addStretch(1)
        row.addWidget(self.range_label)
        row.addSpacing(8)
        row.addWidget(self.loop_box)
        row.addWidget(QLabel("Speed"))
        row.addWidget(self.speed_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(row)
        lay.addWidget(self.scrubber)

        playback.frame_changed.connect(self._on_frame)
        playback.length_changed.connect(self._on_length)
        playback.range_changed.connect(self._on_range)
        playback.play_started.connect(lambda: self._show_playing(True))
        playback.play_stopped.connect(lambda: self._show_playing(False))
        playback.speed_changed.connect(self._on_speed)
        playback.loop_changed.connect(self.loop_box.setChecked)
        self._on_length(playback.num_frames, playback.fps)

    def _show_playing(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        self.play_button.setIcon(self._pause_icon if playing else self._play_icon)

    def _on_frame(self, frame: int) -> None:
        self.frame_box.blockSignals(True)
        self.frame_box.setValue(frame)
        self.frame_box.blockSignals(False)
        self.time_label.setText(f"{self.playback.time_s:.2f} s")

    def _on_length(self, n: int, fps: float) -> None:
        self.frame_box.setRange(0, max(n - 1, 0))
        self.total_label.setText(f"/ {max(n - 1, 0)}  ({fps:g} fps)")
        self._on_frame(self.playback.frame)

    def _on_range(self, a: int, b: int) -> None:
        whole = (a, b) == (0, max(self.playback.num_frames - 1, 0))
        self.range_label.setText("" if whole else f"In {a} \u2013 Out {b}")

    def _on_speed(self, s: float) -> None:
        i = min(range(len(SPEEDS)), key=lambda k: abs(SPEEDS[k] - s))
        self.speed_box.blockSignals(True)
        self.speed_box.setCurrentIndex(i)
        self.speed_box.blockSignals(False)
