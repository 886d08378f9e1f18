"""fused_film.py: the FiLM query and output layers folded into the style caches give nets.film's results.

No GPU here: the fold graph and the steps and prepare graphs that read folded caches are built and run on the
CPU with the blocks' GPU branches forced, on the shipped weights, against the numpy reference from raw caches.
"""

from __future__ import annotations

import numpy as np
import pytest

from .fused_inputs import prepare_inputs, steps_state

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def shipped():
    from rsmt_studio.inference.engine import default_assets_dir, engine_weights
    from rsmt_studio.inference.weights import load_assets

    assets = load_assets(default_assets_dir())
    return assets.dims, engine_weights(assets)


@pytest.fixture(scope="module")
def gpu_weights(shipped):
    from rsmt_studio.inference import fused_film, fused_prepare, fused_steps, gpu_blocks

    d, W = shipped
    G = gpu_blocks.device_layout(W)
    G.update(fused_steps.fused_weights(W, d))
    G.update(fused_prepare.fused_weights(W))
    G.update(fused_film.fused_weights(W))
    return G


def _load(graph):
    from max.driver import CPU
    from max.engine import InferenceSession

    return InferenceSession(devices=[CPU()]).load(graph)


def _run(model, *arrays):
    return [o.to_numpy() for o in model.execute(*[np.ascontiguousarray(a) for a in arrays])]


@pytest.fixture(scope="module")
def folded(shipped, gpu_weights):
    """Raw caches of 3 style clips and their folds by the fold graph (CPU)."""
    from max.graph import DeviceRef
    from rsmt_studio.inference import fused_film, nets
    from rsmt_studio.inference import numpy_blocks as NB

    d, W = shipped
    rng = np.random.default_rng(0)
    raw = nets.style_caches(NB, W, rng.normal(0, 1, (3, 119, (d.n_joints - 1) * 12)).astype(np.float32))
    model = _load(fused_film.build_graph(fused_film.graph_config(W), DeviceRef.CPU()))
    outs = _run(model, raw[2], raw[3], raw[6], raw[7], *[gpu_weights[n] for n, _ in fused_film.FOLD])
    caches = [raw[0], raw[1], outs[0], outs[1], raw[4], raw[5], outs[2], outs[3]]
    return raw, caches


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


def test_steps_graph_with_folded_caches_matches_numpy(shipped, gpu_weights, folded, monkeypatch):
    """One fused sampler step reading folded caches against nets.sampler_steps (raw caches) in numpy."""
    from max.graph import DeviceRef
    from rsmt_studio.inference import blocks, fused_steps, nets
    from rsmt_studio.inference import numpy_blocks as NB

    d, W = shipped
    raw, caches = folded
    monkeypatch.setattr(blocks, "on_accelerator", lambda x: True)
    steps = 2
    model = _load(fused_steps.build_graph(fused_steps.graph_config(W, d, steps), DeviceRef.CPU()))
    state = steps_state(d, W, np.random.default_rng(1), steps)
    tta, z = state[9], state[10]
    got = _run(model, *state, *caches, *[gpu_weights[n] for n, _ in fused_steps.weight_inputs()])
    with np.errstate(over="ignore"):
        want = nets.sampler_steps(NB, W, d, steps, *state[:9], tta, z, raw)
    for name, a, ref in zip(("p", "r", "phase", "v", "h", "c"), got, want, strict=True):
        np.testing.assert_allclose(a, ref, atol=5e-5 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_prepare_graph_with_folded_caches_matches_numpy(shipped, gpu_weights, folded, monkeypatch):
    from max.graph import DeviceRef
    from rsmt_studio.inference import blocks, fused_prepare, nets
    from rsmt_studio.inference import numpy_blocks as NB

    d, W = shipped
    raw, caches = folded
    monkeypatch.setattr(blocks, "on_accelerator", lambda x: True)
    model = _load(fused_prepare.build_graph(fused_prepare.graph_config(W, d), DeviceRef.CPU()))
    inputs, (h0, c0) = prepare_inputs(d, W, np.random.default_rng(2))
    got = _run(model, *inputs, *caches[:4], h0, c0,
               *[gpu_weights[n] for n, _ in fused_prepare.weight_inputs()])
    with np.errstate(over="ignore"):
        want = nets.prepare(NB, W, d, *inputs, raw[:4], h0, c0)
    for name, a, ref in zip(("h", "c", "target latent", "initial phase"), got, want, strict=True):
        np.testing.assert_allclose(a, ref, atol=5e-5 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_engine_folds_each_style_code_once(engine, test_assets, monkeypatch):
    """TransitionEngine.film_caches: a pass-through without the fold graph (the CPU's graphs); with it (here a
    numpy stand-in handed to the test engine: the fold graph itself is checked above), read-only codes are folded
    once and recognised by identity, writable caches are folded on every call, and the folded arrays are
    read-only and own memory."""
    from rsmt_studio.inference import fused_film
    from rsmt_studio.inference.engine import engine_weights
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

    monkeypatch.setitem(engine.runners, "fold", numpy_fold)
    monkeypatch.setattr(engine, "_folded", {})
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
