"""Every MAX building block (blocks.py) against its numpy twin (numpy_blocks.py), in one compiled graph."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.inference import numpy_blocks as nb
from rsmt_studio.inference.block_selftest import KERNEL, N_EXPERTS


@pytest.fixture(scope="module")
def selftest(compiled):
    from rsmt_studio.inference.cache import GraphSpec
    from rsmt_studio.inference.compiler import ensure_compiled
    from rsmt_studio.inference.devices import select_device
    from rsmt_studio.inference.runtime import MaxSession

    spec = GraphSpec("block_selftest", "rsmt_studio.inference.block_selftest", {}, "cpu")
    ensure_compiled([spec])
    return MaxSession(select_device("cpu")).load(spec)


@pytest.mark.parametrize(("batch", "feat", "hid", "time"), [(1, 5, 3, 6), (7, 16, 12, 9), (64, 33, 20, 4)])
def test_blocks_match_numpy(selftest, batch, feat, hid, time):
    rng = np.random.default_rng(batch)
    f = np.float32
    x = rng.normal(0, 2, (batch, feat)).astype(f)
    h = rng.normal(0, 1, (batch, hid)).astype(f)
    c = rng.normal(0, 1, (batch, hid)).astype(f)
    gate = rng.normal(0, 1, (batch, N_EXPERTS)).astype(f)
    seq = rng.normal(0, 1, (batch, time, feat)).astype(f)
    # atan2 over every quadrant, the axes and near-degenerate angles
    ang = np.concatenate([rng.uniform(-np.pi, np.pi, 40), [0, np.pi / 2, -np.pi / 2, np.pi, 1e-4, -1e-4]])
    rad = rng.uniform(0.01, 100, ang.size)
    y2 = np.tile((rad * np.sin(ang)).astype(f), (batch, 1))
    x2 = np.tile((rad * np.cos(ang)).astype(f), (batch, 1))
    lw, lb = rng.normal(0, 0.3, (feat, 11)).astype(f), rng.normal(0, 1, 11).astype(f)
    sw, sb = rng.normal(0, 0.3, (feat + hid, 4 * hid)).astype(f), rng.normal(0, 1, 4 * hid).astype(f)
    mw, mb = rng.normal(0, 0.3, (feat, N_EXPERTS * 6)).astype(f), rng.normal(0, 1, N_EXPERTS * 6).astype(f)
    cw, cb = rng.normal(0, 0.3, (KERNEL, feat, 7)).astype(f), rng.normal(0, 1, 7).astype(f)
    out = [o.to_numpy() for o in selftest.execute(x, h, c, gate, seq, y2, x2, lw, lb, sw, sb, mw, mb, cw, cb)]
    h_ref, c_ref = nb.lstm_cell(x, h, c, sw, sb)
    want = [nb.elu(x), nb.softplus(x), nb.layer_norm(x), nb.linear(x, lw, lb), h_ref, c_ref,
            nb.moe_linear(x, nb.softmax(gate), mw, mb, N_EXPERTS), nb.conv1d(seq, cw, cb, padding=1),
            nb.atan2(y2, x2), nb.softmax(gate)]
    names = ["elu", "softplus", "layer_norm", "linear", "lstm_h", "lstm_c", "moe", "conv1d", "atan2", "softmax"]
    for name, got, ref in zip(names, out, want, strict=True):
        assert got.shape == ref.shape, name
        tol = 2e-5 * max(1.0, float(np.abs(ref).max()))
        assert np.abs(got - ref).max() <= tol, f"{name}: {np.abs(got - ref).max()}"
