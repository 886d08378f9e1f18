"""`rsmt-studio generate` / `compile` as real subprocesses, the MEF cache, and the idle-stopped worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), cwd=REPO, check=False)


def _bandai(bandai_root: Path, name: str) -> Path:
    return bandai_root / "Bandai-Namco-Research-Motiondataset-1" / "data" / name


def test_generate_cli_writes_bvh(engine, test_assets, bandai_root, tmp_path):
    from rsmt_studio.motion.bvh_reader import read_bvh

    src = _bandai(bandai_root, "dataset-1_run_active_001.bvh")
    tgt = _bandai(bandai_root, "dataset-1_bow_angry_001.bvh")
    out = tmp_path / "t.bvh"
    r = _cli("generate", "--source", str(src), "--source-frame", "60", "--target", str(tgt), "--target-frame",
             "80", "--style", "calm", "--frames", "24", "--device", "cpu", "--seed", "3", "--out", str(out),
             "--assets", str(test_assets), "--steps-per-call", "40", "--no-foot-lock")
    assert r.returncode == 0, r.stderr
    assert "sampler" in r.stdout and "transition total" in r.stdout
    clip = read_bvh(out)
    source = read_bvh(src)
    assert clip.num_frames == 24 and clip.fps == pytest.approx(source.fps)
    assert clip.skeleton.names == source.skeleton.names
    # Same request in-process gives the same motion (the file is written with 6 decimals).
    ref = engine.generate(source, 60, read_bvh(tgt), 80, "calm", 24, seed=3, foot_lock=False).clip
    assert np.abs(clip.global_positions() - ref.global_positions()).max() < 1e-3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--style": "nope"}, "unknown style 'nope'"),
        ({"--source-frame": "2"}, "source frame 2 out of range"),
        ({"--target-frame": "999999"}, "target frame 999999 out of range"),
        ({"--source": "MISSING.bvh"}, "MISSING.bvh"),
    ],
)
def test_generate_cli_bad_input_exits_2(engine, test_assets, bandai_root, tmp_path, change, message):
    args = {"--source": str(_bandai(bandai_root, "dataset-1_run_active_001.bvh")), "--source-frame": "60",
            "--target": str(_bandai(bandai_root, "dataset-1_bow_angry_001.bvh")), "--target-frame": "80",
            "--style": "calm", "--frames": "10", "--out": str(tmp_path / "x.bvh"), "--assets": str(test_assets),
            "--steps-per-call": "40"}
    args |= change
    r = _cli("generate", *[s for kv in args.items() for s in kv])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "x.bvh").exists()


def test_generate_cli_incompatible_skeleton_exits_2(engine, test_assets, bandai_root, tmp_path):
    bad = tmp_path / "tiny.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 6 Xposition Yposition Zposition "
                   "Zrotation Xrotation Yrotation\n  JOINT LeftUpLeg\n  {\n    OFFSET 10 0 0\n    CHANNELS 3 "
                   "Zrotation Xrotation Yrotation\n    End Site\n    {\n      OFFSET 0 -40 0\n    }\n  }\n}\n"
                   "MOTION\nFrames: 12\nFrame Time: 0.0333333\n" + "0 90 0 0 0 0 0 0 0\n" * 12)
    r = _cli("generate", "--source", str(_bandai(bandai_root, "dataset-1_run_active_001.bvh")), "--source-frame",
             "60", "--target", str(bad), "--target-frame", "5", "--style", "calm", "--frames", "10", "--out",
             str(tmp_path / "x.bvh"), "--assets", str(test_assets), "--steps-per-call", "40")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "tiny.bvh" in r.stderr


def test_compile_cli_reports_cache_state(engine, test_assets):
    r = _cli("compile", "--assets", str(test_assets), "--steps-per-call", "40", "--list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5 and any(" steps1 " in line for line in lines)  # the studio's one-step first call too
    assert sum(line.startswith("built") for line in lines if " steps1 " not in line) == 4  # the engine's
    r = _cli("compile", "--assets", str(test_assets), "--steps-per-call", "40")
    assert r.returncode == 0 and "already compiled" in r.stderr and "5 graphs ready" in r.stdout


def test_mef_cache_key_ignores_weight_values_but_not_structure(engine):
    from dataclasses import replace

    from rsmt_studio.inference.graphs import model_specs

    same = model_specs(engine.dims, "cpu", engine.steps_per_call)
    assert all(s.mef_path() == engine.specs[k].mef_path() for k, s in same.items())
    other = model_specs(replace(engine.dims, n_phases=engine.dims.n_phases + 1), "cpu", engine.steps_per_call)
    assert all(s.mef_path() != engine.specs[k].mef_path() for k, s in other.items())


def test_second_engine_loads_mefs_without_compiling(engine, test_assets):
    from rsmt_studio.inference.engine import TransitionEngine

    t0 = time.perf_counter()
    again = TransitionEngine(test_assets, device="cpu", steps_per_call=engine.steps_per_call)
    assert again.compile_wait_ms < 1000  # cache hit: no child process compiled anything
    assert (time.perf_counter() - t0) < 20


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_streams_and_is_stopped_when_idle(engine, test_assets, bandai_clips):
    from rsmt_studio.inference.worker import EngineWorker, WorkerError

    source, target = bandai_clips
    with EngineWorker(test_assets, device="cpu", steps_per_call=engine.steps_per_call, idle_stop_s=0.3) as worker:
        items = list(worker.stream(source, 60, target, 80, "calm", 16, seed=1))
        assert items[-1].clip.num_frames == 16
        ref = engine.generate(source, 60, target, 80, "calm", 16, seed=1).clip
        assert np.allclose(items[-1].clip.local_rot, ref.local_rot, atol=1e-6)
        time.sleep(0.8)
        state = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert worker.is_stopped and state == "T"
        before = _cpu_seconds(worker.pid)
        time.sleep(1.0)
        assert _cpu_seconds(worker.pid) - before == 0.0  # a stopped process spends nothing
        # The next request resumes it transparently.
        again = worker.generate(source, 60, target, 80, "calm", 8, seed=1)
        assert again.clip.num_frames == 8 and not worker.is_stopped
        # A worker whose process died says so (CI once saw a broken pipe surface as an UnboundLocalError).
        os.kill(worker.pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.raises(WorkerError, match="exited with code -9"):
            worker.generate(source, 60, target, 80, "calm", 8, seed=1)
        with pytest.raises(WorkerError, match="exited with code -9"):
            list(worker.stream(source, 60, target, 80, "calm", 8, seed=1))


def test_compile_reports_progress_and_can_be_cancelled(mef_cache_dir):
    """A compile in the child process reports `start` then is stopped on cancel; nothing half-written stays."""
    import uuid

    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.graphs.gpu.chain_graph import chain_config
    from rsmt_studio.inference.runtime.cache import GraphSpec
    from rsmt_studio.inference.runtime.compiler import CompileCancelled, ensure_compiled
    from rsmt_studio.inference.weights import load_assets

    config = {**chain_config(load_assets(default_assets_dir()).dims, 8), "salt": uuid.uuid4().hex}
    spec = GraphSpec("chain_cancelled", "rsmt_studio.inference.graphs.gpu.chain_graph", config, "cpu")
    events: list[dict] = []
    with pytest.raises(CompileCancelled):
        ensure_compiled([spec], progress=events.append, cancel=lambda: any(e["event"] == "start" for e in events))
    assert [e["event"] for e in events][:1] == ["start"]
    assert not spec.is_compiled()
    assert not list(spec.mef_path().parent.glob(f".{spec.mef_path().name}.*.tmp"))
