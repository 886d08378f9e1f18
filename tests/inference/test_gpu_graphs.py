"""The GPU formulation (inference/graphs/gpu/) computes nets.py's maths.

No GPU here: the fused graphs (FiLM fold, steps with the Mojo custom ops, batched prepare) and the chain graph
are built for the shipped weights' shapes and compiled for the CPU (`gpu_graphs_on_cpu`: the test MEF cache,
in parallel children), then compared with the numpy reference from raw caches. On the H100, bench/inference.py
--gpu compares whole GPU transitions with numpy (`vs_numpy_max_abs_cm`) and captured replays with eager calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import GPU_TEST_STEPS
from .fused_inputs import prepare_inputs, steps_state

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def shipped(shipped_weights):
    return shipped_weights


@pytest.fixture(scope="module")
def gpu_weights(shipped):
    from rsmt_studio.inference.graphs.gpu import device_weights

    d, W = shipped
    return device_weights(W, d)


def _run(model, *arrays):
    return [o.to_numpy() for o in model.execute(*[np.ascontiguousarray(a) for a in arrays])]


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """a with zero columns up to `width` (what gpu/blocks.linear does before its matmul)."""
    return np.concatenate([a, np.zeros((a.shape[0], width - a.shape[1]), np.float32)], 1)


@pytest.fixture(scope="module")
def folded(shipped, gpu_weights, gpu_graphs_on_cpu):
    """Raw caches of 3 style clips and their folds by the fold graph (CPU)."""
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as NB
    from rsmt_studio.inference.graphs.gpu import fused_film

    d, W = shipped
    rng = np.random.default_rng(0)
    raw = nets.style_caches(NB, W, rng.normal(0, 1, (3, 119, (d.n_joints - 1) * 12)).astype(np.float32))
    outs = _run(gpu_graphs_on_cpu["fold"], raw[2], raw[3], raw[6], raw[7],
                *[gpu_weights[n] for n, _ in fused_film.FOLD])
    caches = [raw[0], raw[1], outs[0], outs[1], raw[4], raw[5], outs[2], outs[3]]
    return raw, caches


def test_fused_weights_compute_the_layers_they_replace(shipped):
    """The block-diagonal encoders over the state vector, the gate and first expert layer over the decoder-input
    vector, and the expert-minor last layer give the original layers' outputs (numpy)."""
    from rsmt_studio.inference.graphs.gpu import fused_steps as FS

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
    from rsmt_studio.inference.graphs import numpy_blocks as NB

    alpha = NB.softmax(g @ F["fused.gate_fc3.w"] + F["fused.gate_fc3.b"])
    np.testing.assert_allclose(alpha[:, : d.n_experts], NB.softmax(g @ W["decoder.gate_fc3.w"] + W["decoder.gate_fc3.b"]),
                               atol=1e-6)
    assert alpha.shape[1] % FS.ALIGN == 0 and not alpha[:, d.n_experts :].any()
    h2 = rng.normal(size=(2, W["decoder.expert3.w"].shape[0])).astype(np.float32)
    e, n_out = d.n_experts, lay.p3 + lay.r6
    want = (h2 @ W["decoder.expert3.w"] + W["decoder.expert3.b"]).reshape(2, e, n_out)
    got = (h2 @ F["fused.expert3.w"] + F["fused.expert3.b"]).reshape(2, n_out, e)
    np.testing.assert_allclose(got.transpose(0, 2, 1), want, atol=1e-4)


def test_split_lstm_weight_gives_the_stacked_cell(shipped):
    """[x, h] @ lstm.w == x @ W_x + h @ W_h with the split, padded weights (numpy)."""
    from rsmt_studio.inference.graphs.gpu import fused_prepare as FP

    _, W = shipped
    F = FP.fused_weights(W)
    assert all(F[n].shape[0] % FP.gpu_blocks.ALIGN == 0 for n in F)
    n_in, hid = FP.lstm_input_width(W), W["lstm.w"].shape[1] // 4
    rng = np.random.default_rng(1)
    x, h = rng.normal(size=(3, n_in)).astype(np.float32), rng.normal(size=(3, hid)).astype(np.float32)
    wx, wh = F["fused.lstm_x.w"], F["fused.lstm_h.w"]
    got = _pad(x, wx.shape[0]) @ wx + _pad(h, wh.shape[0]) @ wh
    np.testing.assert_allclose(got, np.concatenate([x, h], 1) @ W["lstm.w"], atol=1e-4)


