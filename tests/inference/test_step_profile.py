"""The step profile (issue 17): the kernels' timed twins (kernels/cpu_dense_timed.mojo through
inference/graphs/cpu_timed.py) and `TransitionEngine.profile_step` on the shipped model, in real MAX graphs.

The timed ops run the untimed ops' code, so their outputs must be the same numbers; their times must be positive
and add up to what the graph reports per kind. The engine's profile on the shipped assets must give every stage a
positive time, kernels that fit inside the graph calls, and a timed steps graph whose frames are the shipped
graph's. The timed steps graph compiles on first use (minutes on two cores; then cached in the test MEF folder).
"""

from __future__ import annotations

import numpy as np
import pytest

E = 8


@pytest.fixture(scope="module")
def twin_graph():
    """One graph with each kernel twice on the same inputs, untimed (cpu_blocks.py) and timed (TimedBlocks), plus
    the timed graph's per-kind totals; ~1 min to compile cold."""
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType
    from max.graph.graph import default_custom_extensions_scope
    from rsmt_studio.inference.graphs import cpu_blocks
    from rsmt_studio.inference.graphs.cpu_timed import TimedBlocks

    cpu = DeviceRef.CPU()

    def t(*dims):
        return TensorType(DType.float32, dims, device=cpu)

    types = [t("batch", "x_w"), t("w_d0", "w_d1"), t("b_d0"),  # dense
             t("batch", E), t("m_d0", "m_d1"), t("mb_d0"),  # MoE (x shared)
             t("batch", "lx"), t("batch", "hid"), t("batch", "hid"), t("l_d0", "l_d1"), t("lb_d0")]  # LSTM
    timed = TimedBlocks()
    with default_custom_extensions_scope(cpu_blocks.kernels_package()), Graph("cpu_timed_test",
                                                                              input_types=types) as g:
        v = [x.tensor for x in g.inputs]
        plain = [cpu_blocks.linear(v[0], v[1], v[2]), cpu_blocks.moe_linear(v[0], v[3], v[4], v[5], E),
                 *cpu_blocks.lstm_cell(v[6], v[7], v[8], v[9], v[10])]
        twins = [timed.linear(v[0], v[1], v[2]), timed.moe_linear(v[0], v[3], v[4], v[5], E),
                 *timed.lstm_cell(v[6], v[7], v[8], v[9], v[10])]
        twins.append(timed.linear(v[0] + v[0], v[1], v[2]))  # a second dense op: the totals sum per kind
        each = [ns for kind in ("dense", "moe", "lstm") for ns in timed.times[kind]]
        g.output(*plain, *twins, *each, *timed.outputs(cpu))
    ir = str(g)
    assert ir.count("rsmt_dense_timed") == 2 and "rsmt_moe_dense_timed" in ir and "rsmt_lstm_cell_timed" in ir
    return InferenceSession(devices=[CPU()]).load(g)


@pytest.mark.parametrize(("batch", "n_in", "n_out", "hidden"), [(1, 660, 384, 384), (16, 100, 200, 130)])
def test_timed_kernels_give_the_same_numbers_and_positive_times(twin_graph, batch, n_in, n_out, hidden):
    rng = np.random.default_rng(batch + n_in)
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
    out = [o.to_numpy() for o in twin_graph.execute(x, w, b, gate, mw, mb, lx, h0, c0, lw, lb)]
    plain, twins, each, (kernel_ns, kernel_ops) = out[:4], out[4:9], out[9:13], out[13:]
    for name, a, t in zip(("dense", "moe", "lstm h", "lstm c"), plain, twins, strict=False):
        assert a.shape == t.shape, name
        assert float(np.abs(a - t).max()) <= 1e-5, name
    assert float(np.abs(twins[4] - ((x + x) @ w + b)).max()) <= 1e-4
    each = [int(v[0]) for v in each]  # dense, dense, moe, lstm
    assert min(each) > 0, each
    assert kernel_ns.tolist() == [each[0] + each[1], each[2], each[3], 0, 0]  # no FiLM block or step tail here
    assert kernel_ops.tolist() == [2, 1, 1, 0, 0]


