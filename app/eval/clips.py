"""`rsmt-studio eval --clips FILE...`: the transition benchmark on your own clips, on any mappable rig.

Each clip is cut into windows (10 context frames, L hidden frames, the keyframe, at the model's 30 fps); the hidden
frames are filled by the model through the engine exactly as `generate` does (retargeted in and out of the clip's
own rig), by SLERP/LERP, inertialization and a zero-velocity hold. Everything is scored on the model rig in cm
(mapped joints sit exactly where the clip's do, times the leg-length scale; docs/retargeting.md): L2P
(LaFAN1's, normalised by the statistics of the clip's own windows, floored at 1 cm), mean joint error (cm) and foot skate (cm per
frame, with the real frames' skate beside it). A rig that cannot be mapped is reported, not scored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rsmt_studio.motion import baselines as B
from rsmt_studio.motion import features as F
from rsmt_studio.motion import metrics as M

MODEL_FPS = 30.0
METHODS = ("rsmt", "slerp", "inertialization", "zero_velocity")
STD_FLOOR_CM = 1.0  # L2P normalisation floor: one clip's windows are far fewer than a benchmark's


def _model_rate(engine, clip):
    """The clip on the model rig at 30 fps (frame k <-> source frame k * ratio), with its binding (None: own)."""
    on_model, b = engine.rigs.model_clip(clip)
    mclip, ms = F.model_clip(on_model)
    if abs(mclip.fps - MODEL_FPS) > 1e-6:
        mclip = mclip.resample(MODEL_FPS)
    return mclip, ms, b


def _to_model_frames(engine, out, binding, ratio: int, length: int) -> np.ndarray:
    """Generated frames on the clip's rig -> model-rig positions (L,J,3) at the model's frame times."""
    on_model = out if binding is None else binding.to_model(out)
    mclip, _ = F.model_clip(on_model)
    gpos = mclip.fk()[0]
    return gpos[ratio - 1::ratio][:length]


def score_clip(engine, clip, lengths: list[int], stride: int, style, limit: int | None = None) -> dict:
    """Scores of one clip per length and method (see the module docstring)."""
    mclip, ms, binding = _model_rate(engine, clip)
    ratio = round(clip.fps / MODEL_FPS)
    if abs(ratio * MODEL_FPS - clip.fps) > 1e-6:
        raise ValueError(f"{clip.source_path or clip.name}: {clip.fps:g} fps is not a whole multiple of 30 fps")
    gpos, grot = F.global_arrays(mclip)
    planted = M.planted_heights(gpos[None], ms.feet)
    out: dict = {"rig": "model rig" if binding is None else f"mapped ({len(binding.roles.roles)} roles)",
                 "frames": clip.num_frames, "fps": clip.fps, "lengths": {}}
    for length in lengths:
        proto = F.KeyframeProtocol(length)
        starts = list(range(0, len(gpos) - proto.window + 1, stride))
        if limit:
            starts = starts[:: max(1, len(starts) // limit)][:limit]
        if not starts:
            out["lengths"][str(length)] = None
            continue
        windows_p = np.stack([gpos[s:s + proto.window] for s in starts])
        windows_r = np.stack([grot[s:s + proto.window] for s in starts])
        problem = F.make_problem(windows_p, windows_r, ms, proto)  # canonical frames of the last context frames
        truth = problem.state.pos[:, proto.scored]
        all_windows = np.stack([F.make_problem(gpos[s:s + proto.window][None], grot[s:s + proto.window][None], ms,
                                               proto).state.pos[0, proto.scored]
                                for s in range(0, len(gpos) - proto.window + 1, 4)])
        mean, std = M.position_stats(all_windows)
        std = np.maximum(std, STD_FLOOR_CM)  # a coordinate a clip never moves would make any error infinite
        ep = B.endpoints(windows_p, windows_r, ms.parents, ms.offsets, length)
        preds = {"slerp": B.interpolation(ep, length).pos[:, 1:length + 1],
                 "inertialization": B.inertialization(ep, length).pos[:, 1:length + 1],
                 "zero_velocity": B.zero_velocity(ep, length).pos[:, 1:length + 1]}
        ours = []
        for s in starts:
            n = (s + proto.n_past - 1) * ratio
            m = (s + proto.keyframe) * ratio
            gen = engine.generate(clip, n, clip, m, style, length, seed=None).clip
            ours.append(_to_model_frames(engine, gen, binding, ratio, length))
        preds["rsmt"] = np.stack(ours)
        prev = windows_p[:, proto.n_past - 1]
        row = {}
        for name in METHODS:
            world = preds[name]
            canon = problem.frame.positions(world)
            row[name] = {"l2p": M.l2p(canon, truth, mean, std),
                         "mean_cm": float(np.linalg.norm(world - windows_p[:, proto.scored], axis=-1).mean()),
                         "foot_skate": M.foot_skate(world, prev, ms.feet, planted)}
        row["real"] = {"foot_skate": M.foot_skate(windows_p[:, proto.scored], prev, ms.feet, planted)}
        row["windows"] = len(starts)
        out["lengths"][str(length)] = row
    return out


def table(result: dict) -> str:
    lines = ["| clip | rig | L | windows | " + " | ".join(f"{m} L2P / cm / skate" for m in METHODS) + " | real skate |",
             "|---|---|---|---|" + "---|" * (len(METHODS) + 1)]
    for name, c in result["clips"].items():
        if "error" in c:
            lines.append(f"| {name} | cannot be mapped: {c['error']} |")
            continue
        for length, row in c["lengths"].items():
            if row is None:
                lines.append(f"| {name} | {c['rig']} | {length} | 0 (clip too short) |")
                continue
            cells = " | ".join(f"{row[m]['l2p']:.2f} / {row[m]['mean_cm']:.1f} / {row[m]['foot_skate']:.2f}"
                               for m in METHODS)
            lines.append(f"| {name} | {c['rig']} | {length} | {row['windows']} | {cells} | "
                         f"{row['real']['foot_skate']:.2f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    """Score every clip of `args.clips` (files or folders of .bvh)."""
    from rsmt_studio.inference.engine import TransitionEngine, TransitionError
    from rsmt_studio.inference.runtime.compiler import print_progress
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.retarget import MappingError

    paths: list[Path] = []
    for given in args.clips:
        paths += sorted(given.rglob("*.bvh")) if given.is_dir() else [given]
    engine = TransitionEngine(args.model, device=args.device, progress=print_progress)
    result: dict = {"protocol": "windows of each clip, 30 fps, scored on the model rig (docs/retargeting.md)",
                    "style": args.clip_style or "each clip's own", "stride": args.stride, "clips": {}}
    for path in paths:
        clip = read_bvh(path)
        print(f"eval: {path} ({clip.num_joints} joints, {clip.num_frames} frames at {clip.fps:g} fps)",
              file=sys.stderr, flush=True)
        try:
            style = args.clip_style or clip  # by default the clip is its own style reference
            result["clips"][path.name] = score_clip(engine, clip, args.lengths, args.stride, style, args.limit)
        except (TransitionError, MappingError) as exc:
            result["clips"][path.name] = {"error": str(exc).removeprefix(f"{path}: ")}
    return result
