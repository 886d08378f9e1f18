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


def test_split_keeps_fixed_sides_and_assigns_the_rest_by_the_rule(style100_root):
    records = D.list_100style(style100_root)
    free = D.split_records(records)
    # pin two takes to the side the rule would NOT give them: they stay there, the rest is still order-independent
    flip = sorted(r.key for r in records)[:2]
    fixed = {k: k not in free for k in flip}
    test = D.split_records(records, fixed=fixed)
    assert {k for k in flip if k in test} == {k for k, held in fixed.items() if held}
    assert test == D.split_records(list(reversed(records)), fixed=fixed)
    for attr, counts in _held_out_everywhere(records, test):
        assert all(held >= 1 for held, _ in counts.values()), attr


def test_bandai_split_is_the_committed_list_and_file_is_compact(bandai_root, tmp_path):
    records = D.list_bandai(bandai_root)
    test = D.committed_split(records)
    committed = D.read_split_list(REPO / "training" / "splits" / "test.txt")
    train = D.read_split_list(REPO / "training" / "splits" / "train.txt")
    assert test == committed
    assert train == {r.key for r in records} - committed
    assert test == D.committed_split(list(reversed(records)))
    # the shipped model and classifier trained beside splits/v1: no take of it changed side, and v1 itself is the
    # rule's output on the takes it names (so the extension is the same rule, fed the old sides)
    v1_test = D.read_split_list(REPO / "training" / "splits" / "v1" / "test.txt")
    v1_train = D.read_split_list(REPO / "training" / "splits" / "v1" / "train.txt")
    assert len(v1_test) == 83 and len(v1_train) == 648
    assert v1_test <= committed and v1_train <= train
    assert D.split_records([r for r in records if r.key in v1_test | v1_train]) == v1_test
    new = [r for r in records if r.key not in v1_test | v1_train]
    if new:  # the added takes: every dataset-2 (content, style) group holds ceil(10 %) of its takes out
        groups = defaultdict(list)
        for r in records:
            groups[(r.dataset, r.content, r.style)].append(r.key in test)
        for r in new:
            held, n = sum(groups[(r.dataset, r.content, r.style)]), len(groups[(r.dataset, r.content, r.style)])
            assert n < 2 or held >= int(np.ceil(0.1 * n)), (r.dataset, r.content, r.style, held, n)
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
