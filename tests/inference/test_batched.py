"""`inference.batched`: B requests share one `prepare` and ceil(L / k) `steps` calls, and each row is what
`generate` makes for the same request (real MAX CPU graphs, real Bandai clips).

The frames alone cannot tell a batch from B single runs (they are equal), so the graph calls are counted: a row
that ran its own batch-1 graphs went unnoticed once (issue 16's GPU service figure found it)."""

from __future__ import annotations

import numpy as np
import pytest
from rsmt_studio.inference import batched


class _Counted:
    def __init__(self, runner) -> None:
        self.runner = runner
        self.batches: list[int] = []

    def __call__(self, *args):
        self.batches.append(int(np.shape(args[0])[0]))
        return self.runner(*args)


@pytest.fixture()
def counted(engine, monkeypatch):
    out = {}
    for name in ("prepare", "steps", "deephase"):
        out[name] = _Counted(engine.runners[name])
        monkeypatch.setitem(engine.runners, name, out[name])
    return out


def _requests(bandai_clips, style_names):
    a, b = bandai_clips
    return [batched.Request(a, 30, b, 40, style_names[0], 20, 1),
            batched.Request(b, 25, a, 60, style_names[0], 20, None),
            batched.Request(a, 12, a, 60, style_names[0], 13, 4)]


def test_rows_share_the_graph_calls_and_match_generate(engine, bandai_clips, counted):
    reqs = _requests(bandai_clips, engine.styles)
    prepared = [batched.prepare(engine, r) for r in reqs]
    for c in counted.values():
        c.batches.clear()
    results = batched.run(engine, prepared)
    k = engine.steps_per_call
    assert counted["prepare"].batches == [3]
    # 20 frames: ceil(20 / k) calls; the 13-frame row leaves the batch after its last one
    assert counted["steps"].batches == [3] * -(-13 // k) + [2] * (-(-20 // k) - -(-13 // k))
    assert counted["deephase"].batches == []  # the phase labels came from `prepare`, not once more per row
    for req, got in zip(reqs, results, strict=True):
        one = engine.generate(req.source, req.source_frame, req.target, req.target_frame, req.style, req.length,
                              req.seed)
        np.testing.assert_array_equal(got.clip.local_rot, one.clip.local_rot)
        np.testing.assert_array_equal(got.clip.local_pos, one.clip.local_pos)


def test_streamed_rows_get_their_chunks_and_unstreamed_rows_none(engine, bandai_clips, counted):
    reqs = _requests(bandai_clips, engine.styles)[:2]
    prepared = [batched.prepare(engine, r) for r in reqs]
    seen: dict[int, list[int]] = {0: [], 1: []}
    results = batched.run(engine, prepared, lambda i, chunk: seen[i].append(chunk.start),
                          streamed=[True, False])
    assert seen[0] == list(range(0, 20, engine.steps_per_call)) and seen[1] == []
    for got in results:
        assert got.clip.num_frames == 20
    # a streamed row is post-processed chunk by chunk, as `stream` does; its frames match `generate`'s closely
    one = engine.generate(reqs[0].source, 30, reqs[0].target, 40, reqs[0].style, 20, 1)
    np.testing.assert_allclose(results[0].clip.local_pos, one.clip.local_pos, atol=1e-6)
