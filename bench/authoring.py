"""Edit-to-screen latency of transition authoring, through the path the studio uses.

Path: `AuthoringModel` (debounce, runner thread) -> `EngineWorker` (engine in a child process, MAX on the CPU)
-> frames back over the pipe -> `poll()` on the caller's thread, exactly as the studio's UI thread gets them.
For each edit we time, from the moment of the edit: the first generated frame delivered by `poll()` and the
whole transition delivered. Edits cycle through seed, source frame, target frame and style changes (the model
encodes each loaded clip's style while idle, so a style change costs no encoding in the edit). The engine
process's threads are niced in the studio (so the UI keeps the CPU); both settings run interleaved in one run so
the machine's load hits them alike.

    .venv/bin/python bench/authoring.py [--edits 24] [--length 40] [--json bench/results/authoring.json]

Targets (issue 7): first new frame <= 100 ms after an edit, a full 40-frame transition <= 500 ms, on the 2-core
CPU. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "assets" / "default_scene"
EDITS = ("seed", "source_frame", "target_frame", "style")


def run_config(nice: int, edits: int, length: int, debounce_s: float, warm: int = 3) -> dict:
    from rsmt_studio.app.models.authoring import STYLE_OF_SOURCE, STYLE_OF_TARGET, AuthoringModel, WorkerPool
    from rsmt_studio.motion import read_bvh

    pool = WorkerPool(nice=nice)
    t0 = time.perf_counter()
    pool("cpu")
    start_s = time.perf_counter() - t0
    model = AuthoringModel(pool, debounce_s=debounce_s)
    a, b = read_bvh(SCENE / "generated_walk_proud.bvh"), read_bvh(SCENE / "generated_walk_tired.bvh")
    model.add_clip(a, "a")
    model.add_clip(b, "b")
    first: dict[int, float] = {}
    model.frames_streamed.connect(lambda gen, start, pos, timing: first.setdefault(gen, time.perf_counter()))
    model.set_params(source="a", target="b", source_frame=60, target_frame=40, length=length, seed=0)
    model.wait(timeout_s=300)
    rows = []
    try:
        for i in range(warm + edits):
            kind = EDITS[i % len(EDITS)]
            p = model.params
            change = {"seed": {"seed": p.seed + 1},
                      "source_frame": {"source_frame": 50 + (p.source_frame + 7) % 60},
                      "target_frame": {"target_frame": (p.target_frame + 11) % 100},
                      "style": {"style": STYLE_OF_SOURCE if p.style == STYLE_OF_TARGET else STYLE_OF_TARGET}}[kind]
            t_edit = time.perf_counter()
            model.set_params(**change)
            gen = model.latest_gen
            result = model.wait(gen, timeout_s=300)
            t_done = time.perf_counter()
            if result is None:
                raise RuntimeError(f"edit {i} failed: {model.last_error}")
            if i < warm:
                continue
            t = result.times
            sampler = sum(f["sampler_ms"] for f in t.per_frame)
            post = sum(f["postprocess_ms"] for f in t.per_frame)
            rows.append({"edit": kind, "first_frame_ms": (first[gen] - t_edit) * 1e3,
                         "transition_ms": (t_done - t_edit) * 1e3, "engine_total_ms": t.total_ms,
                         "style_ms": t.style_ms, "features_ms": t.features_ms, "prepare_ms": t.prepare_ms,
                         "sampler_decoder_ms": sampler, "postprocess_ms": post})
    finally:
        model.close()
        pool.close()
    return {"nice": nice, "worker_start_s": start_s, "rows": rows}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for key in ("first_frame_ms", "transition_ms", "engine_total_ms", "style_ms", "prepare_ms", "sampler_decoder_ms",
                "postprocess_ms"):
        v = np.array([r[key] for r in rows])
        out[key] = {"p50": float(np.median(v)), "p95": float(np.percentile(v, 95)), "max": float(v.max())}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=24, help="timed edits per configuration and batch")
    ap.add_argument("--batches", type=int, default=2, help="configurations take turns this many times")
    ap.add_argument("--length", type=int, default=40)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "authoring.json")
    args = ap.parse_args(argv)
    from rsmt_studio.app.models.authoring import ENGINE_NICE

    debounce = 0.03  # what the studio uses (TransitionStudio's default)
    configs = {f"studio (engine niced {ENGINE_NICE})": ENGINE_NICE, "engine not niced": 0}
    rows: dict[str, list[dict]] = {k: [] for k in configs}
    starts: dict[str, list[float]] = {k: [] for k in configs}
    loads = []
    for _ in range(args.batches):
        for name, nice in configs.items():
            loads.append(os.getloadavg()[0])
            r = run_config(nice, args.edits // args.batches, args.length, debounce)
            rows[name] += r["rows"]
            starts[name].append(r["worker_start_s"])
    summary = {k: summarise(v) for k, v in rows.items()}
    print(f"Authoring latency, {args.length}-frame transitions on the CPU, through AuthoringModel -> EngineWorker "
          f"(leading-edge debounce {debounce * 1e3:.0f} ms: an isolated edit starts at once); 1-min load {min(loads):.1f}-{max(loads):.1f} on "
          f"{os.cpu_count()} cores")
    head = f"{'configuration':28} {'edits':>5} {'first frame p50/p95 ms':>24} {'transition p50/p95 ms':>23} " \
           f"{'engine p50':>10} {'sampler+dec':>11} {'post':>6} {'prepare':>8}"
    print(head)
    print("-" * len(head))
    for name, s in summary.items():
        print(f"{name:28} {len(rows[name]):5d} {s['first_frame_ms']['p50']:11.1f} / {s['first_frame_ms']['p95']:<10.1f} "
              f"{s['transition_ms']['p50']:10.1f} / {s['transition_ms']['p95']:<10.1f} "
              f"{s['engine_total_ms']['p50']:10.1f} {s['sampler_decoder_ms']['p50']:11.1f} "
              f"{s['postprocess_ms']['p50']:6.1f} {s['prepare_ms']['p50']:8.1f}")
    studio = summary[next(iter(configs))]
    print(f"targets: first frame <= 100 ms: p50 {'met' if studio['first_frame_ms']['p50'] <= 100 else 'NOT met'}; "
          f"40-frame transition <= 500 ms: p50 {'met' if studio['transition_ms']['p50'] <= 500 else 'NOT met'}")
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_1min": loads},
           "length": args.length, "debounce_ms": debounce * 1e3, "summary": summary, "rows": rows,
           "worker_start_s": starts}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
