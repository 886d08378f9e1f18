"""Every Bandai file loads; FK agrees with two independent computations; real files survive write -> read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import read_bvh, write_bvh

BANDAI_JOINTS = [
    "joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
    "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
    "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R",
]


@pytest.fixture(scope="module")
def bandai_files(bandai_root: Path) -> list[Path]:
    files = sorted(bandai_root.rglob("*.bvh"))
    assert len(files) >= 700, f"expected the ~731 staged Bandai clips, found {len(files)}"
    return files


def _sample(files: list[Path], n: int) -> list[Path]:
    """n files spread evenly over both datasets and all contents (sorted names interleave them)."""
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def _raw_motion(path: Path) -> tuple[int, np.ndarray]:
    """Frames header and the data rows, parsed with plain Python (independent of the reader)."""
    text = path.read_text()
    head, _, data = text.partition("Frame Time:")
    frames = int(head.rsplit("Frames:", 1)[1].split()[0])
    rows = [r for r in data.split("\n")[1:] if r.strip()]
    return frames, np.array([[float(v) for v in r.split()] for r in rows])


def test_every_bandai_file_loads(bandai_files):
    total = 0
    moving_root: list[str] = []
    for path in bandai_files:
        clip = read_bvh(path)
        sk = clip.skeleton
        assert sk.names == BANDAI_JOINTS, path
        assert all(c == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
                   for c in sk.channels)
        assert clip.fps == 30.0 and clip.num_frames > 0
        assert len(sk.end_sites) == 5
        assert np.isfinite(clip.local_pos).all()
        np.testing.assert_allclose(np.linalg.norm(clip.local_rot, axis=-1), 1.0, atol=1e-12)
        np.testing.assert_array_equal(clip.local_rot[:, 0], [[1.0, 0, 0, 0]] * clip.num_frames)
        if np.abs(clip.local_pos[:, 0]).max() > 0:
            moving_root.append(path.name)
            np.testing.assert_array_equal(clip.local_pos[:, 0, :2], 0.0)  # it only ever slides along Z
        total += clip.num_frames
    assert total > 120_000  # ~31.9k + ~95.2k frames in the staged subset
    # joint_Root never rotates and is all-zero except in a few takes (in the staged subset: dataset-1
    # dash/run/walk-back_normal_001 and walk_normal_002) where it slides along Z (to 120..273 cm); FK handles it
    # like any other translation channel.
    assert "dataset-1_walk_normal_002.bvh" in moving_root and len(moving_root) <= 0.01 * len(bandai_files)


def _matrix_fk(path: Path) -> np.ndarray:
    """Global positions by 4x4 matrices from the raw text: Z, X, Y rotation matrices in channel order."""
    _, raw = _raw_motion(path)
    t = len(raw)
    vals = raw.reshape(t, 22, 6)
    parents = [-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 3, 10, 11, 12, 1, 14, 15, 16, 1, 18, 19, 20]

    def rot(axis: int, deg: np.ndarray) -> np.ndarray:
        a = np.deg2rad(deg)
        c, s = np.cos(a), np.sin(a)
        m = np.zeros((t, 4, 4))
        m[:, 3, 3] = 1
        i, j = [(1, 2), (2, 0), (0, 1)][axis]
        m[:, axis, axis] = 1
        m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
        return m

    world = np.zeros((t, 22, 4, 4))
    for jnt in range(22):
        local = np.tile(np.eye(4), (t, 1, 1))
        local[:, :3, 3] = vals[:, jnt, :3]
        local = local @ rot(2, vals[:, jnt, 3]) @ rot(0, vals[:, jnt, 4]) @ rot(1, vals[:, jnt, 5])
        world[:, jnt] = local if parents[jnt] < 0 else world[:, parents[jnt]] @ local
    return world[:, :, :3, 3]


def test_fk_matches_independent_matrix_fk(bandai_files):
    for path in _sample(bandai_files, 24):
        gpos = read_bvh(path).global_positions()
        np.testing.assert_allclose(gpos, _matrix_fk(path), atol=1e-3, rtol=0, err_msg=str(path))
        assert np.abs(gpos - _matrix_fk(path)).max() < 1e-9  # in float64 they agree far below 1e-3


def test_fk_matches_bvhio_world_positions(bandai_files):
    """bvhio (float32 internally) as a second, third-party oracle."""
    bvhio = pytest.importorskip("bvhio")
    for path in _sample(bandai_files, 3):
        clip = read_bvh(path)
        gpos = clip.global_positions()
        root = bvhio.readAsHierarchy(str(path))
        layout = [j for j, _, _ in root.layout()]
        assert [j.Name for j in layout] == clip.skeleton.names
        frames = range(0, clip.num_frames, max(1, clip.num_frames // 20))
        for f in frames:
            root.loadPose(f)
            theirs = np.array([[j.PositionWorld.x, j.PositionWorld.y, j.PositionWorld.z] for j in layout])
            np.testing.assert_allclose(gpos[f], theirs, atol=1e-3, rtol=0, err_msg=f"{path} frame {f}")


def test_raw_values_and_frame_counts_match_the_text(bandai_files):
    for path in _sample(bandai_files, 12):
        frames, raw = _raw_motion(path)
        clip = read_bvh(path)
        assert clip.num_frames == frames == len(raw)
        np.testing.assert_array_equal(clip.local_pos[:, 1], raw[:, 6:9])  # Hips translation, exact


def test_bandai_write_read_round_trip(bandai_files, tmp_path):
    for path in _sample(bandai_files, 6):
        clip = read_bvh(path)
        out = tmp_path / path.name
        write_bvh(clip, out)
        again = read_bvh(out)
        assert again.skeleton.names == clip.skeleton.names
        assert again.skeleton.channels == clip.skeleton.channels
        err = np.abs(again.global_positions() - clip.global_positions()).max()
        assert err < 1e-4, f"{path}: {err} cm"


def test_bandai_mirror_is_exact_reflection(bandai_files):
    clip = read_bvh(_sample(bandai_files, 5)[2])
    perm = clip.skeleton.mirror_indices()
    assert [clip.skeleton.names[i] for i in perm[6:10]] == ["Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R"]
    mirrored = clip.mirror()
    assert mirrored.skeleton is clip.skeleton  # same rig, so networks see it unchanged
    expected = clip.global_positions()[:, perm] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored.global_positions(), expected, atol=1e-9)
    # offsets are kept: non-root translations stay within the rig's own (near-)symmetry of its offsets
    assert np.abs(mirrored.local_pos[:, 2:] - clip.local_pos[:, 2:]).max() < 0.1
    twice = mirrored.mirror()
    np.testing.assert_allclose(twice.global_positions(), clip.global_positions(), atol=1e-9)
