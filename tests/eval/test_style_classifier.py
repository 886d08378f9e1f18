"""The numpy style classifier (eval) computes what the torch one (training) does, and the shipped one loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rsmt_studio.motion import metrics as M

torch = pytest.importorskip("torch")
SC = pytest.importorskip("rsmt_studio.training.style_classifier")
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "style_classifier"


class _Data:
    """Just what `export` reads from MotionData."""

    class ms:
        names = ("Hips", "Spine")

    split_hash = "test"
    clip_names = np.array(["a", "b"])
    is_test = np.array([False, True])


@pytest.mark.parametrize("length", [1, 10, 37])
def test_numpy_forward_matches_torch(tmp_path, length):
    torch.manual_seed(0)
    net = SC.StyleClassifierNet(channels=24, n_classes=5, hidden=16)
    with torch.no_grad():
        net.input_mean.uniform_(-1, 1)
        net.input_std.uniform_(0.5, 2)
    net.eval()
    SC.export(net, ["a", "b", "c", "d", "e"], {"note": "random init"}, _Data(), tmp_path)
    clf = M.StyleClassifier.load(tmp_path)
    x = np.random.default_rng(length).normal(size=(3, length, 24)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(clf.logits(x), want, rtol=1e-4, atol=1e-4)
    assert clf.predict(x) == [clf.classes[i] for i in want.argmax(-1)]
    meta = json.loads((tmp_path / "style_classifier.json").read_text())
    assert "Bandai Namco Research" in meta["licence"] and "CC BY-NC 4.0" in meta["licence"]
    assert meta["test_keys_sha"] == SC.keys_sha(["b"])


def test_load_reports_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="style_classifier.json"):
        M.StyleClassifier.load(tmp_path)


def test_shipped_classifier_is_attributed_and_beats_chance():
    if not (SHIPPED / "style_classifier.json").is_file():
        pytest.skip("no shipped style classifier")
    clf = M.StyleClassifier.load(SHIPPED)
    meta = clf.meta
    assert "© 2022 Bandai Namco Research Inc." in meta["licence"]
    acc = meta["training"]["held_out_window_accuracy"]
    chance = 1.0 / len(clf.classes)
    for length in ("10", "20", "40"):
        assert acc[length] > 3 * chance, (length, acc[length])
    assert (SHIPPED / "style_classifier.safetensors").stat().st_size < 2_000_000
