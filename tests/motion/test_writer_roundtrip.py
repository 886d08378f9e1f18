"""The writer: read -> write -> read keeps every global position; fixed-point; atomic; no silent overwrite."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rsmt_studio.motion import Clip, Skeleton, format_bvh, parse_bvh, read_bvh, write_bvh
from rsmt_studio.motion import rotations as R
from rsmt_studio.motion.bvh_reader import channels_to_local

POS = ("Xposition", "Yposition", "Zposition")


@st.composite
def clips(draw) -> Clip:
    """Random trees with random channel layouts (0/3/6, partial, any order) and random motion."""
    nj = draw(st.integers(1, 6))
    parents = [-1] + [draw(st.integers(0, j - 1)) for j in range(1, nj)]
    if nj > 2 and draw(st.booleans()):
        parents[nj - 1] = -1  # a second root
    channels = []
    for _ in range(nj):
        kind = draw(st.sampled_from(["rot3", "pos+rot3", "none", "pos", "rot1", "rot3+pos"]))
        order = "".join(draw(st.permutations("XYZ")))
        rot = tuple(f"{a}rotation" for a in order)
        channels.append({"rot3": rot, "pos+rot3": POS + rot, "none": (), "pos": POS,
                         "rot1": rot[:1], "rot3+pos": rot + POS}[kind])
    coord = st.floats(-60, 60, allow_nan=False).map(lambda v: round(v, 4))
    offsets = np.array([[draw(coord) for _ in range(3)] for _ in range(nj)])
    leaves = [j for j in range(nj) if j not in parents]
    end_sites = {j: np.array([draw(coord) for _ in range(3)]) for j in leaves if draw(st.booleans())}
    names = [f"j{j}_{draw(st.sampled_from(['a', 'Left', 'b:c', 'd.e']))}" for j in range(nj)]  # unique
    sk = Skeleton(names=names, parents=parents, offsets=offsets, channels=channels,
                  rotation_orders=["".join(c[0] for c in ch if c.endswith("rotation")) for ch in channels],
                  end_sites=end_sites)
    t = draw(st.integers(1, 4))
    ncols = sum(len(c) for c in channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = np.empty((t, ncols))
    col = 0
    for ch in channels:
        for c in ch:
            values[:, col] = rng.uniform(-200, 200, t) if c in POS else rng.uniform(-400, 400, t)
            col += 1
    values = np.round(values, 4)
    pos, rot = channels_to_local(sk, values)
    return Clip(skeleton=sk, fps=draw(st.sampled_from([24.0, 30.0, 60.0, 120.0])), local_pos=pos, local_rot=rot)


def _all_points(clip: Clip) -> np.ndarray:
    """Joint and End Site positions, by joint name order (a file lists joints depth-first, we may not)."""
    order = np.argsort(clip.skeleton.names)
    gpos = clip.global_positions()[:, order]
    ends = clip.end_site_positions()
    names = clip.skeleton.names
    return np.concatenate([gpos] + [ends[j][:, None] for j in sorted(ends, key=lambda j: names[j])], axis=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clips())
def test_write_read_keeps_global_positions(clip):
    text = format_bvh(clip)
    again = parse_bvh(text)
    assert sorted(again.skeleton.names) == sorted(clip.skeleton.names)
    parent_names = {n: (ns[p] if p >= 0 else None) for ns in [clip.skeleton.names]
                    for n, p in zip(ns, clip.skeleton.parents)}
    assert {n: (again.skeleton.names[p] if p >= 0 else None)
            for n, p in zip(again.skeleton.names, again.skeleton.parents)} == parent_names
    assert again.fps == pytest.approx(clip.fps, rel=1e-9)
    assert np.abs(_all_points(again) - _all_points(clip)).max() < 1e-4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clips(), st.sampled_from(["XYZ", "ZYX", "YXZ"]))
def test_rotation_order_override(clip, order):
    again = parse_bvh(format_bvh(clip, rotation_orders=order))
    assert all(o in ("", order) for o in again.skeleton.rotation_orders)
    assert np.abs(_all_points(again) - _all_points(clip)).max() < 1e-4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clips(), st.integers(0, 2**32 - 1))
def test_motion_the_source_channels_cannot_hold_is_not_dropped(clip, seed):
    """A clip edited in memory (random rotations and translations everywhere) gains the channels it needs."""
    rng = np.random.default_rng(seed)
    edited = Clip(skeleton=clip.skeleton, fps=clip.fps,
                  local_pos=clip.local_pos + rng.uniform(-5, 5, clip.local_pos.shape),
                  local_rot=R.quat_normalize(rng.normal(size=clip.local_rot.shape)))
    again = parse_bvh(format_bvh(edited))
    assert np.abs(_all_points(again) - _all_points(edited)).max() < 1e-4


def test_fixed_point_without_exponents(tiny_bvh):
    clip = parse_bvh(tiny_bvh)
    clip.local_pos[0, 0] = [1e-9, 12345678.9, -3e-7]
    text = format_bvh(clip, decimals=6)
    numbers = re.findall(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?", text.split("MOTION", 1)[1])
    assert numbers and not any("e" in n.lower() for n in numbers)
    assert "12345678.900000" in text and "-0.000000" not in text
    assert not any(line.endswith(" ") for line in text.splitlines())


def test_atomic_write_and_no_silent_overwrite(tmp_path, tiny_bvh):
    clip = parse_bvh(tiny_bvh)
    out = tmp_path / "out.bvh"
    write_bvh(clip, out)
    first = out.read_bytes()
    assert b"\r" not in first
    with pytest.raises(FileExistsError):
        write_bvh(clip.slice(0, 1), out)
    assert out.read_bytes() == first
    write_bvh(clip.slice(0, 1), out, overwrite=True)
    assert read_bvh(out).num_frames == 1
    bad = clip.copy()
    bad.local_pos[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_bvh(bad, tmp_path / "bad.bvh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bvh"]  # no temporaries left behind


def test_writer_keeps_source_layout(tiny_bvh):
    clip = parse_bvh(tiny_bvh)
    text = format_bvh(clip)
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert "CHANNELS 3 Zrotation Xrotation Yrotation" in text
    assert "Frame Time: 0.0333333333\n" in text
    assert "Frames: 2\n" in text


@pytest.mark.parametrize("bad", ["", "two\\nlines", "brace{", " padded", "double  space"])
def test_names_that_cannot_round_trip_are_refused(tiny_bvh, bad):
    clip = parse_bvh(tiny_bvh)
    clip.skeleton.names[1] = bad.replace("\\n", "\n")
    with pytest.raises(ValueError, match="would not read back"):
        format_bvh(clip)
