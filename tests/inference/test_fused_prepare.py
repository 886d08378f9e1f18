"""fused_prepare.py (the GPU prepare graph with the warm-up frames batched) computes nets.prepare.

As in test_fused_steps.py: no GPU here, so the graph is built and run on the CPU with the blocks' GPU branches
forced (the `rsmt_lstm_gates` custom op runs there too) and compared with the numpy reference on the shipped
weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from .fused_inputs import prepare_inputs

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


def test_fused_prepare_graph_matches_numpy(shipped, monkeypatch):
    """The whole prepare graph (target latent, 8 warm-up LSTM steps, initial phase) against nets.prepare in numpy,
    batch 3, with times to arrival on both sides of the noise ramp and past the positional table's end."""
    from max.driver import CPU
    from max.engine import InferenceSession
    from max.graph import DeviceRef
    from rsmt_studio.inference import blocks, fused_prepare, fused_steps, gpu_blocks, nets
    from rsmt_studio.inference import numpy_blocks as NB

    d, W = shipped
    monkeypatch.setattr(blocks, "on_accelerator", lambda x: True)  # the GPU branches, as on the H100
    b, f = 3, np.float32
    WG = gpu_blocks.device_layout(W)
    WG.update(fused_steps.fused_weights(W, d))
    WG.update(fused_prepare.fused_weights(W))
    graph = fused_prepare.build_graph(fused_prepare.graph_config(W, d), DeviceRef.CPU())
    model = InferenceSession(devices=[CPU()]).load(graph)
    rng = np.random.default_rng(0)
    caches = nets.style_caches(NB, W, rng.normal(0, 1, (b, 119, (d.n_joints - 1) * 12)).astype(f))
    data, (h0, c0) = prepare_inputs(d, W, rng)
    inputs = (*data, *caches[:4], h0, c0)
    weights = [WG[n] for n, _ in fused_prepare.weight_inputs()]
    got = [o.to_numpy() for o in model.execute(*[np.ascontiguousarray(a) for a in (*inputs, *weights)])]
    with np.errstate(over="ignore"):  # numpy's sigmoid overflows harmlessly to 0 for large negative gates
        want = nets.prepare(NB, W, d, *data, caches[:4], h0, c0)
    for name, a, ref in zip(("h", "c", "target latent", "initial phase"), got, want, strict=True):
        assert a.shape == ref.shape, name
        np.testing.assert_allclose(a, ref, atol=5e-5 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_gpu_specs_pick_the_fused_graphs_and_their_weights_fit(shipped):
    """model_specs on a GPU: every fused graph by default (the FiLM fold too), session 5's first set with
    fused=("prepare", "steps"), session 4's with ("steps",), none with False; every graph's weights exist in the
    engine's GPU weight set with the shapes it was built for."""
    from rsmt_studio.inference import fused_film, fused_prepare, fused_steps, gpu_blocks
    from rsmt_studio.inference.engine import model_specs, spec_weight_names

    d, W = shipped
    G = gpu_blocks.device_layout(W)
    G.update(fused_steps.fused_weights(W, d))
    G.update(fused_prepare.fused_weights(W))
    G.update(fused_film.fused_weights(W))
    picked = {}
    for fused in (True, ("prepare", "steps"), ("steps",), False):
        specs = model_specs(d, "gpu", 8, chain=True, weights=W, fused=fused)
        picked[fused] = (specs["prepare"].module.rsplit(".", 1)[1], specs["steps"].module.rsplit(".", 1)[1],
                         "fold" in specs, bool(specs["steps"].config.get("folded_film")))
        for name, spec in specs.items():
            shapes = spec.config.get("weight_shapes", {})
            for w in spec_weight_names(name, spec):
                assert list(G[w].shape) == list(shapes.get(w, G[w].shape)), (name, w)
    assert picked == {True: ("fused_prepare", "fused_steps", True, True),
                      ("prepare", "steps"): ("fused_prepare", "fused_steps", False, False),
                      ("steps",): ("graphs", "fused_steps", False, False),
                      False: ("graphs", "graphs", False, False)}
    assert "fold" not in model_specs(d, "cpu", 8)
    with pytest.raises(ValueError, match="no fused form"):
        model_specs(d, "gpu", 8, weights=W, fused=("style",))
    with pytest.raises(ValueError, match="needs the fused"):
        model_specs(d, "gpu", 8, weights=W, fused=("film", "steps"))
