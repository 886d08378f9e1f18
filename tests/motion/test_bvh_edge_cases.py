"""Hand-written BVH files: what must be accepted, and what must be rejected (fast, with file and line)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rsmt_studio.motion import BVHError, read_bvh
from rsmt_studio.motion import rotations as R


def _hier(channels_root="Xposition Yposition Zposition Zrotation Xrotation Yrotation",
          channels_child="Zrotation Xrotation Yrotation", name="Spine") -> str:
    n_root = len(channels_root.split())
    n_child = len(channels_child.split())
    return (
        "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n"
        f"  CHANNELS {n_root} {channels_root}\n"
        f"  JOINT {name}\n  {{\n    OFFSET 0 10 0\n    CHANNELS {n_child} {channels_child}\n"
        "    End Site\n    {\n      OFFSET 0 5 0\n    }\n  }\n}\n"
    )


def _motion(rows: list[str], frames: int | str | None = None, frame_time: str = "0.0333333") -> str:
    frames = len(rows) if frames is None else frames
    return f"MOTION\nFrames: {frames}\nFrame Time: {frame_time}\n" + "\n".join(rows) + "\n"


# --- accepted ----------------------------------------------------------------------------------------------

def test_tiny_file_values(bvh_file, tiny_bvh):
    clip = read_bvh(bvh_file(tiny_bvh))
    assert clip.num_frames == 2 and clip.num_joints == 2
    assert clip.fps == 30.0
    assert clip.skeleton.names == ["Hips", "Spine"]
    assert clip.skeleton.rotation_orders == ["ZXY", "ZXY"]
    assert clip.skeleton.channels[1] == ("Zrotation", "Xrotation", "Yrotation")
    np.testing.assert_allclose(clip.root_pos, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(clip.skeleton.end_sites[1], [0, 5, 0])
    gpos = clip.global_positions()
    # frame 1: root rotated 90 deg about Z, so the spine offset (0,10,0) points along -X
    np.testing.assert_allclose(gpos[1, 1], [4 - 10, 5, 6], atol=1e-9)
    # the spine is also turned 45 deg about X: its End Site (0,5,0) -> (0, 5c, 5s), then Z90 maps (x,y) -> (-y,x)
    c = 5 * np.cos(np.pi / 4)
    np.testing.assert_allclose(clip.end_site_positions()[1][1], [4 - 10 - c, 5, 6 + c], atol=1e-9)
    assert clip.frame_range == (0, 2)


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_line_endings(bvh_file, tiny_bvh, newline):
    clip = read_bvh(bvh_file(tiny_bvh.replace("\n", newline).encode()))
    np.testing.assert_allclose(clip.root_pos[1], [4, 5, 6])


def test_tabs_blank_lines_bom_no_final_newline_and_keyword_case(bvh_file, tiny_bvh):
    text = tiny_bvh.replace("  ", "\t").replace("Frames: 2", "frames:\t2").replace("End Site", "end site")
    text = text.replace("JOINT", "joint").replace("MOTION\n", "\nMOTION\n\n").rstrip("\n")
    text = text.replace("1 2 3 0", "1\t2  3 \t0")
    clip = read_bvh(bvh_file(b"\xef\xbb\xbf" + text.encode()))
    np.testing.assert_allclose(clip.root_pos, [[1, 2, 3], [4, 5, 6]])


def test_frames_without_space_and_short_frame_time(bvh_file):
    text = _hier() + "MOTION\nFrames:2\nFrame Time: .0083333\n" + "0 0 0 0 0 0 0 0 0\n" * 2
    clip = read_bvh(bvh_file(text))
    assert clip.num_frames == 2 and clip.fps == 120.0


def test_scientific_notation(bvh_file):
    text = _hier() + _motion(["1e+01 -2.5E-1 3.0e0 0 0 0 0 0 9e1", ".5 -.5 +5. 0 0 0 0 0 0"])
    clip = read_bvh(bvh_file(text))
    np.testing.assert_allclose(clip.root_pos, [[10, -0.25, 3], [0.5, -0.5, 5]])
    q = R.euler_to_quat(np.deg2rad([[0, 0, 90.0]]), "ZXY")
    np.testing.assert_allclose(clip.local_rot[0, 1], q[0], atol=1e-12)


def test_scientific_notation_in_offsets_and_frame_time(bvh_file):
    text = _hier().replace("OFFSET 0 10 0", "OFFSET 0 1e+01 0") + _motion(["0"] * 0, 0, "3.3e-02")
    clip = read_bvh(bvh_file(text))
    np.testing.assert_allclose(clip.skeleton.offsets[1], [0, 10, 0])
    assert abs(clip.fps - 1 / 0.033) < 1e-9  # not 3.3 as a naive regex would read it
    assert clip.num_frames == 0


def test_per_joint_rotation_orders(bvh_file):
    text = _hier(channels_root="Xposition Yposition Zposition Xrotation Yrotation Zrotation",
                 channels_child="Yrotation Zrotation Xrotation") + _motion(["0 0 0 10 20 30 40 50 60"])
    clip = read_bvh(bvh_file(text))
    assert clip.skeleton.rotation_orders == ["XYZ", "YZX"]
    np.testing.assert_allclose(clip.local_rot[0, 0], R.euler_to_quat(np.deg2rad([10, 20, 30]), "XYZ"), atol=1e-12)
    np.testing.assert_allclose(clip.local_rot[0, 1], R.euler_to_quat(np.deg2rad([40, 50, 60]), "YZX"), atol=1e-12)


def test_three_six_and_zero_channels_anywhere(bvh_file):
    text = (
        "HIERARCHY\nROOT Root\n{\n OFFSET 1 2 3\n CHANNELS 3 Zrotation Xrotation Yrotation\n"
        " JOINT Mid\n {\n  OFFSET 0 10 0\n  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation\n"
        "  JOINT Fixed\n  {\n   OFFSET 0 7 0\n   CHANNELS 0\n   JOINT Tip\n   {\n    OFFSET 1 0 0\n"
        "    CHANNELS 1 Yposition\n   }\n  }\n }\n}\n"
    ) + _motion(["0 0 0  5 6 7 0 0 0  9", "0 0 0  5 6 7 0 0 0  -9"])
    clip = read_bvh(bvh_file(text))
    assert [len(c) for c in clip.skeleton.channels] == [3, 6, 0, 1]
    np.testing.assert_allclose(clip.local_pos[:, 0], [[1, 2, 3]] * 2)  # root without position channels
    np.testing.assert_allclose(clip.local_pos[:, 1], [[5, 6, 7]] * 2)  # position channels replace OFFSET
    np.testing.assert_allclose(clip.local_pos[:, 2], [[0, 7, 0]] * 2)
    np.testing.assert_allclose(clip.local_pos[:, 3], [[1, 9, 0], [1, -9, 0]])  # partial: only Y animated
    np.testing.assert_allclose(clip.global_positions()[0, 3], [1 + 5 + 1, 2 + 6 + 7 + 9, 3 + 7])


def test_end_site_variants_and_leaf_without_end_site(bvh_file):
    text = (
        "HIERARCHY\nROOT Hips {\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
        " JOINT A\n {\n  OFFSET 1 0 0\n  CHANNELS 0\n  End Site Nub_A\n  {\n   OFFSET 2 0 0\n  }\n }\n"
        " JOINT B\n {\n  OFFSET 0 1 0\n  CHANNELS 0\n  End Site {\n   OFFSET 0 2 0\n  }\n }\n"
        " JOINT Leaf\n {\n  OFFSET 0 0 1\n  CHANNELS 0\n }\n}\n"
    ) + _motion(["0 0 0"])
    clip = read_bvh(bvh_file(text))
    assert clip.skeleton.names == ["Hips", "A", "B", "Leaf"]
    assert sorted(clip.skeleton.end_sites) == [1, 2]
    assert clip.skeleton.children(0) == [1, 2, 3]
    np.testing.assert_allclose(clip.skeleton.end_sites[2], [0, 2, 0])


@pytest.mark.parametrize("name", ["mixamorig:Hips", "Bip01.Spine", "left-arm", "Spine 1", "Über_joint"])
def test_joint_names(bvh_file, name):
    clip = read_bvh(bvh_file(_hier(name=name) + _motion(["0 0 0 0 0 0 0 0 0"])))
    assert clip.skeleton.names[1] == name
    assert clip.skeleton.index(name) == 1


def test_zero_frames(bvh_file):
    clip = read_bvh(bvh_file(_hier() + "MOTION\nFrames: 0\nFrame Time: 0.1\n"))
    assert clip.num_frames == 0 and clip.local_rot.shape == (0, 2, 4)


# --- rejected ----------------------------------------------------------------------------------------------

ROW = "0 0 0 0 0 0 0 0 0"
REJECT = {
    # name: (content, expected line (None = any), words in the message)
    "fewer rows": (_hier() + _motion([ROW, ROW], frames=3), 21, "3 rows"),
    "more rows": (_hier() + _motion([ROW] * 4, frames=3), 22, "end of file after 3 rows"),
    "short row": (_hier() + _motion([ROW, "0 0 0 0 0 0 0 0"]), 20, "9 values per frame"),
    "long row": (_hier() + _motion(["0 " + ROW, ROW]), 19, "9 values per frame"),
    "non-numeric": (_hier() + _motion([ROW, "0 0 0 0 abc 0 0 0 0"]), 20, "'abc'"),
    "nan": (_hier() + _motion([ROW, "0 0 0 0 nan 0 0 0 0"]), 20, "finite number"),
    "inf": (_hier() + _motion(["0 0 -inf 0 0 0 0 0 0"]), 19, "finite number"),
    "comma decimal": (_hier() + _motion(["0 0 0,5 0 0 0 0 0 0"]), 19, "'0,5'"),
    "missing close brace": (_hier().rsplit("}", 1)[0] + _motion([ROW]), 15, "unbalanced"),
    "extra close brace": (_hier() + "}\n" + _motion([ROW]), 16, "'ROOT' or 'MOTION'"),
    "unknown channel": (_hier(channels_child="Zrotation Xrotation Xscale"), 9, "'Xscale'"),
    "channel count mismatch": (_hier().replace("CHANNELS 3", "CHANNELS 4") + _motion([ROW]), 10, "channel 4"),
    "duplicate channel": (_hier(channels_child="Zrotation Zrotation Yrotation") + _motion([ROW]), 9, "twice"),
    "missing MOTION": (_hier(), 16, "end of file"),
    "missing Frames": (_hier() + "MOTION\nFrame Time: 0.1\n" + ROW + "\n", 17, "Frames"),
    "negative frames": (_hier() + _motion([], frames=-1), 17, "frame count >= 0"),
    "fractional frames": (_hier() + _motion([ROW], frames="1.5"), 17, "whole frame count"),
    "zero frame time": (_hier() + _motion([ROW], frame_time="0"), 18, "positive frame time"),
    "nan offset": (_hier().replace("OFFSET 0 10 0", "OFFSET 0 nan 0") + _motion([ROW]), 8, "finite number"),
    "missing offset": (_hier().replace("    OFFSET 0 10 0\n", "") + _motion([ROW]), 13, "OFFSET"),
    "no root": ("HIERARCHY\nMOTION\nFrames: 0\nFrame Time: 0.1\n", 2, "'ROOT'"),
    "no hierarchy": ("ROOT Hips\n{\n}\n", 1, "'HIERARCHY'"),
    "no joint name": (_hier(name=""), 6, "joint name"),
    "duplicate joint name": (_hier(name="Hips") + _motion([ROW]), 6, "second joint called"),
    "empty": ("", 1, "empty file"),
    "whitespace only": (" \n\t\n", 1, "empty file"),
    "binary NUL": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, "binary"),
    "binary control bytes": (b"HIERARCHY\nROOT \x01\x02\x03\n", 2, "binary"),
}


@pytest.mark.parametrize("case", sorted(REJECT))
def test_rejected_with_file_line_and_reason(bvh_file, case):
    content, line, words = REJECT[case]
    path = bvh_file(content)
    t0 = time.perf_counter()
    with pytest.raises(BVHError) as info:
        read_bvh(path)
    assert time.perf_counter() - t0 < 2.0
    err = info.value
    msg = str(err)
    assert msg.startswith(f"{path}:"), msg
    assert "\n" not in msg and "expected" in msg and "found" in msg
    assert words in msg, msg
    if line is not None:
        assert err.line == line, msg
        assert msg.startswith(f"{path}:{line}: expected ")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BVHError, match="No such file"):
        read_bvh(tmp_path / "nope.bvh")
    with pytest.raises(BVHError, match="directory"):
        read_bvh(tmp_path)


def _big_header(joints: int = 24) -> str:
    lines = ["HIERARCHY"]
    for i in range(joints):
        lines += [("ROOT" if i == 0 else "JOINT") + f" J{i}", "{", "OFFSET 0 1 0",
                  "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    lines += ["}"] * joints
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("declared,present", [(100_000, 5_000), (5_000, 4_999), (2_000_000_000, 1)])
def test_fewer_rows_than_declared_never_hangs(bvh_file, declared, present):
    """bvhio loops forever here; we must answer in well under 2 s, even for big files."""
    row = " ".join(["1.5"] * 144)
    path = bvh_file(_big_header() + f"MOTION\nFrames: {declared}\nFrame Time: 0.0333333\n"
                    + "\n".join([row] * present) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(BVHError, match=f"only {present} rows"):
        read_bvh(path)
    assert time.perf_counter() - t0 < 2.0


def test_bad_value_deep_in_a_big_file_is_located(bvh_file):
    rows = [" ".join(["1.25"] * 144)] * 3000
    rows[2321] = rows[2321][:-4] + "x.25"
    path = bvh_file(_big_header() + _motion(rows))
    t0 = time.perf_counter()
    with pytest.raises(BVHError) as info:
        read_bvh(path)
    assert time.perf_counter() - t0 < 2.0
    header_lines = _big_header().count("\n") + 3
    assert info.value.line == header_lines + 2321 + 1
    assert "'x.25'" in str(info.value) and "value 144" in str(info.value)


def test_error_is_picklable_and_one_line(tmp_path):
    import pickle

    err = BVHError(tmp_path / "a.bvh", 7, "a number", "'x'")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == f"{tmp_path / 'a.bvh'}:7: expected a number, found 'x'"
    assert isinstance(err, ValueError)


def test_absurd_nesting_is_an_error_not_a_crash(bvh_file):
    depth = 5000
    text = "HIERARCHY\nROOT J0\n{\nOFFSET 0 0 0\nCHANNELS 0\n"
    text += "".join(f"JOINT J{i}\n{{\nOFFSET 0 1 0\nCHANNELS 0\n" for i in range(1, depth))
    text += "}\n" * depth + "MOTION\nFrames: 1\nFrame Time: 0.1\n\n"
    with pytest.raises(BVHError, match="nested joints"):
        read_bvh(bvh_file(text))


def test_channel_less_file_cannot_claim_billions_of_frames(bvh_file):
    text = "HIERARCHY\nROOT A\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: 2000000000\nFrame Time: 0.1\n\n\n"
    t0 = time.perf_counter()
    with pytest.raises(BVHError, match="only 2 rows"):
        read_bvh(bvh_file(text))
    assert time.perf_counter() - t0 < 2.0
    clip = read_bvh(bvh_file(text.replace("2000000000", "2")))
    assert clip.num_frames == 2 and clip.local_rot.shape == (2, 1, 4)
