"""`rsmt-studio eval` through a real subprocess on real held-out Bandai windows.

The baseline run uses the shipped style classifier and no model (--no-model). The model run uses RANDOMLY
INITIALISED weights of the inference tests' config (tests/inference/rsmt_torch.py), so its figures mean nothing;
it proves the MAX path runs batched end to end and fills the schema. It shares the inference tests' MEF cache
(cold, the four graphs compile once: minutes on 2 cores; warm, seconds).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "rsmt_studio.app.cli", "eval"]
BASELINES = ("slerp", "zero_velocity", "inertialization")
POSTURE = ("head_turn_deg", "head_turn_p95_deg", "lowest_foot_cm", "seam_in_deg", "seam_out_deg")
METRICS = ("l2p", "l2q", "npss", "foot_skate", "style_acc", *POSTURE)


def _run(args: list[str], env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, check=False, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})})


def _check_schema(result: dict, lengths: list[int], with_model: bool) -> None:
    assert set(result["lengths"]) == {str(n) for n in lengths}
    for row in result["lengths"].values():
        assert set(row) == {"rsmt", *BASELINES, "real"}
        methods = (*BASELINES, "rsmt") if with_model else BASELINES
        for m in methods:
            assert set(row[m]) == set(METRICS), m
            for k, v in row[m].items():
                assert isinstance(v, float) and math.isfinite(v) and v >= 0, (m, k, v)
            assert 0.0 <= row[m]["style_acc"] <= 1.0
            assert row[m]["head_turn_deg"] <= row[m]["head_turn_p95_deg"] <= 180.0
            assert 0.0 < row[m]["lowest_foot_cm"] < 30.0  # above the floor, below the knees
            assert row[m]["seam_in_deg"] <= 180.0 and row[m]["seam_out_deg"] <= 180.0
        if not with_model:
            assert row["rsmt"] is None
        assert set(row["real"]) == {"foot_skate", "style_acc", *POSTURE}
        assert 0.0 <= row["real"]["style_acc"] <= 1.0


def test_eval_baselines_write_schema_valid_json(bandai_root, tmp_path):
    out = tmp_path / "eval.json"
    proc = _run(["--lengths", "10", "20", "--json", str(out), "--limit", "16", "--no-model",
                 "--data", str(bandai_root)])
    assert proc.returncode == 0, proc.stderr
    assert "held-out windows" in proc.stderr  # progress on stderr
    result = json.loads(out.read_text())
    _check_schema(result, [10, 20], with_model=False)
    assert result["meta"]["windows"] == 16
    assert sum(result["meta"]["windows_by_group"].values()) == 16
    assert set(result["meta"]["l2p_by_group"]["20"]) == set(BASELINES)
    assert result["meta"]["classifier"]["trained_without_these_clips"] is True
    row = result["lengths"]["20"]
    # interpolating towards the keyframe beats holding the last context pose on positions
    assert row["slerp"]["l2p"] < row["zero_velocity"]["l2p"]
    assert row["real"]["style_acc"] > 0.5  # the shipped classifier on real held-out frames (19 classes)
    # the table printed on stdout is the one --table regenerates from the JSON
    table = _run(["--table", str(out)])
    assert table.returncode == 0 and table.stdout.strip() == proc.stdout.strip()
    assert "| 20 | inertialization |" in table.stdout
    assert "| seam jump in (°) | seam jump out (°) |" in table.stdout  # the posture table, real frames included
    assert sum(line.startswith("| 20 | real |") for line in table.stdout.splitlines()) == 2
    # no silent overwrite
    before = out.read_bytes()
    again = _run(["--lengths", "10", "--json", str(out), "--no-model", "--data", str(bandai_root)])
    assert again.returncode == 2 and "--force" in again.stderr
    assert out.read_bytes() == before


def test_eval_reports_bad_split_file(tmp_path, bandai_root):
    bad = tmp_path / "test.txt"
    bad.write_text("dataset-9/nope\n")
    proc = _run(["--json", str(tmp_path / "o.json"), "--no-model", "--split", str(bad), "--data", str(bandai_root)])
    assert proc.returncode == 2
    assert "test.txt" in proc.stderr and "dataset-9/nope" in proc.stderr
    assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_eval_runs_the_model_on_max(bandai_root, tmp_path):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("rsmt_torch", REPO / "tests" / "inference" / "rsmt_torch.py")
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    cfg = rt.test_config()
    assets = rt.save_assets(rt.random_modules(cfg, seed=7), cfg, tmp_path / "assets",
                            note="random initialisation for tests")
    cache = os.environ.get("RSMT_STUDIO_TEST_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "rsmt-studio-test-mef")
    out = tmp_path / "eval.json"
    proc = _run(["--lengths", "10", "--json", str(out), "--limit", "6", "--model", str(assets),
                 "--data", str(bandai_root)], env={"RSMT_STUDIO_CACHE_DIR": cache}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    _check_schema(result, [10], with_model=True)
    meta = result["meta"]["rsmt"]
    assert "MAX" in meta["backend"] and meta["manifest_note"] == "random initialisation for tests"
    assert "predictor" in meta["phase_at_last_context_frame"]
    transfer = meta["style_transfer_acc"]["10"]
    assert set(transfer) == {"requested_style", "keyframe_style"}
    assert all(0.0 <= v <= 1.0 for v in transfer.values())
    # issue 14's style scenarios ran the model too (figures meaningless with random weights)
    style = result["style"]["lengths"]["10"]
    for scenario, method in (("same_style", "rsmt"), ("switch_to_target", "rsmt"),
                             ("switch_to_target", "rsmt_context_style_requested"), ("requested_other", "rsmt")):
        entry = style[scenario][method]
        assert entry["windows"] == result["style"]["meta"]["windows"]
        assert all(0.0 <= v <= 1.0 for v in entry["wanted"].values()), (scenario, method)
