"""The wiring of a captured transition (inference/runtime/device_graphs.py), checked on the CPU.

Device graphs exist only on GPUs, so here each model's `capture`/`replay` is replaced by a stand-in with the
same contract: capture runs the graph once and returns output buffers that stay fixed; replay reruns it on the
*same* input buffers and writes into those outputs. Everything else is the real code on the real CPU graphs:
prepare → steps → chain → steps ..., the per-call tta buffers, request uploads and the skip of unchanged caches.
The GPU itself is checked by `bench/inference.py --gpu` (captured replays equal eager calls bit for bit).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.parity


class ReplayStandIn:
    """Model.capture / Model.replay semantics on the CPU: fixed inputs, fixed outputs, rerun on replay."""

    def __init__(self, model) -> None:
        self.model = model
        self.graphs: dict[int, list] = {}
        self.replays = 0

    def capture(self, key, *args):
        self.graphs[key] = self.model.execute(*args)
        return self.graphs[key]

    def replay(self, key, *args):
        self.replays += 1
        args[0].device.synchronize()  # host copies may still be in flight; a device graph replays in order
        new = self.model.execute(*args)
        for kept, fresh in zip(self.graphs[key], new, strict=True):
            kept.inplace_copy_from(fresh)
        args[0].device.synchronize()  # before `new` is freed

    def release_captured_graph(self, key):
        self.graphs.pop(key, None)


def _problem(engine, rng, b: int):
    from rsmt_studio.inference.engine import Problem

    d, f = engine.dims, np.float32

    def n(*shape, s=1.0):
        return rng.normal(0, s, shape).astype(f)

    return Problem(frame=None, ms=None, ctx_p=n(b, 8, d.n_pos_joints, 3, s=20), ctx_v=n(b, 8, d.n_pos_joints, 3),
                   ctx_r=n(b, 8, d.n_joints, 6), p9=n(b, d.n_pos_joints, 3, s=20), v9=n(b, d.n_pos_joints, 3),
                   r9=n(b, d.n_joints, 6), tgt_p=n(b, d.n_pos_joints, 3, s=20), tgt_v=n(b, d.n_pos_joints, 3),
                   tgt_r=n(b, d.n_joints, 6))


def test_captured_transition_equals_eager_calls(engine):
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.runtime.device_graphs import CapturedTransition
    from rsmt_studio.inference.runtime.session import GraphRunner

    spec = model_specs(engine.dims, "cpu", engine.steps_per_call, chain=True)["chain"]
    ensure_compiled([spec])
    chain = GraphRunner(engine.session, spec, [])
    chain.model = ReplayStandIn(chain.model)
    runners = {name: SimpleNamespace(model=ReplayStandIn(engine.runners[name].model),
                                     _weight_buffers=engine.runners[name]._weight_buffers)
               for name in ("prepare", "steps")}
    view = SimpleNamespace(runners=runners, dims=engine.dims, steps_per_call=engine.steps_per_call,
                           session=engine.session, z_width=engine.z_width, lstm_width=engine.lstm_width)
    rng = np.random.default_rng(5)
    b, length = 2, 5
    calm = engine.style_code("calm").arrays
    caches = [np.ascontiguousarray(np.broadcast_to(a, (b, *a.shape[1:]))) for a in calm]
    cap = CapturedTransition(view, chain, b, length, [a.shape for a in caches])
    assert len(cap.outputs) == -(-length // engine.steps_per_call)

    def eager(problem, z, phase9, caches):
        h, c, lat, _ = engine.prepare(problem, length, z, caches)
        state = (problem.p9, problem.v9, problem.r9, phase9, h, c)
        return [x[:3] for x in engine.rollout_chunks(state, problem, lat, z, caches, length)]

    other = [a * 1.5 for a in caches]  # another style code of the same shape (a new shape is a new capture)
    uploads = []
    for style in (caches, caches, other):
        problem = _problem(engine, rng, b)
        z = engine.noise(3, b)
        phase9 = rng.normal(0, 1, (b, engine.dims.n_phases, 2)).astype(np.float32)
        got = list(cap.run(problem.ctx_p, problem.ctx_v, problem.ctx_r, problem.tgt_p, problem.tgt_v,
                           problem.tgt_r, z, problem.p9, problem.v9, problem.r9, phase9, style))
        want = eager(problem, z, phase9, style)
        assert len(got) == len(want)
        uploads.append(cap.last_uploads)
        for g, w in zip(got, want, strict=True):
            for a, e in zip(g, w, strict=True):
                np.testing.assert_allclose(a, e, atol=1e-5)
    # 11 request arrays + 8 caches; the second request reused the caches and the noise (same seed), the third
    # (another code) uploaded the caches again
    assert uploads == [19, 10, 18]
    assert runners["steps"].model.replays == 3 * len(cap.outputs)
    assert cap._uploaded[-1].holds(style[-1])
    with pytest.raises(ValueError, match="captured for shape"):
        next(cap.run(*[np.zeros((b + 1, *np.shape(a)[1:]), np.float32) for a in (
            problem.ctx_p, problem.ctx_v, problem.ctx_r, problem.tgt_p, problem.tgt_v, problem.tgt_r, z,
            problem.p9, problem.v9, problem.r9, phase9)], style))
    cap.release()
    assert not runners["steps"].model.graphs and not chain.model.graphs


def test_upload_skip_is_cheap_and_safe():
    """What a captured input holds is recognised without comparing big arrays where that is safe: read-only
    arrays by identity, batches broadcast from one row by that row; anything else is compared in full."""
    from rsmt_studio.inference.runtime.device_graphs import _Uploaded

    frozen = np.arange(12, dtype=np.float32).reshape(3, 4).copy()  # owns its memory
    frozen.flags.writeable = False
    held = _Uploaded(frozen)
    assert held.holds(frozen) and held.copy is None  # no copy kept, no compare made
    assert not held.holds(frozen.copy())  # an equal copy is not recognised (nothing was kept to compare)

    row = np.arange(4, dtype=np.float32)[None]
    wide = np.broadcast_to(row, (1024, 4))
    held = _Uploaded(wide)
    assert held.row is not None and held.row.shape == (1, 4)
    assert held.holds(np.broadcast_to(row.copy(), (1024, 4)))
    assert not held.holds(np.broadcast_to(row + 1, (1024, 4)))
    assert not held.holds(np.ascontiguousarray(wide))  # same values but not a broadcast: compare as a batch

    plain = np.ones((2, 3), np.float32)
    held = _Uploaded(plain)
    plain[0, 0] = 5  # a writable array may change after the upload: its copy is what counts
    assert not held.holds(plain) and held.holds(np.ones((2, 3), np.float32))
