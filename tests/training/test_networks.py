"""Networks: the contract H4's MAX graphs rebuild (names, shapes, maths without FFT/atan2, purity)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from rsmt_studio.training import networks as N
from rsmt_studio.training.config import RSMTConfig, preset
from rsmt_studio.training.cost import cost

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cfg() -> RSMTConfig:
    torch.manual_seed(0)
    return preset("tiny")


def test_config_json_round_trip_and_errors(tmp_path):
    for name in ("full", "small", "tiny"):
        c = preset(name)
        assert RSMTConfig.from_json(c.to_json()) == c
        # the committed config files are the presets
        assert RSMTConfig.load(REPO / "training" / "configs" / f"{name}.json") == c
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sampler": {"lstm": 64, "lstmm": 3}}))
    with pytest.raises(ValueError, match=r"bad.json.*lstmm"):
        RSMTConfig.load(bad)
    bad.write_text('{"name": "x",\n "sampler": }')
    with pytest.raises(ValueError, match=r"bad.json: line 2"):
        RSMTConfig.load(bad)


@pytest.mark.parametrize("name", ["full", "small", "tiny"])
def test_cost_model_counts_match_torch(name):
    c = preset(name)
    k = cost(c)
    count = lambda m: sum(p.numel() for p in m.parameters())
    man = N.Manifold(c)
    assert k.params["sampler_total"] == count(N.TransitionSampler(c))
    assert k.params["decoder"] == count(man.decoder)
    assert k.params["manifold_encoder"] == count(man.encoder)
    assert k.params["deephase"] == count(N.DeepPhase(c))
    assert k.params["initial_phase_predictor"] == count(N.InitialPhasePredictor(c))
    if name == "full":  # RSMT reference: LSTM 8.39 M MACs, ~17 M per frame
        assert k.step_macs["LSTM"] == 8_388_608
        assert 16e6 < k.macs_per_frame < 17.5e6


def test_mixture_blending_outputs_equals_blending_weights(cfg):
    dec = N.MixtureDecoder(cfg)
    b = 5
    z, cond = torch.randn(b, cfg.manifold.latent), torch.randn(b, cfg.condition_dims)
    phase = torch.randn(b, cfg.phase.n_phases, 2)
    alpha = dec.gate(phase, z)
    assert torch.allclose(alpha.sum(-1), torch.ones(b))

    def blended(x, w, bias):  # the reference's per-sample weight blend
        wb = torch.einsum("be,eoi->boi", alpha, w)
        return torch.einsum("boi,bi->bo", wb, x) + alpha @ bias

    h = torch.nn.functional.elu(blended(torch.cat([cond, z], -1), dec.expert1_weight, dec.expert1_bias))
    h = torch.nn.functional.elu(blended(torch.cat([h, z], -1), dec.expert2_weight, dec.expert2_bias))
    ref = blended(h, dec.expert3_weight, dec.expert3_bias)
    assert torch.allclose(dec(z, cond, phase), ref, atol=1e-5)


def test_deephase_dft_and_phase_vector_match_fft_and_atan2(cfg):
    pae = N.DeepPhase(cfg).eval()
    x = torch.randn(4, cfg.pae_channels, cfg.phase.window)
    out = pae.encode(x)
    spec = torch.fft.rfft(out.latent, dim=-1)[..., 1:]
    power = spec.abs() ** 2
    freqs = torch.arange(1, cfg.phase.window // 2 + 1) * cfg.skeleton.fps / cfg.phase.window
    assert torch.allclose(out.frequency, (power * freqs).sum(-1) / power.sum(-1), rtol=1e-4, atol=1e-5)
    assert torch.allclose(out.amplitude, 2 * power.sum(-1).sqrt() / cfg.phase.window, rtol=1e-4)
    s = torch.einsum("bcn,cjn->bcj", out.latent, pae.phase_weight) + pae.phase_bias
    angle = torch.atan2(s[..., 1], s[..., 0])
    expect = out.amplitude.unsqueeze(-1) * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    assert torch.allclose(out.phase, expect, atol=1e-5)
    rec, _ = pae(x)
    assert rec.shape == x.shape


def _sampler_inputs(cfg, b=3):
    j, np_, c = cfg.skeleton.n_joints, cfg.skeleton.n_pos_joints, cfg.phase.n_phases
    st = N.SamplerState(torch.randn(b, np_, 3), torch.randn(b, np_, 3), torch.randn(b, j, 6),
                        torch.randn(b, c, 2), torch.randn(b, cfg.sampler.lstm), torch.randn(b, cfg.sampler.lstm))
    return st, torch.randn(b, cfg.sampler.style_frames - 1, cfg.style_channels)


def test_sampler_step_is_pure_and_style_cache_follows_the_clip(cfg):
    sam, dec = N.TransitionSampler(cfg).eval(), N.Manifold(cfg).decoder.eval()
    st, style = _sampler_inputs(cfg)
    b = style.shape[0]
    tgt = sam.target(torch.randn(b, cfg.skeleton.n_pos_joints, 3), torch.randn(b, cfg.skeleton.n_pos_joints, 3),
                     torch.randn(b, cfg.skeleton.n_joints, 6))
    z, tta = torch.zeros(b, 2 * cfg.sampler.latent), torch.tensor([30.0, 12.0, 2.0])
    before = {k: v.clone() for k, v in sam.state_dict().items()}
    attrs = set(vars(sam))
    with torch.no_grad():
        cache = sam.style_cache(style)
        a, ex_a = sam.step(st, tgt, tta, z, cache, dec)
        b2, _ = sam.step(st, tgt, tta, z, sam.style_cache(style), dec)
        other, _ = sam.step(st, tgt, tta, z, sam.style_cache(style.flip(1)), dec)
    assert set(vars(sam)) == attrs
    assert all(torch.equal(before[k], v) for k, v in sam.state_dict().items())
    for x, y in zip(a, b2):
        assert torch.equal(x, y)
    assert not torch.allclose(a.p, other.p)  # a new style clip changes the result (no stale cache)
    # outputs: rotations orthonormal 6D, root moved by the predicted hip velocity, v = p' - p
    r = a.r.reshape(-1, 6)
    assert torch.allclose(r[:, :3].norm(dim=-1), torch.ones(len(r)), atol=1e-5)
    assert torch.allclose((r[:, :3] * r[:, 3:]).sum(-1), torch.zeros(len(r)), atol=1e-5)
    assert torch.allclose(a.p[:, 0], st.p[:, 0] + ex_a.hip_velocity, atol=1e-6)
    assert torch.allclose(a.v, a.p - st.p)
    # phase amplitude of the blend lies between the two amplitudes
    assert a.phase.shape == (b, cfg.phase.n_phases, 2)


def test_phase_update_rotates_by_frequency():
    last = torch.tensor([[[1.0, 0.0]]])
    amp, freq = torch.tensor([[2.0]]), torch.tensor([[7.5]])  # quarter turn per frame at 30 fps
    hat = torch.tensor([[[0.0, 2.0]]])
    out = N.update_phase(last, hat, amp, freq, 1 / 30)
    assert torch.allclose(out, torch.tensor([[[0.0, 2.0]]]), atol=1e-4)
    hat2 = torch.tensor([[[-4.0, 0.0]]])  # blend of (0,2) and (-4,0): direction 135 deg, amplitude 3
    out2 = N.update_phase(last, hat2, amp, freq, 1 / 30)
    c = 3 / math.sqrt(2)
    assert torch.allclose(out2, torch.tensor([[[-c, c]]]), atol=1e-4)


def test_initial_phase_predictor_shapes(cfg):
    ip = N.InitialPhasePredictor(cfg).eval()
    x = torch.randn(2, N.N_WARMUP, cfg.sampler.film_hidden + 2 * cfg.sampler.latent)
    p = ip(x)
    assert p.shape == (2, cfg.phase.n_phases, 2)
    assert (p.norm(dim=-1) > 0).all()


SAMPLER_KEYS = (
    ["style_encoder.input_mean", "style_encoder.input_std"]
    + [f"style_encoder.conv{i}.{w}" for i in range(1, 5) for w in ("weight", "bias")]
    + [f"{e}_encoder.fc{i}.{w}" for e in ("state", "offset", "target") for i in (1, 2) for w in ("weight", "bias")]
    + ["embedding_fc.weight", "embedding_fc.bias"]
    + [f"{f}_film.{m}.{w}" for f in ("embedding", "predictor")
       for m in ("ada_fc1", "ada_fc2", "query", "key", "value", "out_proj") for w in ("weight", "bias")]
    + ["lstm.weight_ih", "lstm.weight_hh", "lstm.bias_ih", "lstm.bias_hh"]
    + [f"predictor_fc{i}.{w}" for i in range(1, 5) for w in ("weight", "bias")]
)


def test_weight_names_are_the_documented_contract(cfg):
    assert set(N.TransitionSampler(cfg).state_dict()) == set(SAMPLER_KEYS)
    dec = {f"decoder.expert{i}_{w}" for i in (1, 2, 3) for w in ("weight", "bias")}
    dec |= {f"decoder.gate_fc{i}.{w}" for i in (1, 2, 3) for w in ("weight", "bias")}
    enc = {f"encoder.{m}.{w}" for m in ("fc1", "fc2", "fc3", "fc_out") for w in ("weight", "bias")}
    assert set(N.Manifold(cfg).state_dict()) == dec | enc
    assert set(N.InitialPhasePredictor(cfg).state_dict()) == {
        f"{m}.{w}" for m in ("conv1", "conv2", "conv3", "fc") for w in ("weight", "bias")}
    doc = (REPO / "docs" / "model.md").read_text()
    for name in ("expertk_weight", "phase_weight", "input_mean", "weight_ih", "out_proj", "gate_fc1"):
        assert name in doc
