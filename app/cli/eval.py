"""`rsmt-studio eval`: transition quality of the RSMT model against classical baselines on held-out windows.

The arguments and the run; the benchmark itself is `app/eval/` (`benchmark.py`: held-out windows, the model
runner, the metrics table; `style.py`: the style scenarios; `clips.py`: `--clips`, a user's own clips).

    rsmt-studio eval --lengths 10 20 40 --json OUT.json [--limit N] [--model DIR] [--device cpu|gpu]
    rsmt-studio eval --table OUT.json        # print the markdown table of an existing result
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rsmt_studio.app.eval.benchmark import (
    CLASSIFIER_DIR,
    DATA_ENV,
    DEFAULT_DATA,
    HEAD_KEEP,
    JUDGES_DIR,
    SPLIT_TEST,
    evaluate,
    full_table,
)
from rsmt_studio.motion.atomic import atomic_write_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40], metavar="L",
                   help="transition lengths in frames (default 10 20 40)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="where to write the results (atomic)")
    p.add_argument("--force", action="store_true", help="overwrite OUT.json if it exists")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="score only N windows, evenly spread over the held-out set (quick runs)")
    p.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="RSMT assets folder (manifest.json + safetensors); default: the shipped assets")
    p.add_argument("--no-model", action="store_true",
                   help="score only the baselines and the real clips (the rsmt entries are null)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="MAX device for the model")
    p.add_argument("--data", type=Path, default=None,
                   help=f"Bandai dataset folder (default ${DATA_ENV} or {DEFAULT_DATA})")
    p.add_argument("--split", type=Path, default=SPLIT_TEST, help="held-out clip list (default: committed)")
    p.add_argument("--classifier", type=Path, default=None,
                   help=f"style classifier folder (default: {CLASSIFIER_DIR})")
    p.add_argument("--stride", type=int, default=40, help="frames between window starts (default 40)")
    p.add_argument("--style-source", choices=("clip", "bank"), default="clip",
                   help="RSMT style input: another held-out take of the window's style (default, as RSMT's "
                        "benchmark) or the shipped style bank entry of that style")
    p.add_argument("--batch", type=int, default=128, help="windows per MAX call")
    p.add_argument("--no-foot-lock", action="store_true",
                   help="score the sampler's feet as it made them, without the engine's foot lock")
    p.add_argument("--head-keep", type=float, default=HEAD_KEEP,
                   help=f"the share of the head's turn off the straight way to the keyframe that the engine keeps "
                        f"(motion/headsteady.py; default {HEAD_KEEP}, as the studio; 1: the sampler's head)")
    p.add_argument("--judges", type=Path, default=None,
                   help=f"independent style judges folder (default: {JUDGES_DIR})")
    p.add_argument("--no-style", action="store_true",
                   help="skip the style scenarios (same-style, switch-to-target, requested-other, sensitivity)")
    p.add_argument("--clips", type=Path, nargs="+", default=None, metavar="FILE",
                   help="score windows of these clips (files or folders, any mappable rig) instead of the Bandai "
                        "held-out set (docs/retargeting.md)")
    p.add_argument("--clip-style", default=None, metavar="STYLE",
                   help="with --clips: a style bank entry to request (default: each clip's own style)")
    p.add_argument("--table", type=Path, default=None, metavar="RESULT.json",
                   help="print the markdown table of an existing result and exit")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _atomic_write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
    if args.table is not None:
        try:
            result = json.loads(args.table.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"rsmt-studio eval: {args.table}: cannot read result: {exc}", file=sys.stderr)
            return 2
        print(full_table(result))
        return 0
    if args.json is None:
        print("rsmt-studio eval: --json OUT.json is required (or --table RESULT.json)", file=sys.stderr)
        return 2
    if args.json.exists() and not args.force:
        print(f"rsmt-studio eval: {args.json} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    if args.clips:
        from rsmt_studio.app.eval import clips as eval_clips

        try:
            result = eval_clips.run(args)
        except (FileNotFoundError, ValueError) as exc:
            print(f"rsmt-studio eval: {exc}", file=sys.stderr)
            return 2
        _atomic_write_json(args.json, result)
        print(eval_clips.table(result))
        _say(f"wrote {args.json}")
        return 0
    try:
        result = evaluate(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"rsmt-studio eval: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the model could not be compiled or the device is missing: say so, write nothing
        print(f"rsmt-studio eval: model not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rsmt-studio eval: cancelled, nothing written", file=sys.stderr)
        return 130
    _atomic_write_json(args.json, result)
    print(full_table(result))
    _say(f"wrote {args.json}")
    return 0
