"""Does compiling a graph stall inference that is already running? In-process vs child-process compile.

    python bench/compile_stall.py --assets DIR [--json OUT.json]

A loaded `steps` model is executed at 60 Hz (batch 1) for the whole measurement while a *new* graph (an MLP
with a random static width, so MAX's own cache cannot serve it) is compiled (a) in this process on a
background thread (`session.load`), then (b) by `ensure_compiled` in a child process (what the app does).
Reported: per-call latency median / p95 / max during each compile, and the compile's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np


def mlp_graph_module_config(width: int) -> dict:
    return {"width": width}


def build_graph(config: dict, device_ref):
    """A 4-layer ELU MLP with static widths (new widths = a graph MAX has never compiled)."""
    from max.dtype import DType
    from max.graph import Graph, TensorType, ops

    w = int(config["width"])
    with Graph(f"stall_mlp_{w}", input_types=[TensorType(DType.float32, ("batch", w), device=device_ref)]) as g:
        x = g.inputs[0].tensor
        rng = np.random.default_rng(w)
        for _ in range(4):
            m = ops.constant(rng.normal(0, 0.05, (w, w)).astype(np.float32), DType.float32, device=device_ref)
            x = x @ m
            x = ops.where(x > 0, x, ops.exp(ops.min(x, 0.0)) - 1.0)
        g.output(x)
    return g


def run_loop(step, stop: threading.Event, out: list[float]) -> None:
    period = 1 / 60
    nxt = time.perf_counter()
    while not stop.is_set():
        t0 = time.perf_counter()
        step()
        out.append((time.perf_counter() - t0) * 1e3)
        nxt += period
        time.sleep(max(0.0, nxt - time.perf_counter()))


def summary(lat: list[float], seconds: float) -> dict:
    lat_sorted = sorted(lat)
    return {"calls": len(lat), "median_ms": round(statistics.median(lat), 3),
            "p95_ms": round(lat_sorted[int(0.95 * (len(lat) - 1))], 3), "max_ms": round(max(lat), 3),
            "compile_s": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=Path, required=True)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    bench_dir = str(Path(__file__).resolve().parent)
    sys.path.insert(0, bench_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [bench_dir, os.environ.get("PYTHONPATH")]))
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.runtime.cache import GraphSpec
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.training.config import RSMTConfig

    from inference import MaxRunner, random_problem  # bench/inference.py

    cfg = RSMTConfig.from_dict(json.loads((args.assets / "manifest.json").read_text())["config"])
    engine = TransitionEngine(args.assets, device="cpu", steps_per_call=1)
    runner = MaxRunner(engine, random_problem(cfg, 1))
    report = {}
    base: list[float] = []
    stop = threading.Event()
    th = threading.Thread(target=run_loop, args=(runner.frame, stop, base))
    th.start()
    time.sleep(3)
    stop.set()
    th.join()
    report["no_compile"] = summary(base, 0.0)
    rng = np.random.default_rng(int(uuid.uuid4().int % 2**32))
    for mode in ("in_process", "child_process"):
        width = int(rng.integers(300, 900))
        lat: list[float] = []
        stop = threading.Event()
        th = threading.Thread(target=run_loop, args=(runner.frame, stop, lat))
        th.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        if mode == "in_process":
            engine.session.session.load(build_graph({"width": width}, engine.device.ref()))
        else:
            spec = GraphSpec(f"stall-{width}", "compile_stall", {"width": width}, "cpu")
            ensure_compiled([spec])
        seconds = time.perf_counter() - t0
        stop.set()
        th.join()
        report[mode] = summary(lat, seconds) | {"width": width}
        print(mode, report[mode], flush=True)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    sys.exit(main())
