"""The latency panel's step profile from the command line: the default scene's transition on the shipped model.

`TransitionEngine.profile_step` (inference/step_profile.py) runs the transition through the CPU steps graph with its
Mojo kernels timed (graphs/cpu_timed.py, compiled on first use) and reports, per generated frame, the time inside the
dense, 8-expert and LSTM-cell kernels, the rest of the graph calls and post-processing (medians over the runs).
`--rounds N` repeats the whole profile N times in one engine (each a warm-up plus `--repeats` runs), to see how much
the figures move on a shared machine. Each round also streams the same transition `--repeats` times through the
shipped (untimed) steps graph, for what timing the kernels costs: the two graphs' per-frame call times side by side.

    .venv/bin/python bench/step_profile.py [--repeats 5] [--rounds 3] [--json bench/results/step_profile.json]
    .venv/bin/python bench/step_profile.py --compile steps_profile steps   # cold compile times instead

`--compile G...`: compile the named graphs of the engine (`steps`: the shipped steps graph, `steps_profile`: the
timed one) one after the other, each in its own compile child as the app compiles, with empty MEF and MAX caches
(temporary folders), and report each one's wall and CPU seconds (the child's user + sys: less sensitive to the
machine's other load). The first graph compiles from nothing; the later ones reuse MAX's kernel cache.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "assets" / "default_scene"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="measured runs per profile (after one warm-up)")
    p.add_argument("--rounds", type=int, default=3, help="profiles in a row")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--compile", nargs="+", choices=("steps", "steps_profile"), default=None,
                   help="measure cold compiles of these graphs, in this order, instead")
    args = p.parse_args(argv)
    if args.compile:
        return compile_times(args.compile, args.json)

    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.runtime.compiler import print_progress
    from rsmt_studio.inference.step_profile import STAGE_LABELS, STAGES, describe
    from rsmt_studio.motion import read_bvh

    spec = json.loads((SCENE / "scene.json").read_text())
    source, target = read_bvh(SCENE / spec["source"]), read_bvh(SCENE / spec["target"])
    engine = TransitionEngine(device="cpu")
    rounds = []
    for r in range(args.rounds):
        load = os.getloadavg()[0]
        prof = engine.profile_step(source, spec["source_frame"], target, spec["target_frame"], target, spec["length"],
                                   seed=spec.get("seed", 0), repeats=args.repeats,
                                   progress=lambda ev: ev.get("event") != "profiling" and print_progress(ev))
        plain = []  # the shipped steps graph, streamed as the profile streams (every frame from 8-step calls)
        for _ in range(args.repeats):
            *_, done = engine.stream(source, spec["source_frame"], target, spec["target_frame"], target,
                                     spec["length"], seed=spec.get("seed", 0))
            plain.append(done.timings.sampler_ms / spec["length"])
        plain_ms = statistics.median(plain)
        rounds.append({**describe(prof), "runs": prof.runs, "untimed_call_ms": plain_ms, "untimed_runs": plain,
                       "load_before": load, "load_after": os.getloadavg()[0]})
        shares = prof.shares()
        print(f"round {r + 1}: {prof.device} ({prof.device_detail}), {prof.frames} frames, {prof.calls} calls, "
              f"median of {prof.repeats} runs, load {load:.1f}; timed graph ready in {prof.load_ms / 1e3:.1f} s")
        print(f"  {'stage':<26} {'ms/frame':>9} {'min':>8} {'max':>8} {'share':>6}")
        for s in STAGES:
            lo, hi = prof.spread[s]
            print(f"  {STAGE_LABELS[s]:<26} {prof.stages[s]:9.3f} {lo:8.3f} {hi:8.3f} {100 * shares[s]:5.1f}%")
        print(f"  {'graph calls (kernels+rest)':<26} {prof.call_ms:9.3f}   kernels {prof.kernel_ms:.3f} = "
              f"{100 * prof.kernel_ms / prof.call_ms:.1f}% of the calls; ops per frame {prof.kernel_ops}")
        print(f"  {'untimed steps graph calls':<26} {plain_ms:9.3f}   (timed / untimed {prof.call_ms / plain_ms:.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                         "rounds": rounds}, indent=1))
        print(f"wrote {args.json}")
    return 0


def compile_times(order: list[str], json_out: Path | None) -> int:
    import resource
    import tempfile

    from rsmt_studio.inference.engine import default_assets_dir, default_steps_per_call
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.weights import load_assets

    tmp = Path(tempfile.mkdtemp(prefix="rsmt-compile-times-"))
    os.environ["RSMT_STUDIO_CACHE_DIR"] = str(tmp / "mef")  # inherited by the compile children
    os.environ["MODULAR_CACHE_DIR"] = str(tmp / "modular")
    specs = model_specs(load_assets(default_assets_dir()).dims, "cpu", default_steps_per_call("cpu"), profile=True)
    res = {}
    for name in order:
        spec = specs[name]
        r0, t0, load = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter(), os.getloadavg()[0]
        ensure_compiled([spec], shipped=False, jobs=1)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res[name] = {"graph": spec.name, "wall_s": round(time.perf_counter() - t0, 1),
                     "cpu_s": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 1),
                     "mef_bytes": spec.mef_path().stat().st_size, "load_before": round(load, 2),
                     "load_after": round(os.getloadavg()[0], 2),
                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        r = res[name]
        print(f"{name} ({spec.name}): {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU, MEF {r['mef_bytes'] / 1e6:.1f} MB, "
              f"load {r['load_before']:.1f} -> {r['load_after']:.1f}", flush=True)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(res, indent=1))
        print(f"wrote {json_out}")
    print(f"(caches left in {tmp}; delete it when done)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
