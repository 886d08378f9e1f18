"""`rsmt-studio batch PLAN --out DIR` as a real subprocess: outputs, failures by reason, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import BOW, REPO, RUN, STEPS, cli

pytestmark = pytest.mark.slow


def _style() -> str:
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank

    return StyleBank.load(default_assets_dir()).names[0]


def test_batch_writes_rows_reports_failures_and_skips_done_rows(serve_cache_dir, library, tmp_path):
    style = _style()
    plan = tmp_path / "plan.csv"
    plan.write_text(
        "source,source_frame,target,target_frame,style,length,seed,output\n"
        f"{library / RUN},40,{library / BOW},80,{style},24,3,a/one.bvh\n"
        f"{library / BOW},30,{library / RUN},50,{style},10,,two.bvh\n"
        f"{library / RUN},40,{library / BOW},80,no-such-style,10,1,bad-style.bvh\n"
        f"{library / RUN},2,{library / BOW},80,{style},10,1,bad-frame.bvh\n"
        f"{library / 'missing.bvh'},40,{library / BOW},80,{style},10,1,missing.bvh\n"
        f"{library / RUN},40,{library / BOW},eighty,{style},10,1,bad-row.bvh\n")
    out = tmp_path / "out"
    r = cli("batch", str(plan), "--out", str(out), "--steps-per-call", STEPS, "--block", "4")
    assert r.returncode == 1, r.stderr
    assert "2 written, 0 skipped (done before), 4 failed of 6 rows" in r.stdout
    for reason in ("unknown_style: 1", "frame_out_of_range: 1", "missing_file: 1", "bad_row: 1"):
        assert f"failed: {reason}" in r.stdout
    failures = [json.loads(x) for x in (out / "batch-failures.jsonl").read_text().splitlines()]
    assert {f["output"]: f["reason"] for f in failures} == {
        "bad-style.bvh": "unknown_style", "bad-frame.bvh": "frame_out_of_range", "missing.bvh": "missing_file",
        "bad-row.bvh": "bad_row"}
    assert "target_frame" in next(f["message"] for f in failures if f["reason"] == "bad_row")
    assert sorted(p.name for p in out.rglob("*.bvh")) == ["one.bvh", "two.bvh"]
    # the first row is the request test_service compares with `generate`: the same bytes here
    ref = tmp_path / "generate.bvh"
    g = cli("generate", "--source", str(library / RUN), "--source-frame", "40", "--target", str(library / BOW),
            "--target-frame", "80", "--style", style, "--frames", "24", "--seed", "3", "--steps-per-call", STEPS,
            "--out", str(ref))
    assert g.returncode == 0, g.stderr
    assert (out / "a" / "one.bvh").read_text() == ref.read_text()
    # a second run skips the written rows and leaves them untouched
    mtime = (out / "two.bvh").stat().st_mtime_ns
    r2 = cli("batch", str(plan), "--out", str(out), "--steps-per-call", STEPS)
    assert r2.returncode == 1 and "0 written, 2 skipped (done before), 4 failed of 6 rows" in r2.stdout
    assert (out / "two.bvh").stat().st_mtime_ns == mtime


def test_batch_resumes_after_a_kill(serve_cache_dir, library, tmp_path):
    """JSON-lines plan of 24 rows in blocks of 4; SIGKILL once some are written; the re-run does the rest only."""
    from rsmt_studio.motion.bvh_reader import read_bvh

    style = _style()
    rows = [{"source": RUN, "source_frame": 30 + i, "target": BOW, "target_frame": 60 + i, "style": style,
             "length": 20, "seed": i, "output": f"t{i:02d}.bvh"} for i in range(24)]
    for name in (RUN, BOW):
        (tmp_path / name).symlink_to(library / name)  # plan paths are relative to the plan's folder
    plan = tmp_path / "plan.jsonl"
    plan.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rsmt_studio.app.cli", "batch", str(plan), "--out", str(out),
                             "--steps-per-call", STEPS, "--block", "4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ))
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if "written 4," in line or "written 8," in line:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    done_before = sorted(p.name for p in out.glob("*.bvh"))
    assert 4 <= len(done_before) < 24, done_before
    for name in done_before:  # written atomically: every file there is complete
        assert read_bvh(out / name).num_frames == 20
    r = cli("batch", str(plan), "--out", str(out), "--steps-per-call", STEPS, "--block", "4")
    assert r.returncode == 0, r.stderr
    assert f"{24 - len(done_before)} written, {len(done_before)} skipped" in r.stdout
    assert "[24/24]" in r.stderr
    for i in range(24):
        assert read_bvh(out / f"t{i:02d}.bvh").num_frames == 20
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
