"""The RSMT networks as plain torch modules whose state_dicts the MAX graphs (inference/) rebuild.

Contract (see docs/model.md for the full equations and every weight name):
- Only Linear / Conv1d / BatchNorm1d (eval: affine with running stats) / LSTMCell and a few raw Parameters.
- Normalisations are written out (`layer_norm`, `standardise`), nothing relies on InstanceNorm quirks.
- Activations: ELU, ReLU, tanh, softmax, softplus. No atan2 or FFT at inference: the PAE's spectrum is a
  fixed DFT matmul and its phase is a unit vector, not an angle.
- The mixture-of-experts decoder blends expert OUTPUTS (same maths as blending weights, cheaper at batch > 1).
- The sampler step is a pure function: (state tensors, cached style tensors) -> next state tensors. Nothing is
  cached on a module, so a new style clip or batch can never reuse stale keys/values (reference bug 6).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from rsmt_studio.training.config import RSMTConfig
from torch import Tensor, nn
from torch.nn import functional as F

NORM_EPS = 1e-5  # layer_norm / standardise / BatchNorm epsilon
VEC_EPS = 1e-8  # added under the square root of every vector norm


# ------------------------------------------------------------------------------------------------ helpers
def layer_norm(x: Tensor) -> Tensor:
    """Affine-free LayerNorm over the last axis (population variance)."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + NORM_EPS)


def standardise(tokens: Tensor) -> Tensor:
    """Per-sample standardisation over all tokens x channels of (B, T, C)."""
    mean = tokens.mean(dim=(1, 2), keepdim=True)
    var = ((tokens - mean) ** 2).mean(dim=(1, 2), keepdim=True)
    return (tokens - mean) / torch.sqrt(var + NORM_EPS)


def vec_norm(x: Tensor) -> Tensor:
    """Norm over the last axis with VEC_EPS under the root (kept dim)."""
    return torch.sqrt((x * x).sum(-1, keepdim=True) + VEC_EPS)


def gram_schmidt_6d(r: Tensor) -> Tensor:
    """Re-orthonormalise 6D rotations (..., 6) = two rows (a, b): a/|a|, then b minus its a part, normalised."""
    a, b = r[..., :3], r[..., 3:]
    a = a / vec_norm(a)
    b = b - (a * b).sum(-1, keepdim=True) * a
    b = b / vec_norm(b)
    return torch.cat([a, b], dim=-1)


def positional_encoding(tta: Tensor, dim: int, max_tta: int) -> Tensor:
    """Sinusoidal PE of min(tta, max_tta): pe[2i] = sin(t / 10000^(2i/dim)), pe[2i+1] = cos(...). tta: (B,)."""
    t = torch.clamp(tta.float(), max=float(max_tta)).unsqueeze(-1)
    i = torch.arange(0, dim, 2, device=tta.device, dtype=torch.float32)
    angle = t / torch.pow(torch.tensor(10000.0, device=tta.device), i / dim)
    pe = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)
    return pe.reshape(tta.shape[0], dim)


def noise_scale(tta: Tensor) -> Tensor:
    """lambda(tta) = clamp((tta - 5) / 25, 0, 1): no noise close to the target. (B, 1)."""
    return torch.clamp((tta.float() - 5.0) / 25.0, 0.0, 1.0).unsqueeze(-1)


# ------------------------------------------------------------------------------------------------ DeepPhase
class PhaseOutput(NamedTuple):
    phase: Tensor  # P (B, C, 2) = A * unit(s): the phase-manifold vector
    amplitude: Tensor  # A (B, C)
    frequency: Tensor  # F (B, C) in Hz
    offset: Tensor  # B (B, C)
    latent: Tensor  # (B, C, N)