def test_gpu_specs_pick_the_gpu_graphs_and_their_weights_fit(shipped, gpu_weights):
    """model_specs on a GPU: the encoders, the fused prepare and steps graphs reading folded caches, the FiLM fold,
    the chain graph; every graph's weights exist in the engine's GPU weight set with the shapes it was built for;
    the CPU's graphs are cpu.py's."""
    from rsmt_studio.inference.graphs import model_specs, spec_weight_names

    d, W = shipped
    G = gpu_weights
    specs = model_specs(d, "gpu", 8, chain=True, weights=W)
    assert {k: s.module.rsplit(".", 1)[1] for k, s in specs.items()} == {
        "deephase": "encoders", "style": "encoders", "prepare": "fused_prepare", "steps": "fused_steps",
        "fold": "fused_film", "chain": "chain_graph"}
    assert {s.module for s in model_specs(d, "cpu", 8).values()} == {"rsmt_studio.inference.graphs.cpu"}
    for name, spec in specs.items():
        shapes = spec.config.get("weight_shapes", {})
        for w in spec_weight_names(name, spec):
            assert list(G[w].shape) == list(shapes.get(w, G[w].shape)), (name, w)
    assert "fold" not in model_specs(d, "cpu", 8)
    with pytest.raises(ValueError, match="pass weights"):
        model_specs(d, "gpu", 8)


