"""gpu_blocks.py (the GPU graphs' building blocks) computes the same maths as the numpy reference blocks.

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
    from rsmt_studio.inference import gpu_blocks as G

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
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference import gpu_blocks as G
    from rsmt_studio.inference import numpy_blocks as NB

    cpu, f32 = DeviceRef.CPU(), DType.float32
    rng = np.random.default_rng(0)
    f = np.float32
    b, n_in, n_out, hid, e = 3, 251, 81, 16, 8  # widths that are not multiples of 32, as in the shipped model
    x = rng.normal(size=(b, n_in)).astype(f)
    tokens = rng.normal(size=(b, 7, n_in)).astype(f)
    w, bias = rng.normal(size=(n_in, n_out)).astype(f) / 10, rng.normal(size=n_out).astype(f)
    lx, lh, lc = (rng.normal(size=(b, k)).astype(f) for k in (10, hid, hid))
    lw, lb = rng.normal(size=(10 + hid, 4 * hid)).astype(f) / 4, rng.normal(size=4 * hid).astype(f)
    gate = NB.softmax(rng.normal(size=(b, e)).astype(f))
    mw, mb = rng.normal(size=(n_in, e * 12)).astype(f) / 10, rng.normal(size=e * 12).astype(f)
    layout = G.device_layout({"fc.w": w, "lstm.w": lw, "moe.w": mw})
    args = [x, tokens, layout["fc.w"], bias, lx, lh, lc, layout["lstm.w"], lb, gate, layout["moe.w"], mb]
    # Static widths, as the GPU graphs are built (the batch stays symbolic).
    types = [TensorType(f32, ("batch", *a.shape[1:]) if i in (0, 1, 4, 5, 6, 9) else a.shape, device=cpu)
             for i, a in enumerate(args)]
    with Graph("gpu_blocks", input_types=types) as g:
        v = [t.tensor for t in g.inputs]
        h, c = G.lstm_cell(v[4], v[5], v[6], v[7], v[8])
        g.output(G.linear(v[0], v[2], v[3]), G.linear(v[1], v[2]), h, c, G.moe_linear(v[0], v[9], v[10], v[11], e),
                 G.layer_norm(v[0]))
    got = [o.to_numpy() for o in InferenceSession(devices=[CPU()]).load(g).execute(*args)]
    want_h, want_c = NB.lstm_cell(lx, lh, lc, lw, lb)
    want = [NB.linear(x, w, bias), NB.linear(tokens, w), want_h, want_c, NB.moe_linear(x, gate, mw, mb, e),
            NB.layer_norm(x)]
    for i, (a, ref) in enumerate(zip(got, want, strict=True)):
        assert a.shape == ref.shape, i
        np.testing.assert_allclose(a, ref, atol=2e-5, rtol=1e-5, err_msg=f"output {i}")


def test_gpu_blocks_refuse_symbolic_widths():
    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference import gpu_blocks as G

    types = [TensorType(DType.float32, ("batch", "width"), device=DeviceRef.CPU()),
             TensorType(DType.float32, (224, 8), device=DeviceRef.CPU())]
    with Graph("symbolic", input_types=types) as g, pytest.raises(ValueError, match="static widths"):
        G.linear(g.inputs[0].tensor, g.inputs[1].tensor)
