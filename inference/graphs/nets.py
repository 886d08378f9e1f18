"""The RSMT networks' inference maths, written once against a backend: MAX graph ops or numpy.

`K` is either `rsmt_studio.inference.graphs.blocks` (building a MAX graph) or `rsmt_studio.inference.graphs.numpy_blocks`
(computing directly); both expose the same functions. `W` maps adapted weight names (see weights.py for the
layouts) to graph values or arrays. The equations follow training/networks.py and docs/model.md exactly; the
parity tests hold the two to 1e-4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

VEC_EPS = 1e-8  # as training/networks.py
STYLE_TAPS = (1, 3, 3, 5)  # the style encoder's kernel sizes (training/networks.py StyleEncoder)
NORM_EPS = 1e-5


@dataclass(frozen=True)
class Dims:
    """The static structure the graphs are built for (widths stay symbolic)."""

    n_joints: int
    n_pos_joints: int
    n_phases: int
    n_experts: int
    manifold_latent: int
    window: int
    fps: float
    max_tta: int
    n_warmup: int = 8

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Dims:
        """From the training config JSON (training/config.py's RSMTConfig.to_dict())."""
        return cls(
            n_joints=int(cfg["skeleton"]["n_joints"]),
            n_pos_joints=int(cfg["skeleton"]["n_pos_joints"]),
            n_phases=int(cfg["phase"]["n_phases"]),
            n_experts=int(cfg["manifold"]["n_experts"]),
            manifold_latent=int(cfg["manifold"]["latent"]),
            window=int(cfg["phase"]["window"]),
            fps=float(cfg["skeleton"]["fps"]),
            max_tta=int(cfg["sampler"]["max_tta"]),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def dt(self) -> float:
        return 1.0 / self.fps


# ------------------------------------------------------------------------------------------------ helpers
def vec_norm(K, x):
    return K.sqrt(K.sum(x * x, -1) + VEC_EPS)


def gram_schmidt_6d(K, r):
    a, b = r[..., 0:3], r[..., 3:6]
    a = a / vec_norm(K, a)
    b = b - K.sum(a * b, -1) * a
    b = b / vec_norm(K, b)
    return K.concat([a, b], -1)


def mlp2(K, W, prefix, x):
    return K.linear(K.elu(K.linear(x, W[f"{prefix}.fc1.w"], W[f"{prefix}.fc1.b"])), W[f"{prefix}.fc2.w"],
                    W[f"{prefix}.fc2.b"])


def flat(K, x):
    """(B, n, k) -> (B, n*k) for static n, k."""
    return K.reshape(x, (x.shape[0], int(x.shape[1]) * int(x.shape[2])))


# ------------------------------------------------------------------------------------------------ DeepPhase
def deephase_encode(K, W, x, d: Dims):
    """x (B, J*3, N) root-space velocities -> phase (B,C,2), amplitude (B,C), frequency (B,C), offset (B,C).

    BatchNorm (eval) is folded into the convolutions by the adapter; the spectrum is a fixed DFT matmul.
    """
    c = d.n_phases
    x = x - K.mean(x, -1)
    h = K.transpose(x, 1, 2)  # (B, N, Cin): channels last for conv
    h = K.tanh(K.conv1d(h, W["phase.conv1.w"], W["phase.conv1.b"], padding=d.window // 2, taps=d.window))
    h = K.tanh(K.conv1d(h, W["phase.conv2.w"], W["phase.conv2.b"], padding=d.window // 2, taps=d.window))
    lat = K.transpose(h, 1, 2)  # (B, C, N)
    lat = K.rebind(lat, (x.shape[0], c, d.window))
    half = d.window // 2
    re = lat @ K.rebind(W["phase.dft_cos"], (d.window, half))
    im = lat @ K.rebind(W["phase.dft_sin"], (d.window, half))
    power = re * re + im * im  # (B, C, N//2)
    total = K.sum(power, -1)  # (B, C, 1)
    freq = K.sum(power * K.rebind(W["phase.freqs"], (half,)), -1) / (total + VEC_EPS)
    amp = 2.0 * K.sqrt(total + VEC_EPS) / float(d.window)
    off = K.mean(lat, -1)
    pw = K.rebind(W["phase.phase_weight"], (c, 2, d.window))
    s = K.sum(K.unsqueeze(lat, 2) * pw, -1)  # (B, C, 2, 1) -> keep
    s = K.reshape(s, (x.shape[0], c, 2)) + K.rebind(W["phase.phase_bias"], (c, 2))
    phase = amp * s / vec_norm(K, s)
    b = x.shape[0]
    return phase, K.reshape(amp, (b, c)), K.reshape(freq, (b, c)), K.reshape(off, (b, c))


# ------------------------------------------------------------------------------------------------ style
def style_tokens(K, W, features):
    """features (B, T, C) unnormalised -> tokens (B, T-9, S)."""
    c = features.shape[2]
    x = (features - K.rebind(W["style.input_mean"], (c,))) / K.rebind(W["style.input_std"], (c,))
    for i, taps in zip(range(1, 5), STYLE_TAPS, strict=True):
        x = K.relu(K.conv1d(x, W[f"style.conv{i}.w"], W[f"style.conv{i}.b"], taps=taps))
    return x


def standardise(K, tokens):
    mean = K.mean(K.mean(tokens, 1), 2)
    centred = tokens - mean
    var = K.mean(K.mean(centred * centred, 1), 2)
    return centred / K.sqrt(var + NORM_EPS)


def film_cache(K, W, prefix, tokens):
    """(gamma, beta, keys, values) of one FiLM block for the style tokens (B, T, S)."""
    b = tokens.shape[0]
    pooled = K.reshape(K.mean(tokens, 1), (b, tokens.shape[2]))
    g = K.linear(K.elu(K.linear(pooled, W[f"{prefix}.ada_fc1.w"], W[f"{prefix}.ada_fc1.b"])),
                 W[f"{prefix}.ada_fc2.w"], W[f"{prefix}.ada_fc2.b"])
    width = g.shape[1] // 2
    g = K.reshape(K.rebind(g, (b, width * 2)), (b, 2, width))
    gamma, beta = g[:, 0, :], g[:, 1, :]
    keys = K.linear(standardise(K, tokens), W[f"{prefix}.key.w"], W[f"{prefix}.key.b"])
    values = K.linear(tokens, W[f"{prefix}.value.w"], W[f"{prefix}.value.b"])
    return gamma, beta, keys, values


def style_caches(K, W, features):
    """Both FiLM blocks' caches: [embedding (gamma, beta, keys, values), predictor (...)] = 8 tensors."""
    tokens = style_tokens(K, W, features)
    return [*film_cache(K, W, "embedding_film", tokens), *film_cache(K, W, "predictor_film", tokens)]


def film_elu(K, W, prefix, x, cache):
    """elu(FiLM block `prefix` on x (B, D)) with the style cache (gamma, beta, keys, values):
    y = elu((1 + gamma) * LN(x) + beta), q = LN(y) @ Wq + bq, attention of q over the tokens' keys and values,
    out = elu(y + ctx @ Wo + bo). The maths is the backend's `film_elu` (composed from its primitives in blocks.py
    and numpy_blocks.py, one custom op in cpu_blocks.py)."""
    gamma, beta, keys, values = cache
    return K.film_elu(x, gamma, beta, keys, values, W[f"{prefix}.query.w"], W[f"{prefix}.query.b"],
                      W[f"{prefix}.scale"], W[f"{prefix}.out_proj.w"], W[f"{prefix}.out_proj.b"])


# ------------------------------------------------------------------------------------------------ sampler
def state_features(K, p, v, r):
    """[p - p_root, v, r] flattened: p, v (B, Np, 3), r (B, J, 6)."""
    return K.concat([flat(K, p - p[:, 0:1, :]), flat(K, v), flat(K, r)], -1)


def target_latent(K, W, p_t, v_t, r_t):
    return mlp2(K, W, "target_encoder", state_features(K, p_t, v_t, r_t))


def encoder_inputs(K, p, v, r, tgt_p, tgt_r):
    """The state and offset encoders' inputs of a frame: [p - p_root, v, r] and [tgt_p - p, tgt_r - r]."""
    return state_features(K, p, v, r), K.concat([flat(K, tgt_p - p), flat(K, tgt_r - r)], -1)


def lstm_input(K, W, d: Dims, p, v, r, tgt_p, tgt_r, tgt_latent, tta, z, emb_cache, features=None):
    """LSTM input [h_state, h_t] and h_t for one step; tta (B,) int64 frames to the keyframe. `features`: the
    frame's `encoder_inputs` where they were already made (a backend's fused step tail makes the next frame's)."""
    state_in, offset_in = features if features is not None else encoder_inputs(K, p, v, r, tgt_p, tgt_r)
    state = mlp2(K, W, "state_encoder", state_in)
    offset = mlp2(K, W, "offset_encoder", offset_in)
    emb = film_elu(K, W, "embedding_film", K.linear(state, W["embedding_fc.w"], W["embedding_fc.b"]), emb_cache)
    idx = K.clamp_index(tta, d.max_tta)
    pe_small = K.gather_rows(W["pe_latent"], idx)
    pe_big = K.gather_rows(W["pe_film"], idx)
    h_state = emb + K.rebind(pe_big, (p.shape[0], emb.shape[1]))
    pe_small = K.rebind(pe_small, (p.shape[0], offset.shape[1]))
    lam = K.minimum(K.maximum((K.unsqueeze(K.to_float(tta), 1) - 5.0) / 25.0, 0.0), 1.0)
    tgt_latent = K.rebind(tgt_latent, (p.shape[0], offset.shape[1]))
    h_t = K.concat([offset + pe_small, tgt_latent + pe_small], -1)
    h_t = h_t + lam * K.rebind(z, (p.shape[0], h_t.shape[1]))
    return K.concat([h_state, h_t], -1), h_t


def decoder(K, W, d: Dims, zm, cond, phase):
    """Phase-gated mixture of experts blending expert outputs; returns delta (B, Np*3 + J*6)."""
    return decode(K, W, d, K.concat([flat(K, phase), zm], -1), K.concat([cond, zm], -1), zm)


def decode(K, W, d: Dims, gate_in, expert_in, zm):
    """`decoder` from its two input vectors: the gate network's [phase, zm] and the first expert layer's [cond, zm]."""
    g = K.elu(K.linear(gate_in, W["decoder.gate_fc1.w"], W["decoder.gate_fc1.b"]))
    g = K.elu(K.linear(g, W["decoder.gate_fc2.w"], W["decoder.gate_fc2.b"]))
    alpha = K.softmax(K.linear(g, W["decoder.gate_fc3.w"], W["decoder.gate_fc3.b"]))
    e = d.n_experts
    h = K.elu(K.moe_linear(expert_in, alpha, W["decoder.expert1.w"], W["decoder.expert1.b"], e))
    h = K.elu(K.moe_linear(K.concat([h, zm], -1), alpha, W["decoder.expert2.w"], W["decoder.expert2.b"], e))
    return K.moe_linear(h, alpha, W["decoder.expert3.w"], W["decoder.expert3.b"], e)


def update_phase(K, d: Dims, last, phase_hat, amp, freq):
    """Advance the last phase by 2*pi*F*dt at amplitude A, blend half-way with the prediction (model.md)."""
    u = last / vec_norm(K, last)
    ang = (2.0 * math.pi * d.dt) * freq  # (B, C)
    cos, sin = K.cos(ang), K.sin(ang)
    ux, uy = u[:, :, 0], u[:, :, 1]
    adv = K.unsqueeze(amp, 2) * K.stack([cos * ux - sin * uy, sin * ux + cos * uy], -1)
    n_adv, n_hat = vec_norm(K, adv), vec_norm(K, phase_hat)
    direction = adv / n_adv + phase_hat / n_hat
    return 0.5 * (n_adv + n_hat) * direction / vec_norm(K, direction)


def apply_delta(K, d: Dims, p, r, delta, hip_v, hip_r):
    b = p.shape[0]
    n_pos, n_j = d.n_pos_joints, d.n_joints
    dp = K.reshape(delta[:, 0 : n_pos * 3], (b, n_pos, 3))
    dr = K.reshape(delta[:, n_pos * 3 : n_pos * 3 + n_j * 6], (b, n_j, 6))
    p_next = K.concat([K.unsqueeze(p[:, 0, :] + hip_v, 1), p[:, 1:, :] + dp[:, 1:, :]], 1)
    r_next = K.concat([K.unsqueeze(hip_r, 1), r[:, 1:, :] + dr[:, 1:, :]], 1)
    return p_next, gram_schmidt_6d(K, r_next)


def sampler_step(K, W, d: Dims, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches):
    """One generated frame: returns (p, v, r, phase, h, c) of the next frame."""
    return _step(K, W, d, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches)[:6]


def _step(K, W, d: Dims, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches, features=None):
    """sampler_step, and the next frame's `encoder_inputs` where the backend made them (else None).

    A backend with `sampler_step` (cpu_blocks.py: the whole step as one custom op, which also makes the next frame's
    encoder inputs) computes it with the same equations as the composed form below (numpy_blocks.py, blocks.py,
    gpu/blocks.py), except that a step whose every row has tta 0 (the engine's padding) holds the frame."""
    if hasattr(K, "sampler_step"):
        if features is None:
            features = encoder_inputs(K, p, v, r, tgt_p, tgt_r)
        return K.sampler_step(d, W, p, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches, features)
    emb_cache, pred_cache = caches[0:4], caches[4:8]
    x, h_t = lstm_input(K, W, d, p, v, r, tgt_p, tgt_r, tgt_latent, tta, z, emb_cache, features)
    h, c = K.lstm_cell(x, h, c, W["lstm.w"], W["lstm.b"])
    cp = d.n_phases
    y = K.elu(K.linear(K.concat([h, flat(K, phase), h_t], -1), W["predictor_fc1.w"], W["predictor_fc1.b"]))
    y = K.linear(y, W["predictor_fc2.w"], W["predictor_fc2.b"])
    y = film_elu(K, W, "predictor_film", y, pred_cache)
    y = K.linear(K.elu(K.linear(y, W["predictor_fc3.w"], W["predictor_fc3.b"])), W["predictor_fc4.w"],
                 W["predictor_fc4.b"])
    o = 4 * cp
    zm = y[:, o + 9 : o + 9 + d.manifold_latent]
    b = p.shape[0]
    phase_hat = K.reshape(y[:, 0 : 2 * cp], (b, cp, 2))
    amp = K.softplus(y[:, 2 * cp : 3 * cp])
    freq = y[:, 3 * cp : 4 * cp]
    hip_v, hip_d6 = y[:, o : o + 3], y[:, o + 3 : o + 9]
    new_phase = update_phase(K, d, phase, phase_hat, amp, freq)
    hip_r = r[:, 0, :] + hip_d6
    cond = K.concat([flat(K, p - p[:, 0:1, :]), flat(K, v), hip_v, flat(K, r), hip_r], -1)
    delta = decoder(K, W, d, zm, cond, new_phase)
    p_next, r_next = apply_delta(K, d, p, r, delta, hip_v, hip_r)
    return p_next, p_next - p, r_next, new_phase, h, c, None


def sampler_steps(K, W, d: Dims, steps: int, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, caches):
    """`steps` frames unrolled; tta (B, steps). Returns per-step stacks p (B,S,Np,3), r (B,S,J,6),
    phase (B,S,C,2) and the final v, h, c."""
    ps, rs, phs = [], [], []
    features = None
    for k in range(steps):
        p, v, r, phase, h, c, features = _step(K, W, d, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta[:, k],
                                               z, caches, features)
        ps.append(p)
        rs.append(r)
        phs.append(phase)
    return K.stack(ps, 1), K.stack(rs, 1), K.stack(phs, 1), v, h, c


def prepare(K, W, d: Dims, ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, tta, z, emb_cache, h0, c0):
    """Once per transition: the target latent, and the LSTM warmed up on context frames 1..8.

    ctx_* hold the n_warmup context frames (B, n_warmup, ...); tta (B, n_warmup). Returns
    (h, c, target latent, initial phase predicted from the warm-up inputs)."""
    tgt_latent = target_latent(K, W, tgt_p, tgt_v, tgt_r)
    h, c = h0, c0
    xs = []
    for i in range(d.n_warmup):
        x, _ = lstm_input(K, W, d, ctx_p[:, i], ctx_v[:, i], ctx_r[:, i], tgt_p, tgt_r, tgt_latent, tta[:, i], z,
                          emb_cache)
        h, c = K.lstm_cell(x, h, c, W["lstm.w"], W["lstm.b"])
        xs.append(x)
    phase0 = initial_phase(K, W, d, K.stack(xs, 1))
    return h, c, tgt_latent, phase0


def initial_phase(K, W, d: Dims, lstm_inputs):
    """InitialPhasePredictor: (B, 8, D) -> P (B, C, 2) (dropout is identity at inference)."""
    # Kernel sizes 5, 3, 2 take the 8 warm-up frames to 1 (training/networks.py InitialPhasePredictor).
    x = K.relu(K.conv1d(lstm_inputs, W["phase_predictor.conv1.w"], W["phase_predictor.conv1.b"], taps=5))
    x = K.relu(K.conv1d(x, W["phase_predictor.conv2.w"], W["phase_predictor.conv2.b"], taps=3))
    x = K.relu(K.conv1d(x, W["phase_predictor.conv3.w"], W["phase_predictor.conv3.b"], taps=2))  # (B, 1, H)
    b = lstm_inputs.shape[0]
    x = K.reshape(K.rebind(x, (b, 1, x.shape[2])), (b, x.shape[2]))
    y = K.linear(x, W["phase_predictor.fc.w"], W["phase_predictor.fc.b"])
    cp = d.n_phases
    amp = K.unsqueeze(K.softplus(y[:, 0:cp]), 2)
    dirn = K.reshape(y[:, cp : 3 * cp], (b, cp, 2))
    return amp * dirn / vec_norm(K, dirn)
