"""Benchmark `rsmt-studio batch`: transitions per second for one plan, single process vs Ray with two workers.

    python bench/batch.py [--rows 1000] [--length 40] [--block 256] [--steps-per-call 8] [--workers 2]
                          [--no-ray] [--json OUT.json]

Writes a deterministic plan over Bandai clips (../shared/data/bandai), runs `rsmt-studio batch` on it as a
subprocess into a fresh folder, then `rsmt-studio batch --ray --workers N` into another, and compares the two
folders file by file (they must be identical). Times include each run's start-up (engine load, Ray start), which
is reported separately from the generation rate the batch command itself measures.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "bandai" / "dataset" / "Bandai-Namco-Research-Motiondataset-1" / "data"
CLIPS = ("dataset-1_walk_normal_001.bvh", "dataset-1_run_active_001.bvh", "dataset-1_bow_angry_001.bvh",
         "dataset-1_walk_proud_001.bvh")


def write_plan(path: Path, rows: int, length: int, styles: list[str]) -> None:
    from rsmt_studio.motion.bvh_reader import read_bvh

    frames = {c: read_bvh(DATA / c).num_frames for c in CLIPS}
    rng = np.random.default_rng(0)
    lines = []
    for i in range(rows):
        s, t = rng.choice(CLIPS, 2)
        lines.append(json.dumps({"source": str(DATA / s), "source_frame": int(rng.integers(9, frames[s])),
                                 "target": str(DATA / t), "target_frame": int(rng.integers(0, frames[t])),
                                 "style": styles[i % len(styles)], "length": length, "seed": i,
                                 "output": f"{i // 100:03d}/t{i:05d}.bvh"}))
    path.write_text("\n".join(lines) + "\n")


def run(plan: Path, out: Path, args, extra: list[str]) -> dict:
    summary = out.parent / (out.name + "-summary.json")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rsmt_studio.app.cli", "batch", str(plan), "--out", str(out),
                        "--block", str(args.block), "--steps-per-call", str(args.steps_per_call), "--device",
                        args.device, "--json", str(summary), *extra], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ), check=False, timeout=args.timeout)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"batch {' '.join(extra)} failed ({r.returncode}): {r.stderr[-2000:]}")
    s = json.loads(summary.read_text())
    return {"wall_s": round(wall, 2), "generate_s": s["seconds"], "startup_s": round(wall - s["seconds"], 2),
            "written": s["written"], "failed": s["failed"], "transitions_per_s": s["transitions_per_s"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--length", type=int, default=40)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--steps-per-call", type=int, default=8)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank

    styles = StyleBank.load(default_assets_dir()).names[:4]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        plan = tmp / "plan.jsonl"
        write_plan(plan, args.rows, args.length, styles)
        result = {"bench": "batch", "rows": args.rows, "length": args.length, "block": args.block,
                  "steps_per_call": args.steps_per_call, "device": args.device, "cpu_count": os.cpu_count()}
        result["single"] = run(plan, tmp / "single", args, [])
        print(f"single process: {result['single']}", flush=True)
        if not args.no_ray:
            result["ray"] = run(plan, tmp / "ray", args, ["--ray", "--workers", str(args.workers)])
            result["ray"]["workers"] = args.workers
            cmp = filecmp.dircmp(tmp / "single", tmp / "ray")
            files = sorted(str(q.relative_to(tmp / "single")) for q in (tmp / "single").rglob("*.bvh"))
            _, mismatch, errors = filecmp.cmpfiles(tmp / "single", tmp / "ray", files, shallow=False)
            result["identical_files"] = not mismatch and not errors and not cmp.left_only and not cmp.right_only
            result["files_compared"] = len(files)
            result["ray_vs_single_rate"] = round(result["ray"]["transitions_per_s"] /
                                                 result["single"]["transitions_per_s"], 2)
    print(f"{'':22s}{'wall s':>9s}{'start-up s':>12s}{'gen s':>9s}{'transitions/s':>15s}")
    for k in ("single", "ray"):
        if k in result:
            r = result[k]
            print(f"{k:22s}{r['wall_s']:>9}{r['startup_s']:>12}{r['generate_s']:>9}{r['transitions_per_s']:>15}")
    if "ray" in result:
        print(f"identical files: {result['identical_files']} ({result['files_compared']} compared); "
              f"Ray / single generation rate: {result['ray_vs_single_rate']}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result.get("identical_files", True) else 1


if __name__ == "__main__":
    sys.exit(main())
