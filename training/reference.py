"""PyTorch reference inference from a run folder: the ground truth the MAX graphs are checked against (parity)
and a torch baseline for benchmarks. Same modules and rollout as training, inputs from motion.features.

    models = load_run("runs/small")
    prob = Fe.make_problem(gpos_window, grot_window, models.ms, Fe.KeyframeProtocol(40))
    out = transition(models, prob, style_feat)          # style_feat: Fe.style_features of a style clip
    out["pos"]  # (B, L, J, 3) canonical positions of the generated frames n_past .. K-1
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rsmt_studio.motion import features as Fe
from rsmt_studio.training import networks as N
from rsmt_studio.training import rollout as Ro
from rsmt_studio.training.config import RSMTConfig
from rsmt_studio.training.stages import load_weights


@dataclass
class RSMTModels:
    cfg: RSMTConfig
    ms: Fe.ModelSkeleton
    deephase: N.DeepPhase
    decoder: N.MixtureDecoder
    sampler: N.TransitionSampler
    initial: N.InitialPhasePredictor | None
    device: torch.device


def skeleton_from_json(path: Path) -> Fe.ModelSkeleton:
    s = json.loads(path.read_text())
    n = len(s["names"])
    return Fe.ModelSkeleton(
        names=tuple(s["names"]), parents=np.array(s["parents"]), offsets=np.array(s["offsets"], dtype=np.float64),
        source_joints=np.arange(n), pos_joints=np.array(s["pos_joints"]), rot_joints=np.array(s["rot_joints"]),
        feet=np.array(s["feet"]), left_hip=int(s["left_hip"]), right_hip=int(s["right_hip"]),
        mirror=np.array(s["mirror"]),
    )


def load_run(run_dir: str | Path, device: str = "cpu") -> RSMTModels:
    run = Path(run_dir)
    cfg = RSMTConfig.load(run / "config.json")
    dev = torch.device(device)
    pae, man, sam = N.DeepPhase(cfg), N.Manifold(cfg), N.TransitionSampler(cfg)
    load_weights(pae, run / "phase.safetensors")
    load_weights(man, run / "manifold.safetensors")
    load_weights(sam, run / "sampler.safetensors")
    init = None
    if (run / "phase-predictor.safetensors").exists():
        init = N.InitialPhasePredictor(cfg)
        load_weights(init, run / "phase-predictor.safetensors")
        init = init.to(dev).eval()
    return RSMTModels(cfg, skeleton_from_json(run / "skeleton.json"), pae.to(dev).eval(),
                      man.decoder.to(dev).eval(), sam.to(dev).eval(), init, dev)


def clip_phases(models: RSMTModels, gpos: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """DeepPhase P (F, C, 2) of a clip's frames (windows clamped at the clip's edges, as in labelling)."""
    vel = Fe.pae_velocities(gpos, models.ms)
    x = torch.as_tensor(Fe.pae_windows(vel, models.cfg.phase.window, frames), device=models.device)
    with torch.no_grad():
        return models.deephase.encode(x).phase.cpu().numpy()


@torch.no_grad()
def transition(models: RSMTModels, prob: Fe.Problem, style_feat: np.ndarray, phase9: np.ndarray | None = None,
               z: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Generate frames n_past .. K-1 of a (batched or single) problem. Only the context frames, the keyframe and
    K+1 are read from `prob.state`. phase9: P of the last context frame (B,C,2); None uses the initial-phase
    predictor. z: per-sequence noise (B, 2*latent); None = zeros (deterministic)."""
    single = prob.state.p.ndim == 3
    st = prob.state
    arr = lambda a: torch.as_tensor(np.asarray(a, np.float32)[None] if single else np.asarray(a, np.float32),
                                    device=models.device)
    b = {"p": arr(st.p), "v": arr(st.v), "r": arr(st.r)}
    bsz = b["p"].shape[0]
    style = torch.as_tensor(np.asarray(style_feat, np.float32), device=models.device)
    if style.dim() == 2:  # one style clip for the whole batch
        style = style.unsqueeze(0).expand(bsz, -1, -1)
    length, n_past = prob.protocol.length, prob.protocol.n_past
    if phase9 is not None:
        ph = torch.zeros(bsz, st.p.shape[-3], models.cfg.phase.n_phases, 2, device=models.device)
        ph[:, n_past - 1] = arr(phase9)
        b["phase"] = ph
        initial = None
    else:
        if models.initial is None:
            raise ValueError("no phase for the last context frame and no initial-phase predictor in this run")
        initial = models.initial
    zz = torch.zeros(bsz, 2 * models.cfg.sampler.latent, device=models.device) if z is None else arr(z)
    out = Ro.sampler_rollout(models.sampler, models.decoder, b, style, length, zz, n_past, initial=initial)
    kin = Ro.Kinematics(models.ms)
    offsets = torch.as_tensor(models.ms.offsets, dtype=torch.float32, device=models.device).expand(bsz, -1, -1)
    pos = kin.positions(out.p, out.r, offsets)
    res = {"p": out.p, "r": out.r, "pos": pos, "phase": out.phase, "initial_phase": out.initial_phase}
    return {k: (v[0] if single else v).cpu().numpy() for k, v in res.items()}
