"""fused_prepare.py (the GPU prepare graph with the warm-up frames batched) computes nets.prepare.

As in test_fused_steps.py: no GPU here, so the graph is built and run on the CPU with the blocks' GPU branches
forced (the `rsmt_lstm_gates` custom op runs there too) and compared with the numpy reference on the shipped
weights.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def shipped():
    from rsmt_studio.inference.engine import default_assets_dir, engine_weights
    from rsmt_studio.inference.weights import load_assets

    assets = load_assets(default_assets_dir())
    return assets.dims, engine_weights(assets)


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """a with zero columns up to `width` (what gpu_blocks.linear does before its matmul)."""
    return np.concatenate([a, np.zeros((a.shape[0], width - a.shape[1]), np.float32)], 1)


def test_split_lstm_weight_gives_the_stacked_cell(shipped):
    """[x, h] @ lstm.w == x @ W_x + h @ W_h with the split, padded weights (numpy)."""
    from rsmt_studio.inference import fused_prepare as FP

    _, W = shipped
    F = FP.fused_weights(W)
    assert all(F[n].shape[0] % FP.gpu_blocks.ALIGN == 0 for n in F)
    n_in, hid = FP.lstm_input_width(W), W["lstm.w"].shape[1] // 4
    rng = np.random.default_rng(1)
    x, h = rng.normal(size=(3, n_in)).astype(np.float32), rng.normal(size=(3, hid)).astype(np.float32)
    wx, wh = F["fused.lstm_x.w"], F["fused.lstm_h.w"]
    got = _pad(x, wx.shape[0]) @ wx + _pad(h, wh.shape[0]) @ wh
    np.testing.assert_allclose(got, np.concatenate([x, h], 1) @ W["lstm.w"], atol=1e-4)


def test_gpu_specs_pick_the_fused_graphs_and_their_weights_fit(shipped):
    """model_specs on a GPU: the fused prepare and steps graphs reading folded caches, the FiLM fold, the chain
    graph; every graph's weights exist in the engine's GPU weight set with the shapes it was built for."""
    from rsmt_studio.inference import fused_film, fused_prepare, fused_steps, gpu_blocks
    from rsmt_studio.inference.engine import model_specs, spec_weight_names

    d, W = shipped
    G = gpu_blocks.device_layout(W)
    G.update(fused_steps.fused_weights(W, d))
    G.update(fused_prepare.fused_weights(W))
    G.update(fused_film.fused_weights(W))
    specs = model_specs(d, "gpu", 8, chain=True, weights=W)
    assert {k: s.module.rsplit(".", 1)[1] for k, s in specs.items()} == {
        "deephase": "graphs", "style": "graphs", "prepare": "fused_prepare", "steps": "fused_steps",
        "fold": "fused_film", "chain": "chain_graph"}
    for name, spec in specs.items():
        shapes = spec.config.get("weight_shapes", {})
        for w in spec_weight_names(name, spec):
            assert list(G[w].shape) == list(shapes.get(w, G[w].shape)), (name, w)
    assert "fold" not in model_specs(d, "cpu", 8)
    with pytest.raises(ValueError, match="pass weights"):
        model_specs(d, "gpu", 8)
