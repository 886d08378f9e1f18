"""Mutated files: the reader returns a sane Clip or raises BVHError, never anything else, never slowly."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rsmt_studio.motion import BVHError, parse_bvh

BASE = (
    b"HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 0 0\n\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
    b"Yrotation\n\tJOINT Spine\n\t{\n\t\tOFFSET 0 10 0\n\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
    b"\t\tJOINT Head\n\t\t{\n\t\t\tOFFSET 0 5 0\n\t\t\tCHANNELS 0\n\t\t\tEnd Site\n\t\t\t{\n\t\t\t\tOFFSET 0 2 0\n"
    b"\t\t\t}\n\t\t}\n\t}\n\tJOINT LeftLeg\n\t{\n\t\tOFFSET 5 -5 0\n\t\tCHANNELS 3 Xrotation Yrotation Zrotation\n"
    b"\t}\n}\nMOTION\nFrames: 3\nFrame Time: 0.0333333\n"
    b"1 90 3 10 20 30 5 6 7 -1 -2 -3\n2 91 3 11 21 31 5 6 7 -1 -2 -3\n3 92 3 12 22 32 5 6 7 -1 -2 -3\n"
)

PIECES = [b"{", b"}", b"JOINT X", b"End Site", b"nan", b"1e999", b"-", b"\x00", b"\r", b"\t", b" ",
          b"\n", b"CHANNELS 7", b"Frames: -3", b"Frames: 99999999999", b"Xscale", b"ROOT", b"MOTION",
          b"0.5", b"1e-3", b"OFFSET", b"\xff\xfe", b"\xef\xbb\xbf", b"\x01", b"Frame Time: 0", b"9" * 400]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(BASE)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "delete":
            del data[pos:pos + draw(st.integers(1, 20))]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(PIECES))
        elif op == "replace":
            data[pos:pos + 1] = draw(st.binary(min_size=1, max_size=3))
        elif op == "dup_line":
            lines = bytes(data).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines.insert(k, lines[k])
            data = bytearray(b"\n".join(lines))
        else:
            del data[pos:]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_files_give_a_clip_or_bvherror(data):
    t0 = time.perf_counter()
    try:
        clip = parse_bvh(data, "fuzz.bvh")
    except BVHError as err:
        msg = str(err)
        assert msg.startswith("fuzz.bvh") and "\n" not in msg and " expected " in msg and ", found " in msg
    else:
        gpos = clip.global_positions()
        assert np.isfinite(gpos).all()
        np.testing.assert_allclose(np.linalg.norm(clip.local_rot, axis=-1), 1.0, atol=1e-9)
        assert clip.num_frames == len(gpos) and clip.fps > 0
    assert time.perf_counter() - t0 < 2.0


def test_base_file_is_valid():
    clip = parse_bvh(BASE)
    assert clip.skeleton.names == ["Hips", "Spine", "Head", "LeftLeg"]
    assert clip.skeleton.rotation_orders == ["ZXY", "ZXY", "", "XYZ"]
