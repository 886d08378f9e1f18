"""The CPU kernels (kernels/cpu_dense.mojo, through inference/graphs/cpu_blocks.py) against numpy_blocks.py.

One real MAX graph on the CPU holds every op of cpu_blocks.py, with symbolic widths and batch as the CPU graphs
have them: dense layers (one on a sliced input, whose rows are not adjacent), an 8-expert layer and the LSTM
cell; widths that are not multiples of the kernels' register tile or SIMD width exercise the leftover columns;
batches from 8 rows on take the packed micro-kernel (row counts that are not multiples of its 6 rows).
A second graph holds the fused FiLM block (`rsmt_film_elu`), batch 1, 16 and 64 (one task and two). The whole
sampler step as one op (`rsmt_sampler_step`, kernels/cpu_step.mojo) runs in the shipped CPU steps graph against
nets.py's numpy formulation, padding steps included.
"""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.inference.graphs import numpy_blocks as K

TOL = 1e-4
E = 8


@pytest.fixture(scope="module")
def kernel_graph():
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from max.graph.graph import default_custom_extensions_scope
    from rsmt_studio.inference.graphs import cpu_blocks

    cpu = DeviceRef.CPU()

    def t(*dims):
        return TensorType(DType.float32, dims, device=cpu)

    types = [t("batch", "x_w"), t("w_d0", "w_d1"), t("b_d0"),  # dense
             t("batch", E), t("m_d0", "m_d1"), t("mb_d0"),  # MoE (x shared)
             t("batch", "lx"), t("batch", "hid"), t("batch", "hid"), t("l_d0", "l_d1"), t("lb_d0"),  # LSTM
             t("s_d0", "s_d1"), t("sb_d0")]  # dense on x[:, 1:]
    with default_custom_extensions_scope(cpu_blocks.kernels_package()), Graph("cpu_kernels_test",
                                                                              input_types=types) as g:
        v = [x.tensor for x in g.inputs]
        dense = cpu_blocks.linear(v[0], v[1], v[2])
        moe = cpu_blocks.moe_linear(v[0], v[3], v[4], v[5], E)
        h, c = cpu_blocks.lstm_cell(v[6], v[7], v[8], v[9], v[10])
        sliced = cpu_blocks.linear(v[0][:, 1:], v[11], v[12])
        g.output(dense, moe, h, c, sliced)
    assert "rsmt_dense" in str(g) and "rsmt_moe_dense" in str(g) and "rsmt_lstm_cell" in str(g)
    return InferenceSession(devices=[CPU()]).load(g)


@pytest.mark.parametrize(("batch", "n_in", "n_out", "hidden"), [(1, 251, 81, 384), (1, 660, 168, 40),
                                                                (5, 37, 256, 17), (64, 288, 64, 96),
                                                                (16, 100, 200, 130),  # two tasks + leftover columns
                                                                # the packed path (from 8 rows): 8 = 6 + 2 rows,
                                                                # 32 = 5 x 6 + 2; leftover columns of 24 and 28
                                                                # (one packed 16-column tile on AVX2, then vectors);
                                                                # LSTM inputs that straddle a 128-row weight block
                                                                (8, 300, 120, 60), (32, 130, 120, 60)])
def test_kernels_match_numpy(kernel_graph, batch, n_in, n_out, hidden):
    rng = np.random.default_rng(batch * 1000 + n_in)
    f = np.float32
    x = rng.standard_normal((batch, n_in)).astype(f)
    w, b = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(f), rng.standard_normal(n_out).astype(f)
    gate = rng.random((batch, E)).astype(f)
    gate /= gate.sum(1, keepdims=True)
    mw = (rng.standard_normal((n_in, E * n_out)) / np.sqrt(n_in)).astype(f)
    mb = rng.standard_normal(E * n_out).astype(f)
    lx = rng.standard_normal((batch, n_in)).astype(f)
    h0, c0 = (0.5 * rng.standard_normal((2, batch, hidden))).astype(f)
    lw = (rng.standard_normal((n_in + hidden, 4 * hidden)) / np.sqrt(n_in + hidden)).astype(f)
    lb = rng.standard_normal(4 * hidden).astype(f)
    sw, sb = (rng.standard_normal((n_in - 1, n_out + 3)) / np.sqrt(n_in)).astype(f), rng.standard_normal(n_out + 3).astype(f)
    got = [o.to_numpy() for o in kernel_graph.execute(x, w, b, gate, mw, mb, lx, h0, c0, lw, lb, sw, sb)]
    h, c = K.lstm_cell(lx, h0, c0, lw, lb)
    want = [K.linear(x, w, b), K.moe_linear(x, gate, mw, mb, E), h, c, K.linear(x[:, 1:], sw, sb)]
    for name, gg, ww in zip(("dense", "moe", "lstm h", "lstm c", "dense on a slice"), got, want, strict=True):
        assert gg.shape == ww.shape, name
        err = float(np.abs(gg - ww).max())
        assert err <= TOL, f"{name}: max abs error {err}"


