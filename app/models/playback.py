"""Playback state in plain Python: current frame, play/pause, loop, speed, in/out range.

The Qt timeline only displays this model and calls ``advance(seconds)`` from a timer, so all the timing
rules (speed, looping inside the in/out range, stopping at the end) are testable without a window.
"""

from __future__ import annotations

from rsmt_studio.app.models.events import Event

MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: the speeds the UI offers (faster/slower step through these)
SPEEDS = (0.25, 0.5, 1.0, 1.5, 2.0, 4.0)


class PlaybackModel:
    """Frames are integers in [0, num_frames); the playhead keeps a fractional position while playing."""

    def __init__(self, num_frames: int = 0, fps: float = 30.0) -> None:
        self.frame_changed = Event("frame_changed")  # (frame: int)
        self.play_started = Event("play_started")
        self.play_stopped = Event("play_stopped")
        self.speed_changed = Event("speed_changed")  # (speed: float)
        self.loop_changed = Event("loop_changed")  # (loop: bool)
        self.range_changed = Event("range_changed")  # (in_frame: int, out_frame: int)
        self.length_changed = Event("length_changed")  # (num_frames: int, fps: float)
        self.num_frames = 0
        self.fps = 30.0
        self.frame = 0
        self.playing = False
        self.loop = True
        self.speed = 1.0
        self.in_frame = 0
        self.out_frame = 0
        self._position = 0.0
        self.set_length(num_frames, fps)

    # -- length and range -------------------------------------------------------------------------
    def set_length(self, num_frames: int, fps: float | None = None) -> None:
        """New sequence length (e.g. a clip was opened); resets the in/out range to the whole sequence."""
        self.num_frames = max(int(num_frames), 0)
        if fps is not None and fps > 0:
            self.fps = float(fps)
        self.in_frame, self.out_frame = 0, max(self.num_frames - 1, 0)
        self.length_changed.emit(self.num_frames, self.fps)
        self.range_changed.emit(self.in_frame, self.out_frame)
        self.seek(min(self.frame, self.out_frame))

    def set_range(self, in_frame: int, out_frame: int) -> None:
        last = max(self.num_frames - 1, 0)
        a, b = sorted((min(max(int(in_frame), 0), last), min(max(int(out_frame), 0), last)))
        if (a, b) != (self.in_frame, self.out_frame):
            self.in_frame, self.out_frame = a, b
            self.range_changed.emit(a, b)
        if not a <= self.frame <= b:
            self.seek(a)

    def set_in_here(self) -> None:
        self.set_range(self.frame, max(self.frame, self.out_frame))

    def set_out_here(self) -> None:
        self.set_range(min(self.frame, self.in_frame), self.frame)

    def clear_range(self) -> None:
        self.set_range(0, max(self.num_frames - 1, 0))

    # -- playhead ---------------------------------------------------------------------------------
    def seek(self, frame: int) -> None:
        """Jump to a frame (clamped to the whole sequence; scrubbing may leave the in/out range)."""
        f = min(max(int(frame), 0), max(self.num_frames - 1, 0))
        self._position = float(f)
        if f != self.frame:
            self.frame = f
            self.frame_changed.emit(f)

    def step(self, n: int = 1) -> None:
        """Single-frame step (pauses, like every editor); wraps inside the range when looping."""
        self.pause()
        f = self.frame + n
        if self.loop and self.num_frames:
            span = self.out_frame - self.in_frame + 1
            f = self.in_frame + (f - self.in_frame) % span
        self.seek(f)

    def play(self) -> None:
        if self.playing or self.out_frame <= self.in_frame:  # nothing to play through
            return
        if self.frame >= self.out_frame or self.frame < self.in_frame:
            self.seek(self.in_frame)
        self.playing = True
        self.play_started.emit()

    def pause(self) -> None:
        if self.playing:
            self.playing = False
            self.play_stopped.emit()

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, speed: float) -> None:
        s = min(max(float(speed), MIN_SPEED), MAX_SPEED)
        if s != self.speed:
            self.speed = s
            self.speed_changed.emit(s)

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self.loop:
            self.loop = bool(loop)
            self.loop_changed.emit(self.loop)

    def advance(self, seconds: float) -> None:
        """Move the playhead by wall-clock ``seconds`` x speed (called by the view's timer while playing)."""
        if not self.playing:
            return
        pos = self._position + seconds * self.fps * self.speed
        if pos > self.out_frame:
            if self.loop:
                span = self.out_frame - self.in_frame + 1
                pos = self.in_frame + (pos - self.in_frame) % span
            else:
                self._position = float(self.out_frame)
                self.seek(self.out_frame)
                self.pause()
                return
        self._position = pos
        f = int(pos)
        if f != self.frame:
            self.frame = f
            self.frame_changed.emit(f)

    @property
    def time_s(self) -> float:
        return self.frame / self.fps if self.fps else 0.0
