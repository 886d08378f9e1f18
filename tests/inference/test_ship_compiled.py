"""The compiled CPU models shipped in assets/compiled (inference/builders/ship_compiled.py): up to date with the graph
code, installed instead of compiling, correct on both shipped CPU targets, and portable where they claim to be."""

from __future__ import annotations

import json
import lzma
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from rsmt_studio.inference.builders import ship_compiled as sc
from rsmt_studio.inference.runtime import cpu_target
from rsmt_studio.inference.runtime.cache import CACHE_ENV


def test_shipped_compiled_models_are_up_to_date():
    """Fails when the graph code (graphs/cpu.py, networks.py, nets.py, blocks.py), MAX or the shipped weights changed and the
    shipped models were not rebuilt."""
    reasons = sc.stale_reasons()
    assert not reasons, ("the shipped compiled models in assets/compiled are stale:\n  " + "\n  ".join(reasons)
                         + f"\nregenerate them with: {sc.REGENERATE}")


def test_a_graph_code_change_makes_them_stale(monkeypatch):
    monkeypatch.setattr(sc, "_source_hash", lambda module, device="cpu": "0" * 16)  # as after an edit of nets.py
    reasons = sc.stale_reasons()
    assert len(reasons) == len(sc.TARGETS) * 5  # deephase, style, prepare, steps40 and the studio's steps1
    assert all("graph code changed" in r for r in reasons)


