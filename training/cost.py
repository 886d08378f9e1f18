"""Parameters and multiply-adds of any config, worked out from the layer shapes (no torch needed).

Per generated frame = the sampler's per-step path plus the manifold decoder (what a transition costs per frame
once the style and the sequence are set up). Per style clip and per sequence costs are reported separately
because they are paid once (and the style part can be cached per style).
"""

from __future__ import annotations

from dataclasses import dataclass

from rsmt_studio.training.config import RSMTConfig


def _lin(n_in: int, n_out: int) -> tuple[int, int]:
    """(params, MACs at batch 1) of a Linear layer."""
    return n_in * n_out + n_out, n_in * n_out


@dataclass
class Cost:
    params: dict[str, int]
    step_macs: dict[str, int]  # per generated frame
    style_macs: int  # once per style clip (film generator + FiLM caches)
    sequence_macs: int  # once per transition (target encoder + 8 warm-up steps)
    initial_phase_macs: int  # once per transition when the keyframe has no phase label

    @property
    def macs_per_frame(self) -> int:
        return sum(self.step_macs.values())

    @property
    def runtime_params(self) -> int:
        """Weights read per generated frame (sampler minus the film generator, plus the decoder)."""
        return self.params["sampler_step"] + self.params["decoder"]


def cost(cfg: RSMTConfig) -> Cost:
    s, m, sk = cfg.sampler, cfg.manifold, cfg.skeleton
    c = cfg.phase.n_phases
    d, lat, h = s.film_hidden, s.latent, s.lstm
    tok = cfg.style_tokens
    lstm_in = d + 2 * lat
    # --- parameters
    enc = lambda n_in: _lin(n_in, s.encoder_hidden)[0] + _lin(s.encoder_hidden, lat)[0]
    film_cache = sum(_lin(*x)[0] for x in ((s.style_hidden, s.style_hidden), (s.style_hidden, 2 * d),
                                            (s.style_hidden, d), (s.style_hidden, d)))
    film_step = 2 * _lin(d, d)[0]  # query + out_proj
    style_conv = (cfg.style_channels * s.style_hidden + s.style_hidden
                  + sum(k * s.style_hidden**2 + s.style_hidden for k in (3, 3, 5)))
    lstm_p = 4 * h * (lstm_in + h) + 8 * h
    pred = (_lin(h + cfg.phase_dims + 2 * lat, s.predictor_hidden)[0] + _lin(s.predictor_hidden, d)[0]
            + film_step + _lin(d, d)[0] + _lin(d, cfg.predictor_outputs)[0])
    step_params = enc(cfg.state_dims) + enc(cfg.offset_dims) + _lin(lat, d)[0] + film_step + lstm_p + pred
    gate = (_lin(cfg.phase_dims + m.latent, m.gate_hidden)[0] + _lin(m.gate_hidden, m.gate_hidden)[0]
            + _lin(m.gate_hidden, m.n_experts)[0])
    e_shapes = ((cfg.condition_dims + m.latent, m.expert_hidden), (m.expert_hidden + m.latent, m.expert_hidden),
                (m.expert_hidden, cfg.delta_dims))
    experts = m.n_experts * sum(a * b + b for a, b in e_shapes)
    vae_enc = (_lin(12 * sk.n_pos_joints + 12 * sk.n_joints, m.encoder_hidden)[0]
               + 2 * _lin(m.encoder_hidden, m.encoder_hidden)[0] + _lin(m.encoder_hidden, 2 * m.latent)[0])
    n, hid = cfg.phase.window, cfg.pae_hidden
    pae = (cfg.pae_channels * hid * n + hid + hid * c * n + c + c * 2 * n + 2 * c + c * hid * n + hid
           + hid * cfg.pae_channels * n + cfg.pae_channels + 4 * hid + 2 * c)
    ip = cfg.phase_predictor.hidden
    init_p = lstm_in * ip * 5 + ip + ip * ip * 3 + ip + ip * ip * 2 + ip + _lin(ip, 3 * c)[0]
    params = {
        "deephase": pae,
        "manifold_encoder": vae_enc,
        "decoder": gate + experts,
        "sampler_style": style_conv + 2 * film_cache,
        "sampler_target": enc(cfg.state_dims),
        "sampler_step": step_params,
        "initial_phase_predictor": init_p,
    }
    params["sampler_total"] = params["sampler_style"] + params["sampler_target"] + step_params
    # --- per-frame MACs
    film_step = 2 * d * d + 2 * tok * d  # query, out_proj, scores, weighted values
    step = {
        "state+offset encoders": _lin(cfg.state_dims, s.encoder_hidden)[1] + _lin(s.encoder_hidden, lat)[1]
        + _lin(cfg.offset_dims, s.encoder_hidden)[1] + _lin(s.encoder_hidden, lat)[1],
        "style embedding (fc + FiLM/attention)": lat * d + film_step,
        "LSTM": 4 * h * (lstm_in + h),
        "phase predictor": (h + cfg.phase_dims + 2 * lat) * s.predictor_hidden + s.predictor_hidden * d
        + film_step + d * d + d * cfg.predictor_outputs,
        "MoE gate": (cfg.phase_dims + m.latent) * m.gate_hidden + m.gate_hidden**2 + m.gate_hidden * m.n_experts,
        "MoE experts (blend outputs)": m.n_experts * sum(a * b for a, b in e_shapes),
    }
    t1 = s.style_frames - 1
    style = (cfg.style_channels * s.style_hidden * t1 + 3 * s.style_hidden**2 * (t1 - 2)
             + 3 * s.style_hidden**2 * (t1 - 4) + 5 * s.style_hidden**2 * (t1 - 8)
             + 2 * (2 * tok * s.style_hidden * d + s.style_hidden**2 + 2 * s.style_hidden * d))
    warm = step["state+offset encoders"] + step["style embedding (fc + FiLM/attention)"] + step["LSTM"]
    seq = _lin(cfg.state_dims, s.encoder_hidden)[1] + _lin(s.encoder_hidden, lat)[1] + 8 * warm
    init_m = lstm_in * ip * 5 * 4 + ip * ip * 3 * 2 + ip * ip * 2 + ip * 3 * c
    return Cost(params, step, style, seq, init_m)


def cost_table(presets: dict[str, RSMTConfig]) -> str:
    """Markdown table: params and MACs per generated frame for each config."""
    header = ("| config | params touched per frame | fp32 MB | MACs per frame | LSTM | MoE experts | "
              "per style clip | per sequence | initial phase |")
    rows = [header, "|" + "---|" * 9]
    for name, cfg in presets.items():
        k = cost(cfg)
        rows.append(
            f"| {name} | {k.runtime_params / 1e6:.2f} M | {k.runtime_params * 4 / 2**20:.1f} | "
            f"{k.macs_per_frame / 1e6:.2f} M | {k.step_macs['LSTM'] / 1e6:.2f} M | "
            f"{k.step_macs['MoE experts (blend outputs)'] / 1e6:.2f} M | {k.style_macs / 1e6:.1f} M | "
            f"{k.sequence_macs / 1e6:.1f} M | {k.initial_phase_macs / 1e6:.1f} M |"
        )
    return "\n".join(rows)
