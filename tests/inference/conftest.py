"""Session fixtures for the inference tests: every graph is compiled at most once per run.

The MEF cache lives in one folder shared by all tests and the subprocesses they start (CLI, worker); it
persists between local runs (`$RSMT_STUDIO_TEST_CACHE_DIR`, else <tmp>/rsmt-studio-test-mef), which is safe
because cache keys include the graph sources and the MAX version.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def _load_rsmt_torch():
    spec = importlib.util.spec_from_file_location("rsmt_torch", HERE / "rsmt_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def rsmt_torch():
    """tests/inference/rsmt_torch.py (torch reference helpers)."""
    return _load_rsmt_torch()




@pytest.fixture(scope="session")
def test_cfg(rsmt_torch):
    return rsmt_torch.test_config()


@pytest.fixture(scope="session")
def torch_modules(rsmt_torch, test_cfg):
    return rsmt_torch.random_modules(test_cfg, seed=7)


@pytest.fixture(scope="session")
def test_assets(tmp_path_factory, rsmt_torch, torch_modules, test_cfg) -> Path:
    """Random weights of the test config saved like the shipped assets, plus a two-style bank of synthetic
    style features (a random-weight model has no meaningful styles to draw from real clips)."""
    from rsmt_studio.inference.style_bank import StyleBank

    folder = rsmt_torch.save_assets(torch_modules, test_cfg, tmp_path_factory.mktemp("assets"),
                                    note="random initialisation for tests")
    rng = np.random.default_rng(3)
    c = test_cfg.style_channels
    StyleBank({"calm": rng.normal(0, 1, (39, c)), "bouncy": rng.normal(0.5, 2, (59, c))}).save(folder)
    return folder


#: The tests run the app's graphs (engine.DEFAULT_STEPS_PER_CALL steps per call): the test model has the shipped
#: structure, so its four graphs are the shipped compiled models (assets/compiled, inference/ship_compiled.py)
#: and a cold run installs them instead of compiling. test_engine checks the one-step graph against them
#: whenever its MEF is cached.
TEST_STEPS_PER_CALL = 8


@pytest.fixture(scope="session")
def compiled(mef_cache_dir, test_assets):
    """The engine's four graphs, installed from the shipped compiled models (compiled, in child processes,
    only where they do not match). The test-only graphs (block_selftest, the GPU formulations' graphs built for
    the CPU, chain) are compiled by the tests that use them, so engine tests do not wait for them."""
    from rsmt_studio.inference.compiler import ensure_compiled
    from rsmt_studio.inference.engine import model_specs
    from rsmt_studio.inference.weights import load_assets

    return ensure_compiled(model_specs(load_assets(test_assets).dims, "cpu", TEST_STEPS_PER_CALL).values())


@pytest.fixture(scope="session")
def engine(compiled, test_assets):
    from rsmt_studio.inference.engine import DEFAULT_STEPS_PER_CALL, TransitionEngine

    assert TEST_STEPS_PER_CALL == DEFAULT_STEPS_PER_CALL  # else the tests compile instead of using shipped models
    return TransitionEngine(test_assets, device="cpu", steps_per_call=TEST_STEPS_PER_CALL)


@pytest.fixture(scope="session")
def bandai_clips(bandai_root):
    """Two real clips of different content and style (read once)."""
    from rsmt_studio.motion.bvh_reader import read_bvh

    data = bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data"
    return read_bvh(data / "dataset-1_run_active_001.bvh"), read_bvh(data / "dataset-1_bow_angry_001.bvh")
