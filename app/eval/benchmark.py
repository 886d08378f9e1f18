"""The transition quality benchmark behind `rsmt-studio eval` (its arguments: `app/cli/eval.py`).

One run scores, for every transition length L, the same held-out windows (committed split
training/splits/test.txt; 10 context frames, L transition frames, the keyframe after them, not scored; docs/model.md
§3) for: our model (the shipped MAX inference graphs, batched), zero-velocity hold, SLERP/LERP interpolation,
inertialization, and the real clips themselves (the ceiling for foot skate and style accuracy). Metrics are in
motion/metrics.py, baselines in motion/baselines.py; docs/quality.md has the definitions and the table. The style
scenarios are in `style.py`, the benchmark on a user's own clips (`--clips`) in `clips.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rsmt_studio.motion.headsteady import KEEP as HEAD_KEEP


def _package_dir(name: str) -> Path:
    """Folder of one of our packages (works from a checkout and from an installed wheel)."""
    import importlib

    return Path(importlib.import_module(name).__file__).resolve().parent


REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "bandai" / "dataset"
DATA_ENV = "RSMT_STUDIO_BANDAI"
SPLIT_TEST = _package_dir("rsmt_studio.training") / "splits" / "test.txt"
CLASSIFIER_DIR = _package_dir("rsmt_studio.assets") / "style_classifier"
JUDGES_DIR = _package_dir("rsmt_studio.assets") / "style_judges"
METHODS = ("rsmt", "slerp", "inertialization", "zero_velocity")
METRICS = ("l2p", "l2q", "npss", "foot_skate", "style_acc")
LOCOMOTION = {"walk", "walk-back", "walk-left", "walk-right", "run", "dash", "walk-turn-left", "walk-turn-right"}


# ----------------------------------------------------------------------------------------------- data
@dataclass
class HeldOutClip:
    """One held-out file on the model skeleton, as world-frame global arrays."""

    key: str
    style: str
    gpos: np.ndarray  # (T,J,3)
    grot: np.ndarray  # (T,J,3,3)
    ms: object  # motion.features.ModelSkeleton
    group: str  # "locomotion" or "other" (gestures, attacks, dance)
    content: str = ""


@dataclass
class HeldOut:
    """Held-out windows in the world frame, all of the longest protocol's length."""

    gpos: np.ndarray  # (B,W,J,3)
    grot: np.ndarray  # (B,W,J,3,3)
    offsets: np.ndarray  # (B,J,3)
    styles: list[str]
    groups: list[str]  # "locomotion" or "other" (gestures, attacks, dance) per window
    clip_of: np.ndarray  # (B,) index into clips
    clips: list[HeldOutClip]
    keys_sha: str  # sha256[:16] of the sorted held-out keys (the classifier records the same)
    keys: frozenset[str] = frozenset()  # the held-out keys themselves


def _say(msg: str, end: str = "\n") -> None:
    print(msg, file=sys.stderr, end=end, flush=True)