class DeepPhase(nn.Module):
    """Periodic autoencoder. Input (B, J*3, N) root-space joint velocities; the module removes each window's
    per-channel temporal mean itself. Phase read-out needs no FFT or atan2 (a fixed DFT matmul and a unit vector).
    """

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        n, c_in, hid, ph = cfg.phase.window, cfg.pae_channels, cfg.pae_hidden, cfg.phase.n_phases
        pad = n // 2
        self.window, self.n_phases, self.fps = n, ph, cfg.skeleton.fps
        self.conv1 = nn.Conv1d(c_in, hid, n, padding=pad)
        self.bn1 = nn.BatchNorm1d(hid, eps=NORM_EPS)
        self.conv2 = nn.Conv1d(hid, ph, n, padding=pad)
        self.bn2 = nn.BatchNorm1d(ph, eps=NORM_EPS)
        self.phase_weight = nn.Parameter(torch.empty(ph, 2, n))  # per-channel FC: latent_c (N) -> (s_x, s_y)
        self.phase_bias = nn.Parameter(torch.zeros(ph, 2))
        nn.init.uniform_(self.phase_weight, -1 / math.sqrt(n), 1 / math.sqrt(n))
        self.deconv1 = nn.Conv1d(ph, hid, n, padding=pad)
        self.bn3 = nn.BatchNorm1d(hid, eps=NORM_EPS)
        self.deconv2 = nn.Conv1d(hid, c_in, n, padding=pad)
        k = torch.arange(1, n // 2 + 1, dtype=torch.float64)
        t = torch.arange(n, dtype=torch.float64)
        ang = 2 * math.pi * t[:, None] * k[None, :] / n
        # Fixed, derivable from (window, fps): not in the state_dict.
        self.register_buffer("dft_cos", torch.cos(ang).float(), persistent=False)  # (N, N//2)
        self.register_buffer("dft_sin", torch.sin(ang).float(), persistent=False)
        self.register_buffer("freqs", (k * self.fps / n).float(), persistent=False)  # Hz of bins 1..N//2
        self.register_buffer("tau", ((t - n // 2) / self.fps).float(), persistent=False)  # seconds from centre

    def encode(self, x: Tensor) -> PhaseOutput:
        x = x - x.mean(-1, keepdim=True)
        h = torch.tanh(self.bn1(self.conv1(x)))
        lat = torch.tanh(self.bn2(self.conv2(h)))  # (B, C, N)
        re, im = lat @ self.dft_cos, lat @ self.dft_sin  # (B, C, N//2); sign of im irrelevant for power
        power = re * re + im * im
        total = power.sum(-1)
        freq = (power * self.freqs).sum(-1) / (total + VEC_EPS)
        amp = 2.0 * torch.sqrt(total + VEC_EPS) / self.window
        off = lat.mean(-1)
        s = torch.einsum("bcn,cjn->bcj", lat, self.phase_weight) + self.phase_bias  # (B, C, 2)
        phase = amp.unsqueeze(-1) * s / vec_norm(s)
        return PhaseOutput(phase, amp, freq, off, lat)

    def decode(self, out: PhaseOutput) -> Tensor:
        """Rebuild the latent A*sin(2*pi*F*tau + phi) + B (angle addition, no atan2), then deconvolve."""
        amp = out.amplitude.unsqueeze(-1)
        unit = out.phase / (amp + VEC_EPS)  # (cos phi, sin phi)
        arg = 2 * math.pi * out.frequency.unsqueeze(-1) * self.tau
        lat = amp * (torch.sin(arg) * unit[..., :1] + torch.cos(arg) * unit[..., 1:]) + out.offset.unsqueeze(-1)
        h = torch.tanh(self.bn3(self.deconv1(lat)))
        return self.deconv2(h)

    def forward(self, x: Tensor) -> tuple[Tensor, PhaseOutput]:
        out = self.encode(x)
        return self.decode(out), out


# ------------------------------------------------------------------------------------------------ manifold
class ManifoldEncoder(nn.Module):
    """Two-frame VAE encoder: [p_rel(t), p_rel(t+1), v(t), p(t+1)-p(t), r(t), r(t+1)] -> (mu, logvar)."""

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        np3, j6 = cfg.skeleton.n_pos_joints * 3, cfg.skeleton.n_joints * 6
        hid = cfg.manifold.encoder_hidden
        self.fc1 = nn.Linear(4 * np3 + 2 * j6, hid)
        self.fc2 = nn.Linear(hid, hid)
        self.fc3 = nn.Linear(hid, hid)
        self.fc_out = nn.Linear(hid, 2 * cfg.manifold.latent)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = F.elu(self.fc3(F.elu(self.fc2(F.elu(self.fc1(x))))))
        mu, logvar = self.fc_out(h).chunk(2, dim=-1)
        return mu, logvar


class MixtureDecoder(nn.Module):
    """Phase-gated mixture of experts. The gate sees [P (2C), z]; the experts see [cond, z].

    Expert layer k has weight (E, out, in) and bias (E, out); y = sum_e alpha_e * (W_e x + b_e), which equals the
    reference's blended-weight layer exactly (the layer is linear in its weights).
    """

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        m = cfg.manifold
        e, hid, lat = m.n_experts, m.expert_hidden, m.latent
        self.gate_fc1 = nn.Linear(cfg.phase_dims + lat, m.gate_hidden)
        self.gate_fc2 = nn.Linear(m.gate_hidden, m.gate_hidden)
        self.gate_fc3 = nn.Linear(m.gate_hidden, e)
        shapes = [(cfg.condition_dims + lat, hid), (hid + lat, hid), (hid, cfg.delta_dims)]
        for k, (fan_in, fan_out) in enumerate(shapes, start=1):
            w = torch.empty(e, fan_out, fan_in)
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)
            self.register_parameter(f"expert{k}_weight", nn.Parameter(w))
            self.register_parameter(f"expert{k}_bias", nn.Parameter(torch.zeros(e, fan_out)))

    def gate(self, phase: Tensor, z: Tensor) -> Tensor:
        g = torch.cat([phase.flatten(1), z], dim=-1)
        g = F.elu(self.gate_fc2(F.elu(self.gate_fc1(g))))
        return torch.softmax(self.gate_fc3(g), dim=-1)  # (B, E)

    @staticmethod
    def _mix(x: Tensor, w: Tensor, b: Tensor, alpha: Tensor) -> Tensor:
        y = torch.einsum("bi,eoi->beo", x, w) + b  # every expert's output
        return (alpha.unsqueeze(-1) * y).sum(1)

    def forward(self, z: Tensor, cond: Tensor, phase: Tensor) -> Tensor:
        alpha = self.gate(phase, z)
        h = F.elu(self._mix(torch.cat([cond, z], -1), self.expert1_weight, self.expert1_bias, alpha))
        h = F.elu(self._mix(torch.cat([h, z], -1), self.expert2_weight, self.expert2_bias, alpha))
        return self._mix(h, self.expert3_weight, self.expert3_bias, alpha)


class Manifold(nn.Module):
    """StyleVAE motion manifold (no style input): `encoder.*` is training-only, `decoder.*` ships."""

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        self.encoder = ManifoldEncoder(cfg)
        self.decoder = MixtureDecoder(cfg)


# ------------------------------------------------------------------------------------------------ sampler
class StyleEncoder(nn.Module):
    """Film generator: style-clip features (B, T-1, C) -> style tokens (B, T-9, S). Normalises its input with
    the saved statistics `input_mean`/`input_std` (buffers in the state_dict)."""

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        c, s = cfg.style_channels, cfg.sampler.style_hidden
        self.register_buffer("input_mean", torch.zeros(c))
        self.register_buffer("input_std", torch.ones(c))
        self.conv1 = nn.Conv1d(c, s, 1)
        self.conv2 = nn.Conv1d(s, s, 3)
        self.conv3 = nn.Conv1d(s, s, 3)
        self.conv4 = nn.Conv1d(s, s, 5)

    def forward(self, features: Tensor) -> Tensor:
        x = ((features - self.input_mean) / self.input_std).transpose(1, 2)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.relu(conv(x))
        return x.transpose(1, 2)  # (B, tokens, S)


class FilmCache(NamedTuple):
    gamma: Tensor  # (B, D)
    beta: Tensor  # (B, D)
    keys: Tensor  # (B, T, D)
    values: Tensor  # (B, T, D)


class FiLM(nn.Module):
    """AdaIN from the mean style token, ELU, then attention over style tokens with a residual.

    y = ELU((1 + gamma) * LN(x) + beta);  out = y + out_proj(softmax(query(LN(y)) K^T / sqrt(D)) V)
    with K = key(standardise(tokens)), V = value(tokens), (gamma, beta) = ada_fc2(ELU(ada_fc1(mean_t tokens))).
    """

    def __init__(self, style: int, width: int, dropout: float = 0.1):
        super().__init__()
        self.width = width
        self.ada_fc1 = nn.Linear(style, style)
        self.ada_fc2 = nn.Linear(style, 2 * width)
        self.dropout = nn.Dropout(dropout)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(style, width)
        self.value = nn.Linear(style, width)
        self.out_proj = nn.Linear(width, width)

    def style_cache(self, tokens: Tensor) -> FilmCache:
        g = self.ada_fc2(self.dropout(F.elu(self.ada_fc1(tokens.mean(1)))))
        gamma, beta = g.chunk(2, dim=-1)
        return FilmCache(gamma, beta, self.key(standardise(tokens)), self.value(tokens))

    def forward(self, x: Tensor, cache: FilmCache) -> Tensor:
        y = F.elu((1 + cache.gamma) * layer_norm(x) + cache.beta)
        q = self.query(layer_norm(y)).unsqueeze(1)  # (B, 1, D)
        att = torch.softmax((q * cache.keys).sum(-1) / math.sqrt(self.width), dim=-1)  # (B, T)
        return y + self.out_proj((att.unsqueeze(-1) * cache.values).sum(1))


class MLP2(nn.Module):
    """fc1 -> ELU -> fc2 (the state/offset/target encoders)."""

    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.elu(self.fc1(x)))


class StyleCache(NamedTuple):
    """Everything the per-step path needs from the style clip: computed once per (style clip, batch)."""

    embedding: FilmCache
    predictor: FilmCache


class SamplerState(NamedTuple):
    """Per-step state in the canonical frame. Np = position joints (root first), J = all joints."""

    p: Tensor  # (B, Np, 3) positions
    v: Tensor  # (B, Np, 3) p_t - p_{t-1}
    r: Tensor  # (B, J, 6) global 6D rotations
    phase: Tensor  # (B, C, 2) phase-manifold vector of frame t
    h: Tensor  # (B, H) LSTM hidden
    c: Tensor  # (B, H) LSTM cell


class Target(NamedTuple):
    """The keyframe, fixed for the sequence."""

    p: Tensor  # (B, Np, 3)
    r: Tensor  # (B, J, 6)
    latent: Tensor  # (B, latent): target_encoder([p - p_root, v, r])


class StepExtras(NamedTuple):
    phase_hat: Tensor  # (B, C, 2) predicted phase (before blending)
    amplitude: Tensor  # (B, C) softplus'd
    frequency: Tensor  # (B, C) Hz
    hip_velocity: Tensor  # (B, 3)
    hip_delta6d: Tensor  # (B, 6)
    latent: Tensor  # (B, manifold latent)


class TransitionSampler(nn.Module):
    """TransitionNet sampler. Owns no decoder: the frozen manifold decoder is passed to `step`."""

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        self.cfg = cfg
        s, sk = cfg.sampler, cfg.skeleton
        self.n_pos, self.n_joints, self.n_phases = sk.n_pos_joints, sk.n_joints, cfg.phase.n_phases
        self.dt = 1.0 / sk.fps
        self.style_encoder = StyleEncoder(cfg)
        self.state_encoder = MLP2(cfg.state_dims, s.encoder_hidden, s.latent)
        self.offset_encoder = MLP2(cfg.offset_dims, s.encoder_hidden, s.latent)
        self.target_encoder = MLP2(cfg.state_dims, s.encoder_hidden, s.latent)
        self.embedding_fc = nn.Linear(s.latent, s.film_hidden)
        self.embedding_film = FiLM(s.style_hidden, s.film_hidden)
        self.lstm = nn.LSTMCell(s.film_hidden + 2 * s.latent, s.lstm)
        self.predictor_fc1 = nn.Linear(s.lstm + cfg.phase_dims + 2 * s.latent, s.predictor_hidden)
        self.predictor_fc2 = nn.Linear(s.predictor_hidden, s.film_hidden)
        self.predictor_film = FiLM(s.style_hidden, s.film_hidden)
        self.predictor_fc3 = nn.Linear(s.film_hidden, s.film_hidden)
        self.predictor_fc4 = nn.Linear(s.film_hidden, cfg.predictor_outputs)

    # ---- once per style clip
    def style_cache(self, style_features: Tensor) -> StyleCache:
        tokens = self.style_encoder(style_features)
        return StyleCache(self.embedding_film.style_cache(tokens), self.predictor_film.style_cache(tokens))

    # ---- once per sequence
    def target(self, p_t: Tensor, v_t: Tensor, r_t: Tensor) -> Target:
        x = torch.cat([(p_t - p_t[:, :1]).flatten(1), v_t.flatten(1), r_t.flatten(1)], -1)
        return Target(p_t, r_t, self.target_encoder(x))

    # ---- every step
    def lstm_input(
        self, p: Tensor, v: Tensor, r: Tensor, target: Target, tta: Tensor, z: Tensor, cache: StyleCache
    ) -> tuple[Tensor, Tensor]:
        """Returns (LSTM input [h_state, h_t], h_t). tta: (B,) frames from the state frame to the keyframe."""
        s = self.cfg.sampler
        state = self.state_encoder(torch.cat([(p - p[:, :1]).flatten(1), v.flatten(1), r.flatten(1)], -1))
        offset = self.offset_encoder(torch.cat([(target.p - p).flatten(1), (target.r - r).flatten(1)], -1))
        emb = F.elu(self.embedding_film(self.embedding_fc(state), cache.embedding))
        pe_small = positional_encoding(tta, s.latent, s.max_tta)
        h_state = emb + positional_encoding(tta, s.film_hidden, s.max_tta)
        h_t = torch.cat([offset + pe_small, target.latent + pe_small], -1) + noise_scale(tta) * z
        return torch.cat([h_state, h_t], -1), h_t

    def warmup(self, state: SamplerState, target: Target, tta: Tensor, z: Tensor, cache: StyleCache) -> SamplerState:
        """Context step: advance only the LSTM on a known frame."""
        x, _ = self.lstm_input(state.p, state.v, state.r, target, tta, z, cache)
        h, c = self.lstm(x, (state.h, state.c))
        return state._replace(h=h, c=c)

    def step(
        self,
        state: SamplerState,
        target: Target,
        tta: Tensor,
        z: Tensor,
        cache: StyleCache,
        decoder: MixtureDecoder,
    ) -> tuple[SamplerState, StepExtras]:
        """Generate frame t+1 from frame t. Pure: all inputs are arguments, all outputs are returned."""
        c_ph = self.n_phases
        x, h_t = self.lstm_input(state.p, state.v, state.r, target, tta, z, cache)
        h, c = self.lstm(x, (state.h, state.c))
        y = F.elu(self.predictor_fc1(torch.cat([h, state.phase.flatten(1), h_t], -1)))
        y = self.predictor_fc2(y)
        y = F.elu(self.predictor_film(y, cache.predictor))
        y = self.predictor_fc4(F.elu(self.predictor_fc3(y)))
        o = 0
        phase_hat = y[:, o : o + 2 * c_ph].reshape(-1, c_ph, 2)
        o += 2 * c_ph
        amp = F.softplus(y[:, o : o + c_ph])
        o += c_ph
        freq = y[:, o : o + c_ph]
        o += c_ph
        hip_v, hip_d6, zm = y[:, o : o + 3], y[:, o + 3 : o + 9], y[:, o + 9 :]
        phase = update_phase(state.phase, phase_hat, amp, freq, self.dt)
        p, v, r = state.p, state.v, state.r
        hip_r = r[:, 0] + hip_d6
        cond = torch.cat([(p - p[:, :1]).flatten(1), v.flatten(1), hip_v, r.flatten(1), hip_r], -1)
        delta = decoder(zm, cond, phase)
        p_next, r_next = apply_delta(p, r, delta, hip_v, hip_r)
        nxt = SamplerState(p_next, p_next - p, r_next, phase, h, c)
        return nxt, StepExtras(phase_hat, amp, freq, hip_v, hip_d6, zm)


def update_phase(last: Tensor, phase_hat: Tensor, amp: Tensor, freq: Tensor, dt: float) -> Tensor:
    """Advance the last phase by 2*pi*F*dt at amplitude A, then blend half-way with the prediction:
    direction = unit(unit(P_adv) + unit(P_hat)), amplitude = (|P_adv| + |P_hat|) / 2."""
    u = last / vec_norm(last)
    ang = 2 * math.pi * freq * dt
    cos, sin = torch.cos(ang), torch.sin(ang)
    ux, uy = u[..., 0], u[..., 1]
    adv = amp.unsqueeze(-1) * torch.stack([cos * ux - sin * uy, sin * ux + cos * uy], -1)
    n_adv, n_hat = vec_norm(adv), vec_norm(phase_hat)
    direction = adv / n_adv + phase_hat / n_hat
    return 0.5 * (n_adv + n_hat) * direction / vec_norm(direction)


def apply_delta(p: Tensor, r: Tensor, delta: Tensor, hip_v: Tensor, hip_r: Tensor) -> tuple[Tensor, Tensor]:
    """State update: positions += dp with the root moved by hip_v; rotations += dr with the root set to hip_r;
    all rotations Gram-Schmidt'ed (reference bug 7: no drift off SO(3))."""
    b, n_pos, n_j = p.shape[0], p.shape[1], r.shape[1]
    dp = delta[:, : n_pos * 3].reshape(b, n_pos, 3)
    dr = delta[:, n_pos * 3 :].reshape(b, n_j, 6)
    p_next = torch.cat([(p[:, 0] + hip_v).unsqueeze(1), p[:, 1:] + dp[:, 1:]], 1)
    r_next = torch.cat([hip_r.unsqueeze(1), r[:, 1:] + dr[:, 1:]], 1)
    return p_next, gram_schmidt_6d(r_next)


# ------------------------------------------------------------------------------------------------ initial phase
class InitialPhasePredictor(nn.Module):
    """Phase of the last context frame from the 8 warm-up LSTM inputs (B, 8, D): conv k5, k3, k2 (ReLU) -> fc.
    Output 3C: A = softplus(first C), direction = unit of the next 2C viewed (C, 2). Returns P = A * direction."""

    def __init__(self, cfg: RSMTConfig):
        super().__init__()
        d = cfg.sampler.film_hidden + 2 * cfg.sampler.latent
        hid = cfg.phase_predictor.hidden
        self.n_phases = cfg.phase.n_phases
        self.conv1 = nn.Conv1d(d, hid, 5)
        self.conv2 = nn.Conv1d(hid, hid, 3)
        self.conv3 = nn.Conv1d(hid, hid, 2)
        self.dropout = nn.Dropout(cfg.phase_predictor.dropout)
        self.fc = nn.Linear(hid, 3 * self.n_phases)

    def forward(self, lstm_inputs: Tensor) -> Tensor:
        x = lstm_inputs.transpose(1, 2)
        x = self.dropout(F.relu(self.conv1(x)))
        x = self.dropout(F.relu(self.conv2(x)))
        x = F.relu(self.conv3(x)).squeeze(-1)
        y = self.fc(x)
        c = self.n_phases
        amp = F.softplus(y[:, :c]).unsqueeze(-1)
        d = y[:, c:].reshape(-1, c, 2)
        return amp * d / vec_norm(d)


N_WARMUP = 8  # context frames 1..8 feed the LSTM; frame 0 only gives frame 1's velocity; frame 9 is the start
