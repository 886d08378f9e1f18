"""`rsmt-studio batch PLAN --out DIR`: every transition of a plan file, written atomically, resumable.

Rows whose output already exists are skipped, so re-running after a kill finishes the rest. Failures are listed in
DIR/batch-failures.jsonl and summed by reason at the end. `--ray` runs the same blocks on Ray actors (the `scale`
extra), one engine per device. Exit codes: 0 every row written, 1 some rows failed, 2 unusable plan or options,
130 interrupted (finished rows stay written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", type=Path, help="CSV (with header) or JSON lines: source, source_frame, target, "
                        "target_frame, style, length, seed, output")
    parser.add_argument("--out", required=True, type=Path, help="output folder (outputs are relative to it)")
    parser.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    parser.add_argument("--block", type=int, default=256, help="rows per engine batch (default 256)")
    parser.add_argument("--assets", type=Path, default=None, help="model folder (default: the shipped assets)")
    parser.add_argument("--steps-per-call", type=int, default=None,
                        help="sampler steps per MAX call (default 8; each value is its own compiled graph)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run on Ray: 'local' (default) starts a local cluster, or give a cluster address")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray engine actors (default: one per GPU, or 2 on the CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")


def run(args: argparse.Namespace) -> int:
    from rsmt_studio.service.bulk import Progress
    from rsmt_studio.service.plan import read_plan

    def fail(msg: str) -> int:
        print(f"rsmt-studio batch: {msg}", file=sys.stderr)
        return 2

    if args.block < 1:
        return fail("--block must be at least 1")
    try:
        rows = read_plan(args.plan)
    except ValueError as exc:
        return fail(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    from rsmt_studio.service.bulk import split

    todo, _bad, skipped = split(rows, args.out)
    progress = Progress(len(rows), skipped)
    print(f"plan {args.plan}: {len(rows)} rows, {skipped} already written, {len(todo)} to do", file=sys.stderr)
    try:
        if args.ray:
            from rsmt_studio.service.scale import ScaleUnavailable, run_ray

            try:
                summary = run_ray(rows, args.out, address=args.ray, workers=args.workers, device=args.device,
                                  assets=args.assets, steps_per_call=args.steps_per_call, block=args.block,
                                  progress=progress.update)
            except ScaleUnavailable as exc:
                raise _SetupError(str(exc)) from None
        else:
            summary = _run_local(args, rows, progress)
    except KeyboardInterrupt:
        progress.close()
        print("rsmt-studio batch: interrupted; finished rows are written, re-run to do the rest", file=sys.stderr)
        return 130
    except _SetupError as exc:
        return fail(str(exc))
    progress.close()
    s = summary.as_dict()
    print(f"{s['written']} written, {s['skipped']} skipped (done before), {s['failed']} failed of {s['total']} rows "
          f"in {s['seconds']:.1f} s ({s['transitions_per_s']:.1f} transitions/s)")
    for reason, n in sorted(s["by_reason"].items(), key=lambda kv: -kv[1]):
        print(f"  failed: {reason}: {n}")
    if s["failed"]:
        print(f"  details: {args.out / 'batch-failures.jsonl'}")
    if args.json:
        args.json.write_text(json.dumps(s, indent=1) + "\n")
    return 1 if s["failed"] else 0


class _SetupError(RuntimeError):
    pass


def _run_local(args, rows, progress):
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.runtime.compiler import print_progress
    from rsmt_studio.inference.runtime.devices import DeviceUnavailableError
    from rsmt_studio.inference.weights import AssetError
    from rsmt_studio.service.bulk import run_local

    try:
        engine = TransitionEngine(args.assets, device=args.device,
                                  steps_per_call=args.steps_per_call,
                                  progress=print_progress)
    except (AssetError, DeviceUnavailableError) as exc:
        raise _SetupError(str(exc)) from None
    return run_local(engine, rows, args.out, block=args.block, progress=progress.update)