def test_cpu_graphs_use_the_kernels():
    """The CPU prepare graph is built from cpu_blocks.py: its layers are the custom ops (the steps graph's are inside
    `rsmt_sampler_step`, below)."""
    from max.graph import DeviceRef
    from rsmt_studio.inference.graphs import cpu, networks
    from rsmt_studio.inference.graphs.nets import Dims

    d = Dims(n_joints=23, n_pos_joints=23, n_phases=10, n_experts=8, manifold_latent=32, window=61, fps=30.0,
             max_tta=120)
    ir = str(cpu.build_graph(networks.graph_config("prepare", d), DeviceRef.CPU()))
    assert ir.count('"rsmt_lstm_cell"') == d.n_warmup and ir.count('"rsmt_dense"') >= 5 * d.n_warmup
    assert ir.count('"rsmt_film_elu"') == d.n_warmup  # the embedding FiLM block of each warm-up frame


@pytest.fixture(scope="module")
def film_graph():
    """`rsmt_film_elu` (cpu_blocks.film_elu) in one MAX graph with symbolic batch, width and token count; gamma and
    beta are slices of one (B, 2, D) input (rows not adjacent), as the style graph's caches are cut."""
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from max.graph.graph import default_custom_extensions_scope
    from rsmt_studio.inference.graphs import cpu_blocks

    cpu = DeviceRef.CPU()

    def t(*dims):
        return TensorType(DType.float32, dims, device=cpu)

    types = [t("batch", "d"), t("batch", 2, "d"), t("batch", "tok", "d"), t("batch", "tok", "d"),
             t("q0", "q1"), t("qb"), t(1), t("o0", "o1"), t("ob")]
    with default_custom_extensions_scope(cpu_blocks.kernels_package()), Graph("cpu_film_test",
                                                                              input_types=types) as g:
        x, gb, keys, values, wq, bq, scale, wo, bo = (v.tensor for v in g.inputs)
        g.output(cpu_blocks.film_elu(x, gb[:, 0, :], gb[:, 1, :], keys, values, wq, bq, scale, wo, bo))
    assert "rsmt_film_elu" in str(g)
    return InferenceSession(devices=[CPU()]).load(g)


@pytest.mark.parametrize(("batch", "width", "tokens"), [(1, 256, 40), (1, 37, 1), (16, 256, 51), (16, 200, 17),
                                                        (64, 256, 23), (64, 90, 5)])
def test_film_kernel_matches_numpy(film_graph, batch, width, tokens):
    rng = np.random.default_rng(batch * 100 + width + tokens)
    f = np.float32
    x = (2.0 * rng.standard_normal((batch, width)) + 0.5).astype(f)
    gb = (0.5 * rng.standard_normal((batch, 2, width))).astype(f)
    keys, values = rng.standard_normal((2, batch, tokens, width)).astype(f)
    wq, wo = (rng.standard_normal((2, width, width)) / np.sqrt(width)).astype(f)
    bq, bo = (0.1 * rng.standard_normal((2, width))).astype(f)
    scale = np.array([1.0 / np.sqrt(width) * 3.0], f)
    got = film_graph.execute(x, gb, keys, values, wq, bq, scale, wo, bo)[0].to_numpy()
    want = K.film_elu(x, gb[:, 0], gb[:, 1], keys, values, wq, bq, scale, wo, bo)
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err <= TOL, f"film: max abs error {err}"


def test_film_elu_is_the_composed_block():
    """numpy_blocks.film_elu is nets' FiLM block as it was composed before the fused op, ELU included."""
    rng = np.random.default_rng(3)
    f = np.float32
    x, gamma, beta = rng.standard_normal((3, 4, 24)).astype(f)
    keys, values = rng.standard_normal((2, 4, 7, 24)).astype(f)
    wq, wo = (rng.standard_normal((2, 24, 24)) / 5).astype(f)
    bq, bo = rng.standard_normal((2, 24)).astype(f)
    scale = np.array([0.3], f)
    y = K.elu((1.0 + gamma) * K.layer_norm(x) + beta)
    q = K.layer_norm(y) @ wq + bq
    logits = np.einsum("btd,bd->bt", keys, q) * scale
    att = np.exp(logits - logits.max(1, keepdims=True))
    att /= att.sum(1, keepdims=True)
    want = K.elu(y + np.einsum("bt,btd->bd", att, values) @ wo + bo)
    np.testing.assert_allclose(K.film_elu(x, gamma, beta, keys, values, wq, bq, scale, wo, bo), want, atol=1e-5)