def test_fold_graph_computes_the_folded_caches(shipped, folded):
    _, W = shipped
    raw, caches = folded
    for block, (ik, iv) in (("embedding_film", (2, 3)), ("predictor_film", (6, 7))):
        keys, values = raw[ik], raw[iv]
        width = keys.shape[2]
        kq = caches[ik]
        assert kq.shape == (*keys.shape[:2], -(-(width + 1) // 32) * 32)
        np.testing.assert_allclose(kq[..., :width], keys @ W[f"{block}.query.w"].T, atol=1e-4)
        np.testing.assert_allclose(kq[..., width], keys @ W[f"{block}.query.b"], atol=1e-4)
        assert not kq[..., width + 1 :].any()
        np.testing.assert_allclose(caches[iv], values @ W[f"{block}.out_proj.w"], atol=1e-4)


def test_steps_graph_matches_numpy(shipped, gpu_weights, folded, gpu_graphs_on_cpu):
    """Two fused sampler steps (custom ops included) reading folded caches against nets.sampler_steps (raw
    caches) in numpy, batch 3, with times to arrival on both sides of the noise ramp and past the positional
    table's end."""
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as NB
    from rsmt_studio.inference.graphs.gpu import fused_steps

    d, W = shipped
    raw, caches = folded
    state = steps_state(d, W, np.random.default_rng(1), GPU_TEST_STEPS)
    tta, z = state[9], state[10]
    got = _run(gpu_graphs_on_cpu["steps"], *state, *caches, *[gpu_weights[n] for n, _ in fused_steps.weight_inputs()])
    with np.errstate(over="ignore"):  # numpy's sigmoid overflows harmlessly to 0 for large negative gates
        want = nets.sampler_steps(NB, W, d, GPU_TEST_STEPS, *state[:9], tta, z, raw)
    for name, a, ref in zip(("p", "r", "phase", "v", "h", "c"), got, want, strict=True):
        assert a.shape == ref.shape, name
        np.testing.assert_allclose(a, ref, atol=5e-5 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_prepare_graph_matches_numpy(shipped, gpu_weights, folded, gpu_graphs_on_cpu):
    """The whole batched prepare graph (target latent, 8 warm-up LSTM steps, initial phase) reading folded caches
    against nets.prepare in numpy."""
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as NB
    from rsmt_studio.inference.graphs.gpu import fused_prepare

    d, W = shipped
    raw, caches = folded
    inputs, (h0, c0) = prepare_inputs(d, W, np.random.default_rng(2))
    got = _run(gpu_graphs_on_cpu["prepare"], *inputs, *caches[:4], h0, c0,
               *[gpu_weights[n] for n, _ in fused_prepare.weight_inputs()])
    with np.errstate(over="ignore"):
        want = nets.prepare(NB, W, d, *inputs, raw[:4], h0, c0)
    for name, a, ref in zip(("h", "c", "target latent", "initial phase"), got, want, strict=True):
        assert a.shape == ref.shape, name
        np.testing.assert_allclose(a, ref, atol=5e-5 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_engine_folds_each_style_code_once(engine, test_assets, monkeypatch):
    """TransitionEngine.film_caches: a pass-through without the fold graph (the CPU's graphs); with it (here a
    numpy stand-in handed to the test engine: the fold graph itself is checked above), read-only codes are folded
    once and recognised by identity, writable caches are folded on every call, and the folded arrays are
    read-only and own memory."""
    from rsmt_studio.inference.engine import engine_weights
    from rsmt_studio.inference.graphs.gpu import FilmFold, fused_film
    from rsmt_studio.inference.weights import load_assets

    code = engine.style_code("calm")
    assert all(a is b for a, b in zip(engine.film_caches(code.arrays), code.arrays, strict=True))

    W = engine_weights(load_assets(test_assets))

    def numpy_fold(*keys_values):  # the fold graph's maths (fused_film.fold) in numpy
        outs = []
        for block, (keys, values) in zip(fused_film.BLOCKS, ((0, 1), (2, 3)), strict=True):
            k, v = keys_values[keys], keys_values[values]
            width = k.shape[2]
            kq = np.zeros((*k.shape[:2], fused_film.key_width(width)), np.float32)
            kq[..., :width] = k @ W[f"{block}.query.w"].T
            kq[..., width] = k @ W[f"{block}.query.b"]
            outs += [kq, (v @ W[f"{block}.out_proj.w"]).astype(np.float32)]
        return outs

    monkeypatch.setattr(engine, "_fold", FilmFold(numpy_fold))
    first = engine.film_caches(code.arrays)
    assert engine.film_caches(code.arrays) is first
    assert first[0] is code.arrays[0] and first[5] is code.arrays[5]  # gamma and beta pass through
    for a in first[2:4] + first[6:8]:
        assert not a.flags.writeable and a.base is None
    keys, values = code.arrays[2], code.arrays[3]
    width = keys.shape[2]
    np.testing.assert_allclose(first[2][..., :width], keys @ W["embedding_film.query.w"].T, atol=1e-4)
    np.testing.assert_allclose(first[2][..., width], keys @ W["embedding_film.query.b"], atol=1e-4)
    np.testing.assert_allclose(first[3], values @ W["embedding_film.out_proj.w"], atol=1e-4)
    writable = [np.array(a) for a in code.arrays]
    again = engine.film_caches(writable)
    assert again is not engine.film_caches(writable)
    for a, b in zip(again, first, strict=True):
        np.testing.assert_array_equal(a, b)


def test_chain_graph_takes_the_last_frame_of_a_steps_call(shipped, gpu_graphs_on_cpu):
    """`chain` (captured between `steps` calls on a GPU) returns the last of the k frames, exactly."""
    from rsmt_studio.inference.graphs import model_specs

    dims, _ = shipped
    assert "chain" in model_specs(dims, "cpu", 8, chain=True) and "chain" not in model_specs(dims, "cpu", 8)
    rng = np.random.default_rng(1)
    outs = [rng.normal(size=(3, 8, n, c)).astype(np.float32)
            for n, c in ((dims.n_pos_joints, 3), (dims.n_joints, 6), (dims.n_phases, 2))]
    for got, want in zip(gpu_graphs_on_cpu["chain"].execute(*outs), outs, strict=True):
        np.testing.assert_array_equal(got.to_numpy(), want[:, -1])


def test_capture_is_refused_on_the_cpu():
    from rsmt_studio.inference.engine import TransitionEngine, default_assets_dir

    with pytest.raises(ValueError, match="capture needs a GPU"):
        TransitionEngine(default_assets_dir(), device="cpu", capture=True)