def load_held_out(data: Path, split: Path, window: int, stride: int, limit: int | None) -> HeldOut:
    from rsmt_studio.motion import features as Fe
    from rsmt_studio.training import data as D

    if not split.is_file():
        raise FileNotFoundError(f"{split}: held-out split list not found")
    keys = D.read_split_list(split)
    records = [r for r in D.list_bandai(data) if r.key in keys]
    missing = keys - {r.key for r in records}
    if missing:
        raise FileNotFoundError(f"{split}: {len(missing)} held-out clips not under {data}, e.g. {min(missing)}")
    clips = []
    for i, rec in enumerate(records):
        _say(f"\rreading held-out clips {i + 1}/{len(records)}", end="")
        clip, ms = Fe.model_clip(D.load_record(rec))
        gpos, grot = Fe.global_arrays(clip)
        clips.append(HeldOutClip(rec.key, rec.style, gpos, grot, ms,
                                 "locomotion" if rec.content in LOCOMOTION else "other", rec.content))
    _say("")
    index = [(c, s) for c, clip in enumerate(clips) for s in range(0, len(clip.gpos) - window + 1, stride)]
    if not index:
        raise ValueError(f"no held-out clip has {window} frames")
    if limit is not None and limit < len(index):
        pick = np.unique(np.linspace(0, len(index) - 1, max(limit, 1)).round().astype(int))
        index = [index[i] for i in pick]
    return HeldOut(
        gpos=np.stack([clips[c].gpos[s : s + window] for c, s in index]),
        grot=np.stack([clips[c].grot[s : s + window] for c, s in index]),
        offsets=np.stack([clips[c].ms.offsets for c, _ in index]), styles=[clips[c].style for c, _ in index],
        groups=[clips[c].group for c, _ in index],
        clip_of=np.array([c for c, _ in index]), clips=clips,
        keys_sha=keys_sha(keys), keys=frozenset(keys),
    )


