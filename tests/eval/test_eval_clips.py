"""`rsmt-studio eval --clips`: the benchmark on a user's own clips (any rig), through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_eval_scores_a_cmu_clip_and_reports_an_unmappable_one(external_root, tmp_path):
    chain = tmp_path / "chain.bvh"
    chain.write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation "
                     "Xrotation Yrotation\n JOINT A\n {\n  OFFSET 0 10 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
                     "  End Site\n  {\n   OFFSET 0 5 0\n  }\n }\n}\nMOTION\nFrames: 2\nFrame Time: 0.0333333\n"
                     + "0 0 0 0 0 0 0 0 0\n" * 2)
    out = tmp_path / "eval.json"
    run = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "eval", "--clips",
                          str(external_root / "pybvh" / "cmu_12_01_walk.bvh"), str(chain), "--lengths", "10",
                          "--stride", "30", "--limit", "2", "--json", str(out)], check=False, capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    cmu = result["clips"]["cmu_12_01_walk.bvh"]
    row = cmu["lengths"]["10"]
    assert cmu["rig"].startswith("mapped") and row["windows"] == 2
    for method in ("rsmt", "slerp", "inertialization", "zero_velocity"):
        assert row[method]["l2p"] > 0 and row[method]["mean_cm"] > 0
    # the model is far closer to the real frames than holding the last pose
    assert row["rsmt"]["mean_cm"] < 0.5 * row["zero_velocity"]["mean_cm"]
    assert "no hips" in result["clips"]["chain.bvh"]["error"]
    assert "| cmu_12_01_walk.bvh | mapped (19 roles) | 10 | 2 |" in run.stdout
