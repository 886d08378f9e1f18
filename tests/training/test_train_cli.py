"""`rsmt-studio train`: every stage end to end on CPU with the tiny config, in real subprocesses.

Losses must fall (held-out loss of the last epoch below the first), checkpoints resume, time boxes stop
cleanly, weights are exported under the documented names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from .test_networks import SAMPLER_KEYS

CLI = [sys.executable, "-m", "rsmt_studio.app.cli", "train"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(*args: str, ok: bool = True, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=ENV,
                          check=False)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _metrics(run: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run / f"{stage}.metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_config_trains_every_stage_and_losses_fall(bandai_root, tmp_path):
    data, run = tmp_path / "bandai-sub.npz", tmp_path / "run"
    _run("preprocess", "--bandai", str(bandai_root), "--out", str(data), "--per-group", "1", "--quiet")
    common = ["--data", str(data), "--run", str(run), "--quiet", "--threads", "1"]
    _run("phase", "--preset", "tiny", *common)
    _run("label-phases", *common)
    for stage in ("manifold", "sampler", "phase-predictor"):
        _run(stage, *common)
    for stage in ("phase", "manifold", "sampler", "phase-predictor"):
        rows = _metrics(run, stage)
        assert len(rows) >= 3
        assert rows[-1]["val_loss"] < rows[0]["val_loss"], (stage, [r["val_loss"] for r in rows])
        assert rows[-1]["train_loss"] < rows[0]["train_loss"], (stage, [r["train_loss"] for r in rows])
    assert set(load_file(str(run / "sampler.safetensors"))) == set(SAMPLER_KEYS)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["name"] == "tiny" and cfg["skeleton"]["n_joints"] == 21
    skel = json.loads((run / "skeleton.json").read_text())
    assert skel["pos_joints"][0] == 0 and len(skel["pos_joints"]) == 14

    _check_reference_inference(run, data)
    check = _run("check", "--data", str(data), "--run", str(run), "--lengths", "10", "--no-mirror")
    errors = json.loads(check.stdout.strip().splitlines()[-1])["mean_joint_error"]["10"]
    assert errors["hold"] > errors["lerp"] > 0 and errors["model"] > 0

    # a finished stage refuses to start over silently; --resume continues where it stopped
    again = _run("sampler", *common, ok=False)
    assert again.returncode == 2 and "--resume" in again.stderr
    before = len(_metrics(run, "sampler"))
    _run("sampler", *common, "--resume", "--epochs", str(before + 1))
    rows = _metrics(run, "sampler")
    assert len(rows) == before + 1 and rows[-1]["epoch"] == before + 1

    # a time box stops after the first step, checkpoints, and reports why it stopped
    boxed = _run("manifold", "--data", str(data), "--run", str(tmp_path / "boxed"), "--preset", "tiny",
                 "--quiet", "--threads", "1", "--minutes", "0.0001", "--epochs", "50", "--no-mirror", ok=False)
    assert boxed.returncode == 2 and "phases.npz" in boxed.stderr  # no labels in a fresh run folder
    (tmp_path / "boxed").mkdir(exist_ok=True)
    for name in ("phase.safetensors", "phases.npz", "config.json"):
        (tmp_path / "boxed" / name).write_bytes((run / name).read_bytes())
    boxed = _run("manifold", "--data", str(data), "--run", str(tmp_path / "boxed"), "--quiet", "--threads", "1",
                 "--minutes", "0.0001", "--epochs", "50")
    result = json.loads(boxed.stdout.strip().splitlines()[-1])
    assert result["stopped"] == "time" and result["epochs"] == 1
    assert (tmp_path / "boxed" / "manifold.ckpt").exists()

    _check_style_critic_fine_tune(run, data, tmp_path / "styled")


def _check_style_critic_fine_tune(run: Path, data: Path, styled: Path) -> None:
    """The sampler warm-started from a run's weights with recipe B (style critic, style swaps free of the
    context's pose and phase, critic statistics, style-code head): it logs every term, keeps the objective in
    config.json, checkpoints the critic and the head with the sampler and resumes."""
    import torch

    styled.mkdir()
    for name in ("phase.safetensors", "manifold.safetensors", "phases.npz", "config.json"):
        (styled / name).write_bytes((run / name).read_bytes())
    common = ["--data", str(data), "--run", str(styled), "--quiet", "--threads", "1", "--no-mirror"]
    _run("sampler", *common, "--init-from", str(run), "--epochs", "2", "--style-weight", "0.1",
         "--style-swap", "0.5", "--contact-weight", "0.5", "--style-swap-recon", "0", "--style-swap-phase", "0",
         "--style-swap-smooth", "0.5", "--style-stat-weight", "0.5", "--style-code-weight", "0.1",
         "--style-ramp-steps", "3", "--head-weight", "0.5", "--seam-weight", "0.5",
         "--curriculum-epochs", "6", "--head-turn-weight", "0.5", "--chain-rot-weight", "0.5",
         "--head-peak-weight", "0.5", "--head-own-rows", "--skate-weight", "0.5", "--foot-height-weight", "0.5",
         "--head-landing-weight", "0.5", "--head-departure-weight", "0.5")
    rows = _metrics(styled, "sampler")
    assert len(rows) == 2
    for row in rows:
        for key in ("train_style_ce", "train_style_acc", "train_critic_acc", "train_swap_last", "train_style_stat",
                    "train_code_ce", "train_code_acc", "train_swap_rough", "train_head_excess", "train_seam_excess",
                    "train_head_turn_excess", "train_chain_rot", "train_head_peak_excess",
                    "train_skate_excess", "train_foot_height_error", "train_head_landing_excess",
                    "train_head_departure_excess"):
            assert key in row and row[key] == row[key], key  # present and not NaN
    # the critic judges real windows far better than chance (here: few styles, so near-perfect)
    assert rows[-1]["train_critic_acc"] > 0.5
    train = json.loads((styled / "config.json").read_text())["train"]
    assert (train["style_weight"], train["style_swap"], train["sampler_contact_weight"]) == (0.1, 0.5, 0.5)
    assert (train["style_swap_phase"], train["style_stat_weight"], train["style_code_weight"]) == (0.0, 0.5, 0.1)
    assert (train["head_weight"], train["seam_weight"], train["curriculum_epochs"]) == (0.5, 0.5, 6)
    assert (train["head_turn_weight"], train["chain_rot_weight"], train["head_peak_weight"]) == (0.5, 0.5, 0.5)
    assert train["head_own_rows"] is True
    assert train["skate_weight"] == train["foot_height_weight"] == train["head_landing_weight"] == 0.5
    assert train["head_departure_weight"] == 0.5
    ckpt = torch.load(styled / "sampler.ckpt", weights_only=False)
    assert set(ckpt["modules"]) == {"model", "critic", "style_head"}
    _run("sampler", *common, "--resume", "--epochs", "3")
    assert len(_metrics(styled, "sampler")) == 3
    bad = _run("sampler", *common, "--resume", "--epochs", "4", "--style-swap", "1.5", ok=False)
    assert bad.returncode == 2 and "--style-swap 1.5" in bad.stderr


def test_cost_command_prints_the_table():
    out = _run("cost").stdout
    assert "| full |" in out and "| small |" in out and "| tiny |" in out
    full = json.loads(next(line for line in out.splitlines() if line.startswith('{"config": "full"')))
    assert full["step_macs"]["LSTM"] == 8_388_608


def test_missing_torch_gives_a_clear_message(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from rsmt_studio.app.cli import main; "
            f"sys.exit(main(['train', 'phase', '--data', '{tmp_path}/x.npz', '--run', '{tmp_path}/r']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "needs PyTorch" in proc.stderr


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    proc = _run("phase", "--data", str(tmp_path / "none.npz"), "--run", str(tmp_path / "r"), ok=False)
    assert proc.returncode == 2 and "no such preprocessed dataset" in proc.stderr
    proc = _run("preprocess", "--out", str(tmp_path / "x.npz"), ok=False)
    assert proc.returncode == 2 and "--bandai" in proc.stderr
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a zip")
    proc = _run("phase", "--data", str(bogus), "--run", str(tmp_path / "r"), "--preset", "tiny", ok=False)
    assert proc.returncode == 2 and "bogus.npz: not a preprocessed dataset" in proc.stderr
    assert "Traceback" not in proc.stderr
    broken = tmp_path / "style100"
    (broken / "Angry").mkdir(parents=True)
    (broken / "Angry" / "Angry_FW.bvh").write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n")
    proc = _run("preprocess", "--style100", str(broken), "--out", str(tmp_path / "y.npz"), ok=False)
    assert proc.returncode == 2 and "Angry_FW.bvh" in proc.stderr and "Traceback" not in proc.stderr


def _check_reference_inference(run: Path, data: Path) -> None:
    """The torch reference path (training/reference.py) runs from the run folder alone, deterministically."""
    import numpy as np
    from rsmt_studio.motion import features as Fe
    from rsmt_studio.training.data import MotionData
    from rsmt_studio.training.reference import clip_phases, load_run, transition

    models = load_run(run)
    md = MotionData.load(data, mirror=False)
    seq = int(np.argmax(md.lengths))
    a = int(md.starts[seq])
    proto = Fe.KeyframeProtocol(20)
    g, r = md.gpos[a:a + proto.window].astype(np.float64), md.grot[a:a + proto.window].astype(np.float64)
    prob = Fe.make_problem(g, r, models.ms, proto)
    frames = models.cfg.sampler.style_frames
    style = Fe.style_features(md.gpos[a:a + frames].astype(np.float64), md.grot[a:a + frames].astype(np.float64),
                              models.ms)
    out = transition(models, prob, style)
    again = transition(models, prob, style)
    assert out["pos"].shape == (20, 21, 3) and np.isfinite(out["pos"]).all()
    np.testing.assert_array_equal(out["pos"], again["pos"])
    ph = clip_phases(models, md.gpos[a:a + 60].astype(np.float64), np.array([proto.n_past - 1]))
    with_label = transition(models, prob, style, phase9=ph[0])
    assert with_label["pos"].shape == out["pos"].shape
    # the first generated frame continues from the last context frame (hips within 20 cm)
    assert np.linalg.norm(out["pos"][0, 0] - prob.state.pos[proto.n_past - 1, 0]) < 20.0