def test_timed_steps_graph_holds_only_the_timed_kernels():
    """The profiling variant is the CPU steps graph from the same builder with the timed twin, plus two outputs."""
    from max.graph import DeviceRef
    from rsmt_studio.inference.graphs import cpu, cpu_timed, networks
    from rsmt_studio.inference.graphs.nets import Dims

    d = Dims(n_joints=23, n_pos_joints=23, n_phases=10, n_experts=8, manifold_latent=32, window=61, fps=30.0,
             max_tta=120)
    cfg = networks.graph_config("steps", d, 1)
    plain, timed = cpu.build_graph(cfg, DeviceRef.CPU()), cpu_timed.build_graph(cfg, DeviceRef.CPU())
    ir = str(timed)
    assert ir.count("rsmt_sampler_step_timed") == str(plain).count('"rsmt_sampler_step"') == 1
    assert '"rsmt_sampler_step"' not in ir
    assert timed.output_types[:-2] == plain.output_types and len(timed.output_types) == len(plain.output_types) + 2


def test_profile_is_cpu_only():
    from types import SimpleNamespace

    from rsmt_studio.inference.runtime.devices import DeviceChoice
    from rsmt_studio.inference.step_profile import ProfileUnavailable, profile_spec

    with pytest.raises(ProfileUnavailable, match="CPU kernels.*GPU"):
        profile_spec(SimpleNamespace(device=DeviceChoice("gpu"), capture=True))


@pytest.fixture(scope="module")
def shipped_engine(mef_cache_dir):
    from rsmt_studio.inference.engine import TransitionEngine

    return TransitionEngine(device="cpu")  # the shipped assets; their graphs come from assets/compiled


@pytest.fixture(scope="module")
def scene():
    import json

    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.motion import read_bvh

    folder = default_assets_dir() / "default_scene"
    spec = json.loads((folder / "scene.json").read_text())
    return read_bvh(folder / spec["source"]), spec["source_frame"], read_bvh(folder / spec["target"]), \
        spec["target_frame"], spec["length"]


@pytest.mark.slow  # compiles the timed steps graph the first time (minutes on two cores)
def test_engine_profile_on_the_shipped_model(shipped_engine, scene):
    from rsmt_studio.inference.step_profile import KERNEL_STAGES, STAGES

    source, sf, target, tf, length = scene
    events = []
    prof = shipped_engine.profile_step(source, sf, target, tf, target, length, seed=0, repeats=3,
                                       progress=events.append)
    assert set(prof.stages) == set(STAGES)
    assert all(prof.stages[s] > 0 for s in STAGES), prof.stages
    assert prof.kernel_ms < prof.call_ms
    for run in prof.runs:  # in every run the kernels fit inside the graph calls
        timed = sum(run[s] for s in KERNEL_STAGES)
        assert 0 < timed < run["call_ms"]
        assert run["rest_ms"] == pytest.approx(run["call_ms"] - timed)
    # per generated frame (one sampler step); the FiLM blocks' query and output layers are inside `rsmt_film_elu`
    assert prof.kernel_ops == {"dense": 12, "moe": 3, "lstm": 1, "film": 2, "tails": 2}
    assert prof.frames == length and prof.calls == -(-length // shipped_engine.steps_per_call)
    assert prof.repeats == 3 and len(prof.runs) == 3 and prof.device == "CPU" and "cores" in prof.device_detail
    assert [e["run"] for e in events if e.get("event") == "profiling"] == [0, 1, 2, 3]


@pytest.mark.slow  # needs the timed steps graph (the test above compiles it)
def test_timed_steps_graph_makes_the_shipped_graphs_frames(shipped_engine, scene):
    """Same inputs through the shipped steps graph and the timed one: the same frames, state and phases."""
    e = shipped_engine
    source, sf, target, tf, length = scene
    e.profile_step(source, sf, target, tf, target, length, repeats=1)  # loads the timed graph
    problem, n_model = e.make_problem(source, sf, target, tf, length)
    code = e.style_code(target)
    z = e.noise(0)
    h, c, latent, _ = e.prepare(problem, length, z, code.arrays)
    k = e.steps_per_call
    tta = np.array([[length + 1 - s for s in range(k)]], np.int64)
    inputs = (problem.p9, problem.v9, problem.r9, e.phase_at(source, n_model)[None].astype(np.float32), h, c,
              problem.tgt_p, problem.tgt_r, latent, tta, z, *code.arrays)
    want = e.runners["steps"](*inputs)
    got = e._timed_steps_runner(*inputs)
    assert len(got) == len(want) + 2
    for a, b in zip(want, got[:-2], strict=True):
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-5
    assert (got[-2] > 0).all() and got[-1].tolist() == [12 * k, 3 * k, k, 2 * k, 2 * k]  # FiLM layers: in rsmt_film_elu
