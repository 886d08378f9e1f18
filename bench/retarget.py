"""What retargeting costs, side by side with generating the transition itself (issue 13).

Per clip (once: the engine memoises both): finding the roles and calibrating (`mapping`), and the whole clip onto
the model rig (`to_model`). Per transition: the seam blend's two one-frame round trips plus the generated frames
back onto the user's rig (`to_user`), which is the only retargeting work an edit in the studio repeats. The same
run times a 40-frame transition on MAX (CPU) from each rig's clip and from the same motion already on the model
rig, interleaved, so their difference is everything retargeting adds.

    .venv/bin/python bench/retarget.py [--frames 40] [--repeat 20] [--pairs 40] [--no-engine]
                                       [--json OUT.json [--key after]]

The machine is shared and noisy: the engine's pairs alternate which request goes first, every figure is a
median, and next to wall time the main thread's CPU time is reported (the retargeting runs there, and it is
much less sensitive to other processes' load than wall time; the network's own threads are not in it). The
load average is recorded. `--key NAME` stores the run under that key of the JSON file, keeping its other keys
(e.g. a "before" run of the previous code next to an "after" run).

Target: retargeting both ways adds <= 5 ms to a 40-frame transition on the 2-core CPU.
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
SHARED = REPO.parent / "shared" / "data"
RIGS = {
    "CMU walk (31 joints, 120 fps)": "external/pybvh/cmu_12_01_walk.bvh",
    "Mixamo (55 joints, fingers)": "external/bvh-python/test_freebvh.bvh",
    "mocapbank (19 joints, no toes)": "external/bvh-python/test_mocapbank.bvh",
    "Geno (75 joints, arms-up zero pose)": "external/lafan1-resolved/Geno_stance.bvh",
    "Z-up Mixamo-like (24 joints)": "external/pybvh/bvh_example.bvh",
}


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def measure_rig(path: Path, rig, frames: int, repeat: int) -> dict:
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.retarget import RigBinding, find_roles
    from rsmt_studio.motion.retarget.seam import round_trip, seam_blend

    clip = read_bvh(path)
    if clip.num_frames < 12:  # a bind pose file: repeat it so there is a context to cut
        clip = clip.resample(clip.fps / 8)
        clip = type(clip)(clip.skeleton, clip.fps, np.repeat(clip.local_pos, 20, 0), np.repeat(clip.local_rot, 20, 0),
                          name=clip.name)
    mapping_ms = _median_ms(lambda: RigBinding.bind(clip, find_roles(clip), rig), max(3, repeat // 4))
    b = RigBinding.bind(clip, find_roles(clip), rig)
    to_model_ms = _median_ms(lambda: b.to_model(clip), max(3, repeat // 4))
    on_model = b.to_model(clip)
    n = min(12, clip.num_frames - 2)
    gen = on_model.resample(30.0)
    gen_lp = np.repeat(gen.local_pos[:1], frames, 0)
    gen_lr = np.repeat(gen.local_rot[:1], frames, 0)

    trip_src, trip_tgt = round_trip(b, clip, on_model, n), round_trip(b, clip, on_model, clip.num_frames - 1)

    def per_transition():  # an edit: the seam round trips are cached per clip and frame, as in the engine
        blend = seam_blend(b, clip, trip_src, n, clip, trip_tgt, clip.num_frames - 1, frames)
        blend.apply(gen_lp, gen_lr, 0)

    chunk_blend = seam_blend(b, clip, trip_src, n, clip, trip_tgt, clip.num_frames - 1, frames)

    def per_chunk():  # the studio's stream converts each 8-frame chunk as it arrives (one blend per transition)
        chunk_blend.apply(gen_lp[:8], gen_lr[:8], 8)

    return {"joints": clip.num_joints, "frames": clip.num_frames, "fps": clip.fps, "mapping_ms": mapping_ms,
            "to_model_ms": to_model_ms, "to_model_ms_per_frame": to_model_ms / clip.num_frames,
            "to_user_per_transition_ms": _median_ms(per_transition, repeat),
            "to_user_per_8_frame_chunk_ms": _median_ms(per_chunk, repeat)}


def engine_times(rigs: dict[str, Path], frames: int, pairs: int) -> dict[str, dict[str, float]]:
    """Median whole-transition time (ms) on MAX CPU for each rig's clip, and for the same motion already on the
    model rig (its `to_model` version, same fps and frames): the same network work, so the difference is what
    retargeting adds to a transition (the seam round trips, both directions, the chunks and the whole). Wall
    time and the calling thread's CPU time, each as the median of the per-pair differences."""
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.motion import read_bvh

    engine = TransitionEngine(device="cpu")
    out = {}
    for label, path in rigs.items():
        clip = read_bvh(path)
        ratio = clip.fps / 30.0
        if clip.num_frames < (frames + 12) * ratio:
            continue
        src = round(10 * ratio)
        tgt = src + round((frames + 1) * ratio)
        on_model, _ = engine.rigs.model_clip(clip)
        pair = {"own rig": clip, "model rig": on_model}
        for c in pair.values():
            for _ in range(3):  # warm: mapping, phases, style, memos, the allocator
                engine.generate(c, src, c, tgt, "normal", frames, seed=0)
        wall: dict[str, list[float]] = {k: [] for k in pair}
        cpu: dict[str, list[float]] = {k: [] for k in pair}
        for i in range(pairs):  # interleaved, first one then the other first, so load and order hit both alike
            for name in (list(pair) if i % 2 == 0 else list(pair)[::-1]):
                c = pair[name]
                t0, c0 = time.perf_counter(), time.thread_time()
                engine.generate(c, src, c, tgt, "normal", frames, seed=1)
                wall[name].append((time.perf_counter() - t0) * 1e3)
                cpu[name].append((time.thread_time() - c0) * 1e3)
        times = {k: float(np.median(v)) for k, v in wall.items()}
        diff = np.subtract(wall["own rig"], wall["model rig"])
        times["retargeting"] = float(np.median(diff))
        times["retargeting_iqr"] = [float(np.percentile(diff, 25)), float(np.percentile(diff, 75))]
        times["cpu own rig"] = float(np.median(cpu["own rig"]))
        times["cpu model rig"] = float(np.median(cpu["model rig"]))
        times["cpu retargeting"] = float(np.median(np.subtract(cpu["own rig"], cpu["model rig"])))
        times["pairs"] = pairs
        out[label] = times
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=20, help="repetitions of each conversion timing")
    ap.add_argument("--pairs", type=int, default=40, help="interleaved engine request pairs per rig")
    ap.add_argument("--no-engine", action="store_true", help="skip the MAX transition timings")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--key", help="store this run under KEY of the --json file, keeping the file's other keys")
    args = ap.parse_args()
    from rsmt_studio.inference.rigs import load_model_rig

    load_before = os.getloadavg()
    rig = load_model_rig(None)
    paths = {k: SHARED / v for k, v in RIGS.items() if (SHARED / v).is_file()}
    rows = {label: measure_rig(path, rig, args.frames, args.repeat) for label, path in paths.items()}
    engine = {} if args.no_engine else engine_times(paths, args.frames, args.pairs)
    load_after = os.getloadavg()
    print(f"{'rig':38s} {'joints':>6s} {'mapping':>9s} {'to_model':>9s} {'/frame':>7s} {'to_user/tr':>10s} {'/chunk':>9s} "
          f"{'transition':>10s} {'same, model rig':>15s} {'difference':>10s} {'(CPU)':>7s}")
    for label, r in rows.items():
        tr = engine.get(label)
        tail = "" if tr is None else (f"{tr['own rig']:9.1f}ms {tr['model rig']:14.1f}ms "
                                      f"{tr['retargeting']:9.1f}ms {tr['cpu retargeting']:5.1f}ms")
        print(f"{label:38s} {r['joints']:6d} {r['mapping_ms']:8.1f}ms {r['to_model_ms']:8.1f}ms "
              f"{r['to_model_ms_per_frame']:6.3f} {r['to_user_per_transition_ms']:9.2f}ms "
              f"{r['to_user_per_8_frame_chunk_ms']:7.2f}ms {tail}")
    worst = max(r["to_user_per_transition_ms"] for r in rows.values())
    print(f"retargeting per {args.frames}-frame transition: seam blend + to_user worst {worst:.2f} ms; "
          + ", ".join(f"{k.split(' (')[0]} {v['retargeting']:.1f} ms in the engine" for k, v in engine.items())
          + " (target <= 5 ms)")
    print("load average (1, 5, 15 min): before " + " ".join(f"{x:.2f}" for x in load_before)
          + ", after " + " ".join(f"{x:.2f}" for x in load_after))
    if args.json:
        from rsmt_studio.motion.atomic import atomic_write_text

        run = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "load_average": {"before": list(load_before), "after": list(load_after)},
               "frames": args.frames, "repeat": args.repeat, "pairs": args.pairs, "rigs": rows,
               "transition_ms": engine}
        if args.key:
            old = json.loads(args.json.read_text()) if args.json.is_file() else {}
            old = old if isinstance(old, dict) and "rigs" not in old else {}  # a single-run file is replaced
            run = {**old, args.key: run}
        atomic_write_text(args.json, json.dumps(run, indent=1) + "\n")


if __name__ == "__main__":
    main()