@pytest.fixture(scope="module")
def shipped_steps(shipped_weights):
    """The shipped model's CPU steps graph (40 steps a call, from assets/compiled) with its weights bound, and the
    same weights by name for numpy."""
    from rsmt_studio.inference.engine import TransitionEngine

    engine = TransitionEngine(device="cpu", only=("steps",))
    d, W = shipped_weights
    return d, W, engine.runners["steps"], engine.steps_per_call


def _steps_inputs(d, W, k: int, batch: int, rng, tta0=(45, 8, 70)):
    from rsmt_studio.inference.graphs import nets

    from .fused_inputs import steps_state

    state = list(steps_state(d, W, rng, k))
    if batch != 3:  # more rows: repeat the three with other noise
        state = [np.concatenate([a] * -(-batch // 3))[:batch] for a in state]
    state[9] = np.maximum(np.resize(np.array(tta0), batch)[:, None] - np.arange(k)[None, :], 0).astype(np.int64)
    feats = rng.normal(0, 1, (batch, 39, W["style.input_mean"].shape[0])).astype(np.float32)
    caches = nets.style_caches(K, W, feats)
    return state, caches


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_whole_step_op_matches_numpy(shipped_steps, batch):
    """`rsmt_sampler_step` (the CPU steps graph: a whole step as one op) against nets.sampler_steps on
    numpy_blocks.py, a call of 40 steps, times to arrival on both sides of the noise ramp and past the positional
    table's end, a row's last steps at tta 0 while other rows are live."""
    from rsmt_studio.inference.graphs import nets

    d, W, run, k = shipped_steps
    state, caches = _steps_inputs(d, W, k, batch, np.random.default_rng(batch))
    got = run(*state, *caches)
    with np.errstate(over="ignore"):  # numpy's sigmoid overflows harmlessly to 0 for large negative gates
        want = nets.sampler_steps(K, W, d, k, *state[:9], state[9], state[10], caches)
    for name, a, ref in zip(("p", "r", "phase", "v", "h", "c"), got, want, strict=True):
        assert a.shape == ref.shape, name
        np.testing.assert_allclose(a, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())), err_msg=name)


def test_whole_step_op_holds_padding_steps(shipped_steps):
    """Steps whose every row has tta 0 (the engine's padding past a transition's end) hold the last frame and
    state; a step with any live row is computed."""
    from rsmt_studio.inference.graphs import nets

    d, W, run, k = shipped_steps
    live = 3
    state, caches = _steps_inputs(d, W, k, 2, np.random.default_rng(7), tta0=(live, live))
    state[9] = np.maximum(state[9], 0)  # tta 3, 2, 1, 0, 0, ...: three live steps, then padding
    ps, rs, phs, v, h, c = run(*state, *caches)
    with np.errstate(over="ignore"):
        want = nets.sampler_steps(K, W, d, live, *state[:9], state[9][:, :live], state[10], caches)
    np.testing.assert_allclose(ps[:, :live], want[0], atol=1e-4 * float(np.abs(want[0]).max()))
    for s in range(live, k):  # held
        np.testing.assert_array_equal(ps[:, s], ps[:, live - 1])
        np.testing.assert_array_equal(rs[:, s], rs[:, live - 1])
        np.testing.assert_array_equal(phs[:, s], phs[:, live - 1])
    for name, a, ref in (("v", v, want[3]), ("h", h, want[4]), ("c", c, want[5])):
        np.testing.assert_allclose(a, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())), err_msg=name)
    state[9][1, live:] = 1  # one row live: the steps run (their frames are not held)
    ps2 = run(*state, *caches)[0]
    assert not np.array_equal(ps2[:, live], ps2[:, live - 1])


def test_cpu_steps_graph_is_one_op_a_step():
    """The CPU steps graph runs each step as `rsmt_sampler_step`; numpy_blocks.py composes the same maths."""
    from max.graph import DeviceRef
    from rsmt_studio.inference.graphs import cpu, networks
    from rsmt_studio.inference.graphs.nets import Dims

    d = Dims(n_joints=21, n_pos_joints=14, n_phases=10, n_experts=8, manifold_latent=32, window=61, fps=30.0,
             max_tta=60)
    ir = str(cpu.build_graph(networks.graph_config("steps", d, 2), DeviceRef.CPU()))
    assert ir.count('"rsmt_sampler_step"') == 2 and '"rsmt_dense"' not in ir
    assert not hasattr(K, "sampler_step")
