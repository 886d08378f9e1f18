"""MAX graphs vs the PyTorch modules of training/networks.py on the same (random) weights.

Each network: 100 random inputs, max abs difference <= 1e-4. The 40-frame rollout: joint positions within
0.5 cm of the torch rollout on a real Bandai transition.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rsmt_studio.training import networks as N

pytestmark = pytest.mark.parity
TOL = 1e-4
B = 100


def _max_err(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def test_deephase_matches_torch(engine, torch_modules, test_cfg):
    x = torch.randn(B, test_cfg.pae_channels, test_cfg.phase.window, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = torch_modules["phase"].encode(x)
    out = engine.runners["deephase"](x.numpy())
    for got, want in zip(out, (ref.phase, ref.amplitude, ref.frequency, ref.offset)):
        assert got.shape == tuple(want.shape)
        assert _max_err(got, want) <= TOL


def test_style_encoder_matches_torch(engine, torch_modules, test_cfg):
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(B, test_cfg.sampler.style_frames - 1, test_cfg.style_channels, generator=g) * 3
    with torch.no_grad():
        cache = torch_modules["sampler"].style_cache(feats)
    out = engine.runners["style"](feats.numpy())
    for got, want in zip(out, [*cache.embedding, *cache.predictor]):
        assert got.shape == tuple(want.shape)
        assert _max_err(got, want) <= TOL


def _random_step_inputs(test_cfg, engine, seed: int):
    g = torch.Generator().manual_seed(seed)
    np_, j, c = test_cfg.skeleton.n_pos_joints, test_cfg.skeleton.n_joints, test_cfg.phase.n_phases

    def r(*s, scale=1.0):
        return torch.randn(*s, generator=g) * scale

    return dict(p=r(B, np_, 3, scale=20), v=r(B, np_, 3), r=r(B, j, 6), phase=r(B, c, 2),  # noqa: C408
                h=r(B, test_cfg.sampler.lstm, scale=0.3), c=r(B, test_cfg.sampler.lstm, scale=0.3),
                tp=r(B, np_, 3, scale=20), tv=r(B, np_, 3), tr=r(B, j, 6),
                tta=torch.randint(1, 80, (B,), generator=g), z=r(B, engine.z_width, scale=0.5),
                feats=r(B, 39, test_cfg.style_channels))


def test_sampler_steps_match_torch(engine, torch_modules, test_cfg):
    """The unrolled `steps` graph (state encoders, FiLM, LSTM, phase predictor, phase update, decoder)."""
    x = _random_step_inputs(test_cfg, engine, 3)
    samp, dec = torch_modules["sampler"], torch_modules["manifold"].decoder
    k = engine.steps_per_call
    with torch.no_grad():
        cache = samp.style_cache(x["feats"])
        tgt = samp.target(x["tp"], x["tv"], x["tr"])
        state = N.SamplerState(x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"])
        ps, rs, phs = [], [], []
        for s in range(k):
            state, _ = samp.step(state, tgt, (x["tta"] - s).clamp(min=0), x["z"], cache, dec)
            ps.append(state.p), rs.append(state.r), phs.append(state.phase)
    caches = [a.numpy() for a in (*cache.embedding, *cache.predictor)]
    tta = np.stack([np.maximum(x["tta"].numpy() - s, 0) for s in range(k)], 1).astype(np.int64)
    out = engine.runners["steps"](x["p"].numpy(), x["v"].numpy(), x["r"].numpy(), x["phase"].numpy(),
                                  x["h"].numpy(), x["c"].numpy(), x["tp"].numpy(), x["tr"].numpy(),
                                  tgt.latent.numpy(), tta, x["z"].numpy(), *caches)
    got_p, got_r, got_ph, _, got_h, got_c = out
    assert _max_err(got_p[:, 0], ps[0]) <= TOL
    assert _max_err(got_r[:, 0], rs[0]) <= TOL
    assert _max_err(got_ph[:, 0], phs[0]) <= TOL
    # Later steps compound float32 rounding through the recurrence; still far inside the tolerance below.
    assert _max_err(got_p, torch.stack(ps, 1)) <= 1e-3
    assert _max_err(got_h, state.h) <= 1e-3 and _max_err(got_c, state.c) <= 1e-3


def test_manifold_decoder_matches_torch(engine, torch_modules, test_cfg):
    """The mixture-of-experts decoder inside the step: the MAX step's position deltas p'[1:] - p[1:] are
    exactly the decoder's dp; compare them with torch's decoder on torch's own inputs for that step."""
    x = _random_step_inputs(test_cfg, engine, 4)
    samp, dec = torch_modules["sampler"], torch_modules["manifold"].decoder
    np_ = test_cfg.skeleton.n_pos_joints
    with torch.no_grad():
        cache = samp.style_cache(x["feats"])
        tgt = samp.target(x["tp"], x["tv"], x["tr"])
        state = N.SamplerState(x["p"], x["v"], x["r"], x["phase"], x["h"], x["c"])
        nxt, ex = samp.step(state, tgt, x["tta"], x["z"], cache, dec)
        p, v, r = state.p, state.v, state.r
        hip_r = r[:, 0] + ex.hip_delta6d
        cond = torch.cat([(p - p[:, :1]).flatten(1), v.flatten(1), ex.hip_velocity, r.flatten(1), hip_r], -1)
        delta = dec(ex.latent, cond, nxt.phase)
    caches = [a.numpy() for a in (*cache.embedding, *cache.predictor)]
    k = engine.steps_per_call
    tta = np.stack([np.maximum(x["tta"].numpy() - s, 0) for s in range(k)], 1).astype(np.int64)
    out = engine.runners["steps"](x["p"].numpy(), x["v"].numpy(), x["r"].numpy(), x["phase"].numpy(),
                                  x["h"].numpy(), x["c"].numpy(), x["tp"].numpy(), x["tr"].numpy(),
                                  tgt.latent.numpy(), tta, x["z"].numpy(), *caches)
    dp_max = out[0][:, 0, 1:] - x["p"].numpy()[:, 1:]
    dp_torch = delta[:, : np_ * 3].reshape(B, np_, 3)[:, 1:]
    assert float(delta.abs().max()) > 1e-2  # a live decoder, not zeros
    assert _max_err(dp_max, dp_torch) <= TOL


