"""Variants (issue #14, studio): N styles of one transition in one batched engine call, real worker and engine."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def authoring(worker_pool, scene_clips):
    from rsmt_studio.app.models.authoring import AuthoringModel

    m = AuthoringModel(worker_pool)
    src, tgt = (m.add_clip(c) for c in scene_clips)
    m.set_params(source=src, target=tgt, source_frame=20, target_frame=10, length=10, style="@target",
                 regenerate=False)
    yield m
    m.close()


def test_variants_are_one_batched_call_and_match_generate(authoring, worker_pool):
    from rsmt_studio.app.models.variants import VariantsModel, VariantSpec, default_specs

    engine = worker_pool("cpu")
    bank = engine.styles
    specs = default_specs(authoring.params, bank, 4)  # "@target" is not a bank name: it first, 3 bank styles
    assert specs[0].style == "@target" and len({s.style for s in specs}) == 4
    specs = [VariantSpec(s, 0) for s in bank[:3]] + [VariantSpec(bank[0], 7)]
    vm = VariantsModel(authoring)
    vm.generate(specs)
    variants = vm.wait(120)
    assert [v.spec for v in variants] == specs
    assert vm.batches == 1  # all four rows shared one set of graph calls
    p = authoring.params
    src, tgt = authoring.clips[p.source], authoring.clips[p.target]
    for v in variants:
        one = engine.generate(src, p.source_frame, tgt, p.target_frame, v.spec.style, p.length, seed=v.spec.seed)
        np.testing.assert_allclose(v.result.transition.local_rot, one.clip.local_rot, atol=1e-5)
        np.testing.assert_allclose(v.result.transition.local_pos, one.clip.local_pos, atol=1e-5)
        assert v.result.positions.shape[0] == v.result.stitched().num_frames
    assert not np.allclose(variants[0].result.transition.local_rot, variants[3].result.transition.local_rot)
    seeds = default_specs(p, bank, 3, mode="seeds")
    assert [s.seed for s in seeds] == [0, 1, 2] and {s.style for s in seeds} == {"@target"}

    vm.choose(variants[3])
    assert (authoring.params.style, authoring.params.seed) == (bank[0], 7)
    vm.close()


def test_variants_cancel_mid_run_then_run_again(authoring):
    import time

    from rsmt_studio.app.models.variants import VariantsModel

    # the longest transition the model makes, so the run outlasts the sleep on a fast machine (300 frames finished
    # within 0.3 s on one)
    authoring.set_params(length=1000, regenerate=False)
    vm = VariantsModel(authoring)
    cancelled = []
    vm.variants_cancelled.connect(lambda: cancelled.append(True))
    t0 = time.perf_counter()
    vm.generate(count=4)
    time.sleep(0.1)  # inside the batched graph calls
    vm.cancel()
    assert vm.wait(120) == [] and cancelled == [True]
    cancel_s = time.perf_counter() - t0
    authoring.set_params(length=1000, regenerate=False)
    t0 = time.perf_counter()
    vm.generate(count=4)
    assert len(vm.wait(120)) == 4  # the worker is usable after a cancelled batch
    assert cancel_s < time.perf_counter() - t0  # the cancelled run stopped early
    vm.close()


def test_studio_variants_dock_shows_side_by_side_and_uses_one(studio, qtbot):
    """The "Variants…" button: N variants in the scene (role "variant", offset sideways), "Use this one" makes
    the main transition that variant (style and seed), undoably."""
    with qtbot.waitSignal(studio.transition_shown, timeout=180_000):
        studio.open_default_scene()
    panel = studio.variants_panel
    panel.mode.setCurrentIndex(panel.mode.findData("styles"))
    panel.count.setValue(3)
    with qtbot.waitSignal(panel.variants_shown, timeout=120_000) as sig:
        studio.variants_button.click()
    variants = sig.args[0]
    assert len(variants) == 3 and panel.model.batches == 1
    assert variants[0].spec.style == studio.model.params.style
    chars = [c for c in studio.window.scene.characters if c.role == "variant"]
    assert len(chars) == 3 and all(c.positions.shape == studio.stitched_char.positions.shape for c in chars)
    gaps = [np.linalg.norm((c.positions - studio.stitched_char.positions)[0, 0]) for c in chars]
    assert 0 < gaps[0] < gaps[1] < gaps[2]  # side by side, away from the main transition
    before = studio.model.params
    with qtbot.waitSignal(studio.transition_shown, timeout=120_000):
        panel.use_buttons[2].click()
    p = studio.model.params
    assert (p.style, p.seed) == (variants[2].spec.style, variants[2].spec.seed) != (before.style, before.seed)
    # the variant came from a batch-3 call, the main transition from batch-1 calls started with the one-step graph:
    # float32 sums in another order (iteration 10's weights: up to 2.1e-5 in a quaternion component, ~0.002 degrees)
    np.testing.assert_allclose(studio.model.result.transition.local_rot, variants[2].result.transition.local_rot,
                               atol=5e-5)
    assert not [c for c in studio.window.scene.characters if c.role == "variant"]
    studio.window.actions["undo"].trigger()
    assert studio.model.params.style == before.style


def test_worker_generate_batch_reports_a_bad_row_and_serves_the_others(worker_pool, scene_clips):
    from rsmt_studio.inference.batched import Request
    from rsmt_studio.inference.engine import Transition

    src, tgt = scene_clips
    engine = worker_pool("cpu")
    out = engine.generate_batch([Request(src, 20, tgt, 10, engine.styles[0], 0, 0),
                                 Request(src, 20, tgt, 10, engine.styles[1], 8, 1)])
    bad, good = out["results"]
    assert bad[:2] == ("error", "TransitionError") and "length" in bad[2]
    assert isinstance(good, Transition) and good.clip.num_frames > 0 and out["batches"] == 1


def test_a_failing_variant_reports_which_one(authoring):
    from rsmt_studio.app.models.variants import VariantsModel, VariantSpec

    vm = VariantsModel(authoring)
    failed = []
    vm.variants_failed.connect(failed.append)
    vm.generate([VariantSpec("@target", 0), VariantSpec("no-such-style", 0)])
    assert vm.wait(120) == [] and len(failed) == 1 and failed[0].startswith("no-such-style · seed 0: ")
    vm.close()
