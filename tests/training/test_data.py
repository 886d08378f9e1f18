"""Data pipeline: 100STYLE layout (synthetic) and Bandai through the same code; split rule; compact file."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from rsmt_studio.training import data as D

REPO = Path(__file__).resolve().parents[2]


def _held_out_everywhere(records, test):
    for attr in ("style", "content"):
        by = defaultdict(list)
        for r in records:
            by[(r.dataset, getattr(r, attr))].append(r.key in test)
        yield attr, {k: (sum(v), len(v)) for k, v in by.items()}


def test_100style_folder_preprocess_and_load(style100_root, tmp_path):
    records = D.list_100style(style100_root)
    # Tired's ID has START=NA in Frame_Cuts.csv: skipped, as in RSMT
    assert sorted(r.key for r in records if r.style == "Tired") == ["100STYLE/Tired_BW", "100STYLE/Tired_FW"]
    test = D.split_records(records)
    assert test == D.split_records(list(reversed(records)))  # independent of listing order
    for attr, counts in _held_out_everywhere(records, test):
        for key, (held, total) in counts.items():
            assert held >= 1, f"{attr} {key} has no held-out take"
            assert held < total or attr == "content", f"{attr} {key} lost all training takes"
    out = tmp_path / "s100.npz"
    summary = D.preprocess(records, test, out)
    assert summary["clips"] == 8
    md = D.MotionData.load(out)
    assert md.ms.num_joints == 23 and md.ms.num_pos_joints == 14
    assert md.fps == 30.0
    # 60 fps -> 30 fps, cut to Frame_Cuts ranges: FW [10, 410) of 420 -> 200 frames at 30 fps
    fw = list(md.clip_names).index("100STYLE/Happy_FW")
    assert md.lengths[2 * fw] == 200 and md.lengths[2 * fw + 1] == 200
    # mirrored copy: the left and right feet swap roles, so their contact patterns swap
    a, b = md.starts[2 * fw], md.starts[2 * fw + 1]
    np.testing.assert_allclose(md.contacts[b:b + 200][:, [2, 3, 0, 1]], md.contacts[a:a + 200], atol=1e-4)
    assert md.gpos.dtype == np.float32 and md.pae_vel.shape[1] == 23 * 3


def test_bandai_split_is_the_committed_list_and_file_is_compact(bandai_root, tmp_path):
    records = D.list_bandai(bandai_root)
    test = D.split_records(records)
    committed = D.read_split_list(REPO / "training" / "splits" / "test.txt")
    train = D.read_split_list(REPO / "training" / "splits" / "train.txt")
    assert test == committed
    assert train == {r.key for r in records} - committed
    for attr, counts in _held_out_everywhere(records, test):
        missing = [k for k, (held, total) in counts.items() if held == 0]
        if attr == "style":
            assert not missing
        else:  # only contents with a single take stay train-only
            assert all(counts[k][1] == 1 for k in missing), missing
    sub = D.subset(records, 1)
    out = tmp_path / "bandai-sub.npz"
    summary = D.preprocess(sub, D.split_records(sub), out)
    # the full dataset scales to ~41.5 MB (<= 60 MiB); check the per-frame budget on the subset
    bytes_per_frame = summary["bytes"] / summary["frames"]
    assert bytes_per_frame * 127_106 < 60 * 2**20
