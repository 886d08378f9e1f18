"""Dataset indexing (synthetic 100STYLE and Bandai layouts, and the real Bandai folder), cache, progress, cancel."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import BVHError
from rsmt_studio.motion.cache import ClipCache, default_cache_dir
from rsmt_studio.motion.datasets import (
    LoadCancelled,
    index_100style,
    index_bandai,
    labels_from_path,
    open_dataset,
)


def _bvh(frames: int, shift: float = 0.0) -> str:
    """A 2-joint file whose root X position equals the frame number (+ shift), so cuts are checkable."""
    rows = "\n".join(f"{i + shift} 90 0 0 0 0 0 {i} 0" for i in range(frames))
    return (
        "HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
        "Yrotation\n JOINT Chest\n {\n  OFFSET 0 20 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
        "  End Site\n  {\n   OFFSET 0 10 0\n  }\n }\n}\n"
        f"MOTION\nFrames: {frames}\nFrame Time: 0.0166667\n{rows}\n"
    )


@pytest.fixture()
def style100_root(tmp_path: Path) -> Path:
    root = tmp_path / "100STYLE"
    for style, kinds in {"Aeroplane": ["FW", "BR", "TR1"], "Akimbo": ["FW", "ID"], "Zombie": ["SW"]}.items():
        (root / style).mkdir(parents=True)
        for kind in kinds:
            (root / style / f"{style}_{kind}.bvh").write_text(_bvh(30))
    (root / "Aeroplane" / "notes.bvh").write_text(_bvh(3))  # not <Style>_<KIND>: ignored
    (root / "Frame_Cuts.csv").write_text(
        "STYLE_NAME,FW_START,FW_STOP,BR_START,BR_STOP,ID_START,ID_STOP,TR1_START,TR1_STOP\n"
        "Aeroplane,2,8,NA,NA,NA,NA,5,NA\n"
        "Akimbo,NA,NA,NA,NA,0,30,NA,NA\n"
    )
    return root


def test_synthetic_100style_indexes_and_cuts(style100_root, clip_cache_dir):
    ds = index_100style(style100_root)
    got = {(e.style, e.content): e.frame_range for e in ds}
    assert got == {
        ("Aeroplane", "forward-walk"): (2, 8),
        ("Aeroplane", "transitions-1"): (5, None),  # STOP NA: to the end
        ("Akimbo", "idle"): (0, 30),
        ("Zombie", "sidestep-walk"): None,  # no Frame_Cuts row: whole file
    }  # Aeroplane BR and Akimbo FW have START = NA: skipped, as the RSMT reference does
    assert ds.styles == ["Aeroplane", "Akimbo", "Zombie"]
    assert all(e.collection == "100STYLE" for e in ds)
    fw = ds.load(ds.filter(style="Aeroplane", content="forward-walk")[0])
    np.testing.assert_allclose(fw.root_pos[:, 0], np.arange(2, 8))
    assert (fw.style, fw.content, fw.name, fw.frame_range) == ("Aeroplane", "forward-walk", "Aeroplane_FW", (2, 8))
    assert fw.fps == 60.0 and fw.source_path == style100_root / "Aeroplane" / "Aeroplane_FW.bvh"
    tr = ds.load(ds.filter(content="transitions-1")[0])
    assert tr.num_frames == 25
    assert open_dataset(style100_root).name == "100STYLE"


def test_100style_cut_beyond_the_file_is_an_error(style100_root, clip_cache_dir):
    (style100_root / "Frame_Cuts.csv").write_text("STYLE_NAME,FW_START,FW_STOP\nAkimbo,40,50\n")
    ds = index_100style(style100_root)
    with pytest.raises(BVHError, match="Frame_Cuts"):
        ds.load(ds.filter(style="Akimbo", content="forward-walk")[0])


def _make_bandai(tmp_path: Path) -> Path:
    part = tmp_path / "bandai" / "Bandai-Namco-Research-Motiondataset-1"
    (part / "cfg").mkdir(parents=True)
    (part / "data").mkdir()
    (part / "cfg" / "content_label.txt").write_text("dataset-1_walk\ndataset-1_walk-back\ndataset-1_run\n")
    (part / "cfg" / "style_label.txt").write_text("dataset-1_normal\ndataset-1_not-confident\n")
    for content, c in [("walk", 0), ("walk-back", 1), ("run", 2)]:
        for style, s in [("normal", 0), ("not-confident", 1)]:
            stem = f"dataset-1_{content}_{style}_001"
            (part / "data" / f"{stem}.bvh").write_text(_bvh(10 + c))
            (part / "data" / f"{stem}.json").write_text(json.dumps({"content": c, "style": s}))
    return tmp_path / "bandai"


def test_synthetic_bandai_layout(tmp_path, clip_cache_dir):
    ds = index_bandai(_make_bandai(tmp_path))
    assert len(ds) == 6
    assert ds.styles == ["normal", "not-confident"]
    assert ds.contents == ["run", "walk", "walk-back"]
    entry = ds.filter(style="not-confident", content="walk-back")[0]
    assert entry.collection == "dataset-1" and entry.frame_range is None
    clip = ds.load(entry)
    assert clip.num_frames == 11 and clip.style == "not-confident" and clip.content == "walk-back"
    assert labels_from_path(entry.path) == ("not-confident", "walk-back")


def test_bandai_json_disagreeing_with_name_is_reported(tmp_path, clip_cache_dir):
    root = _make_bandai(tmp_path)
    meta = next(root.rglob("dataset-1_run_normal_001.json"))
    meta.write_text(json.dumps({"content": 0, "style": 0}))
    with pytest.raises(BVHError, match=r"labels matching the file name \(run, normal\)"):
        index_bandai(root)


def test_cache_hits_and_invalidation(tmp_path, clip_cache_dir):
    src = tmp_path / "clip.bvh"
    src.write_text(_bvh(5))
    cache = ClipCache()
    assert cache.directory == clip_cache_dir / "clips" == default_cache_dir()
    first = cache.load(src)
    again = cache.load(src)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(again.local_rot, first.local_rot)
    np.testing.assert_array_equal(again.local_pos, first.local_pos)
    assert again.skeleton.names == first.skeleton.names and again.skeleton.channels == first.skeleton.channels
    np.testing.assert_array_equal(again.skeleton.end_sites[1], first.skeleton.end_sites[1])
    again.local_pos[0, 0, 0] = 123.0  # cached arrays are writable and independent
    assert cache.load(src).local_pos[0, 0, 0] == 0.0

    src.write_text(_bvh(6))  # new size -> re-parsed
    assert cache.load(src).num_frames == 6 and cache.misses == 2
    st = src.stat()
    src.write_text(_bvh(6, shift=1.0))  # same size, new mtime -> re-parsed
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache.load(src).root_pos[0, 0] == 1.0 and cache.misses == 3

    entry = cache.entry_path(src)
    entry.write_bytes(entry.read_bytes()[:40])  # damaged cache file -> re-parsed, not an error
    assert cache.load(src).num_frames == 6 and cache.misses == 4
    assert cache.clear() == 1


def test_cache_does_not_hide_bad_files(tmp_path, clip_cache_dir):
    bad = tmp_path / "bad.bvh"
    bad.write_text(_bvh(5).replace("Frames: 5", "Frames: 9"))
    with pytest.raises(BVHError, match="only 5 rows"):
        ClipCache().load(bad)
    with pytest.raises(BVHError, match="readable"):
        ClipCache().load(tmp_path / "missing.bvh")


def test_bulk_load_progress_cancel_and_skip(tmp_path, clip_cache_dir):
    ds = index_bandai(_make_bandai(tmp_path))
    seen = []
    clips = ds.load_all(progress=lambda done, total, entry: seen.append((done, total, entry.name)))
    assert len(clips) == 6 and [s[:2] for s in seen] == [(i, 6) for i in range(1, 7)]

    stop = threading.Event()

    def progress(done, total, entry):
        if done == 2:
            stop.set()

    with pytest.raises(LoadCancelled) as info:
        ds.load_all(progress=progress, cancel=stop)
    assert len(info.value.loaded) == 2
    with pytest.raises(LoadCancelled):
        ds.load_all(cancel=lambda: True)

    ds.entries[3].path.write_text("HIERARCHY\n")
    with pytest.raises(BVHError):
        ds.load_all()
    assert len(ds.load_all(skip_invalid=True)) == 5
    assert list(ds.failures) == [ds.entries[3].path]


def test_real_bandai_index(bandai_root, clip_cache_dir):
    ds = index_bandai(bandai_root)
    assert len(ds) >= 700
    assert {"walk", "run", "walk-turn-left", "dance-short"} <= set(ds.contents)
    assert {"active", "elderly", "not-confident", "chimpira"} <= set(ds.styles)
    assert {e.collection for e in ds} == {"dataset-1", "dataset-2"}
    clip = ds.load(ds.filter(style="not-confident", content="walk")[0])
    assert clip.num_joints == 22 and clip.style == "not-confident"
