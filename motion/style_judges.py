"""Independent style judges for the eval: numpy inference, features and the robustness augmentation.

Why: the shipped style classifier (assets/style_classifier) is loaded by the training style critic, so a model
can learn what it looks for. The judges here are loaded by NO training loss and NO model selection; they exist
only to score generated frames in `rsmt-studio eval`. They are two different models on different features,
both unlike the classifier (conv over per-frame [pos | vel | rot6d]):

- `gait`: window STATISTICS (mean/std of hip-relative joint positions in the facing frame, smoothed joint
  speeds, root speed/height), an MLP with one hidden layer. Sees no rotation at all.
- `angles`: per-frame JOINT ANGLES and bone orientations (flexion between each bone and its parent bone,
  unit bone directions in the facing frame, bone angular speeds) + root height, velocity and yaw rate, a GRU with
  mean-pooled states. Twist-free and scale-free: no rotation channel, no bone length, no joint position.

Input convention (as `metrics.classifier_features`): gpos (B,T+1,J,3) / grot (B,T+1,J,3,3) in any one world
frame; frame 0 only supplies frame 1's velocity, so a transition is judged on its own T frames.
Weights: `<folder>/<name>.safetensors` + `<folder>/judges.json`; trained by training/style_judges.py (torch),
whose modules use the same weight names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rotations as R
from .features import ModelSkeleton, facing, yaw_matrix_to_z

JUDGES = ("gait", "angles")
MANIFEST = "judges.json"


# ----------------------------------------------------------------------------------------------- features
def _facing_frames(gpos: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """(…,T,3,3) per-frame rotation world -> facing frame (facing +Z)."""
    return yaw_matrix_to_z(facing(gpos, ms))


def _smooth3(x: np.ndarray, axis: int) -> np.ndarray:
    """Edge-clamped [1,2,1]/4 smoothing along `axis` (takes the edge off per-frame jitter)."""
    x = np.moveaxis(x, axis, 0)
    xp = np.concatenate([x[:1], x, x[-1:]], 0)
    return np.moveaxis((xp[:-2] + 2 * xp[1:-1] + xp[2:]) / 4.0, 0, axis)


def gait_features(gpos: np.ndarray, grot: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """(B, F) window statistics of frames 1..T: mean and std of hip-relative joint positions in each frame's
    facing frame, mean smoothed speed of each joint relative to the hips, root speed over the window, mean and
    std of hip height. Rotations are not used (the argument keeps one signature for both judges)."""
    g = np.asarray(gpos, np.float64)
    yaw = _facing_frames(g, ms)  # (B,T+1,3,3)
    rel = g[..., 1:, :] - g[..., :1, :]  # hip-relative
    loc = np.einsum("btij,btkj->btki", yaw, rel)  # (B,T+1,J-1,3)
    body = loc[:, 1:]
    speed = np.linalg.norm(np.diff(_smooth3(loc, 1), axis=1), axis=-1)  # (B,T,J-1)
    root = g[:, :, 0]
    n = g.shape[1] - 1
    disp = np.einsum("bij,bj->bi", yaw[:, 0], root[:, -1] - root[:, 0]) / n  # (B,3) per-frame root motion
    return np.concatenate([
        body.mean(1).reshape(len(g), -1), body.std(1).reshape(len(g), -1), speed.mean(1),
        disp, root[:, 1:, 1:2].mean(1), root[:, 1:, 1:2].std(1),
    ], -1)


def angle_features(gpos: np.ndarray, grot: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
    """(B, T, F) per frame 1..T, twist-free by construction (a generator's re-aimed rotations differ from the
    data's in twist about the bone, toes and head most): the angle between each bone and its parent bone
    (flexion), each bone's unit direction in the facing frame, each bone's smoothed angular speed, hip height,
    root velocity in the facing frame and the yaw rate. Bone lengths and rotations are not used."""
    g = np.asarray(gpos, np.float64)
    par = ms.parents
    kids = np.arange(1, len(par))
    bones = g[..., kids, :] - g[..., par[kids], :]  # (B,T+1,J-1,3), bone j-1 ends at joint j
    unit = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-9)
    inner = np.array([j for j in kids if par[j] > 0])  # bones whose parent joint has its own bone
    cosang = np.sum(unit[..., inner - 1, :] * unit[..., par[inner] - 1, :], -1)
    flex = np.arccos(np.clip(cosang, -1.0, 1.0))  # (B,T+1,K)
    yaw = _facing_frames(g, ms)
    dirs = np.einsum("btij,btkj->btki", yaw, unit)  # (B,T+1,J-1,3)
    smooth = _smooth3(unit, 1)
    turn_rate = np.linalg.norm(np.diff(smooth, axis=1), axis=-1)  # (B,T,J-1) radians/frame (small angles)
    vel = np.einsum("btij,btj->bti", yaw[:, :-1], np.diff(g[:, :, 0], axis=1))
    fwd = facing(g, ms)
    heading = np.arctan2(fwd[..., 0], fwd[..., 2])
    turn = (np.diff(heading, axis=1) + np.pi) % (2 * np.pi) - np.pi
    b, t = turn_rate.shape[:2]
    return np.concatenate([flex[:, 1:], dirs[:, 1:].reshape(b, t, -1), turn_rate, g[:, 1:, 0, 1:2] / 100.0,
                           vel / 10.0, turn[..., None]], -1)


FEATURES = {"gait": gait_features, "angles": angle_features}


# ----------------------------------------------------------------------------------------------- augmentation
def augment(gpos: np.ndarray, grot: np.ndarray, ms: ModelSkeleton, rng: np.random.Generator,
            jitter_cm: float = 1.0, jitter_deg: float = 3.0, foot_offset_cm: tuple[float, float] = (-3.0, 1.0),
            head_wobble_deg: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Generation artefacts on real windows (B,T,J,…): per-frame position jitter (σ up to `jitter_cm`) and
    rotation jitter (σ up to `jitter_deg`), feet moved up/down by one offset per window (generated feet sit
    1-2 cm low), a low-frequency head wobble (generated heads wobble ±15°). Judges trained on this ignore them."""
    b, t, j = gpos.shape[:3]
    pos = gpos + rng.normal(size=gpos.shape) * rng.uniform(0, jitter_cm, (b, 1, 1, 1))
    pos[..., ms.feet, 1] += rng.uniform(*foot_offset_cm, (b, 1, 1))
    sigma = np.deg2rad(rng.uniform(0, jitter_deg, (b, 1, 1, 1)))
    noise = R.quat_to_matrix(R.axis_angle_to_quat(_unit(rng.normal(size=(b, t, j, 3))),
                                                  sigma[..., 0] * rng.normal(size=(b, t, j))))
    rot = noise @ grot
    head = int(np.argmax([n.lower().startswith("head") for n in ms.names]))
    if ms.names[head].lower().startswith("head") and not ms.children(head):  # a leaf: rotating moves no joint
        amp = np.deg2rad(rng.uniform(0, head_wobble_deg, (b, 1)))
        freq = rng.uniform(0.5, 3.0, (b, 1)) / 30.0
        ang = amp * np.sin(2 * np.pi * freq * np.arange(t) + rng.uniform(0, 2 * np.pi, (b, 1)))
        axis = _unit(np.concatenate([rng.normal(size=(b, 1, 1)), np.zeros((b, 1, 1)),
                                     rng.normal(size=(b, 1, 1))], -1)) * np.ones((1, t, 1))
        rot[:, :, head] = R.quat_to_matrix(R.axis_angle_to_quat(axis, ang)) @ rot[:, :, head]
    return pos, rot


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------------------------- networks
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def mlp_logits(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """gait: x (B,F) normalised -> Linear -> ReLU -> Linear (torch layout)."""
    h = np.maximum(x @ w["hidden.weight"].T + w["hidden.bias"], 0.0)
    return h @ w["head.weight"].T + w["head.bias"]


def gru_logits(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """angles: x (B,T,F) normalised -> one-layer GRU (torch gate order r, z, n) -> mean of states -> Linear."""
    wi, wh = w["gru.weight_ih_l0"], w["gru.weight_hh_l0"]
    bi, bh = w["gru.bias_ih_l0"], w["gru.bias_hh_l0"]
    hdim = wh.shape[1]
    gi = x @ wi.T + bi  # (B,T,3H)
    h = np.zeros((x.shape[0], hdim))
    acc = np.zeros_like(h)
    for t in range(x.shape[1]):
        gh = h @ wh.T + bh
        r = _sigmoid(gi[:, t, :hdim] + gh[:, :hdim])
        z = _sigmoid(gi[:, t, hdim : 2 * hdim] + gh[:, hdim : 2 * hdim])
        n = np.tanh(gi[:, t, 2 * hdim :] + r * gh[:, 2 * hdim :])
        h = (1 - z) * n + z * h
        acc += h
    return (acc / x.shape[1]) @ w["head.weight"].T + w["head.bias"]


NETWORKS = {"gait": mlp_logits, "angles": gru_logits}
REQUIRED = {"gait": {"hidden.weight", "hidden.bias", "head.weight", "head.bias"},
            "angles": {"gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0",
                       "head.weight", "head.bias"}}


@dataclass
class StyleJudge:
    """One judge: its features, network weights and input statistics; `predict` takes raw motion."""

    name: str
    classes: list[str]
    weights: dict[str, np.ndarray]
    meta: dict

    def logits(self, gpos: np.ndarray, grot: np.ndarray, ms: ModelSkeleton) -> np.ndarray:
        """(B,T+1,J,3) / (B,T+1,J,3,3), one length per call -> (B, classes)."""
        w = self.weights
        x = (FEATURES[self.name](gpos, grot, ms) - w["input_mean"]) / w["input_std"]
        return NETWORKS[self.name](w, x)

    def predict(self, gpos: np.ndarray, grot: np.ndarray, ms: ModelSkeleton, batch: int = 512) -> list[str]:
        out = []
        for a in range(0, len(gpos), batch):
            out.extend(self.classes[i] for i in np.argmax(self.logits(gpos[a : a + batch], grot[a : a + batch], ms), -1))
        return out


def load_judges(folder: str | Path) -> list[StyleJudge]:
    """Every judge of `folder`/judges.json; a missing file or weight is an error naming it."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: style judges manifest not found")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{manifest_path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    classes = list(manifest.get("classes", []))
    judges = []
    for name, meta in manifest.get("judges", {}).items():
        if name not in FEATURES:
            raise ValueError(f"{manifest_path}: unknown judge {name!r} (known: {', '.join(JUDGES)})")
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: style judge weights not found")
        w = {k: v.astype(np.float64) for k, v in load_file(str(path)).items()}
        missing = (REQUIRED[name] | {"input_mean", "input_std"}) - set(w)
        if missing:
            raise ValueError(f"{path}: missing weights {sorted(missing)}")
        if w["head.weight"].shape[0] != len(classes):
            raise ValueError(f"{path}: head has {w['head.weight'].shape[0]} outputs, {manifest_path} lists "
                             f"{len(classes)} classes")
        judges.append(StyleJudge(name, classes, w, {**meta, "manifest": manifest}))
    if not judges:
        raise ValueError(f"{manifest_path}: lists no judges")
    return judges


__all__ = ["FEATURES", "JUDGES", "MANIFEST", "StyleJudge", "angle_features", "augment", "gait_features",
           "gru_logits", "load_judges", "mlp_logits"]
