"""The CPU kernels (kernels/cpu_dense.mojo, through inference/graphs/cpu_blocks.py) against numpy_blocks.py.

One real MAX graph on the CPU holds every op of cpu_blocks.py, with symbolic widths and batch as the CPU graphs
have them: dense layers (one on a sliced input, whose rows are not adjacent), an 8-expert layer and the LSTM
cell; widths that are not multiples of the kernels' register tile or SIMD width exercise the leftover columns;
batches from 8 rows on take the packed micro-kernel (row counts that are not multiples of its 6 rows).
A second graph holds the fused FiLM block (`rsmt_film_elu`), batch 1, 16 and 64 (one task and two); a third the
step's two fused tails (`rsmt_step_head`, `rsmt_step_advance`), batch 1, 16 and 64.
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
    """The shipped CPU steps graph is built from cpu_blocks.py: its layers are the custom ops."""
    from max.graph import DeviceRef
    from rsmt_studio.inference.graphs import cpu, networks
    from rsmt_studio.inference.graphs.nets import Dims

    d = Dims(n_joints=23, n_pos_joints=23, n_phases=10, n_experts=8, manifold_latent=32, window=61, fps=30.0,
             max_tta=120)
    ir = str(cpu.build_graph(networks.graph_config("steps", d, 1), DeviceRef.CPU()))
    assert ir.count("rsmt_lstm_cell") >= 1 and ir.count("rsmt_moe_dense") >= 3 and ir.count("rsmt_dense") >= 10
    assert ir.count("rsmt_film_elu") >= 2  # both FiLM blocks of the step


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


TAIL_DIMS = {"n_joints": 21, "n_pos_joints": 14, "n_phases": 10, "n_experts": 8, "manifold_latent": 32,
             "window": 61, "fps": 30.0, "max_tta": 60}


@pytest.fixture(scope="module")
def tail_graph():
    """The step's two fused tails (`rsmt_step_head`, `rsmt_step_advance`, via cpu_blocks.step_head / step_advance)
    in one MAX graph with a symbolic batch, the predictor output wider than the step reads and the head's state
    input made by nets.encoder_inputs from the graph's frame, as nets._step builds them."""
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from max.graph.graph import default_custom_extensions_scope
    from rsmt_studio.inference.graphs import cpu_blocks, nets

    d = nets.Dims(**TAIL_DIMS)
    cpu = DeviceRef.CPU()
    n_p, n_j, c = d.n_pos_joints, d.n_joints, d.n_phases

    def t(*dims):
        return TensorType(DType.float32, dims, device=cpu)

    types = [t("batch", "yw"), t("batch", c, 2), t("batch", n_p, 3), t("batch", n_p, 3), t("batch", n_j, 6),
             t("batch", n_p, 3), t("batch", n_j, 6), t("batch", "dw")]
    with default_custom_extensions_scope(cpu_blocks.kernels_package()), Graph("cpu_tail_test", input_types=types) as g:
        y, phase, p, v, r, tgt_p, tgt_r, delta = (x.tensor for x in g.inputs)
        state, offset = nets.encoder_inputs(cpu_blocks, p, v, r, tgt_p, tgt_r)
        head = cpu_blocks.step_head(d, y, phase, state)
        g.output(state, offset, *head, *cpu_blocks.step_advance(d, delta, y, p, r, tgt_p, tgt_r))
    assert "rsmt_step_head" in str(g) and "rsmt_step_advance" in str(g)
    return d, InferenceSession(devices=[CPU()]).load(g)


@pytest.mark.parametrize("batch", [1, 16, 64])
def test_step_tails_match_numpy(tail_graph, batch):
    """The fused tails against nets.py's composed maths on numpy_blocks.py (sampler_step's numpy formulation)."""
    from rsmt_studio.inference.graphs import nets

    d, model = tail_graph
    rng = np.random.default_rng(batch)
    f = np.float32
    n_p, n_j, c, lat = d.n_pos_joints, d.n_joints, d.n_phases, d.manifold_latent
    y = rng.standard_normal((batch, 4 * c + 9 + lat + 3)).astype(f)
    y[:, 3 * c : 4 * c] *= 3.0  # frequencies of a few Hz: a real turn of the phase per frame
    phase = (2.0 * rng.standard_normal((batch, c, 2))).astype(f)
    p, v, tgt_p = (50.0 * rng.standard_normal((3, batch, n_p, 3))).astype(f)
    r, tgt_r = rng.standard_normal((2, batch, n_j, 6)).astype(f)
    delta = (0.1 * rng.standard_normal((batch, 3 * n_p + 6 * n_j))).astype(f)
    got = [o.to_numpy() for o in model.execute(y, phase, p, v, r, tgt_p, tgt_r, delta)]

    state, offset = nets.encoder_inputs(K, p, v, r, tgt_p, tgt_r)
    o = 4 * c
    amp = K.softplus(y[:, 2 * c : 3 * c])
    new_phase = nets.update_phase(K, d, phase, y[:, : 2 * c].reshape(batch, c, 2), amp, y[:, 3 * c : o])
    hip_v, hip_r, zm = y[:, o : o + 3], r[:, 0] + y[:, o + 3 : o + 9], y[:, o + 9 : o + 9 + lat]
    cond = np.concatenate([(p - p[:, 0:1]).reshape(batch, -1), v.reshape(batch, -1), hip_v, r.reshape(batch, -1),
                           hip_r], -1)
    p_next, r_next = nets.apply_delta(K, d, p, r, delta, hip_v, hip_r)
    v_next = p_next - p
    want = [state, offset, new_phase, np.concatenate([new_phase.reshape(batch, -1), zm], -1),
            np.concatenate([cond, zm], -1), p_next, v_next, r_next,
            *nets.encoder_inputs(K, p_next, v_next, r_next, tgt_p, tgt_r)]
    names = ("state", "offset", "new phase", "gate input", "expert input", "p", "v", "r", "next state", "next offset")
    for name, gg, ww in zip(names, got, want, strict=True):
        assert gg.shape == ww.shape, name
        scale = max(1.0, float(np.abs(ww).max()))  # positions are in cm, up to ~200
        err = float(np.abs(gg - ww).max())
        assert err <= TOL * scale, f"{name}: max abs error {err} (values up to {scale})"


def test_cpu_steps_graph_uses_the_tails():
    """The CPU steps graph runs each step's tails as the two ops, and numpy_blocks.py the composed maths."""
    from max.graph import DeviceRef
    from rsmt_studio.inference.graphs import cpu, networks
    from rsmt_studio.inference.graphs.nets import Dims

    ir = str(cpu.build_graph(networks.graph_config("steps", Dims(**TAIL_DIMS), 2), DeviceRef.CPU()))
    assert ir.count('"rsmt_step_head"') == 2 and ir.count('"rsmt_step_advance"') == 2
    assert not hasattr(K, "step_head") and not hasattr(K, "step_advance")
