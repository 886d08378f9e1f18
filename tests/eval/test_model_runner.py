"""The eval's batched use of the MAX graphs computes the PyTorch reference rollout on real held-out windows.

RANDOMLY INITIALISED weights of the inference tests' config (tests/inference/rsmt_torch.py, seed 7); the MEF
cache is the inference tests' (cold: the four graphs compile first, minutes on 2 cores)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rt():
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("rsmt_torch", REPO / "tests" / "inference" / "rsmt_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batched_rollout_matches_torch_reference(rt, bandai_root, tmp_path, monkeypatch):
    from rsmt_studio.app.eval import benchmark as C
    from rsmt_studio.motion import features as Fe

    cache = os.environ.get("RSMT_STUDIO_TEST_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "rsmt-studio-test-mef")
    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", cache)
    cfg = rt.test_config()
    mods = rt.random_modules(cfg, seed=7)
    assets = rt.save_assets(mods, cfg, tmp_path / "assets", note="random initialisation for tests")
    length = 10
    held = C.load_held_out(bandai_root, C.SPLIT_TEST, Fe.KeyframeProtocol(length).window, 40, 5)
    runner = C.ModelRunner(assets, "cpu", 8, "clip")
    feats, which = runner.style_inputs(held)
    style = np.stack([feats[i] for i in which])
    codes = [runner.engine._encode_style("t", f).arrays for f in feats]
    caches = [np.concatenate([codes[i][a] for i in which]) for a in range(8)]
    p, r, phase9, prob = runner.rollout(held.gpos, held.grot, held.clips[0].ms, length, caches)
    assert p.shape == (5, length, held.clips[0].ms.num_pos_joints, 3)
    z = np.zeros((5, runner.engine.z_width), np.float32)
    p_t, r_t, _ = rt.torch_rollout(mods, prob, phase9, z, style, length)
    scale = np.abs(p_t).max()
    np.testing.assert_allclose(p, p_t, atol=2e-3 * scale)
    np.testing.assert_allclose(r, r_t, atol=2e-3)
    # the predictor's phase (no future frames) is what the rollout started from
    assert "predictor" in runner.phase_source and np.isfinite(phase9).all()

