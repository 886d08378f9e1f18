"""fused_steps.py (the GPU steps graph with the Mojo custom ops of kernels/) computes nets.py's sampler steps.

There is no GPU here. The custom ops run on the CPU too (`foreach` takes the target), so the whole fused graph is
built and run on the CPU with the GPU branches of the blocks forced, and compared with the numpy reference on
the shipped weights. On the H100, bench/inference.py --gpu compares whole GPU transitions with numpy
(`vs_numpy_max_abs_cm`).
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


def test_fused_weights_compute_the_layers_they_replace(shipped):
    """The block-diagonal encoders over the state vector, the gate and first expert layer over the decoder-input
    vector, and the expert-minor last layer give the original layers' outputs (numpy)."""
    from rsmt_studio.inference import fused_steps as FS

    d, W = shipped
    lay = FS.Layout.of(d)
    F = FS.fused_weights(W, d)
    assert set(F) == {n for n, _ in FS.FUSED}
    assert all(F[n].shape[0] % FS.ALIGN == 0 for n in F if n.endswith(".w"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, lay.x_width)).astype(np.float32)
    state, offset = x[:, : lay.state_width], x[:, lay.state_width : lay.state_width + lay.offset_width]
    enc = x @ F["fused.encoders.fc1.w"] + F["fused.encoders.fc1.b"]
    h_s = W["state_encoder.fc1.w"].shape[1]
    np.testing.assert_allclose(enc[:, :h_s], state @ W["state_encoder.fc1.w"] + W["state_encoder.fc1.b"], atol=1e-4)
    np.testing.assert_allclose(enc[:, h_s:], offset @ W["offset_encoder.fc1.w"] + W["offset_encoder.fc1.b"], atol=1e-4)
    dvec = rng.normal(size=(2, lay.d_width)).astype(np.float32)
    np.testing.assert_allclose(dvec @ F["fused.gate_fc1.w"], dvec[:, : lay.gate_width] @ W["decoder.gate_fc1.w"],
                               atol=1e-4)
    cond = dvec[:, lay.expert_off : lay.expert_off + lay.cond_width]
    np.testing.assert_allclose(dvec @ F["fused.expert1.w"], cond @ W["decoder.expert1.w"], atol=1e-4)
    enc2 = np.maximum(enc, 0) @ F["fused.encoders.fc2.w"] + F["fused.encoders.fc2.b"]
    l_s = W["state_encoder.fc2.w"].shape[1]
    state2 = np.maximum(enc[:, :h_s], 0) @ W["state_encoder.fc2.w"] + W["state_encoder.fc2.b"]
    np.testing.assert_allclose(enc2[:, :l_s], state2, atol=1e-4)
    assert not enc2[:, l_s + W["offset_encoder.fc2.w"].shape[1] :].any()  # the zero tail h_t is added to
    np.testing.assert_allclose(enc2 @ F["fused.embedding_fc.w"], state2 @ W["embedding_fc.w"], atol=1e-3)
    g = rng.normal(size=(2, W["decoder.gate_fc3.w"].shape[0])).astype(np.float32)
    from rsmt_studio.inference import numpy_blocks as NB

    alpha = NB.softmax(g @ F["fused.gate_fc3.w"] + F["fused.gate_fc3.b"])
    np.testing.assert_allclose(alpha[:, : d.n_experts], NB.softmax(g @ W["decoder.gate_fc3.w"] + W["decoder.gate_fc3.b"]),
                               atol=1e-6)
    assert alpha.shape[1] % FS.ALIGN == 0 and not alpha[:, d.n_experts :].any()
    h2 = rng.normal(size=(2, W["decoder.expert3.w"].shape[0])).astype(np.float32)
    e, n_out = d.n_experts, lay.p3 + lay.r6
    want = (h2 @ W["decoder.expert3.w"] + W["decoder.expert3.b"]).reshape(2, e, n_out)
    got = (h2 @ F["fused.expert3.w"] + F["fused.expert3.b"]).reshape(2, n_out, e)
    np.testing.assert_allclose(got.transpose(0, 2, 1), want, atol=1e-4)
