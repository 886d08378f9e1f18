"""Random training windows as numpy arrays (no torch): DeepPhase windows, manifold clips, sampler problems.

Every batch is canonicalised exactly the way inference does it (motion/features.py), so a trained network
never sees a convention the MAX side does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rsmt_studio.motion import features as Fe
from rsmt_studio.training.data import MotionData


@dataclass
class PhaseLabels:
    """Per-frame DeepPhase labels for every frame of MotionData: P (F,C,2), F (F,C) in Hz."""

    phase: np.ndarray
    frequency: np.ndarray

    @property
    def amplitude(self) -> np.ndarray:
        return np.linalg.norm(self.phase, axis=-1)


def _frames(md: MotionData, seqs: np.ndarray, length: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, length) global frame indices of random windows fully inside the given sequences."""
    valid = md.lengths[seqs] - length + 1
    keep = valid > 0
    seqs, valid = seqs[keep], valid[keep]
    if len(seqs) == 0:
        raise ValueError(f"no sequence has {length} frames")
    pick = rng.choice(len(seqs), size=n, p=valid / valid.sum())
    start = md.starts[seqs[pick]] + (rng.random(n) * valid[pick]).astype(np.int64)
    return start[:, None] + np.arange(length)[None, :]


def phase_batch(md: MotionData, test: bool, window: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3J, window) DeepPhase inputs centred on random frames (clamped at clip edges, as in labelling)."""
    seqs = md.sequences(test)
    w = md.lengths[seqs].astype(np.float64)
    s = seqs[rng.choice(len(seqs), size=n, p=w / w.sum())]
    t = (rng.random(n) * md.lengths[s]).astype(np.int64)
    idx = np.clip(t[:, None] + np.arange(window)[None, :] - window // 2, 0, md.lengths[s][:, None] - 1)
    idx = idx + md.starts[s][:, None]
    return np.ascontiguousarray(md.pae_vel[idx].transpose(0, 2, 1))


@dataclass
class WindowBatch:
    """Canonicalised windows plus labels. Shapes: B windows of T frames."""

    pos: np.ndarray  # (B,T,J,3) all joints
    p: np.ndarray  # (B,T,Np,3)
    v: np.ndarray  # (B,T,Np,3)
    r: np.ndarray  # (B,T,J,6)
    phase: np.ndarray  # (B,T,C,2)
    frequency: np.ndarray  # (B,T,C)
    contacts: np.ndarray  # (B,T,4)
    offsets: np.ndarray  # (B,J,3)


def window_batch(md: MotionData, labels: PhaseLabels, idx: np.ndarray, ref: int) -> WindowBatch:
    seq = np.searchsorted(md.starts, idx[:, 0], side="right") - 1
    _, st = Fe.canonical_window(md.gpos[idx], md.grot[idx], md.ms, ref)  # float32 is ample in the canonical frame
    f32 = np.float32
    return WindowBatch(
        pos=st.pos.astype(f32), p=st.p.astype(f32), v=st.v.astype(f32), r=st.r.astype(f32),
        phase=labels.phase[idx].astype(f32), frequency=labels.frequency[idx].astype(f32),
        contacts=md.contacts[idx], offsets=md.offsets[seq],
    )


def manifold_batch(md: MotionData, labels: PhaseLabels, test: bool, length: int, n: int,
                   rng: np.random.Generator) -> WindowBatch:
    """Short clips canonicalised on their first frame (the manifold has no context/keyframe notion)."""
    idx = _frames(md, md.sequences(test), length, rng, n)
    return window_batch(md, labels, idx, ref=0)


@dataclass
class SamplerBatch:
    window: WindowBatch  # n_past + L + 2 frames, canonical on frame n_past-1
    style: np.ndarray  # (B, style_frames-1, 12(J-1)) style-encoder features
    length: int
    style_name: str


def style_windows(md: MotionData, seqs: np.ndarray, frames: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, frames-1, C) style-encoder inputs: rows of the per-frame table equal style_features of the window."""
    idx = _frames(md, seqs, frames, rng, n)
    return md.style_feat[idx[:, :-1]]


def sampler_styles(md: MotionData, test: bool, window: int, style_frames: int) -> list[str]:
    """Styles that have both motion windows and style clips in this split."""
    out = []
    for s in md.style_names:
        seqs = md.sequences(test)
        mine = seqs[md.styles[seqs] == s]
        if (md.lengths[mine] >= window).any() and (md.lengths[mine] >= style_frames).any():
            out.append(s)
    return out


def sampler_batch(md: MotionData, labels: PhaseLabels, test: bool, length: int, style_frames: int, n: int,
                  rng: np.random.Generator, style: str | None = None, n_past: int = Fe.N_PAST) -> SamplerBatch:
    """B transition problems of ONE style, each paired with a style clip of the same style (another take where
    the style has one), as in RSMT's one-style batches."""
    proto = Fe.KeyframeProtocol(length, n_past)
    if style is None:
        styles = sampler_styles(md, test, proto.window, style_frames)
        style = styles[rng.integers(len(styles))]
    seqs = md.sequences(test)
    mine = seqs[md.styles[seqs] == style]
    idx = _frames(md, mine, proto.window, rng, n)
    win = window_batch(md, labels, idx, ref=n_past - 1)
    feats = style_windows(md, mine, style_frames, n, rng)
    return SamplerBatch(win, feats, length, style)


def style_statistics(md: MotionData, style_frames: int, rng: np.random.Generator, n: int = 256
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Style-encoder normalisation from training clips: per-channel mean, and per block (pos, vel, rot) one
    scalar std (mean of the per-channel stds, as RSMT's motion_statistics)."""
    seqs = md.sequences(False)
    feats = style_windows(md, seqs, style_frames, n, rng).reshape(-1, md.ms.num_joints * 12 - 12)
    mean = feats.mean(0)
    std_c = feats.std(0)
    j = md.ms.num_joints - 1
    std = np.empty_like(mean)
    for a, b in ((0, 3 * j), (3 * j, 6 * j), (6 * j, 12 * j)):
        std[a:b] = max(float(std_c[a:b].mean()), 1e-3)
    return mean.astype(np.float32), std.astype(np.float32)
