"""`rsmt-studio batch --ray` on a local Ray cluster with two engine actors: the same files as one process."""

from __future__ import annotations

import filecmp
import json

import pytest

from .conftest import BOW, RUN, STEPS, cli

pytestmark = pytest.mark.slow


def test_ray_with_two_workers_writes_the_same_files_as_one_process(serve_cache_dir, library, tmp_path):
    pytest.importorskip("ray", reason="the 'scale' extra (ray) is not installed")
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank

    styles = StyleBank.load(default_assets_dir()).names
    rows = [{"source": str(library / (RUN if i % 2 else BOW)), "source_frame": 20 + i,
             "target": str(library / (BOW if i % 3 else RUN)), "target_frame": 40 + i, "style": styles[i % 3],
             "length": 10 + i, "seed": i, "output": f"r{i:02d}.bvh"} for i in range(12)]
    rows.append({**rows[0], "style": "no-such-style", "output": "bad.bvh"})
    plan = tmp_path / "plan.jsonl"
    plan.write_text("".join(json.dumps(r) + "\n" for r in rows))
    one, ray = tmp_path / "one", tmp_path / "ray"
    r1 = cli("batch", str(plan), "--out", str(one), "--steps-per-call", STEPS, "--block", "3")
    r2 = cli("batch", str(plan), "--out", str(ray), "--steps-per-call", STEPS, "--block", "3", "--ray",
             "--workers", "2")
    assert r1.returncode == 1 and r2.returncode == 1, (r1.stderr[-2000:], r2.stderr[-2000:])
    assert "ray: 2 engine actors on cpu" in r2.stderr
    for r in (r1, r2):
        assert "12 written, 0 skipped (done before), 1 failed of 13 rows" in r.stdout
        assert "failed: unknown_style: 1" in r.stdout
    names = sorted(p.name for p in one.glob("*.bvh"))
    assert len(names) == 12 and names == sorted(p.name for p in ray.glob("*.bvh"))
    _, mismatch, errors = filecmp.cmpfiles(one, ray, names, shallow=False)
    assert not mismatch and not errors
