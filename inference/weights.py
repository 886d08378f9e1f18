"""Weight adapter: the shipped assets (torch state_dict names, safetensors) -> the layouts the graphs take.

What the adapter does, once at load time, so no graph transposes or folds anything per call:
- Linear (out, in) -> (in, out); Conv1d (out, in, k) -> (k, in, out), channels-last.
- BatchNorm (eval) folded into the preceding convolution.
- LSTMCell: [W_ih; W_hh] transposed and stacked into one (in + hidden, 4*hidden) matrix, b = b_ih + b_hh.
- Mixture-of-experts layers (E, out, in) -> (in, E*out) so each layer is one matmul.
- Fixed tables derived from the config (DFT bases, bin frequencies, positional-encoding tables, 1/sqrt(width)).

Assets: a folder with `manifest.json` ({"config": RSMTConfig dict, optional "weights": {network: file}}) or a
training run folder (`config.json`), and safetensors holding the four state_dicts: one file per network
(`phase`, `manifold`, `sampler`, `phase_predictor` or `phase-predictor` + `.safetensors`, as training/stages.py
writes them) or one file with those prefixes. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rsmt_studio.inference.graphs.nets import NORM_EPS, Dims

NETWORKS = ("phase", "manifold", "sampler", "phase_predictor")
StateDict = Mapping[str, np.ndarray]


class AssetError(ValueError):
    """The asset folder is missing a file or a weight, or its config does not parse."""


@dataclass
class ModelAssets:
    """The four networks' state_dicts (torch names, numpy arrays), their config, and the manifest."""

    config: dict[str, Any]
    state: dict[str, dict[str, np.ndarray]]
    manifest: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def dims(self) -> Dims:
        return Dims.from_config(self.config)

    def weights_hash(self) -> str:
        h = hashlib.sha256()
        for net in NETWORKS:
            for k in sorted(self.state.get(net, {})):
                h.update(k.encode())
                h.update(np.ascontiguousarray(self.state[net][k]).tobytes())
        return h.hexdigest()[:16]


