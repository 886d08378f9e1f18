"""The GPU formulations of conv1d (im2col + matmul) and single-query attention (multiply + reduce) compute the
same maths as the CPU ones. There is no GPU here, so the graph is built on the CPU with `on_accelerator`
forced true: the numerics are what the GPU graph runs (the GPU itself is checked by bench/inference.py --gpu,
which compares captured replays with eager calls)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.parity


def test_unfolded_conv_and_reduced_attention_match_numpy(monkeypatch):
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference import blocks as K
    from rsmt_studio.inference import numpy_blocks as NB

    monkeypatch.setattr(K, "on_accelerator", lambda x: True)
    cpu = DeviceRef.CPU()
    f32 = DType.float32
    types = [TensorType(f32, ("b", "frames", "cin"), device=cpu), TensorType(f32, ("k", "cin2", "cout"), device=cpu),
             TensorType(f32, ("cout2",), device=cpu), TensorType(f32, ("b", "d"), device=cpu),
             TensorType(f32, ("b", "t", "d"), device=cpu), TensorType(f32, ("b", "t", "d"), device=cpu),
             TensorType(f32, (1,), device=cpu)]
    with Graph("gpu_forms", input_types=types) as g:
        x, w, b, q, keys, values, scale = (v.tensor for v in g.inputs)
        y = K.conv1d(x, w, b, taps=5)
        padded = K.conv1d(x, w, b, taps=5, padding=2)
        g.output(y, padded, K.attend(q, K.rebind(keys, (q.shape[0], keys.shape[1], q.shape[1])),
                             K.rebind(values, (q.shape[0], keys.shape[1], q.shape[1])), scale))
    model = InferenceSession(devices=[CPU()]).load(g)
    rng = np.random.default_rng(0)
    f = np.float32
    args = [rng.normal(size=(3, 8, 16)).astype(f), rng.normal(size=(5, 16, 12)).astype(f),
            rng.normal(size=(12,)).astype(f), rng.normal(size=(3, 10)).astype(f),
            rng.normal(size=(3, 7, 10)).astype(f), rng.normal(size=(3, 7, 10)).astype(f), np.array([0.7], f)]
    conv, padded, att = (o.to_numpy() for o in model.execute(*args))
    np.testing.assert_allclose(conv, NB.conv1d(args[0], args[1], args[2], taps=5), atol=1e-4)
    np.testing.assert_allclose(padded, NB.conv1d(args[0], args[1], args[2], padding=2, taps=5), atol=1e-4)
    assert padded.shape == (3, 8, 12)
    longer = [rng.normal(size=(3, 13, 16)).astype(f), *args[1:]]  # the time axis is symbolic
    np.testing.assert_allclose(model.execute(*longer)[0].to_numpy(), NB.conv1d(longer[0], args[1], args[2]),
                               atol=1e-4)
    np.testing.assert_allclose(att, NB.attend(*args[3:]), atol=1e-5)
    assert conv.shape == (3, 4, 12) and att.shape == (3, 10)


def test_chain_graph_takes_the_last_frame_of_a_steps_call():
    """`chain` (captured between `steps` calls on a GPU) returns the last of the k frames, exactly."""
    from max.driver import CPU
    from max.engine import InferenceSession
    from rsmt_studio.inference.engine import default_assets_dir, model_specs
    from rsmt_studio.inference.weights import load_assets

    dims = load_assets(default_assets_dir()).dims
    specs = model_specs(dims, "cpu", 8, chain=True)
    assert "chain" in specs and "chain" not in model_specs(dims, "cpu", 8)
    model = InferenceSession(devices=[CPU()]).load(specs["chain"].build())
    rng = np.random.default_rng(1)
    outs = [rng.normal(size=(3, 8, n, c)).astype(np.float32)
            for n, c in ((dims.n_pos_joints, 3), (dims.n_joints, 6), (dims.n_phases, 2))]
    for got, want in zip(model.execute(*outs), outs, strict=True):
        np.testing.assert_array_equal(got.to_numpy(), want[:, -1])


def test_capture_is_refused_on_the_cpu():
    from rsmt_studio.inference.engine import TransitionEngine, default_assets_dir

    with pytest.raises(ValueError, match="capture needs a GPU"):
        TransitionEngine(default_assets_dir(), device="cpu", capture=True)
