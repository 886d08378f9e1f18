"""The shipped style bank holds style *codes* (FiLM caches), tied to the weights they were made with."""

from __future__ import annotations

import shutil

import numpy as np
import pytest


def test_bank_code_round_trip_and_engine_uses_it(engine, test_assets, bandai_clips, tmp_path):
    from rsmt_studio.inference.engine import CACHE_NAMES, TransitionEngine
    from rsmt_studio.inference.style_bank import StyleBank

    src, tgt = bandai_clips
    encoded = engine.style_code(tgt)  # the style encoder's caches for a real clip
    folder = tmp_path / "assets"
    shutil.copytree(test_assets, folder)
    entries = {f"brisk/{n}": a for n, a in zip(CACHE_NAMES, encoded.arrays)}
    StyleBank(entries, {"weights_hash": engine.assets.weights_hash()}).save(folder)

    bank = StyleBank.load(folder)
    assert bank.names == ["brisk"] and bank.has_code("brisk")
    for stored, original in zip(bank.code("brisk", CACHE_NAMES), encoded.arrays):
        assert stored.dtype == np.float32 and stored.shape == original.shape
        np.testing.assert_allclose(stored, original, rtol=2e-3, atol=2e-3)  # stored as float16

    eng = TransitionEngine(folder, device="cpu", steps_per_call=engine.steps_per_call)
    code = eng.style_code("brisk")
    assert code.encode_ms == 0.0  # used as stored, not re-encoded
    by_name = eng.generate(src, 40, tgt, 30, "brisk", 20, seed=0).clip.global_positions()
    by_clip = eng.generate(src, 40, tgt, 30, tgt, 20, seed=0).clip.global_positions()
    assert np.abs(by_name - by_clip).max() < 0.5  # cm: only the float16 rounding of the code differs


def test_bank_made_with_other_weights_is_refused(engine, test_assets, tmp_path):
    from rsmt_studio.inference.engine import CACHE_NAMES, TransitionEngine, TransitionError
    from rsmt_studio.inference.style_bank import StyleBank

    folder = tmp_path / "assets"
    shutil.copytree(test_assets, folder)
    code = engine.style_code("calm")
    StyleBank({f"calm2/{n}": a for n, a in zip(CACHE_NAMES, code.arrays)}, {"weights_hash": "0" * 16}).save(folder)
    eng = TransitionEngine(folder, device="cpu", steps_per_call=engine.steps_per_call)
    with pytest.raises(TransitionError, match="made with other weights"):
        eng.style_code("calm2")


def test_shipped_bank_matches_shipped_weights():
    """The committed bank covers every training style and was made with the committed weights."""
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank
    from rsmt_studio.inference.weights import load_assets

    folder = default_assets_dir()
    bank = StyleBank.load(folder)
    assets = load_assets(folder)
    assert bank.metadata["weights_hash"] == assets.weights_hash()
    assert set(bank.names) == set(assets.manifest["skeleton"]["styles"])
    assert all(bank.has_code(n) for n in bank.names)
    assert "CC BY-NC 4.0" in bank.metadata["licence"]
