"""Torch side of the inference tests and benchmark: random RSMT weights saved like the shipped assets, and the
reference rollout written with training/networks.py's modules (torch is allowed in tests/ and bench/ only).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from rsmt_studio.training import networks as N
from rsmt_studio.training.config import RSMTConfig, preset


def test_config() -> RSMTConfig:
    """Tiny widths with the shipped model's structure (21 Bandai joints, 10 phases, 8 experts, latent 32), so
    the tests compile the same MEFs the shipped model uses (widths are symbolic in the graphs)."""
    cfg = preset("tiny")
    cfg.phase.n_phases = 10
    cfg.manifold.n_experts = 8
    cfg.manifold.latent = 32
    return cfg


def random_modules(cfg: RSMTConfig, seed: int = 0) -> dict[str, torch.nn.Module]:
    """Randomly initialised networks in eval mode, with non-trivial BatchNorm statistics and biases."""
    torch.manual_seed(seed)
    mods = {"phase": N.DeepPhase(cfg), "manifold": N.Manifold(cfg), "sampler": N.TransitionSampler(cfg),
            "phase_predictor": N.InitialPhasePredictor(cfg)}
    with torch.no_grad():
        ph = mods["phase"]
        for bn in (ph.bn1, ph.bn2, ph.bn3):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
        for name, p in mods["manifold"].named_parameters():
            if "expert" in name and "bias" in name:
                p.uniform_(-0.05, 0.05)
        se = mods["sampler"].style_encoder
        se.input_mean.uniform_(-1, 1)
        se.input_std.uniform_(0.5, 2.0)
    for m in mods.values():
        m.eval()
    return mods


def state_dicts(mods: dict[str, torch.nn.Module]) -> dict[str, dict[str, np.ndarray]]:
    return {k: {n: t.detach().cpu().numpy().copy() for n, t in m.state_dict().items()} for k, m in mods.items()}


def save_assets(mods: dict[str, torch.nn.Module], cfg: RSMTConfig, folder: Path, note: str) -> Path:
    """Write `<network>.safetensors` + manifest.json the way the shipped assets are laid out."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, m in mods.items():
        sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
        save_file(sd, folder / f"{name}.safetensors")
        files[name] = f"{name}.safetensors"
    manifest = {"config": cfg.to_dict(), "weights": files, "note": note}
    fd, tmp = tempfile.mkstemp(dir=folder)
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1)
    os.replace(tmp, folder / "manifest.json")
    return folder


@torch.no_grad()
def torch_rollout(mods, problem, phase9: np.ndarray, z: np.ndarray, style_features: np.ndarray, length: int):
    """Reference rollout with the torch modules: warm-up on context frames 1..8, then `length` steps.

    Returns (p (B,L,Np,3), r (B,L,J,6), phase (B,L,C,2)) as numpy."""
    samp, dec = mods["sampler"], mods["manifold"].decoder
    t = torch.from_numpy
    b = problem.ctx_p.shape[0]
    cache = samp.style_cache(t(style_features).expand(b, -1, -1) if style_features.ndim == 2
                             else t(style_features))
    tgt = samp.target(t(problem.tgt_p), t(problem.tgt_v), t(problem.tgt_r))
    hsize = samp.lstm.hidden_size
    zt = t(z)
    h = c = torch.zeros(b, hsize)
    keyframe = 10 + length
    state = None
    for i in range(8):
        state = N.SamplerState(t(problem.ctx_p[:, i]), t(problem.ctx_v[:, i]), t(problem.ctx_r[:, i]),
                               t(phase9), h, c)
        state = samp.warmup(state, tgt, torch.full((b,), keyframe - (i + 1)), zt, cache)
        h, c = state.h, state.c
    state = N.SamplerState(t(problem.p9), t(problem.v9), t(problem.r9), t(phase9), h, c)
    ps, rs, phs = [], [], []
    for k in range(length):
        state, _ = samp.step(state, tgt, torch.full((b,), length + 1 - k), zt, cache, dec)
        ps.append(state.p)
        rs.append(state.r)
        phs.append(state.phase)
    return (torch.stack(ps, 1).numpy(), torch.stack(rs, 1).numpy(), torch.stack(phs, 1).numpy())
