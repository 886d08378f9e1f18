"""Where the GPU time of a transition goes: kernel-level profile of the MAX graphs, and static vs symbolic shapes.

Why: capturing device graphs removed the host overhead but a 40-frame transition still took ~70 ms on an H100,
far above its weight-bandwidth floor (docs/performance.md). This script (GPU machine only) answers two questions
in one run:

1. Which kernels take the time? torch.profiler's CUDA activity tracing (CUPTI) records every kernel launched
   in the process, MAX's included: one eager transition is profiled at batch 1 and 1024 and the kernels are
   grouped by name.
2. Do static weight shapes help? The `steps` graph with static-shape `Weight`s (inference/static_graphs.py) is
   compiled for the GPU and timed against the shipped symbolic-shape graph, one call of k steps, same inputs.

    python bench/gpu_profile.py --assets assets --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import LENGTH, MaxRunner, random_problem  # bench/inference.py


def profile_transition(runner, torch) -> dict:
    from torch.profiler import ProfilerActivity, profile

    runner.transition()  # warm
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        runner.transition()
        wall = (time.perf_counter() - t0) * 1e3
    groups: dict[str, list[float]] = defaultdict(list)
    for ev in prof.events():
        if ev.device_type.name == "CUDA":
            groups[ev.name[:90]].append(ev.device_time)
    total = sum(sum(v) for v in groups.values()) / 1e3
    top = sorted(groups.items(), key=lambda kv: -sum(kv[1]))[:25]
    return {"wall_ms": round(wall, 2), "kernel_ms": round(total, 2),
            "kernels": sum(len(v) for v in groups.values()),
            "top": [{"name": k, "count": len(v), "total_ms": round(sum(v) / 1e3, 3),
                     "mean_us": round(sum(v) / len(v), 2)} for k, v in top]}


def static_vs_symbolic(engine, assets, k: int, batches=(1, 1024), reps: int = 20) -> dict:
    from max import engine as max_engine
    from max.driver import CPU
    from rsmt_studio.inference import graphs
    from rsmt_studio.inference.cache import GraphSpec
    from rsmt_studio.inference.compiler import ensure_compiled
    from rsmt_studio.inference.static_graphs import static_config
    from rsmt_studio.inference.weights import adapt_all

    weights = adapt_all(assets)
    spec = GraphSpec(f"steps{k}static", "rsmt_studio.inference.static_graphs",
                     static_config(assets.dims, k, weights), "gpu")
    t0 = time.perf_counter()
    ensure_compiled([spec])
    compile_s = time.perf_counter() - t0
    model = engine.session.session.init(max_engine.read(spec.mef_path()),
                                        weights_registry={n: weights[n] for n, _ in graphs.weight_inputs("steps")})
    out = {"compile_s": round(compile_s, 1)}
    d, dev = engine.dims, engine.session.to_device
    lat = weights["offset_encoder.fc2.w"].shape[1]
    width = weights["embedding_fc.w"].shape[1]
    pw = weights["predictor_film.query.w"].shape[1] if "predictor_film.query.w" in weights else width
    for b in batches:
        rng = np.random.default_rng(0)
        f = np.float32
        args = [rng.normal(0, 20, (b, d.n_pos_joints, 3)), rng.normal(0, 1, (b, d.n_pos_joints, 3)),
                rng.normal(0, 1, (b, d.n_joints, 6)), rng.normal(0, 1, (b, d.n_phases, 2)),
                np.zeros((b, engine.lstm_width)), np.zeros((b, engine.lstm_width)),
                rng.normal(0, 20, (b, d.n_pos_joints, 3)), rng.normal(0, 1, (b, d.n_joints, 6)),
                rng.normal(0, 1, (b, lat))]
        args = [dev(a.astype(f)) for a in args] + [dev(np.full((b, k), 20, np.int64)), dev(np.zeros((b, 2 * lat), f))]
        caches = [dev(rng.normal(0, 1, s).astype(f)) for s in
                  [(b, width)] * 2 + [(b, 7, width)] * 2 + [(b, pw)] * 2 + [(b, 7, pw)] * 2]
        sym = engine.runners["steps"]

        def run_sym(args=args, caches=caches, sym=sym):
            return sym.model.execute(*args, *caches, *sym._weight_buffers)[4].to(CPU())

        def run_static(args=args, caches=caches):
            return model.execute(*args, *caches)[4].to(CPU())

        a, s = run_sym().to_numpy(), run_static().to_numpy()
        times = {"symbolic": [], "static": []}
        for _ in range(3):
            run_sym(), run_static()
        for _ in range(reps):
            for name, fn in (("symbolic", run_sym), ("static", run_static)):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
        out[str(b)] = {n: round(float(np.median(v)), 3) for n, v in times.items()}
        out[str(b)]["max_abs_diff_h"] = float(np.abs(a - s).max())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=Path("assets"))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--no-static", action="store_true", help="skip the static-shape comparison (a long compile)")
    args = ap.parse_args(argv)
    import torch
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.weights import load_assets
    from rsmt_studio.training.config import RSMTConfig

    assets = load_assets(args.assets)
    cfg = RSMTConfig.from_dict(json.loads((args.assets / "manifest.json").read_text())["config"])
    from rsmt_studio.inference.cache import GraphSpec
    from rsmt_studio.inference.compiler import ensure_compiled
    from rsmt_studio.inference.static_graphs import static_config
    from rsmt_studio.inference.weights import adapt_all

    static_spec = GraphSpec(f"steps{args.steps}static", "rsmt_studio.inference.static_graphs",
                            static_config(assets.dims, args.steps, adapt_all(assets)), "gpu")
    early = threading.Thread(target=ensure_compiled, args=([static_spec],))  # in parallel with the others
    if not args.no_static:
        early.start()
    engine = TransitionEngine(assets, device="gpu", steps_per_call=args.steps,
                              only=("style", "prepare", "steps", "chain"), capture=True)
    report: dict = {"device": torch.cuda.get_device_name(0), "length": LENGTH}
    static: dict = {}
    worker = threading.Thread(target=lambda: static.update(static_vs_symbolic(engine, assets, args.steps)))
    for b in (1, 1024):
        x = random_problem(cfg, b)
        report[f"profile_batch{b}"] = profile_transition(MaxRunner(engine, x), torch)
        print(json.dumps(report[f"profile_batch{b}"], indent=1)[:4000], flush=True)
    if not args.no_static:
        early.join()
        worker.start()
        worker.join()
    report["static_vs_symbolic_call_ms"] = static
    print(json.dumps(static, indent=1))
    args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
