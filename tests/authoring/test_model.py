"""The authoring model without Qt: streaming, cancellation by a newer edit, stitching, target placement."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest
from rsmt_studio.app.models.authoring import AuthoringModel, AuthoringParams, place_target, stitch


@pytest.fixture()
def model(worker_pool, scene_clips):
    m = AuthoringModel(worker_pool, debounce_s=0.02)
    a, b = scene_clips
    m.add_clip(a, "a")
    m.add_clip(b, "b")
    yield m
    m.close()


def test_params_round_trip_through_json():
    p = AuthoringParams(source="x.bvh", source_frame=12, target="y.bvh", target_frame=3, style="proud",
                        length=25, length_unit="seconds", seed=None, device="gpu", foot_lock=False, head_steady=False)
    assert AuthoringParams.from_json(p.to_json()) == p
    older = {k: v for k, v in p.to_json().items() if k not in ("foot_lock", "head_steady")}  # saved before the switches
    assert AuthoringParams.from_json(older).foot_lock is True
    assert AuthoringParams.from_json(older).head_steady is True


def test_frames_stream_in_then_the_stitched_sequence_is_source_transition_target(model, scene_clips):
    chunks = []
    model.frames_streamed.connect(lambda gen, start, pos, timing: chunks.append((start, pos.shape, timing)))
    model.stream_every_ms = 0.0  # a chunk per graph call
    model.set_params(source="a", source_frame=60, target="b", target_frame=40, length=40, seed=0)
    result = model.wait(timeout_s=120)
    assert result is not None, model.last_error
    # streamed in order: the first frame alone (the one-step graph: on screen sooner), then the rest in one graph
    # call (the CPU engine runs 40 steps a call)
    assert [c[0] for c in chunks] == [0, 1]
    assert [c[1] for c in chunks] == [(1, 22, 3), (39, 22, 3)]
    assert "first_frame_ms" in chunks[0][2]
    assert result.transition.num_frames == 40
    (s0, s1), (t0, t1), (g0, g1) = result.regions
    assert (s0, s1, t0, t1, g0) == (0, 60, 61, 100, 101)
    stitched = result.stitched()
    assert stitched.num_frames == g1 + 1 == 61 + 40 + (120 - 40)
    a = scene_clips[0]
    gpos = stitched.fk()[0]
    np.testing.assert_array_equal(result.positions, gpos)  # the runner's FK by parts is the stitched clip's
    np.testing.assert_array_equal(result.ghost_pose, result.target_placed.fk()[0][result.keyframe])
    np.testing.assert_allclose(gpos[:61], a.fk()[0][:61], atol=1e-9)  # the source part is the source
    np.testing.assert_allclose(gpos[61:101], result.transition.fk()[0], atol=1e-9)
    placed = result.target_placed.fk()[0]
    np.testing.assert_allclose(gpos[101:], placed[40:], atol=1e-6)
    # the generated motion arrives near the placed target keyframe (hips within 15 cm, a step is ~70 cm)
    assert np.linalg.norm(gpos[100, 1, [0, 2]] - gpos[101, 1, [0, 2]]) < 15.0
    # stage times were recorded per frame
    assert len(result.times.per_frame) == 40 and result.times.total_ms > 0


def test_graph_calls_within_stream_every_ms_of_the_last_chunk_are_joined(model):
    """After the first frame, the calls made within `stream_every_ms` come as one chunk (post-processed once): the
    same frames as a chunk per call."""
    chunks = []
    model.frames_streamed.connect(lambda gen, start, pos, timing: chunks.append((start, pos.shape)))
    model.set_params(source="a", source_frame=60, target="b", target_frame=40, length=40, seed=3, regenerate=False)
    results = {}
    for every_ms in (0.0, 60_000.0):
        chunks.clear()
        model.stream_every_ms = every_ms
        model.request()
        results[every_ms] = model.wait(timeout_s=120)
        assert results[every_ms] is not None, model.last_error
    assert chunks == [(0, (1, 22, 3)), (1, (39, 22, 3))]
    assert len(results[60_000.0].times.per_frame) == 40
    np.testing.assert_allclose(results[60_000.0].positions, results[0.0].positions, atol=1e-9)


def test_a_newer_edit_cancels_the_older_run(model):
    seen = []
    model.generation_cancelled.connect(lambda gen: seen.append(("cancelled", gen)))
    model.transition_ready.connect(lambda r: seen.append(("ready", r.gen)))
    model.set_params(source="a", source_frame=60, target="b", target_frame=40, length=200, seed=0)
    first = model.latest_gen
    import time

    t0 = time.monotonic()  # let the first run start, then edit
    while not model.generating and time.monotonic() - t0 < 30:
        model.poll()
        time.sleep(0.005)
    model.set_params(length=40, seed=1)
    result = model.wait(timeout_s=120)
    assert result is not None and result.params.length == 40 and result.params.seed == 1
    assert ("ready", first) not in seen  # the 200-frame run never completed
    assert ("cancelled", first) in seen


def test_a_burst_of_edits_runs_the_first_at_once_and_merges_the_rest(worker_pool, scene_clips):
    m = AuthoringModel(worker_pool, debounce_s=0.3)
    try:
        a, b = scene_clips
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", source_frame=60, target="b", target_frame=40, length=16, regenerate=False)
        started = []
        m.generation_started.connect(started.append)
        m.set_params(source_frame=61)  # after a quiet spell: starts at once
        first = m.latest_gen
        for f in (62, 63, 64):  # a burst: merged into one run after the pause
            m.set_params(source_frame=f)
        result = m.wait(timeout_s=120)
        assert result.params.source_frame == 64
        assert set(started) <= {first, m.latest_gen} and m.latest_gen in started
    finally:
        m.close()


def test_a_loaded_clips_style_is_encoded_while_idle_so_a_style_edit_pays_none(worker_pool, scene_clips):
    """Prefetch: once a generation has started the engine worker, adding a clip has it encode the clip's style code
    while no request is pending, so the first edit that picks that clip's style spends no time encoding it (the
    engine memoises codes by content)."""
    from rsmt_studio.app.models.authoring import STYLE_OF_TARGET

    a, b = scene_clips
    lp = b.local_pos.copy()
    lp[:, 0, 0] += 10.0  # same motion 10 cm aside: a clip no other test has encoded (the worker is shared)
    fresh = replace(b, local_pos=lp)
    m = AuthoringModel(worker_pool, debounce_s=0.0)
    try:
        prefetched = []
        m.style_prefetched.connect(lambda key, ms: prefetched.append((key, ms)))
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", source_frame=60, target="b", target_frame=40, length=8, style=STYLE_OF_TARGET)
        assert m.wait(timeout_s=120) is not None, m.last_error  # the engine is up (a prefetch starts none)
        m.add_clip(fresh, "fresh")
        deadline = time.monotonic() + 120
        while "fresh" not in [k for k, _ in prefetched] and time.monotonic() < deadline:
            m.poll()
            time.sleep(0.01)
        assert [k for k, _ in prefetched] == ["a", "b", "fresh"]  # the clips loaded before, then the new one
        assert dict(prefetched)["fresh"] > 0  # it was encoded (the code's own encoding time)
        m.set_params(target="fresh", style=STYLE_OF_TARGET)
        result = m.wait(timeout_s=120)
        assert result is not None, m.last_error
        # the edit found the code ready: no encoding (milliseconds), only the FiLM-fold memo's lookup (microseconds)
        assert result.times.style_ms < 0.5
    finally:
        m.close()


def test_a_pending_edit_runs_before_a_style_prefetch(scene_clips):
    """The prefetch is the runner's idle work: a clip added while a run is in flight is encoded only after the
    edit queued behind that run (a fake engine records the order of calls)."""
    import threading

    class Engine:
        styles = ()

        def __init__(self) -> None:
            self.calls: list[tuple[str, object]] = []
            self.release = threading.Event()

        def style_code(self, clip):
            self.calls.append(("style", clip.name))

        def stream(self, source, source_frame, *args, **kwargs):
            self.calls.append(("stream", source_frame))
            self.release.wait(10)
            raise RuntimeError("no frames from a fake engine")
            yield

    a, b = scene_clips
    engine = Engine()
    m = AuthoringModel(lambda device: engine, debounce_s=0.0)
    try:
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", source_frame=60, target="b", target_frame=40)
        deadline = time.monotonic() + 10
        while ("stream", 60) not in engine.calls and time.monotonic() < deadline:
            time.sleep(0.005)
        m.add_clip(replace(a, name="late"), "late")  # while the first run is in flight
        m.set_params(source_frame=61)  # an edit queued behind it
        engine.release.set()
        while ("style", "late") not in engine.calls and time.monotonic() < deadline:
            time.sleep(0.005)
        assert engine.calls.index(("stream", 61)) < engine.calls.index(("style", "late"))
    finally:
        m.close()


def test_place_target_keeps_the_same_file_and_moves_another_rigidly(scene_clips):
    a, b = scene_clips
    same = place_target(a, 60, a, 100, 40)
    assert same is a
    moved = place_target(a, 60, b, 40, 40)
    ga, gb = b.fk()[0], moved.fk()[0]
    # rigid: distances between joints are unchanged, heights are unchanged
    d0 = np.linalg.norm(ga[40, 1] - ga[40, 10])
    d1 = np.linalg.norm(gb[40, 1] - gb[40, 10])
    assert math.isclose(d0, d1, rel_tol=1e-9)
    np.testing.assert_allclose(ga[..., 1], gb[..., 1], atol=1e-9)
    with pytest.raises(ValueError, match="joints"):
        from dataclasses import replace

        from rsmt_studio.motion.skeleton import Skeleton

        sk = a.skeleton
        small = Skeleton(names=sk.names[:3], parents=sk.parents[:3], offsets=sk.offsets[:3], channels=sk.channels[:3],
                         rotation_orders=sk.rotation_orders[:3], end_sites={})
        stitch(a, 60, a.slice(0, 5), replace(a, skeleton=small, local_pos=a.local_pos[:, :3],
                                             local_rot=a.local_rot[:, :3]), 0)


def test_a_request_the_model_cannot_serve_reports_one_line(model):
    failures = []
    model.generation_failed.connect(lambda gen, msg: failures.append(msg))
    model.clips["short"] = model.clips["a"].slice(0, 5)
    model.set_params(source="short", source_frame=4, target="b", target_frame=0, length=10)
    model.wait(timeout_s=60)
    assert failures and "\n" not in failures[0] and "frame" in failures[0]


def test_styles_of_the_engines_style_bank_are_offered_and_used(tmp_path, mef_cache_dir, scene_clips):
    """A style bank in the assets folder: its names reach the model, and a bank style generates."""
    from rsmt_studio.app.models.authoring import WorkerPool
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank
    from rsmt_studio.motion import features as F

    assets = tmp_path / "assets"
    assets.mkdir()
    for f in default_assets_dir().iterdir():
        if f.is_file():
            (assets / f.name).symlink_to(f)
    a, b = scene_clips
    bank = {}
    for name, clip in (("proud", a), ("tired", b)):
        mclip, ms = F.model_clip(clip)
        gpos, grot = F.global_arrays(mclip.slice(0, 120))
        bank[name] = F.style_features(gpos, grot, ms)
    StyleBank(bank).save(assets)
    pool = WorkerPool(assets=assets)
    m = AuthoringModel(pool, debounce_s=0.0)
    try:
        seen = []
        m.styles_changed.connect(seen.append)
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", target="b", source_frame=60, target_frame=40, length=16, style="tired")
        result = m.wait(timeout_s=180)
        assert result is not None, m.last_error
        assert seen and seen[-1] == ["proud", "tired"] and m.styles == ["proud", "tired"]
        assert result.times.style_ms > 0  # the bank entry was encoded for this transition
    finally:
        m.close()
        pool.close()


def test_a_target_on_another_rig_is_placed_and_stitched_on_the_sources(external_root, bandai_root):
    """CMU source (31 joints, 120 fps) and a Bandai target (22 joints, 30 fps): the placed target is on the CMU
    rig at 120 fps, facing the way the source faces, where the source's travel takes it, and the stitched
    clip is one clip on the CMU skeleton (what Export writes)."""
    from rsmt_studio.app.models.authoring import default_rigs, placed_frame
    from rsmt_studio.motion import read_bvh

    cmu = read_bvh(external_root / "pybvh" / "cmu_12_01_walk.bvh")
    take = read_bvh(bandai_root / "Bandai-Namco-Research-Motiondataset-2" / "data" / "dataset-2_walk_normal_002.bvh")
    n, length = 200, 20
    placed = place_target(cmu, n, take, 40, length)
    assert placed.skeleton is cmu.skeleton and placed.fps == cmu.fps
    k = placed_frame(take, 40, placed)
    assert k == 160
    roles = default_rigs().binding(cmu).roles.roles
    pos = placed.fk()[0]
    src = cmu.fk()[0]
    hips, head, foot = roles["hips"], roles["head"], roles["foot.L"]
    assert (pos[:, head, 1] - pos[:, foot, 1]).min() > 0.8 * (src[:, head, 1] - src[:, foot, 1]).min()  # upright

    def facing(p):
        f = np.cross(p[roles["upper_leg.L"]] - p[roles["upper_leg.R"]], [0, 1, 0])
        return f[[0, 2]] / np.linalg.norm(f[[0, 2]])

    assert float(facing(pos[k]) @ facing(src[n])) > 0.99  # turned to the source's facing
    travel = src[n, hips] - src[n - 36, hips]  # 9 model frames of context
    expected = src[n, hips] + travel / 36 * 4 * (length + 1)
    assert np.linalg.norm((pos[k, hips] - expected)[[0, 2]]) < 1.0  # CMU units (5.6 cm): where the walk leads
    stitched = stitch(cmu, n, cmu.slice(n + 1, n + 4 * (length + 1)), placed, k)
    assert stitched.skeleton is cmu.skeleton
    assert stitched.num_frames == n + 1 + 4 * (length + 1) - 1 + placed.num_frames - k


def test_streamed_model_frames_fill_the_source_timeline_at_its_own_rate():
    """At 120 fps a 40-frame transition covers 163 timeline frames; streamed 30 fps chunks are spread over
    them (linearly, for the preview), each chunk ending exactly on its last generated frame."""
    from rsmt_studio.app.models.authoring import _to_source_rate, transition_frames

    assert transition_frames(40, 30.0) == 40 and transition_frames(40, 120.0) == 163
    assert transition_frames(40, 60.0) == 81
    before = np.zeros((2, 3))
    chunk = np.arange(1, 9, dtype=float)[:, None, None] * np.ones((8, 2, 3))  # model frames 1..8 at x = k
    out = _to_source_rate(before, chunk, 4.0, 0, 163)
    assert out.shape == (32, 2, 3)
    np.testing.assert_allclose(out[3::4, 0, 0], np.arange(1, 9))  # every 4th frame is a model frame
    np.testing.assert_allclose(out[0, 0, 0], 0.25)  # the first is a quarter of the way from the context pose
    tail = _to_source_rate(chunk[-1], chunk[:2] + 8, 4.0, 39, 163)  # the last chunk stops at the span's end
    assert len(tail) == 163 - 156


def test_a_worker_that_died_is_replaced_by_a_fresh_one_on_the_next_edit(mef_cache_dir, scene_clips):
    """The studio's engine process killed under it (a crash, the OOM killer) between two edits: the next edit
    generates in a new worker instead of failing for the rest of the session ("engine worker exited with code N",
    the message a call that was running when it died gets, is tested in tests/inference/test_cli_and_worker.py)."""
    import os
    import signal

    from rsmt_studio.app.models.authoring import WorkerPool

    pool = WorkerPool()
    m = AuthoringModel(pool, debounce_s=0.0)
    failures = []
    m.generation_failed.connect(lambda gen, msg: failures.append(msg))
    try:
        a, b = scene_clips
        m.add_clip(a, "a")
        m.add_clip(b, "b")
        m.set_params(source="a", target="b", source_frame=60, target_frame=40, length=12)
        assert m.wait(timeout_s=600) is not None, m.last_error  # the worker's start loads the compiled graphs
        first = pool("cpu")
        os.kill(first.pid, signal.SIGKILL)
        first._proc.join(10)
        assert not first.is_alive
        m.set_params(length=14)
        result = m.wait(timeout_s=600)
        assert result is not None, m.last_error
        assert result.transition.num_frames > 0 and failures == []
        assert pool.restarts == 1 and pool("cpu") is not first and pool("cpu").pid != first.pid
    finally:
        m.close()
        pool.close()
