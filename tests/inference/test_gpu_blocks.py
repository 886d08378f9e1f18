"""graphs/gpu/blocks.py (the GPU graphs' building blocks) computes the same maths as the numpy reference blocks.

There is no GPU here, so the graph is built on the CPU from gpu_blocks with its weight layout
(`device_layout`, padded widths) and static widths, as the GPU graphs are: the formulation is what the GPU graph
runs; the H100 itself is checked by bench/inference.py --gpu, which compares whole GPU transitions with the
numpy engine (0.0019 cm at most over 40 frames in the last run).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.parity


def test_device_layout_pads_matmul_widths_to_the_warp_size():
    from rsmt_studio.inference.graphs.gpu import blocks as G

    rng = np.random.default_rng(0)
    w = {"state_encoder.fc1.w": rng.normal(size=(210, 256)), "predictor_fc4.w": rng.normal(size=(256, 81)),
         "predictor_fc4.b": np.ones(81, np.float32), "decoder.gate_fc3.w": rng.normal(size=(64, 8)),
         "style.conv1.w": np.zeros((2, 3, 4)), "pe_film": np.zeros((61, 4))}
    out = G.device_layout(w)
    assert out["state_encoder.fc1.w"].shape == (224, 256)  # zero rows match the zero columns `linear` appends
    np.testing.assert_array_equal(out["state_encoder.fc1.w"][:210], w["state_encoder.fc1.w"].astype(np.float32))
    assert not out["state_encoder.fc1.w"][210:].any()
    assert out["predictor_fc4.w"].shape == (256, 96) and out["predictor_fc4.b"].shape == (96,)  # sliced later
    assert out["decoder.gate_fc3.w"].shape == (64, 8)  # a softmax reads every column: never padded
    assert out["style.conv1.w"].shape == (2, 3, 4) and out["pe_film"].shape == (61, 4)


def test_gpu_blocks_match_numpy():
    """gpu/blocks.py's overrides in one graph (static widths, as the GPU graphs are built; the batch and the conv's
    time axis stay symbolic): padded linear layers, the unrolled expert blend, the fused layer norm, conv1d as a
    matmul over unfolded windows (with and without padding)."""
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference.graphs import numpy_blocks as NB
    from rsmt_studio.inference.graphs.gpu import blocks as G

    cpu, f32 = DeviceRef.CPU(), DType.float32
    rng = np.random.default_rng(0)
    f = np.float32
    b, n_in, n_out, e = 3, 251, 81, 8  # widths that are not multiples of 32, as in the shipped model
    x = rng.normal(size=(b, n_in)).astype(f)
    tokens = rng.normal(size=(b, 7, n_in)).astype(f)
    w, bias = rng.normal(size=(n_in, n_out)).astype(f) / 10, rng.normal(size=n_out).astype(f)
    gate = NB.softmax(rng.normal(size=(b, e)).astype(f))
    mw, mb = rng.normal(size=(n_in, e * 12)).astype(f) / 10, rng.normal(size=e * 12).astype(f)
    seq, cw, cb = (rng.normal(size=(3, 8, 16)).astype(f), rng.normal(size=(5, 16, 12)).astype(f),
                   rng.normal(size=(12,)).astype(f))
    layout = G.device_layout({"fc.w": w, "moe.w": mw})
    args = [x, tokens, layout["fc.w"], bias, gate, layout["moe.w"], mb, seq, cw, cb]
    shapes = [("batch", n_in), ("batch", 7, n_in), layout["fc.w"].shape, bias.shape, ("batch", e),
              layout["moe.w"].shape, mb.shape, ("batch", "frames", 16), cw.shape, cb.shape]
    with Graph("gpu_blocks", input_types=[TensorType(f32, s, device=cpu) for s in shapes]) as g:
        v = [t.tensor for t in g.inputs]
        g.output(G.linear(v[0], v[2], v[3]), G.linear(v[1], v[2]), G.moe_linear(v[0], v[4], v[5], v[6], e),
                 G.layer_norm(v[0]), G.conv1d(v[7], v[8], v[9], taps=5), G.conv1d(v[7], v[8], v[9], taps=5, padding=2))
    model = InferenceSession(devices=[CPU()]).load(g)
    got = [o.to_numpy() for o in model.execute(*args)]
    want = [NB.linear(x, w, bias), NB.linear(tokens, w), NB.moe_linear(x, gate, mw, mb, e), NB.layer_norm(x),
            NB.conv1d(seq, cw, cb, taps=5), NB.conv1d(seq, cw, cb, padding=2, taps=5)]
    for i, (a, ref) in enumerate(zip(got, want, strict=True)):
        assert a.shape == ref.shape, i
        np.testing.assert_allclose(a, ref, atol=1e-4, rtol=1e-5, err_msg=f"output {i}")
    assert got[4].shape == (3, 4, 12) and got[5].shape == (3, 8, 12)
    longer = [*args[:7], rng.normal(size=(3, 13, 16)).astype(f), cw, cb]  # the time axis is symbolic
    np.testing.assert_allclose(model.execute(*longer)[4].to_numpy(), NB.conv1d(longer[7], cw, cb, taps=5), atol=1e-4)


def test_gpu_blocks_refuse_symbolic_widths():
    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference.graphs.gpu import blocks as G

    types = [TensorType(DType.float32, ("batch", "width"), device=DeviceRef.CPU()),
             TensorType(DType.float32, (224, 8), device=DeviceRef.CPU())]
    with Graph("symbolic", input_types=types) as g, pytest.raises(ValueError, match="static widths"):
        G.linear(g.inputs[0].tensor, g.inputs[1].tensor)
