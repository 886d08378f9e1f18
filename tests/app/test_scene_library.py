"""Scene and library models: characters, ghosts, regions, contacts; labels, grouping, filter, recent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rsmt_studio.app.models.library import LibraryModel, entry_for_file, index_folder
from rsmt_studio.app.models.scene import PALETTE, SceneModel, TimelineRegion, detect_contacts


def _walk(frames=60, fps=30.0, offset=0.0):
    """A 5-joint figure whose feet alternate between planted and swinging."""
    t = np.arange(frames) / fps
    pos = np.zeros((frames, 5, 3))
    pos[:, 0] = np.stack([t * 100 + offset, np.full_like(t, 0.0), 0 * t], 1)  # static-height root helper
    pos[:, 1] = pos[:, 0] + [0, 90, 0]  # hips
    pos[:, 2] = pos[:, 1] + [0, 70, 0]  # head
    swing = (np.sin(t * 2 * np.pi) > 0).astype(float)
    pos[:, 3] = pos[:, 1] + [-10, -88, 0]
    pos[:, 4] = pos[:, 1] + [10, -88, 0]
    pos[:, 3, 0] = np.cumsum(swing) * 200 / fps
    pos[:, 3, 1] += swing * 15
    return pos


NAMES = ["joint_Root", "Hips", "Head", "Foot_L", "Foot_R"]
PARENTS = np.array([-1, 0, 1, 1, 1])


def test_characters_get_distinct_colours_ghosts_and_timeline_length():
    scene = SceneModel()
    added = []
    scene.character_added.connect(added.append)
    a = scene.add_sequence("a", _walk(), PARENTS, 30.0, joint_names=NAMES)
    b = scene.add_sequence("b", _walk(40), PARENTS, 30.0, joint_names=NAMES, frame_offset=60, role="target")
    g = scene.add_sequence("ghost", _walk(1), PARENTS, 30.0, joint_names=NAMES, ghost=True, frame_offset=100)
    assert added == [a, b, g]
    assert a.colour == PALETTE[0] and b.colour == PALETTE[1] and g.alpha < 1 and g.role == "ghost"
    assert scene.num_frames == 101
    # b holds its first pose before it starts; a holds its last pose afterwards.
    assert b.local_frame(0) == 0 and a.local_frame(80) == 59 and b.local_frame(70) == 10
    assert len(scene.poses(70)) == 3
    scene.set_regions([TimelineRegion(0, 59, "source"), TimelineRegion(60, 99, "target")])
    assert [r.label for r in scene.regions] == ["source", "target"]


def test_helper_root_is_hidden_and_trajectory_follows_hips():
    scene = SceneModel()
    pos = _walk()
    pos[:, 0, :] = 0.0  # root left at the origin, as in Bandai's joint_Root
    ch = scene.add_sequence("a", pos, PARENTS, 30.0, joint_names=NAMES)
    assert not ch.bone_mask[1] and not ch.joint_mask[0] and ch.trajectory_joint == 1
    pose = scene.poses(10)[0]
    assert np.allclose(pose.trajectory, pos[:, 1])


def test_contacts_find_planted_feet_in_any_unit():
    for unit in (1.0, 0.01):
        pos = _walk() * unit
        c = detect_contacts(pos, np.array([3, 4]), 30.0, 160.0 * unit)
        assert not c[:, 1].any()  # the right foot slides along with the hips: never a contact
        assert c[:, 0].any() and not c[:, 0].all()


def test_library_labels_grouping_filter(tmp_path: Path):
    files = ["dataset-1_walk-left_tired_001.bvh", "dataset-2_run_active_003.bvh"]
    style = tmp_path / "Aeroplane"
    style.mkdir()
    for f in files:
        (tmp_path / f).write_text("x")
    (style / "Aeroplane_BR.bvh").write_text("x")  # 100STYLE name, but no 100STYLE layout (no _FW, no cuts)
    (tmp_path / "notes.txt").write_text("x")
    e = entry_for_file(tmp_path / files[0])
    assert (e.dataset, e.style, e.content) == ("Bandai", "tired", "walk-left")
    assert entry_for_file(tmp_path / "other" / "run.bvh").dataset == "Files"
    batches = []
    found = index_folder(tmp_path, batch=batches.append, batch_size=2)
    assert len(found) == 3 and sum(map(len, batches)) == 3
    lib = LibraryModel()
    lib.add_entries(found)
    assert lib.add_entries(found) == []  # no duplicates
    tree = lib.grouped()
    assert tree["100STYLE"]["Aeroplane"]["backward-run"][0].path.name == "Aeroplane_BR.bvh"
    assert [x.path.name for x in lib.filtered("run act")] == ["dataset-2_run_active_003.bvh"]


def test_recent_files_most_recent_first_without_duplicates(tmp_path):
    lib = LibraryModel()
    for i in range(12):
        lib.add_recent(tmp_path / f"{i}.bvh")
    lib.add_recent(tmp_path / "5.bvh")
    assert len(lib.recent) == 10 and lib.recent[0].name == "5.bvh" and lib.recent[1].name == "11.bvh"


def test_100style_layout_uses_frame_cuts(tmp_path: Path):
    for style in ("Aeroplane", "Zombie"):
        (tmp_path / style).mkdir()
        for kind in ("FW", "ID"):
            (tmp_path / style / f"{style}_{kind}.bvh").write_text("x")
    (tmp_path / "Frame_Cuts.csv").write_text(
        "STYLE_NAME,FW_START,FW_STOP,ID_START,ID_STOP\nAeroplane,10,200,NA,NA\nZombie,5,NA,0,50\n")
    found = {e.name: e for e in index_folder(tmp_path)}
    assert set(found) == {"Aeroplane_FW [10\u2013200]", "Zombie_FW [5\u2013end]", "Zombie_ID [0\u201350]"}
    assert found["Zombie_ID [0\u201350]"].content == "idle" and found["Zombie_ID [0\u201350]"].dataset == "100STYLE"
