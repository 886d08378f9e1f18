"""The CPU kernels (kernels/cpu_dense.mojo, through inference/graphs/cpu_blocks.py) against numpy_blocks.py.

One real MAX graph on the CPU holds every op of cpu_blocks.py, with symbolic widths and batch as the CPU graphs
have them: dense layers (one on a sliced input, whose rows are not adjacent), an 8-expert layer and the LSTM
cell; widths that are not multiples of the kernels' register tile or SIMD width exercise the leftover columns.
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
                                                                (16, 100, 200, 130)])  # two tasks + leftover columns
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
