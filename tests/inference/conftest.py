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


#: The tests run the app's CPU graphs (engine.STEPS_PER_CALL["cpu"] steps per call): the test model has the shipped
#: structure, so its four graphs are the shipped compiled models (assets/compiled, inference/builders/ship_compiled.py)
#: and a cold run installs them instead of compiling. test_engine checks the one-step graph against them
#: whenever its MEF is cached.
TEST_STEPS_PER_CALL = 40


@pytest.fixture(scope="session")
def compiled(mef_cache_dir, test_assets):
    """The engine's four graphs, installed from the shipped compiled models (compiled, in child processes,
    only where they do not match). The GPU formulation's graphs built for the CPU are compiled by the tests that
    use them (`gpu_graphs_on_cpu`), so engine tests do not wait for them."""
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.weights import load_assets

    return ensure_compiled(model_specs(load_assets(test_assets).dims, "cpu", TEST_STEPS_PER_CALL).values())


#: The GPU graphs' tests run two sampler steps per call (the state carried from step to step inside a call).
GPU_TEST_STEPS = 2


@pytest.fixture(scope="session")
def shipped_weights():
    """(dims, adapted weights) of the shipped model: the GPU graphs are built for the shipped widths."""
    from rsmt_studio.inference.engine import default_assets_dir, engine_weights
    from rsmt_studio.inference.weights import load_assets

    assets = load_assets(default_assets_dir())
    return assets.dims, engine_weights(assets)


@pytest.fixture(scope="session")
def gpu_graphs_on_cpu(mef_cache_dir, shipped_weights):
    """{graph: loaded model} of the GPU formulation (graphs/gpu/: prepare, steps, fold, chain) for the shipped
    weights' shapes, compiled for the CPU (no CI machine has a GPU; the Mojo custom ops run there too) into the
    test MEF cache, all in parallel child processes: ~4 min cold on 2 cores, loaded in a second when cached."""
    import dataclasses

    from rsmt_studio.inference.engine import STEPS_PER_CALL
    from rsmt_studio.inference.graphs import gpu, model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.runtime.devices import select_device
    from rsmt_studio.inference.runtime.session import MaxSession

    d, W = shipped_weights
    specs = {k: s for k, s in gpu.specs(d, "cpu", GPU_TEST_STEPS, W).items() if k in ("prepare", "steps", "fold")}
    specs["chain"] = model_specs(d, "cpu", STEPS_PER_CALL["gpu"], chain=True)["chain"]  # as a GPU engine builds it
    specs = {k: dataclasses.replace(s, name=f"gpu_{s.name}") if k != "chain" else s for k, s in specs.items()}
    ensure_compiled(specs.values())
    session = MaxSession(select_device("cpu"))
    return {k: session.load(s) for k, s in specs.items()}


@pytest.fixture(scope="session")
def engine(compiled, test_assets):
    from rsmt_studio.inference.engine import STEPS_PER_CALL, TransitionEngine

    assert TEST_STEPS_PER_CALL == STEPS_PER_CALL["cpu"]  # else the tests compile instead of using shipped models
    return TransitionEngine(test_assets, device="cpu", steps_per_call=TEST_STEPS_PER_CALL)


@pytest.fixture(scope="session")
def bandai_clips(bandai_root):
    """Two real clips of different content and style (read once)."""
    from rsmt_studio.motion.bvh_reader import read_bvh

    data = bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data"
    return read_bvh(data / "dataset-1_run_active_001.bvh"), read_bvh(data / "dataset-1_bow_angry_001.bvh")
