"""A quick held-out sanity check of a run: mean joint-position error of the generated transition frames against
ground truth, next to two trivial baselines, on the canonical-frame problems the sampler trains on.

Not the product benchmark (`rsmt-studio eval` has L2P/L2Q/NPSS/skate/style accuracy against SLERP and
inertialization); this is the fast signal for iterating on widths and training time.
"""

from __future__ import annotations

import numpy as np
from rsmt_studio.motion import features as Fe
from rsmt_studio.training import batches as Bt
from rsmt_studio.training.data import MotionData
from rsmt_studio.training.reference import RSMTModels, transition


def position_errors(models: RSMTModels, md: MotionData, labels: Bt.PhaseLabels, lengths: list[int],
                    per_style: int = 16, max_styles: int = 8, seed: int = 3) -> dict[int, dict[str, float]]:
    """{L: {"model", "model_predicted_phase", "lerp", "hold"}} mean joint error (units of the data, cm) over
    `per_style` held-out windows of up to `max_styles` styles. lerp: every joint's global position lerped from the
    last context frame to the keyframe; hold: the last context frame repeated."""
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, float]] = {}
    frames = models.cfg.sampler.style_frames
    for length in lengths:
        proto = Fe.KeyframeProtocol(length)
        errs: dict[str, list[float]] = {"model": [], "model_predicted_phase": [], "lerp": [], "hold": []}
        for style in Bt.sampler_styles(md, True, proto.window, frames)[:max_styles]:
            b = Bt.sampler_batch(md, labels, True, length, frames, per_style, rng, style=style)
            w = b.window
            prob = Fe.Problem(frame=None, state=Fe.FrameState(w.pos, w.p, w.v, w.r), target_p=w.p[:, proto.keyframe],
                              target_v=w.p[:, proto.keyframe + 1] - w.p[:, proto.keyframe],
                              target_r=w.r[:, proto.keyframe], protocol=proto)
            gt = w.pos[:, proto.scored]
            last = proto.n_past - 1
            res = transition(models, prob, b.style, phase9=w.phase[:, last])
            errs["model"].append(float(np.linalg.norm(res["pos"] - gt, axis=-1).mean()))
            if models.initial is not None:
                res = transition(models, prob, b.style)
                errs["model_predicted_phase"].append(float(np.linalg.norm(res["pos"] - gt, axis=-1).mean()))
            t = (np.arange(1, length + 1) / (length + 1))[None, :, None, None]
            lerp = w.pos[:, last : last + 1] * (1 - t) + w.pos[:, proto.keyframe : proto.keyframe + 1] * t
            errs["lerp"].append(float(np.linalg.norm(lerp - gt, axis=-1).mean()))
            errs["hold"].append(float(np.linalg.norm(w.pos[:, last : last + 1] - gt, axis=-1).mean()))
        out[length] = {k: round(float(np.mean(v)), 3) for k, v in errs.items() if v}
    return out
