"""Where the GPU time of a transition goes: a kernel-level profile of the MAX graphs on the GPU.

Why: after capturing device graphs a 40-frame transition was still ~11 ms on an H100, far above its
weight-bandwidth floor (docs/performance.md): the time is in how many kernels run and which ones are slow.
torch.profiler's CUDA activity tracing (CUPTI) records every kernel launched in the process, MAX's included,
replayed device graphs too. One transition is profiled per batch size and formulation (captured replay and
eager `execute`); kernels are grouped by name (all of them), and the first `--sequence` kernels of the
captured replay are kept in launch order, which maps kernels to the graph's layers.

    python bench/gpu_profile.py --assets assets --json OUT.json

(Earlier formulations were profiled side by side with --compare until commit 1a90fba; docs/performance.md.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import LENGTH, MaxCapturedRunner, MaxRunner, random_problem  # bench/inference.py


def profile_transition(run, torch, sequence: int = 0) -> dict:
    from torch.profiler import ProfilerActivity, profile

    run()  # warm (and capture)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) * 1e3
    groups: dict[str, list[float]] = defaultdict(list)
    order = []
    for ev in prof.events():
        if ev.device_type.name == "CUDA":
            groups[ev.name[:90]].append(ev.device_time)
            order.append((ev.time_range.start, ev.name[:60], round(ev.device_time, 2)))
    total = sum(sum(v) for v in groups.values()) / 1e3
    ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    out = {"wall_ms": round(wall, 2), "kernel_ms": round(total, 2),
           "kernels": sum(len(v) for v in groups.values()),
           "by_name": [{"name": k, "count": len(v), "total_ms": round(sum(v) / 1e3, 3),
                        "mean_us": round(sum(v) / len(v), 2)} for k, v in ranked]}
    if sequence:
        out["sequence"] = [[name, us] for _, name, us in sorted(order)[:sequence]]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=Path("assets"))
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--sequence", type=int, default=700, help="kernels of the captured batch-1 replay kept in order")
    args = ap.parse_args(argv)
    import torch
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.weights import load_assets
    from rsmt_studio.training.config import RSMTConfig

    assets = load_assets(args.assets)
    cfg = RSMTConfig.from_dict(json.loads((args.assets / "manifest.json").read_text())["config"])
    report: dict = {"device": torch.cuda.get_device_name(0), "length": LENGTH}
    for name in ("fused",):
        engine = TransitionEngine(assets, device="gpu", steps_per_call=args.steps,
                                  only=("style", "prepare", "steps", "chain", "fold"), capture=True)
        for b in (1, 1024):
            x = random_problem(cfg, b)
            captured, eager = MaxCapturedRunner(engine, x), MaxRunner(engine, x)
            for how, run in (("captured", captured.transition), ("eager", eager.transition)):
                key = f"{name}_{how}_batch{b}"
                report[key] = profile_transition(run, torch, args.sequence if (b == 1 and how == "captured") else 0)
                r = report[key]
                print(key, r["wall_ms"], "ms wall,", r["kernel_ms"], "ms in", r["kernels"], "kernels", flush=True)
    args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
