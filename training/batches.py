"""Random training windows as numpy arrays (no torch): DeepPhase windows, manifold clips, sampler problems.

Every batch is canonicalised exactly the way inference does it (motion/features.py), so a trained network
never sees a convention the MAX side does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rsmt_studio.motion import features as Fe
from rsmt_studio.motion import rotations as _R
from rsmt_studio.motion import splice as _splice
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
    sources: np.ndarray | None = None  # spliced rows: (B,4) a, a's window start, b, b's start (global frames)


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


# ------------------------------------------------------------------------------------------------ spliced rows
class SplicePool:
    """Takes that spliced cross-style rows are drawn from: one split side of one dataset (dataset-2 has every
    locomotion content in all its styles), with each sequence's mirror parity (a mirrored turn-left is a turn
    right, so a and b must share it) and a lazy cache of per-frame root-space poses for the junction search."""

    def __init__(self, md: MotionData, test: bool = False, dataset: str = "dataset-2"):  # name prefix of the takes
        k = md.n_sequences // len(md.clip_names)  # 2 with mirrored copies, else 1
        seqs = md.sequences(test)
        names = md.clip_names[seqs // k]
        self.md, self.k = md, k
        self.seqs = seqs[np.char.startswith(names.astype(str), dataset + "/")]
        self.parity = self.seqs % k
        self.take = self.seqs // k  # the file; a sequence and its mirror are one take
        self._poses: dict[int, np.ndarray] = {}
        self._partners: dict[int, dict[str, list[tuple[int, np.ndarray]]]] = {}

    def poses(self, seq: int) -> np.ndarray:
        """(T,J,3) root-space poses of a whole sequence (motion.splice.root_poses), cached."""
        if seq not in self._poses:
            a = int(self.md.starts[seq])
            self._poses[seq] = _splice.root_poses(self.md.gpos[a : a + int(self.md.lengths[seq])],
                                                  self.md.ms).astype(np.float32)
        return self._poses[seq]

    def partners(self, window: int) -> dict[str, list[tuple[int, np.ndarray]]]:
        """{style B: [(a, candidate b sequences)]}: a of another style, b of style B, same content and parity,
        both at least `window` frames long (cached per window)."""
        if window in self._partners:
            return self._partners[window]
        md = self.md
        ok = md.lengths[self.seqs] >= window
        out: dict[str, list[tuple[int, np.ndarray]]] = {}
        for style in sorted(set(md.styles[self.seqs[ok]].tolist())):
            rows = []
            for i in np.flatnonzero(ok & (md.styles[self.seqs] != style)):
                a = int(self.seqs[i])
                same = ok & (md.styles[self.seqs] == style) & (md.contents[self.seqs] == md.contents[a]) \
                    & (self.parity == self.parity[i])
                if same.any():
                    rows.append((a, self.seqs[same]))
            if rows:
                out[style] = rows
        self._partners[window] = out
        return out


def _junction(pool: SplicePool, labels: PhaseLabels, a: int, a_start: int, b: int, window: int, n_past: int,
              match: int, phase_weight: float) -> int:
    """Start in sequence b (relative) whose `match` frames up to the junction best match the window's: root-space
    pose distance (as motion.splice.splice_window) plus phase-vector distance, each over its median."""
    md, last = pool.md, n_past - 1
    src_rel = a_start - int(md.starts[a]) + last - match + 1
    src = pool.poses(a)[src_rel : src_rel + match]
    pb = pool.poses(b)
    b0 = int(md.starts[b])
    starts = np.arange(0, int(md.lengths[b]) - window + 1)
    pose_d = sum(np.linalg.norm(pb[starts + last - match + 1 + k] - src[k], axis=-1).mean(-1) for k in range(match))
    ph_src = labels.phase[a_start + last - match + 1 : a_start + last + 1]
    ph_b = labels.phase[b0 : b0 + int(md.lengths[b])]
    phase_d = sum(np.linalg.norm(ph_b[starts + last - match + 1 + k] - ph_src[k], axis=-1).mean(-1)
                  for k in range(match))
    cost = pose_d / max(float(np.median(pose_d)), 1e-6) + phase_weight * phase_d / max(float(np.median(phase_d)), 1e-6)
    return int(starts[np.argmin(cost)])


def _blend_rotations(rot: np.ndarray, delta: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """rot (T,J,3,3) premultiplied by `delta` (J,3,3) scaled along its geodesic by decay (T,): R_t <- delta^d_t R_t."""
    axis, angle = _R.quat_to_axis_angle(_R.matrix_to_quat(delta))
    q = _R.axis_angle_to_quat(np.broadcast_to(axis, (len(decay), *axis.shape)), angle[None] * decay[:, None])
    return _R.quat_to_matrix(q) @ rot


def spliced_sampler_batch(md: MotionData, labels: PhaseLabels, test: bool, length: int, style_frames: int, n: int,
                          rng: np.random.Generator, style: str | None = None, n_past: int = Fe.N_PAST,
                          pool: SplicePool | None = None, half_life: float = 4.0, match: int = 3,
                          phase_weight: float = 1.0) -> SamplerBatch:
    """B cross-style transition problems with real ground truth (issue 14, recipe A of the style-control note).

    Style B is drawn (or given); each row takes a window of a take a of ANOTHER style and a take b of style B
    with the same content (same split side and dataset, same mirror parity). The context (frames 0..n_past-1)
    is a's; every later frame is b's, from the start in b that best matches the junction (root-space pose +
    phase distance, `_junction`), moved by motion.splice.splice_window so both junction frames share hips XZ
    and facing. The pose gap at the junction is decayed out over b's frames (half-life `half_life` frames, on
    positions and on rotations along the geodesic), so the ground truth starts continuously. Keyframe, phases,
    frequencies and contacts after the context are b's; bone offsets are a's (the context's skeleton, as at
    inference). The style clip is a 120-frame window of another take of style B, of another content where one
    exists. The batch's `style_name` is B."""
    pool = pool if pool is not None else SplicePool(md, test)
    proto = Fe.KeyframeProtocol(length, n_past)
    w, last = proto.window, n_past - 1
    table = pool.partners(w)
    if not table:
        raise ValueError("no cross-style pairs of the same content for spliced rows")
    if style is None:
        names = sorted(table)
        style = names[int(rng.integers(len(names)))]
    rows = table[style]
    ms = md.ms
    gpos = np.empty((n, w, ms.num_joints, 3), np.float64)
    grot = np.empty((n, w, ms.num_joints, 3, 3), np.float64)
    phase = np.empty((n, w, *labels.phase.shape[1:]), np.float32)
    freq = np.empty((n, w, labels.frequency.shape[1]), np.float32)
    contacts = np.empty((n, w, md.contacts.shape[1]), np.float32)
    offsets = np.empty((n, ms.num_joints, 3), np.float32)
    style_seqs = np.empty(n, np.int64)
    sources = np.empty((n, 4), np.int64)  # a, a's window start (global frame), b, b's start (global frame)
    decay = 0.5 ** (np.arange(1, w - last) / half_life)  # frames n_past.. of the window
    mine = pool.seqs[(md.styles[pool.seqs] == style) & (md.lengths[pool.seqs] >= style_frames)]
    for i in range(n):
        a, bs = rows[int(rng.integers(len(rows)))]
        b = int(bs[int(rng.integers(len(bs)))])
        a0 = int(md.starts[a]) + int(rng.integers(int(md.lengths[a]) - w + 1))
        s = _junction(pool, labels, a, a0, b, w, n_past, match, phase_weight)
        b0 = int(md.starts[b]) + s
        wp, wr = md.gpos[a0 : a0 + w].astype(np.float64), md.grot[a0 : a0 + w].astype(np.float64)
        bp_take, br_take = md.gpos[b0 : b0 + w].astype(np.float64), md.grot[b0 : b0 + w].astype(np.float64)
        sp, sr, _ = _splice.splice_window(wp, wr, bp_take, br_take, ms, n_past, match)  # one start: s itself
        # b's own junction frame under the same move (splice_window keeps a's frame there)
        ca, cb = Fe.canonical_transform(wp[last], ms), Fe.canonical_transform(bp_take[last], ms)
        b_last_p = ca.inverse_positions(cb.positions(bp_take[last : last + 1]))[0]
        b_last_r = ca.inverse_rotations(cb.rotations(br_take[last : last + 1]))[0]
        sp[n_past:] += decay[:, None, None] * (wp[last] - b_last_p)[None]
        sr[n_past:] = _blend_rotations(sr[n_past:], wp[last] @ np.swapaxes(b_last_r, -1, -2), decay)
        gpos[i], grot[i] = sp, sr
        for dst, src in ((phase[i], labels.phase), (freq[i], labels.frequency), (contacts[i], md.contacts)):
            dst[:n_past] = src[a0 : a0 + n_past]
            dst[n_past:] = src[b0 + n_past : b0 + w]
        offsets[i] = md.offsets[a]
        other = mine[(md.contents[mine] != md.contents[b])]
        if not len(other):
            other = mine[mine // pool.k != b // pool.k]
        if not len(other):
            other = mine
        style_seqs[i] = other[int(rng.integers(len(other)))]
        sources[i] = (a, a0, b, b0)
    feats = np.concatenate([style_windows(md, style_seqs[i : i + 1], style_frames, 1, rng) for i in range(n)])
    _, st = Fe.canonical_window(gpos, grot, ms, last)
    f32 = np.float32
    win = WindowBatch(pos=st.pos.astype(f32), p=st.p.astype(f32), v=st.v.astype(f32), r=st.r.astype(f32),
                      phase=phase, frequency=freq, contacts=contacts, offsets=offsets)
    return SamplerBatch(win, feats, length, style, sources)
