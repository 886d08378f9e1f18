"""Compile-cache keys name the CPU target, so a shared or shipped cache never loads code the CPU cannot run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rsmt_studio.inference.runtime import cpu_target
from rsmt_studio.inference.runtime.cache import GraphSpec

V3 = cpu_target.LEVEL_FLAGS["x86-64-v3"] | cpu_target.LEVEL_FLAGS["x86-64-v2"] | {"sse2", "avx512vnni"}
V4 = V3 | cpu_target.LEVEL_FLAGS["x86-64-v4"]


def test_feature_level_needs_every_flag_of_the_level_and_below():
    assert cpu_target.feature_level(frozenset(V4)) == "x86-64-v4"
    assert cpu_target.feature_level(frozenset(V3)) == "x86-64-v3"
    assert cpu_target.feature_level(frozenset(V4 - {"avx512vl"})) == "x86-64-v3"  # v4 needs all of F/BW/CD/DQ/VL
    assert cpu_target.feature_level(frozenset(V4 - {"avx2"})) == "x86-64-v2"  # AVX-512 without AVX2 is not v4
    assert cpu_target.feature_level(frozenset()) is None
    assert cpu_target.can_run("x86-64-v3", frozenset(V4)) and not cpu_target.can_run("x86-64-v4", frozenset(V3))


def test_cpu_flags_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_target.cpu_flags(info) == {"fpu", "sse2", "avx2"}
    assert cpu_target.cpu_flags(tmp_path / "missing") == frozenset()


def test_this_machine_has_a_target_it_can_run():
    target = cpu_target.host_target()
    assert cpu_target.can_run(target)
    with open("/proc/cpuinfo") as f:
        avx512 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= cpu_target.cpu_flags()
    assert f.closed and (target == "x86-64-v4") == avx512


def _spec(**kw) -> GraphSpec:
    return GraphSpec("deephase", "rsmt_studio.inference.graphs.networks", {"n": 1}, "cpu", **kw)


def test_cache_key_and_file_name_include_the_cpu_target(monkeypatch, tmp_path):
    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(cpu_target.TARGET_ENV, raising=False)
    v3, v4 = _spec(cpu_target="x86-64-v3"), _spec(cpu_target="x86-64-v4")
    assert v3.key() != v4.key()
    assert "x86-64-v3" in v3.mef_path().name and "x86-64-v4" in v4.mef_path().name
    assert _spec().key() == _spec(cpu_target=cpu_target.host_target()).key()  # default: this machine's level
    monkeypatch.setenv(cpu_target.TARGET_ENV, "x86-64-v3")  # the override builds portable models
    assert _spec().key() == v3.key()


def test_the_compile_worker_gets_the_resolved_target(monkeypatch):
    """The child compiles for the target the parent keyed on, whatever the child's environment says."""
    monkeypatch.setenv(cpu_target.TARGET_ENV, "x86-64-v3")
    spec = _spec()
    key, payload = spec.key(), json.dumps(spec.to_json())
    monkeypatch.setenv(cpu_target.TARGET_ENV, "x86-64-v4")
    assert GraphSpec.from_json(json.loads(payload)).key() == key


def test_one_worker_compiles_for_one_target():
    from rsmt_studio.inference.runtime.compile_worker import set_cpu_target

    with pytest.raises(ValueError, match="one CPU target"):
        set_cpu_target([_spec(cpu_target="x86-64-v3"), _spec(cpu_target="x86-64-v4")])


def test_worker_sets_the_virtual_target_in_max():
    """In a fresh process (MAX takes the target once): the worker's call reaches MAX's driver."""
    code = ("from rsmt_studio.inference.runtime.cache import GraphSpec\n"
            "from rsmt_studio.inference.runtime.compile_worker import set_cpu_target\n"
            "from max.driver import get_virtual_cpu_target\n"
            "set_cpu_target([GraphSpec('g', 'm', {}, 'cpu', cpu_target='x86-64-v3')])\n"
            "print(get_virtual_cpu_target())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "x86-64-v3"


def test_a_target_this_cpu_cannot_run_is_refused_before_compiling(monkeypatch, tmp_path):
    from rsmt_studio.inference.runtime.compiler import CompileError, ensure_compiled

    monkeypatch.setenv("RSMT_STUDIO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cpu_target, "can_run", lambda target, flags=None: False)
    with pytest.raises(CompileError, match="cannot run"):
        ensure_compiled([_spec(cpu_target="x86-64-v4")])
