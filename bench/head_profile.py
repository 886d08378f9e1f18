"""Where a transition's head turn goes, frame by frame: the shipped model against the real frames (issue 14).

Why: eval's head figure is one number per window (the farthest turn on the neck from the last context frame);
this splits it into the turn at each transition frame and the head's step from frame to frame, including the step
out of the last context frame and the step into the keyframe, so a seam pop and a wander tell themselves apart.

    .venv/bin/python bench/head_profile.py --lengths 10 20 40 [--model DIR] [--no-foot-lock] [--json out.json]

Held-out windows as `rsmt-studio eval` makes them (same split, stride 40, style from another held-out take).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rsmt_studio.app.eval import benchmark as BM
from rsmt_studio.motion import features as Fe


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees of the rotation taking each matrix of a (...,3,3) to b's."""
    rel = np.swapaxes(a, -1, -2) @ b
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)))


def profile(held, model, length: int) -> dict[str, list[float]]:
    ms = held.clips[0].ms
    head = ms.names.index("Head")
    parent = int(ms.parents[head])
    proto = Fe.KeyframeProtocol(length)
    frame = Fe.canonical_transform(held.gpos[:, Fe.N_PAST - 1], ms)
    crot = frame.rotations(held.grot[:, : proto.window])
    feats, which = model.style_inputs(held)
    _, rot = model.transitions(held, length, feats, which)

    def local(r: np.ndarray) -> np.ndarray:
        return np.swapaxes(r[..., parent, :, :], -1, -2) @ r[..., head, :, :]

    last, key = local(crot[:, proto.n_past - 1])[:, None], local(crot[:, proto.keyframe])[:, None]
    out = {}
    for name, frames in (("rsmt", local(rot)), ("real", local(crot[:, proto.scored]))):
        seq = np.concatenate([last, frames, key], 1)
        out[f"{name}_turn_deg"] = _angle(last, frames).mean(0).round(3).tolist()
        out[f"{name}_step_deg"] = _angle(seq[:, :-1], seq[:, 1:]).mean(0).round(3).tolist()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped assets)")
    ap.add_argument("--no-foot-lock", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    held = BM.load_held_out(BM.DEFAULT_DATA, BM.SPLIT_TEST, Fe.KeyframeProtocol(max(args.lengths)).window, 40, None)
    model = BM.ModelRunner(args.model, "cpu", 64, "clip")
    model.foot_lock = not args.no_foot_lock
    res = {"windows": len(held.styles), "foot_lock": model.foot_lock, "lengths": {}}
    for length in args.lengths:
        p = res["lengths"][str(length)] = profile(held, model, length)
        print(f"\nL = {length}: mean over {res['windows']} windows, degrees")
        print("| frame | turn from the last context frame: rsmt / real | step from the frame before: rsmt / real |")
        print("|---:|---|---|")
        for t in range(length):
            print(f"| {t + 1} | {p['rsmt_turn_deg'][t]:.2f} / {p['real_turn_deg'][t]:.2f} | "
                  f"{p['rsmt_step_deg'][t]:.2f} / {p['real_step_deg'][t]:.2f} |")
        print(f"| into the keyframe | | {p['rsmt_step_deg'][-1]:.2f} / {p['real_step_deg'][-1]:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