def test_prepare_matches_torch(engine, torch_modules, test_cfg):
    """Target latent, LSTM warm-up over 8 context frames and the initial-phase predictor."""
    x = _random_step_inputs(test_cfg, engine, 5)
    g = torch.Generator().manual_seed(6)
    np_, j = test_cfg.skeleton.n_pos_joints, test_cfg.skeleton.n_joints
    ctx_p, ctx_v, ctx_r = (torch.randn(B, 8, np_, 3, generator=g) * 20, torch.randn(B, 8, np_, 3, generator=g),
                           torch.randn(B, 8, j, 6, generator=g))
    samp = torch_modules["sampler"]
    length = 30
    hsz = test_cfg.sampler.lstm
    with torch.no_grad():
        cache = samp.style_cache(x["feats"])
        tgt = samp.target(x["tp"], x["tv"], x["tr"])
        h = c = torch.zeros(B, hsz)
        xs = []
        for i in range(8):
            tta = torch.full((B,), 10 + length - (i + 1))
            xi, _ = samp.lstm_input(ctx_p[:, i], ctx_v[:, i], ctx_r[:, i], tgt, tta, x["z"], cache)
            xs.append(xi)
            h, c = samp.lstm(xi, (h, c))
        phase0 = torch_modules["phase_predictor"](torch.stack(xs, 1))
    tta = np.broadcast_to(np.array([10 + length - s for s in range(1, 9)], np.int64), (B, 8)).copy()
    zeros = np.zeros((B, hsz), np.float32)
    caches = [a.numpy() for a in cache.embedding]
    out = engine.runners["prepare"](ctx_p.numpy(), ctx_v.numpy(), ctx_r.numpy(), x["tp"].numpy(),
                                    x["tv"].numpy(), x["tr"].numpy(), tta, x["z"].numpy(), *caches, zeros, zeros)
    for got, want in zip(out, (h, c, tgt.latent, phase0)):
        assert got.shape == tuple(want.shape)
        assert _max_err(got, want) <= TOL


def test_rollout_40_frames_matches_torch(engine, torch_modules, rsmt_torch, bandai_clips):
    """A whole 40-frame transition between two real clips: every joint within 0.5 cm of torch's rollout."""
    from rsmt_studio.motion.features import fk_positions

    source, target = bandai_clips
    length = 40
    problem, n_model = engine.make_problem(source, 60, target, 80, length)
    code = engine.style_code("calm")
    phase9 = engine.clip_phases(source).phase[n_model][None].astype(np.float32)
    z = engine.noise(11)
    h, c, tgt_latent, _ = engine.prepare(problem, length, z, code.arrays)
    state = (problem.p9, problem.v9, problem.r9, phase9, h, c)
    chunks = list(engine.rollout_chunks(state, problem, tgt_latent, z, code.arrays, length))
    p_max = np.concatenate([ch[0] for ch in chunks], 1)[0]
    r_max = np.concatenate([ch[1] for ch in chunks], 1)[0]
    feats = engine.style_bank.features("calm")[None].astype(np.float32)
    p_t, r_t, _ = rsmt_torch.torch_rollout(torch_modules, problem, phase9, z, feats, length)
    pos_max = fk_positions(p_max, r_max, problem.ms)
    pos_torch = fk_positions(p_t[0], r_t[0], problem.ms)
    assert pos_max.shape == (length, 21, 3)
    err = np.linalg.norm(pos_max - pos_torch, axis=-1).max()
    assert err <= 0.5, f"max joint error {err:.4f} cm"
    assert np.abs(pos_max[-1] - pos_max[0]).max() > 1.0  # the character moved: not a trivial rollout
