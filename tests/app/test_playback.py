"""Playback rules without a window: speed, looping in the in/out range, stepping, stopping at the end."""

from __future__ import annotations

import pytest
from rsmt_studio.app.models.playback import PlaybackModel


def _recorder(event):
    seen = []
    event.connect(lambda *a: seen.append(a))
    return seen


def test_advance_follows_fps_and_speed():
    pb = PlaybackModel(100, fps=30)
    pb.play()
    pb.advance(1.0)
    assert pb.frame == 30
    pb.set_speed(2.0)
    pb.advance(0.5)
    assert pb.frame == 60
    pb.set_speed(0.25)
    pb.advance(1.0)
    assert pb.frame == 67  # 60 + 7.5
    pb.set_speed(10)
    assert pb.speed == 4.0
    pb.set_speed(0.01)
    assert pb.speed == 0.25


def test_loop_wraps_inside_in_out_range_and_no_loop_stops_at_out():
    pb = PlaybackModel(100, fps=10)
    pb.set_range(20, 29)
    assert pb.frame == 20
    pb.play()
    pb.advance(1.5)  # 15 frames over a 10-frame range
    assert pb.frame == 25 and pb.playing
    stopped = _recorder(pb.play_stopped)
    pb.set_loop(False)
    pb.advance(5.0)
    assert pb.frame == 29 and not pb.playing and stopped


def test_step_pauses_and_wraps_when_looping():
    pb = PlaybackModel(10, fps=30)
    pb.play()
    pb.step(-1)
    assert not pb.playing and pb.frame == 9
    pb.step(1)
    assert pb.frame == 0
    pb.set_loop(False)
    pb.step(-1)
    assert pb.frame == 0


def test_events_say_what_happened():
    pb = PlaybackModel(50, fps=25)
    frames, started, ranges = _recorder(pb.frame_changed), _recorder(pb.play_started), _recorder(pb.range_changed)
    pb.seek(10)
    pb.seek(10)  # no change, no event
    pb.seek(500)
    pb.set_in_here()
    pb.toggle()
    assert frames == [(10,), (49,)]
    assert ranges[-1] == (49, 49)
    assert started == []  # a one-frame in/out range has nothing to play
    pb.clear_range()
    pb.seek(0)
    pb.toggle()
    assert started == [()] and pb.playing
    assert pb.time_s == pytest.approx(0.0)