def load_assets(folder: str | Path) -> ModelAssets:
    """Read a model folder: the shipped assets (`manifest.json` with a "config" object) or a training run
    folder (`config.json`), plus the weights (see the module docstring for the layouts)."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    config_path = folder / "config.json"
    if manifest_path.is_file():
        manifest = _read_json(manifest_path)
        config = manifest.get("config")
        if not isinstance(config, dict) and config_path.is_file():
            config = _read_json(config_path)
    elif config_path.is_file():
        manifest, config = {}, _read_json(config_path)
    else:
        raise AssetError(f"{folder}: no manifest.json or config.json (not a model folder)")
    if not isinstance(config, dict):
        raise AssetError(f"{manifest_path}: no 'config' object")
    state: dict[str, dict[str, np.ndarray]] = {n: {} for n in NETWORKS}
    files = manifest.get("weights")
    if isinstance(files, dict):  # {"phase": "phase.safetensors", ...}
        for net, name in files.items():
            if net in state:
                state[net] = dict(load_file(folder / name))
    else:
        per_net = {n: [folder / f"{n}.safetensors", folder / f"{n.replace('_', '-')}.safetensors"]
                   for n in NETWORKS}
        if any(p.is_file() for paths in per_net.values() for p in paths):
            for net, paths in per_net.items():
                for path in paths:
                    if path.is_file():
                        state[net] = dict(load_file(path))
                        break
        else:
            single = folder / (files if isinstance(files, str) else "rsmt.safetensors")
            if not single.is_file():
                raise AssetError(f"{folder}: no weights (expected <network>.safetensors or rsmt.safetensors)")
            for key, arr in load_file(single).items():
                net, _, name = key.partition(".")
                if net not in state:
                    raise AssetError(f"{single}: weight {key!r} has no known network prefix {NETWORKS}")
                state[net][name] = arr
    for net in ("phase", "manifold", "sampler"):
        if not state[net]:
            raise AssetError(f"{folder}: no weights for the {net} network")
    return ModelAssets(config=config, state=state, manifest=manifest, source=folder)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AssetError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None


# ------------------------------------------------------------------------------------------------ adapters
def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _get(sd: StateDict, key: str, net: str) -> np.ndarray:
    try:
        return np.asarray(sd[key], dtype=np.float64)
    except KeyError:
        raise AssetError(f"{net} weights: missing {key!r}") from None


def _linear(out: dict, sd: StateDict, src: str, dst: str, net: str) -> None:
    out[f"{dst}.w"] = _f32(_get(sd, f"{src}.weight", net).T)
    out[f"{dst}.b"] = _f32(_get(sd, f"{src}.bias", net))


def _conv(out: dict, sd: StateDict, src: str, dst: str, net: str, bn: str | None = None) -> None:
    w = _get(sd, f"{src}.weight", net)  # (out, in, k)
    b = _get(sd, f"{src}.bias", net)
    if bn is not None:
        scale = _get(sd, f"{bn}.weight", net) / np.sqrt(_get(sd, f"{bn}.running_var", net) + NORM_EPS)
        w = w * scale[:, None, None]
        b = (b - _get(sd, f"{bn}.running_mean", net)) * scale + _get(sd, f"{bn}.bias", net)
    out[f"{dst}.w"] = _f32(w.transpose(2, 1, 0))
    out[f"{dst}.b"] = _f32(b)


def positional_table(dim: int, max_tta: int) -> np.ndarray:
    """Rows t = 0..max_tta of the sinusoidal PE (computed in float32 like training/networks.py)."""
    t = np.arange(max_tta + 1, dtype=np.float32)[:, None]
    i = np.arange(0, dim, 2, dtype=np.float32)
    angle = t / np.power(np.float32(10000.0), i / np.float32(dim))
    pe = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(max_tta + 1, dim)
    return _f32(pe)


def adapt_phase(sd: StateDict, d: Dims) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    _conv(out, sd, "conv1", "phase.conv1", "phase", bn="bn1")
    _conv(out, sd, "conv2", "phase.conv2", "phase", bn="bn2")
    out["phase.phase_weight"] = _f32(_get(sd, "phase_weight", "phase"))
    out["phase.phase_bias"] = _f32(_get(sd, "phase_bias", "phase"))
    n = d.window
    k = np.arange(1, n // 2 + 1, dtype=np.float64)
    t = np.arange(n, dtype=np.float64)
    ang = 2 * np.pi * t[:, None] * k[None, :] / n
    out["phase.dft_cos"] = _f32(np.cos(ang))
    out["phase.dft_sin"] = _f32(np.sin(ang))
    out["phase.freqs"] = _f32(k * d.fps / n)
    return out


def _film(out: dict, sd: StateDict, prefix: str) -> None:
    for name in ("ada_fc1", "ada_fc2", "query", "key", "value", "out_proj"):
        _linear(out, sd, f"{prefix}.{name}", f"{prefix}.{name}", "sampler")
    width = out[f"{prefix}.query.w"].shape[1]
    out[f"{prefix}.scale"] = np.array([1.0 / np.sqrt(width)], dtype=np.float32)


def adapt_sampler(sd: StateDict, d: Dims) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    out["style.input_mean"] = _f32(_get(sd, "style_encoder.input_mean", "sampler"))
    out["style.input_std"] = _f32(_get(sd, "style_encoder.input_std", "sampler"))
    for i in range(1, 5):
        _conv(out, sd, f"style_encoder.conv{i}", f"style.conv{i}", "sampler")
    for enc in ("state_encoder", "offset_encoder", "target_encoder"):
        for fc in ("fc1", "fc2"):
            _linear(out, sd, f"{enc}.{fc}", f"{enc}.{fc}", "sampler")
    _linear(out, sd, "embedding_fc", "embedding_fc", "sampler")
    _film(out, sd, "embedding_film")
    _film(out, sd, "predictor_film")
    for i in range(1, 5):
        _linear(out, sd, f"predictor_fc{i}", f"predictor_fc{i}", "sampler")
    w_ih, w_hh = _get(sd, "lstm.weight_ih", "sampler"), _get(sd, "lstm.weight_hh", "sampler")
    out["lstm.w"] = _f32(np.concatenate([w_ih.T, w_hh.T], axis=0))
    out["lstm.b"] = _f32(_get(sd, "lstm.bias_ih", "sampler") + _get(sd, "lstm.bias_hh", "sampler"))
    latent = out["offset_encoder.fc2.w"].shape[1]
    film = out["embedding_fc.w"].shape[1]
    out["pe_latent"] = positional_table(latent, d.max_tta)
    out["pe_film"] = positional_table(film, d.max_tta)
    return out


def adapt_decoder(sd: StateDict, d: Dims) -> dict[str, np.ndarray]:
    """Manifold decoder (`decoder.*` of the manifold state_dict)."""
    out: dict[str, np.ndarray] = {}
    for i in range(1, 4):
        _linear(out, sd, f"decoder.gate_fc{i}", f"decoder.gate_fc{i}", "manifold")
        w = _get(sd, f"decoder.expert{i}_weight", "manifold")  # (E, out, in)
        b = _get(sd, f"decoder.expert{i}_bias", "manifold")  # (E, out)
        e, o, n_in = w.shape
        out[f"decoder.expert{i}.w"] = _f32(w.transpose(2, 0, 1).reshape(n_in, e * o))
        out[f"decoder.expert{i}.b"] = _f32(b.reshape(e * o))
    return out


def adapt_phase_predictor(sd: StateDict, d: Dims) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i in range(1, 4):
        _conv(out, sd, f"conv{i}", f"phase_predictor.conv{i}", "phase_predictor")
    _linear(out, sd, "fc", "phase_predictor.fc", "phase_predictor")
    return out


def adapt_all(assets: ModelAssets) -> dict[str, np.ndarray]:
    """Every adapted weight by name (the initial-phase predictor only when the assets hold one)."""
    d = assets.dims
    out = {}
    out.update(adapt_phase(assets.state["phase"], d))
    out.update(adapt_sampler(assets.state["sampler"], d))
    out.update(adapt_decoder(assets.state["manifold"], d))
    if assets.state.get("phase_predictor"):
        out.update(adapt_phase_predictor(assets.state["phase_predictor"], d))
    return out
