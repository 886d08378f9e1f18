"""What a long-running service holds per request stays bounded: the memos stop at their sizes however many
distinct clips and styles arrive, and the engine thread keeps nothing of a finished job.

No RSS or timing thresholds here (they depend on the machine and the allocator): `bench/serve.py --rounds N`
measures the server's RSS per round, see docs/service.md "Memory".
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
from rsmt_studio.inference.memo import BoundedMemo
from rsmt_studio.service.host import CallJob, EngineHost, memo_sizes
from rsmt_studio.service.library import ClipStore

BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 90 0 0 0 0 0 0 0
0 90 1 0 0 0 0 0 0
"""


class _Rigs:
    def __init__(self, n: int) -> None:
        self._bindings, self._clips, self._trips = BoundedMemo(n), BoundedMemo(n), BoundedMemo(4 * n)


class _Engine:
    """The memos `memo_sizes` reads, as the engine builds them (BoundedMemo), with small bounds."""

    def __init__(self, n: int) -> None:
        self._style_cache, self._phase_cache = BoundedMemo(n), BoundedMemo(n)
        self.rigs = _Rigs(n)


def test_memos_stay_at_their_bounds_after_many_distinct_requests():
    engine = _Engine(8)
    memos = (engine._style_cache, engine._phase_cache, engine.rigs._bindings, engine.rigs._clips,
             engine.rigs._trips)
    for i in range(1000):  # 1000 distinct clips / frames, as an endless stream of new requests
        for m in memos:
            m.get_or(("clip", i), lambda i=i: np.full(16, i))
        engine._style_cache.get_or(("clip", 0), lambda: None)  # a hot entry is used all along
    sizes = memo_sizes(engine)
    assert sizes == {"style_codes": 8, "phase_tracks": 8, "rig_bindings": 8, "rig_clips": 8, "rig_frames": 32}
    assert ("clip", 0) in engine._style_cache and ("clip", 999) in engine._style_cache  # LRU, not FIFO
    assert ("clip", 500) not in engine._style_cache
    assert memo_sizes(None) == {}


def test_library_store_keeps_at_most_capacity_files(tmp_path):
    store = ClipStore(tmp_path, max_frames=100, capacity=4)
    for i in range(12):
        (tmp_path / f"c{i}.bvh").write_text(BVH)
        clip = store.from_path(f"c{i}.bvh", "source_path")
        assert clip.num_frames == 2
        assert store.cached == min(i + 1, 4)
    assert store.from_path("c11.bvh", "source_path") is clip  # the newest is still held (memo hits downstream)
    (tmp_path / "c11.bvh").write_text(BVH.replace("0 90 1", "0 90 2"))  # rewritten: a new key, not a new slot
    store.from_path("c11.bvh", "source_path")
    assert store.cached == 4


def test_engine_thread_keeps_nothing_of_finished_jobs():
    class Payload:
        pass

    host = EngineHost(lambda **_kw: object(), max_batch=4, window_s=0.0, max_queue=8)
    try:
        refs = []
        for _ in range(50):
            assert host.try_admit()
            value = Payload()
            refs.append(weakref.ref(value))
            fut = host.submit(CallJob(lambda _engine, value=value: value))
            assert fut.result(timeout=30) is value
            del value, fut
        gc.collect()
        assert [r for r in refs if r() is not None] == []  # results, jobs and their closures all released
        snap = host.snapshot()
        assert snap["admitted"] == 0 and snap["batch_sizes"] == {} and snap["memos"] == {}
    finally:
        host.close()
