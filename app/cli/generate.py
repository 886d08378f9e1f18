"""`rsmt-studio generate`: one stylised transition, headless, written as BVH on the source's skeleton.

Exit codes: 0 written; 2 bad request (unreadable BVH, unknown style, frame out of range, incompatible
skeletons, output exists) with a one-line message on stderr; 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, type=Path, help="source BVH (the transition starts after it)")
    parser.add_argument("--source-frame", required=True, type=int,
                        help="last context frame of the source (0-based; needs 9 frames before it)")
    parser.add_argument("--target", required=True, type=Path, help="target BVH")
    parser.add_argument("--target-frame", required=True, type=int, help="keyframe of the target (0-based)")
    parser.add_argument("--style", required=True,
                        help="a style of the shipped style bank, or a BVH file whose style to use")
    parser.add_argument("--frames", type=int, default=40, help="transition length in frames (default 40)")
    parser.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--no-noise", action="store_true", help="deterministic: no sampler noise")
    parser.add_argument("--no-foot-lock", action="store_true",
                        help="keep the sampler's feet as it made them (default: planted feet keep their place)")
    parser.add_argument("--no-head-steady", action="store_true",
                        help="keep the sampler's head as it made it (default: it turns half as far off the straight "
                             "way to the keyframe)")
    parser.add_argument("--out", required=True, type=Path, help="output BVH")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--assets", type=Path, default=None, help="model folder (default: the shipped assets)")
    parser.add_argument("--steps-per-call", type=int, default=None,
                        help="sampler steps per MAX call (default 8; each value is its own compiled graph)")


def run(args: argparse.Namespace) -> int:
    from rsmt_studio.inference.engine import TransitionEngine, TransitionError
    from rsmt_studio.inference.runtime.devices import DeviceUnavailableError
    from rsmt_studio.inference.weights import AssetError
    from rsmt_studio.motion.bvh_reader import read_bvh
    from rsmt_studio.motion.bvh_writer import write_bvh
    from rsmt_studio.motion.errors import BVHError

    def fail(msg: str) -> int:
        print(f"rsmt-studio generate: {msg}", file=sys.stderr)
        return 2

    if args.out.exists() and not args.overwrite:
        return fail(f"{args.out} exists (pass --overwrite to replace it)")
    if not args.out.parent.is_dir():
        return fail(f"{args.out.parent}: output folder does not exist")
    try:
        t0 = time.perf_counter()
        source = read_bvh(args.source)
        target = source if args.target.resolve() == args.source.resolve() else read_bvh(args.target)
        style = read_bvh(Path(args.style)) if args.style.lower().endswith(".bvh") else args.style
        t_read = time.perf_counter() - t0
        from rsmt_studio.inference.runtime.compiler import print_progress

        engine = TransitionEngine(args.assets, device=args.device,
                                  steps_per_call=args.steps_per_call,
                                  progress=print_progress)
        if isinstance(style, str) and style not in engine.styles:
            known = ", ".join(engine.styles) or "none shipped"
            return fail(f"unknown style {style!r} (known: {known})")
        result = engine.generate(source, args.source_frame, target, args.target_frame, style, args.frames,
                                 seed=None if args.no_noise else args.seed, foot_lock=not args.no_foot_lock,
                                 head_steady=not args.no_head_steady)
        t1 = time.perf_counter()
        write_bvh(result.clip, args.out, overwrite=args.overwrite)
        t_write = time.perf_counter() - t1
    except (BVHError, TransitionError, AssetError, DeviceUnavailableError, FileExistsError) as exc:
        return fail(str(exc).splitlines()[0])
    t = result.timings
    print(f"wrote {args.out}: {result.clip.num_frames} frames at {result.clip.fps:g} fps on "
          f"{result.clip.num_joints} joints ({t.device})")
    print(f"timings ms: read {t_read * 1e3:.1f} | engine load {engine.load_ms:.1f} (compile wait "
          f"{engine.compile_wait_ms:.0f}) | style {t.style_ms:.2f} | features {t.features_ms:.2f} | prepare "
          f"{t.prepare_ms:.2f} | sampler {t.sampler_ms:.2f} in {t.calls - 1} calls "
          f"({t.sampler_ms / max(args.frames, 1):.3f}/frame) | postprocess {t.postprocess_ms:.2f} | "
          f"transition total {t.total_ms:.2f} | write {t_write * 1e3:.1f}")
    return 0