def test_install_checks_key_and_checksum(tmp_path, monkeypatch):
    """Only a model whose key matches and whose bytes match the manifest is installed; the rest compile."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    folder = tmp_path / "ship"
    shutil.copytree(sc.ship_dir(), folder)
    target = cpu_target.host_target()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["targets"][target]["deephase"]["key"] = "0" * 20  # built from other graph code
    manifest["targets"][target]["style"]["sha256"] = "0" * 64  # a damaged file
    (folder / "manifest.json").write_text(json.dumps(manifest))
    specs = sc.app_specs(target)
    events: list[dict] = []
    installed = sc.install_shipped(specs.values(), events.append, folder)
    assert sorted(installed) == sorted([specs["prepare"].name, specs["steps"].name, specs["steps_first"].name])
    assert not specs["deephase"].is_compiled() and not specs["style"].is_compiled()
    assert specs["steps"].is_compiled() and [e["event"] for e in events] == ["shipped"] * 3
    assert sc.install_shipped(specs.values(), events.append, folder) == []  # already in the cache: left alone


def _scene():
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.motion.bvh_reader import read_bvh

    scene = default_assets_dir() / "default_scene"
    return read_bvh(scene / "generated_walk_proud.bvh"), read_bvh(scene / "generated_walk_tired.bvh")


def _cold_engine(cache, monkeypatch, target: str | None = None, first_step: bool = False):
    """The shipped engine on an empty MEF cache: every graph must come from the shipped models."""
    from rsmt_studio.inference.engine import TransitionEngine

    monkeypatch.setenv(CACHE_ENV, str(cache))
    if target is not None:
        monkeypatch.setenv(cpu_target.TARGET_ENV, target)
    events: list[dict] = []
    t0 = time.perf_counter()
    engine = TransitionEngine(device="cpu", progress=events.append, first_step=first_step)
    seconds = time.perf_counter() - t0
    assert [e for e in events if e["event"] in ("start", "progress", "done")] == []  # nothing compiled
    assert sorted(e["name"] for e in events) == sorted(s.name for s in engine.specs.values())
    return engine, seconds


def test_engine_starts_from_shipped_models_without_compiling(tmp_path, monkeypatch):
    engine, seconds = _cold_engine(tmp_path, monkeypatch)
    assert seconds < 30, f"engine start from shipped models took {seconds:.1f} s"
    source, target = _scene()
    result = engine.generate(source, 60, target, 40, "tired", 40, seed=0)
    pos = result.clip.global_positions()
    assert pos.shape[0] == 40 and np.isfinite(pos).all()
    step = np.linalg.norm(np.diff(pos[:, 0], axis=0), axis=-1)  # the root moves like a walk, no jumps
    assert step.max() < 20 * max(float(np.median(step)), 0.1)


def test_the_studio_engine_streams_its_first_frame_after_one_step(tmp_path, monkeypatch):
    """The studio's engine (`first_step`) starts a streamed transition with the shipped one-step graph, so the
    first frame is on screen after one sampler step; the rest comes 40 steps a call. Same transition as generate()
    (the same maths, another compiled graph: float rounding only)."""
    from rsmt_studio.inference.engine import Transition

    engine, _ = _cold_engine(tmp_path, monkeypatch, first_step=True)
    assert engine.specs["steps_first"].name == "steps1"
    source, target = _scene()
    items = list(engine.stream(source, 60, target, 40, "tired", 20, seed=1))
    chunks, final = items[:-1], items[-1]
    assert isinstance(final, Transition)
    assert [(ch.start, ch.clip.num_frames) for ch in chunks] == [(0, 1), (1, 19)]
    assert final.timings.calls == 1 + 2  # prepare, then 1 step and one call of 40 (19 used, 21 held as padding)
    whole = engine.generate(source, 60, target, 40, "tired", 20, seed=1)  # one call of 40 steps
    assert whole.timings.calls == 1 + 1
    assert float(np.abs(final.clip.global_positions() - whole.clip.global_positions()).max()) < 1e-2  # cm


@pytest.mark.skipif(not cpu_target.can_run("x86-64-v4"), reason="needs an AVX-512 CPU to run both targets")
def test_v3_and_v4_models_give_the_same_transition(tmp_path, monkeypatch):
    source, target = _scene()
    got = {}
    for t in sc.TARGETS:
        engine, _ = _cold_engine(tmp_path / t, monkeypatch, t)
        assert all(s.target() == t for s in engine.specs.values())
        got[t] = engine.generate(source, 60, target, 40, "tired", 40, seed=3).clip.global_positions()
    assert float(np.abs(got["x86-64-v3"] - got["x86-64-v4"]).max()) < 1e-2  # cm


def _disassembly(mef: bytes, tmp_path) -> str:
    """objdump of every x86-64 object inside a MEF (they start at each ELF magic)."""
    starts = [m.start() for m in re.finditer(rb"\x7fELF", mef)]
    assert starts, "no machine code found in the MEF"
    text = []
    for i, start in enumerate(starts):
        obj = tmp_path / f"obj{i}.o"
        obj.write_bytes(mef[start:])
        text.append(subprocess.run(["objdump", "-d", str(obj)], capture_output=True, text=True, check=True).stdout)
    return "\n".join(text)


@pytest.mark.slow  # ~30 s: disassembles ~70 MB of machine code
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs binutils' objdump")
def test_v3_models_hold_no_avx512_code(tmp_path):
    """The AVX2 build really is AVX2 (no zmm, xmm16-31/ymm16-31 or opmask registers: it cannot SIGILL on an
    AVX2-only CPU), and the AVX-512 build really uses AVX-512 (so the check can see it)."""
    manifest = sc.load_manifest()
    checks = [("x86-64-v3", name, False) for name in manifest["targets"]["x86-64-v3"]]
    checks.append(("x86-64-v4", "deephase", True))
    for target, name, expect_avx512 in checks:
        entry = manifest["targets"][target][name]
        code = _disassembly(lzma.decompress((sc.ship_dir() / entry["file"]).read_bytes()), tmp_path)
        avx512 = len(re.findall(r"%zmm\d+|\{%k[1-7]\}|%[xy]mm(?:1[6-9]|2\d|3[01])\b", code))  # EVEX-only regs
        assert (avx512 > 0) == expect_avx512, f"{target}/{name}: {avx512} AVX-512 operands"