def keys_sha(keys) -> str:
    """sha256[:16] of the sorted keys (training/style_classifier.keys_sha, without importing torch)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def trained_without(recorded_sha: str | None, held_keys: frozenset[str]) -> bool:
    """Did a judge trained beside the held-out list with sha `recorded_sha` never see `held_keys`? Yes when that
    list is this one, or an earlier committed list (training/splits/v1) whose train list names none of these keys:
    the split only grows, no take changes side (training/data.split_records)."""
    from rsmt_studio.training import data as D

    if recorded_sha == keys_sha(held_keys):
        return True
    v1 = SPLIT_TEST.parent / "v1"
    if (v1 / "test.txt").is_file() and recorded_sha == keys_sha(D.read_split_list(v1 / "test.txt")):
        return not (D.read_split_list(v1 / "train.txt") & held_keys)
    return False


# ----------------------------------------------------------------------------------------------- model
class ModelRunner:
    """Our model through the shipped inference path: the engine's four MAX graphs, called batched, and the
    engine's post-processing (FK of rotation joints, bone lengths, rotations from positions)."""

    def __init__(self, folder: Path | None, device: str, batch: int, style_source: str):
        from rsmt_studio.inference.engine import TransitionEngine, default_assets_dir

        self.folder = folder or default_assets_dir()
        _say(f"loading the model from {self.folder} on {device} (MAX graphs compile once into the cache) ...")
        from rsmt_studio.inference.runtime.compiler import print_progress

        self.engine = TransitionEngine(self.folder, device=device, progress=print_progress)
        self.batch = batch
        self.style_source = style_source
        self.foot_lock = True  # the engine's foot lock on the generated frames, as the studio shows them
        self.head_keep = HEAD_KEEP  # the engine's head steadiness (1: the sampler's head)
        self.style_frames = int(self.engine.assets.config.get("sampler", {}).get("style_frames", 120))
        self.phase_source = "initial-phase predictor" if self.engine.has_phase_predictor else \
            "DeepPhase on the context frames only (edge-clamped window, no future frames)"
        self.notes: dict[str, int] = {"style_clip_same_take": 0}
        self._codes: dict[int, list[tuple[np.ndarray, ...]]] = {}

    @staticmethod
    def transfer_styles(held: HeldOut) -> list[str]:
        """Per window a requested style OTHER than its own, cycling deterministically over the held-out styles."""
        names = sorted(set(held.styles))
        if len(names) < 2:
            return list(held.styles)
        out = []
        for w, own in enumerate(held.styles):
            others = [s for s in names if s != own]
            out.append(others[w % len(others)])
        return out

    def style_inputs(self, held: HeldOut, requested: list[str] | None = None
                     ) -> tuple[list[np.ndarray], np.ndarray]:
        """One style-encoder input per window for its requested style (default: its own): another held-out take
        of that style (the middle `style_frames` frames, as the engine takes them), or the style bank entry.
        Returns the unique inputs and each window's index into them."""
        from rsmt_studio.motion import features as Fe

        uniq: dict[object, int] = {}
        feats: list[np.ndarray] = []
        which = []
        for w, style in enumerate(requested or held.styles):
            if self.style_source == "bank":
                if style not in self.engine.style_bank.names:
                    raise ValueError(f"style bank of {self.folder} has no style {style!r}")
                key: object = ("bank", style)
                make = lambda style=style: self.engine.style_bank.features(style)
            else:
                own = int(held.clip_of[w])
                cands = [i for i, c in enumerate(held.clips) if c.style == style and i != own]
                # takes long enough for a full style clip first (equal token counts batch together)
                cands = [i for i in cands if len(held.clips[i].gpos) > self.style_frames] or cands
                if not cands:
                    cands = [own]
                    self.notes["style_clip_same_take"] += 1
                # spread windows over the candidate takes, deterministically
                c = cands[(w * 7919) % len(cands)] if len(cands) > 1 else cands[0]
                key = ("clip", c)

                def make(c=c):
                    clip = held.clips[c]
                    g, r, ms = clip.gpos, clip.grot, clip.ms
                    start = max(0, (len(g) - self.style_frames) // 2)
                    return Fe.style_features(g[start : start + self.style_frames], r[start : start + self.style_frames], ms)
            if key not in uniq:
                uniq[key] = len(feats)
                feats.append(np.asarray(make(), np.float32))
            which.append(uniq[key])
        return feats, np.array(which)

    def generate(self, held: HeldOut, requested: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Transitions of `held`'s windows with a held-out clip of each window's requested style."""
        feats, which = self.style_inputs(held, requested)
        codes = [self.engine._encode_style("eval", f).arrays for f in feats]
        return self.transitions(held, length, feats, which, codes=codes)

    def generate_bank(self, held: HeldOut, styles: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Transitions of `held`'s windows with the shipped style bank's code of each requested style."""
        names = sorted(set(styles))
        codes = [self.engine.style_code(s).arrays for s in names]
        return self.transitions(held, length, [], np.array([names.index(s) for s in styles]), codes=codes)

    def transitions(self, held: HeldOut, length: int, style_feats: list[np.ndarray], which: np.ndarray,
                    codes: list[tuple[np.ndarray, ...]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(B,L,J,3) positions and (B,L,J,3,3) rotation matrices in each window's canonical frame.
        `codes` (the style caches of `style_feats`) skips encoding them."""
        from rsmt_studio.inference.batched import PROBLEM_ARRAYS
        from rsmt_studio.inference.postprocess import project_bone_lengths, rotations_from_positions
        from rsmt_studio.motion import features as Fe
        from rsmt_studio.motion import rotations as R

        eng = self.engine
        proto = Fe.KeyframeProtocol(length)
        w = proto.window
        if codes is None:
            if id(style_feats) not in self._codes:  # encoded once for every length
                self._codes[id(style_feats)] = [eng._encode_style("eval", f).arrays for f in style_feats]
            codes = self._codes[id(style_feats)]
        ms0 = held.clips[0].ms
        n = len(held.styles)
        out_pos = np.zeros((n, length, ms0.num_joints, 3))
        out_rot = np.zeros((n, length, ms0.num_joints, 3, 3))
        # one batch per style-token count (caches of different lengths cannot be stacked)
        tokens = np.array([codes[i][2].shape[1] for i in which])
        order = [idx for t in np.unique(tokens) for idx in np.array_split(
            np.flatnonzero(tokens == t), max(1, int(np.ceil((tokens == t).sum() / self.batch))))]
        done = 0
        for idx in order:
            caches = [np.ascontiguousarray(np.concatenate([codes[i][a] for i in which[idx]])) for a in range(8)]
            p, r, _, prob = self.rollout(held.gpos[idx, :w], held.grot[idx, :w], ms0, length, caches)
            for b, wi in enumerate(idx):
                ms = held.clips[held.clip_of[wi]].ms
                # as the engine's post-processing, from this window's row of the problem
                row = replace(prob, ms=ms, **{k: getattr(prob, k)[b:b + 1] for k in PROBLEM_ARRAYS})
                head = eng.head_steady_for(row, length, self.head_keep)
                rb = head.apply(r[b]) if head is not None else r[b]
                pos = project_bone_lengths(Fe.fk_positions(p[b], rb, ms), ms)
                if self.foot_lock:
                    pos = eng.foot_lock_for(row, length).apply(pos)
                out_pos[wi] = pos
                out_rot[wi] = rotations_from_positions(pos, R.sixd_to_matrix(rb), ms)
            done += len(idx)
            _say(f"\r  rsmt L={length}: {done}/{n} windows", end="")
        _say("")
        return out_pos, out_rot

    def rollout(self, gpos: np.ndarray, grot: np.ndarray, ms, length: int, caches: list[np.ndarray]):
        """World windows (B,W,J,3)/(B,W,J,3,3) + stacked style caches -> raw sampler output in the canonical
        frame: p (B,L,Np,3), r (B,L,J,6), the phase used at the last context frame, and the engine Problem."""
        from rsmt_studio.inference import engine as E
        from rsmt_studio.motion import features as Fe

        eng = self.engine
        proto = Fe.KeyframeProtocol(length)
        _, st = Fe.canonical_window(gpos, grot, ms, proto.n_past - 1)
        k, last, f32 = proto.keyframe, proto.n_past - 1, np.float32
        wu = slice(1, Fe.N_WARMUP + 1)
        prob = E.Problem(frame=None, ms=ms, ctx_p=st.p[:, wu].astype(f32), ctx_v=st.v[:, wu].astype(f32),
                         ctx_r=st.r[:, wu].astype(f32), p9=st.p[:, last].astype(f32),
                         v9=st.v[:, last].astype(f32), r9=st.r[:, last].astype(f32),
                         tgt_p=st.p[:, k].astype(f32), tgt_v=(st.p[:, k + 1] - st.p[:, k]).astype(f32),
                         tgt_r=st.r[:, k].astype(f32))
        z = np.zeros((len(gpos), eng.z_width), f32)  # deterministic output, as RSMT's benchmark
        h, c, tgt_latent, phase0 = eng.prepare(prob, length, z, caches)
        if eng.has_phase_predictor:
            phase9 = np.asarray(phase0, f32)
        else:  # DeepPhase on the context frames only: no future frame reaches the phase
            vel = [Fe.pae_velocities(g, ms) for g in st.pos[:, : proto.n_past]]
            win = np.concatenate([Fe.pae_windows(v, eng.dims.window, np.array([last])) for v in vel])
            phase9 = np.asarray(eng.runners["deephase"](win)[0], f32)
        state = (prob.p9, prob.v9, prob.r9, phase9, h, c)
        ps, rs = [], []
        for p_k, r_k, _, _ in eng.rollout_chunks(state, prob, tgt_latent, z, caches, length):
            ps.append(np.asarray(p_k))
            rs.append(np.asarray(r_k))
        return (np.concatenate(ps, 1).astype(np.float64), np.concatenate(rs, 1).astype(np.float64), phase9,
                prob)


# ----------------------------------------------------------------------------------------------- scoring
def evaluate(args: argparse.Namespace) -> dict:
    from rsmt_studio.motion import baselines as B
    from rsmt_studio.motion import features as Fe
    from rsmt_studio.motion import metrics as M
    from rsmt_studio.motion import rotations as R

    t_start = time.perf_counter()
    lengths = sorted(set(args.lengths))
    if min(lengths) < 1:
        raise ValueError("--lengths must be positive")
    data = args.data or Path(os.environ.get(DATA_ENV) or DEFAULT_DATA)
    window = Fe.KeyframeProtocol(max(lengths)).window
    held = load_held_out(data, args.split, window, args.stride, args.limit)
    n = len(held.styles)
    ms0 = held.clips[0].ms
    _say(f"{n} held-out windows of {window} frames from {len(held.clips)} clips")

    classifier_dir = args.classifier or CLASSIFIER_DIR
    classifier = M.StyleClassifier.load(classifier_dir)
    unknown = sorted(set(held.styles) - set(classifier.classes))
    if unknown:
        raise ValueError(f"{classifier_dir}: classifier does not know styles {unknown}")

    model, model_note = None, None
    default_model = args.model is None
    if args.no_model:
        model_note = "not run (--no-model)"
    elif default_model:
        from rsmt_studio.inference.engine import default_assets_dir

        if not (default_assets_dir() / "manifest.json").is_file():
            model_note = f"not run: no shipped weights in {default_assets_dir()} (pass --model DIR)"
            _say(f"warning: RSMT {model_note}")
    if model_note is None:
        model = ModelRunner(args.model, args.device, args.batch, args.style_source)
        model.foot_lock = not getattr(args, "no_foot_lock", False)
        model.head_keep = float(getattr(args, "head_keep", HEAD_KEEP))
        style_feats, which = model.style_inputs(held)
        transfer = model.transfer_styles(held)
        transfer_feats, transfer_which = model.style_inputs(held, transfer)

    # Normalisation and planted heights from the real canonical windows (all frames), as LaFAN1 does.
    frame = Fe.canonical_transform(held.gpos[:, Fe.N_PAST - 1], ms0)
    real_all = frame.positions(held.gpos)
    mean, std = M.position_stats(real_all)
    planted = M.planted_heights(real_all, ms0.feet)

    results: dict[str, dict] = {}
    l2p_groups: dict[str, dict] = {}
    transfer_acc: dict[str, dict] = {}
    for length in lengths:
        t0 = time.perf_counter()
        proto = Fe.KeyframeProtocol(length)
        w, sc, last = proto.window, proto.scored, proto.n_past - 1
        cpos = frame.positions(held.gpos[:, :w])
        crot = frame.rotations(held.grot[:, :w])
        gt_pos, prev = cpos[:, sc], cpos[:, last]

        scorer = _Scorer(held, classifier, cpos, crot, proto, mean, std, planted)
        score = scorer.score
        row: dict[str, dict | None] = {}
        by_group: dict[str, dict] = {}
        if model is not None:
            pos, rot_m = model.transitions(held, length, style_feats, which)
            row["rsmt"] = score(pos, rot_m)
            by_group["rsmt"] = scorer.l2p_by_group(pos)
            pos_t, rot_t = model.transitions(held, length, transfer_feats, transfer_which)
            transfer_acc[str(length)] = {
                "requested_style": round(scorer.style_acc(pos_t, rot_t, transfer), 5),
                "keyframe_style": round(scorer.style_acc(pos_t, rot_t), 5)}
        else:
            row["rsmt"] = None
        ep = B.endpoints(cpos, crot, ms0.parents, held.offsets, length)
        for name, fn in B.BASELINES.items():
            mo = fn(ep, length)
            row[name] = score(mo.pos[:, 1:-1], R.quat_to_matrix(mo.quat[:, 1:-1]))
            by_group[name] = scorer.l2p_by_group(mo.pos[:, 1:-1])
        row["real"] = {"foot_skate": M.foot_skate(gt_pos, prev, ms0.feet, planted),
                       "style_acc": scorer.style_acc(gt_pos, crot[:, sc]), **scorer.posture(gt_pos, crot[:, sc])}
        results[str(length)] = {k: _rounded(v) for k, v in row.items()}
        l2p_groups[str(length)] = {k: _rounded(v) for k, v in by_group.items()}
        _say(f"L={length}: scored in {time.perf_counter() - t0:.1f}s")

    style = None if args.no_style else style_scenarios(args, held, lengths, window, classifier, model)

    meta = {
        "windows": n, "clips": len(held.clips), "stride": args.stride, "limit": args.limit,
        "protocol": "10 context frames, L scored transition frames, keyframe at 10+L (given, not scored); "
                    "canonical frame = last context frame",
        "split": str(args.split.relative_to(REPO) if args.split.is_relative_to(REPO) else args.split),
        "data": str(data),
        "held_out_keys_sha": held.keys_sha,
        "classifier": {"folder": str(classifier_dir), "classes": len(classifier.classes),
                       "trained_without_these_clips": trained_without(classifier.meta.get("test_keys_sha"), held.keys)},
        "foot_skate": {"units": "cm/frame", "height": M.SKATE_HEIGHT,
                       "planted_heights_cm": [round(float(x), 3) for x in planted]},
        "baselines": "motion/baselines.py (numpy)",
        "windows_by_group": {g: held.groups.count(g) for g in sorted(set(held.groups))},
        "l2p_by_group": l2p_groups,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    if model is not None:
        meta["rsmt"] = {
            "backend": f"MAX TransitionEngine graphs ({model.engine.device.label}), batched, noise z = 0",
            "model": str(model.folder), "weights_hash": model.engine.assets.weights_hash(),
            "manifest_note": model.engine.assets.manifest.get("note"),
            "phase_at_last_context_frame": model.phase_source, "style_source": args.style_source,
            "foot_lock": model.foot_lock, "head_keep": model.head_keep,
            **model.notes,
            "style_transfer_acc": transfer_acc,
            "style_transfer_note": "the same windows generated with ANOTHER held-out style's clip; fraction the "
                                   "classifier assigns to the requested style and to the window's own "
                                   "(context/keyframe) style",
        }
    else:
        meta["rsmt"] = model_note
    out = {"lengths": results, "meta": meta}
    if style is not None:
        out["style"] = style
    return out


def style_scenarios(args: argparse.Namespace, held: HeldOut, lengths: list[int], window: int, classifier,
                    model: ModelRunner | None) -> dict:
    """Issue 14's style scenarios (app/eval/style.py) scored by the independent judges."""
    from rsmt_studio.app.eval import style as ES
    from rsmt_studio.motion import features as Fe
    from rsmt_studio.motion import style_judges as SJ

    t0 = time.perf_counter()
    judges_dir = args.judges or JUDGES_DIR
    judges = SJ.load_judges(judges_dir)
    ss = ES.build(held, window, args.stride, args.limit)
    unknown = sorted(set(ss.classes) - set(judges[0].classes))
    if unknown:
        raise ValueError(f"{judges_dir}: judges do not know styles {unknown}")
    _say(f"style scenarios: {len(ss.style_a)} {ES.STYLE_DATASET} windows ({', '.join(ss.classes)})")
    banks = ES.PoseBanks(held.clips, {(c, s) for c in set(ss.content) for s in ss.classes})
    ms = held.clips[0].ms
    per_length = {}
    for length in lengths:
        judging = ES.Judging(judges, classifier, ms, Fe.N_PAST)
        per_length[str(length)] = ES.score_length(ss, length, judging, banks,
                                                  model.generate if model is not None else None)
        _say(f"style scenarios L={length}: {time.perf_counter() - t0:.0f}s")
    bank_styles = model.engine.style_bank.names if model is not None else []
    sens = ES.sensitivity(ss, max(lengths), bank_styles, model.generate_bank if model is not None else None)
    manifest = judges[0].meta["manifest"]
    return {
        "lengths": per_length,
        "sensitivity": sens,
        "meta": {
            "windows": len(ss.style_a), "dataset": ES.STYLE_DATASET, "styles": ss.classes,
            "chance": round(1 / len(ss.classes), 4),
            "judges": {j.name: {"architecture": j.meta.get("architecture"),
                                "held_out_ceiling": j.meta.get("held_out_ceiling"), "independent": True}
                       for j in judges},
            ES.NOT_INDEPENDENT: {"independent": False, "why": "assets/style_classifier is loaded by the training "
                                 "style critic (training/style_critic.py); reported for comparison only"},
            "judges_folder": str(judges_dir),
            "judges_trained_without_these_clips": trained_without(
                manifest.get("trained_on", {}).get("test_keys_sha"), held.keys),
            "scenarios": {
                "same_style": "the window as it is, its own style A requested; wanted = A",
                "switch_to_target": "frames 10.. from a held-out take of style B != A, same content, aligned at "
                                    "the last context frame; rsmt: B requested, rsmt_context_style_requested: A "
                                    "requested; wanted = B, context = A",
                "requested_other": "the window as it is, style C != A requested; wanted = C, context = A",
            },
            "entries": "wanted/context: per judge, fraction of windows whose generated frames it assigns to the "
                       "wanted / the context's style; second_half_*: the same on the last L - L//2 frames "
                       "alone; closer_to_wanted: fraction of windows whose frames are "
                       "nearer (mean nearest-frame RMS per-joint distance, root space) to held-out takes of the "
                       "wanted style than of the context's style, same content, excluding the window's own takes",
            "style_input": "another held-out take of the requested style (the eval's --style-source clip "
                           "rule); sensitivity uses the shipped style bank's codes",
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }


@dataclass
class _Scorer:
    """All metrics of one length against the real windows (canonical frame of the last context frame)."""

    held: HeldOut
    classifier: object
    cpos: np.ndarray  # (B,W,J,3) real canonical windows
    crot: np.ndarray  # (B,W,J,3,3)
    proto: object
    mean: np.ndarray
    std: np.ndarray
    planted: np.ndarray

    def style_acc(self, pos: np.ndarray, rot_m: np.ndarray, wanted: list[str] | None = None) -> float:
        """Classifier accuracy on the L scored frames (the last context frame only gives the first velocity)
        against `wanted` (default: each window's own style)."""
        from rsmt_studio.motion import metrics as M

        last = self.proto.n_past - 1
        seq_p = np.concatenate([self.cpos[:, last : last + 1], pos], 1)
        seq_r = np.concatenate([self.crot[:, last : last + 1], rot_m], 1)
        held = self.held
        feats = np.stack([M.classifier_features(seq_p[b], seq_r[b], held.clips[held.clip_of[b]].ms)
                          for b in range(len(held.styles))])
        return M.style_accuracy(self.classifier.predict(feats), wanted or held.styles)

    def l2p_by_group(self, pos: np.ndarray) -> dict[str, float]:
        """L2P over the locomotion windows and over the others (where a method wins or loses)."""
        from rsmt_studio.motion import metrics as M

        groups = np.array(self.held.groups)
        gt = self.cpos[:, self.proto.scored]
        return {g: M.l2p(pos[groups == g], gt[groups == g], self.mean, self.std) for g in sorted(set(groups))}

    def score(self, pos: np.ndarray, rot_m: np.ndarray) -> dict[str, float]:
        from rsmt_studio.motion import metrics as M
        from rsmt_studio.motion import rotations as R

        sc, last = self.proto.scored, self.proto.n_past - 1
        gt_pos, gt_q = self.cpos[:, sc], R.matrix_to_quat(self.crot[:, sc])
        ref_q, prev = R.matrix_to_quat(self.crot[:, last]), self.cpos[:, last]
        feet = self.held.clips[0].ms.feet
        q = R.matrix_to_quat(rot_m)
        return {"l2p": M.l2p(pos, gt_pos, self.mean, self.std), "l2q": M.l2q(q, gt_q, ref_q),
                "npss": M.npss(q, gt_q, ref_q), "foot_skate": M.foot_skate(pos, prev, feet, self.planted),
                "style_acc": self.style_acc(pos, rot_m), **self.posture(pos, rot_m)}

    def posture(self, pos: np.ndarray, rot_m: np.ndarray) -> dict[str, float]:
        """Head turn on the neck (mean and p95 over windows, degrees), the lowest foot's height (cm) and the
        rotation jump across each seam (degrees, mean over joints and windows): the artefacts L2P averages away,
        compared with the real frames' figures."""
        from rsmt_studio.motion import metrics as M

        ms = self.held.clips[0].ms
        head = ms.names.index("Head") if "Head" in ms.names else None
        out = {"lowest_foot_cm": float(M.lowest_foot_cm(pos, ms.feet).mean())}
        seam_in, seam_out = M.seam_jump_deg(rot_m, self.crot[:, self.proto.n_past - 1],
                                            self.crot[:, self.proto.keyframe], ms.parents)
        out |= {"seam_in_deg": float(seam_in.mean()), "seam_out_deg": float(seam_out.mean())}
        if head is not None:
            turn = M.head_turn_deg(rot_m, self.crot[:, self.proto.n_past - 1], head, int(ms.parents[head]))
            out |= {"head_turn_deg": float(turn.mean()), "head_turn_p95_deg": float(np.percentile(turn, 95))}
        return out


def _rounded(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {k: (round(float(v), 5) if v is not None and np.isfinite(v) else None) for k, v in row.items()}


# ----------------------------------------------------------------------------------------------- output
def markdown_table(result: dict) -> str:
    """The docs/quality.md table: one block of rows per length, one column per metric."""
    rows = ["| L | method | L2P ↓ | L2Q ↓ | NPSS ↓ | foot skate (cm/frame) ↓ | style acc ↑ |",
            "|---:|---|---:|---:|---:|---:|---:|"]
    fmt = lambda v, d: "–" if v is None else f"{v:.{d}f}"
    for length, row in sorted(result["lengths"].items(), key=lambda kv: int(kv[0])):
        for method in (*METHODS, "real"):
            vals = row.get(method)
            if vals is None:
                rows.append(f"| {length} | {method} | not run | | | | |")
                continue
            rows.append(f"| {length} | {method} | " + " | ".join(
                fmt(vals.get(m), 4 if m == "npss" else 3) for m in METRICS) + " |")
    return "\n".join(rows)


#: posture columns: (key, header, decimals)
POSTURE_COLUMNS = (("head_turn_deg", "head turn on the neck, mean (°)", 1), ("head_turn_p95_deg", "p95 (°)", 1),
                   ("lowest_foot_cm", "lowest foot (cm)", 2), ("seam_in_deg", "seam jump in (°)", 1),
                   ("seam_out_deg", "seam jump out (°)", 1))


def posture_table(result: dict) -> str | None:
    """The artefacts L2P averages away, per method and for the real frames; None for runs made before they were
    measured."""
    rows = ["| L | method | " + " | ".join(h for _, h, _ in POSTURE_COLUMNS) + " |",
            "|---:|---|" + "---:|" * len(POSTURE_COLUMNS)]
    seen = False
    for length, row in sorted(result["lengths"].items(), key=lambda kv: int(kv[0])):
        for method in (*METHODS, "real"):
            vals = row.get(method) or {}
            if not any(k in vals for k, _, _ in POSTURE_COLUMNS):
                continue
            seen = True
            rows.append(f"| {length} | {method} | " + " | ".join(
                "–" if vals.get(k) is None else f"{vals[k]:.{d}f}" for k, _, d in POSTURE_COLUMNS) + " |")
    return "\n".join(rows) if seen else None


def full_table(result: dict) -> str:
    """The quality table, the posture table (when the run measured it), then the style scenarios' table (when
    the run had them)."""
    parts = [markdown_table(result), posture_table(result)]
    if "style" in result:
        from rsmt_studio.app.eval import style as ES

        parts.append(ES.markdown_table(result["style"]))
    return "\n\n".join(p for p in parts if p)
