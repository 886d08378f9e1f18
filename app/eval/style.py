"""Issue 14's style scenarios for `rsmt-studio eval`: does the transition take on the requested style?

Windows come from dataset-2's held-out takes (every locomotion content in all seven styles). For a window of
take a (content c, style A):
- same-style: the window as it is, style A requested;
- switch-to-target: frames 10.. replaced by a held-out take b of style B (same content, B != A), placed so that
  b's frame at the junction coincides with a's last context frame (hips, facing) and chosen at the start whose
  pose best matches a's last context frames; B requested, then A requested on the same pairs; SLERP and the real
  b frames as references;
- requested-other-style: the window as it is, style C != A requested (chance 1/7).
Only the L generated frames are judged (plus the last context frame, which only gives the first velocity), by
the independent judges (motion/style_judges.py, assets/style_judges) and, labelled NOT independent, by the
shipped style classifier (the training style critic loads it). A classifier-free check measures each generated
frame's distance to the nearest frame of held-out takes (not a, not b) of the wanted style vs the context's
style, same content. Sensitivity: one transition generated in each style of the shipped bank; mean per-joint
distance between outputs of different requested styles, against real takes of other / the same style.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from itertools import combinations

import numpy as np

STYLE_DATASET = "dataset-2"
SENSITIVITY_WINDOWS = 24
NOT_INDEPENDENT = "style_classifier"


def _say(msg: str, end: str = "\n") -> None:
    print(msg, file=sys.stderr, end=end, flush=True)


@dataclasses.dataclass
class StyleSet:
    """Style-scenario windows (world frame, the main protocol's window length) over the held-out clips."""

    same: object  # benchmark.HeldOut: the windows as they are (context and keyframe of style A)
    switch: object  # HeldOut: frames 10.. from a take of style B, same content
    other_take: object  # HeldOut: frames 10.. from another take of style A, same content (None where there is none)
    has_other_take: np.ndarray  # (B,) bool
    style_a: list[str]
    style_b: list[str]
    style_c: list[str]
    content: list[str]
    partner: np.ndarray  # (B,) clip index of the style-B take
    classes: list[str]  # the dataset's styles


def _root_poses(gpos: np.ndarray, ms) -> np.ndarray:
    from rsmt_studio.motion.splice import root_poses

    return root_poses(gpos, ms)


def splice(window_p: np.ndarray, window_r: np.ndarray, clip, ms, n_past: int) -> tuple[np.ndarray, np.ndarray]:
    """`motion.splice.splice_window` with a held-out clip; the error names the clip."""
    from rsmt_studio.motion.splice import splice_window

    try:
        p, r, _ = splice_window(window_p, window_r, clip.gpos, clip.grot, ms, n_past)
    except ValueError as exc:
        raise ValueError(f"{clip.key}: {exc}") from None
    return p, r


def build(held, window: int, stride: int, limit: int | None) -> StyleSet:
    """Dataset-2 held-out windows and their partners (deterministic: partners cycle over the other styles)."""
    from rsmt_studio.motion import features as Fe

    clips = held.clips
    d2 = [i for i, c in enumerate(clips) if c.key.startswith(STYLE_DATASET + "/")]
    if not d2:
        raise ValueError(f"no held-out {STYLE_DATASET} clip: the style scenarios need its seven styles")
    classes = sorted({clips[i].style for i in d2})
    index = [(c, s) for c in d2 for s in range(0, len(clips[c].gpos) - window + 1, stride)]
    if limit is not None and limit < len(index):
        pick = np.unique(np.linspace(0, len(index) - 1, max(limit, 1)).round().astype(int))
        index = [index[i] for i in pick]
    takes: dict[tuple[str, str], list[int]] = {}
    for i in d2:
        if len(clips[i].gpos) >= window:
            takes.setdefault((clips[i].content, clips[i].style), []).append(i)
    n_past = Fe.N_PAST
    rows: dict[str, list] = {k: [] for k in ("p", "r", "sp", "sr", "op", "or", "has", "a", "b", "c", "content",
                                             "partner", "clip_of")}
    for w, (ci, s) in enumerate(index):
        clip = clips[ci]
        p, r = clip.gpos[s : s + window], clip.grot[s : s + window]
        others = [st for st in classes if st != clip.style and takes.get((clip.content, st))]
        if not others:
            continue
        b_style = others[w % len(others)]
        cands = takes[(clip.content, b_style)]
        b = cands[(w * 7919) % len(cands)]
        sp, sr = splice(p, r, clips[b], clip.ms, n_past)
        same = [i for i in takes.get((clip.content, clip.style), []) if i != ci]
        if same:
            op, orr = splice(p, r, clips[same[(w * 7919) % len(same)]], clip.ms, n_past)
        else:
            op, orr = p, r
        not_a = [st for st in classes if st != clip.style]
        for key, val in (("p", p), ("r", r), ("sp", sp), ("sr", sr), ("op", op), ("or", orr), ("has", bool(same)),
                         ("a", clip.style), ("b", b_style), ("c", not_a[(w // len(others) + w + 1) % len(not_a)]),
                         ("content", clip.content), ("partner", b), ("clip_of", ci)):
            rows[key].append(val)
    if not rows["a"]:
        raise ValueError(f"no held-out {STYLE_DATASET} window has a partner take of another style")

    def held_like(p_key: str, r_key: str):
        return dataclasses.replace(
            held, gpos=np.stack(rows[p_key]), grot=np.stack(rows[r_key]),
            offsets=np.stack([clips[c].ms.offsets for c in rows["clip_of"]]), styles=list(rows["a"]),
            groups=["locomotion"] * len(rows["a"]), clip_of=np.array(rows["clip_of"]))

    return StyleSet(held_like("p", "r"), held_like("sp", "sr"), held_like("op", "or"), np.array(rows["has"]),
                    rows["a"], rows["b"], rows["c"], rows["content"], np.array(rows["partner"]), classes)


# ----------------------------------------------------------------------------------------------- judging
class Judging:
    """Every judge's labels for generated frames (in each window's canonical frame) of one length."""

    def __init__(self, judges: list, classifier, ms, n_past: int):
        self.judges, self.classifier, self.ms, self.last = judges, classifier, ms, n_past - 1

    def labels(self, ctx_p: np.ndarray, ctx_r: np.ndarray, pos: np.ndarray, rot: np.ndarray) -> dict[str, list[str]]:
        """ctx_p/ctx_r: the canonical last context frame (B,J,3)/(B,J,3,3); pos/rot: (B,L,J,…) judged frames."""
        from rsmt_studio.motion import metrics as M

        seq_p = np.concatenate([ctx_p[:, None], pos], 1)
        seq_r = np.concatenate([ctx_r[:, None], rot], 1)
        out = {j.name: j.predict(seq_p, seq_r, self.ms) for j in self.judges}
        feats = np.stack([M.classifier_features(seq_p[b], seq_r[b], self.ms) for b in range(len(seq_p))])
        out[NOT_INDEPENDENT] = self.classifier.predict(feats)
        return out


def _frac(labels: list[str], wanted: list[str]) -> float:
    return round(float(np.mean([a == b for a, b in zip(labels, wanted)])), 4)


class PoseBanks:
    """Classifier-free check: root-space poses of the held-out takes per (content, style), every 2nd frame."""

    def __init__(self, clips: list, wanted: set[tuple[str, str]]):
        self.clips = clips
        self.by: dict[tuple[str, str], list[tuple[int, np.ndarray]]] = {}
        for i, c in enumerate(clips):
            if (c.content, c.style) in wanted:
                poses = _root_poses(c.gpos[::2], c.ms)
                self.by.setdefault((c.content, c.style), []).append((i, poses.reshape(len(poses), -1)))

    def distance(self, frames: np.ndarray, ms, content: str, style: str, exclude: set[int]) -> float | None:
        """Mean over `frames` (L,J,3) of the RMS per-joint distance (cm) to the nearest bank frame."""
        bank = [p for i, p in self.by.get((content, style), []) if i not in exclude]
        if not bank:
            return None
        ref = np.concatenate(bank)
        x = _root_poses(frames, ms).reshape(len(frames), -1)
        d2 = (x**2).sum(1)[:, None] - 2 * x @ ref.T + (ref**2).sum(1)[None]
        return float(np.sqrt(np.maximum(d2.min(1), 0.0) / frames.shape[1]).mean())


def closer(banks: PoseBanks, ss: StyleSet, pos_world: np.ndarray, wanted: list[str], ms) -> dict:
    """Fraction of windows whose frames are nearer the wanted style's takes than the context style's."""
    wins, dw, dc = [], [], []
    for b in range(len(wanted)):
        ex = {int(ss.same.clip_of[b]), int(ss.partner[b])}
        a = banks.distance(pos_world[b], ms, ss.content[b], wanted[b], ex)
        c = banks.distance(pos_world[b], ms, ss.content[b], ss.style_a[b], ex)
        if a is None or c is None:
            continue
        wins.append(a < c)
        dw.append(a)
        dc.append(c)
    if not wins:
        return {"closer_to_wanted": None, "pairs": 0}
    return {"closer_to_wanted": round(float(np.mean(wins)), 4), "d_wanted_cm": round(float(np.mean(dw)), 3),
            "d_context_cm": round(float(np.mean(dc)), 3), "pairs": len(wins)}


def row(labels: dict[str, list[str]], wanted: list[str], context: list[str], extra: dict | None = None) -> dict:
    """One scenario x method entry: per judge, P(wanted style) and P(context style)."""
    return {"wanted": {k: _frac(v, wanted) for k, v in labels.items()},
            "context": {k: _frac(v, context) for k, v in labels.items()}, **(extra or {})}


def score_length(ss: StyleSet, length: int, judging: Judging, banks: PoseBanks,
                 generate: Callable[[object, list[str]], tuple[np.ndarray, np.ndarray]] | None) -> dict:
    """All scenarios of one length. `generate(held_like, requested_styles)` -> canonical (pos, rot) or None."""
    from rsmt_studio.motion import baselines as B
    from rsmt_studio.motion import features as Fe
    from rsmt_studio.motion import rotations as R

    proto = Fe.KeyframeProtocol(length)
    w, sc, last = proto.window, proto.scored, proto.n_past - 1
    ms = ss.same.clips[0].ms
    out: dict[str, dict] = {"same_style": {}, "switch_to_target": {}, "requested_other": {}}
    a, b_, c_ = ss.style_a, ss.style_b, ss.style_c
    cases = {"same_style": (ss.same, a, a), "switch_to_target": (ss.switch, b_, a), "requested_other": (ss.same, c_, a)}
    for name, (held, wanted, context) in cases.items():
        frame = Fe.canonical_transform(held.gpos[:, last], ms)
        cpos, crot = frame.positions(held.gpos[:, :w]), frame.rotations(held.grot[:, :w])
        ctx_p, ctx_r = cpos[:, last], crot[:, last]

        def judged(pos, rot, want=wanted, free=name != "same_style", context=context, ctx_p=ctx_p, ctx_r=ctx_r):
            extra = {"windows": len(pos)}
            if free:
                extra.update(closer(banks, ss, pos, want, ms))
            h = length // 2  # the second half alone: the part furthest from the context
            late = row(judging.labels(pos[:, h - 1], rot[:, h - 1], pos[:, h:], rot[:, h:]), want, context) \
                if h >= 1 else {"wanted": None, "context": None}
            extra.update({"second_half_wanted": late["wanted"], "second_half_context": late["context"]})
            return row(judging.labels(ctx_p, ctx_r, pos, rot), want, context, extra)

        entry = out[name]
        if generate is not None:
            pos, rot = generate(held, wanted, length)
            entry["rsmt"] = judged(pos, rot)
            if name == "switch_to_target":
                pos, rot = generate(held, context, length)
                entry["rsmt_context_style_requested"] = judged(pos, rot)
        else:
            entry["rsmt"] = None
        ep = B.endpoints(cpos, crot, ms.parents, held.offsets, length)
        mo = B.interpolation(ep, length)
        entry["slerp"] = judged(mo.pos[:, 1:-1], R.quat_to_matrix(mo.quat[:, 1:-1]))
        if name != "requested_other":  # the real frames of the wanted style (B's take / the window's own)
            entry["real"] = judged(cpos[:, sc], crot[:, sc])
    return out


def sensitivity(ss: StyleSet, length: int, bank_styles: list[str],
                generate_codes: Callable[[object, list[str], int], tuple[np.ndarray, np.ndarray]] | None) -> dict:
    """Mean per-joint distance (cm) between outputs for different requested styles (one transition per bank
    style, the same windows), and the same figure for real takes: another style / the same style, other take."""
    from rsmt_studio.motion import features as Fe

    proto = Fe.KeyframeProtocol(length)
    w, sc, last = proto.window, proto.scored, proto.n_past - 1
    ms = ss.same.clips[0].ms
    n = len(ss.style_a)
    pick = np.unique(np.linspace(0, n - 1, min(SENSITIVITY_WINDOWS, n)).round().astype(int))

    def canon(held):
        frame = Fe.canonical_transform(held.gpos[pick, last], ms)
        return frame.positions(held.gpos[pick, :w])[:, sc]

    def posture(p):  # (…,L,J,3) -> hip-relative mean pose
        return (p - p[..., :1, :]).mean(-3)

    real_a, real_b, real_o = canon(ss.same), canon(ss.switch), canon(ss.other_take)
    has = ss.has_other_take[pick]
    dist = lambda x, y: float(np.linalg.norm(x - y, axis=-1).mean())
    out = {"length": length, "windows": len(pick),
           "real_other_style_cm": round(dist(real_a, real_b), 3),
           "real_same_style_other_take_cm": round(dist(real_a[has], real_o[has]), 3) if has.any() else None,
           "real_posture_other_style_cm": round(dist(posture(real_a), posture(real_b)), 3)}
    if generate_codes is None or len(bank_styles) < 2:
        out["rsmt"] = None
        if generate_codes is not None:
            out["note"] = f"the model's style bank has {len(bank_styles)} style(s): nothing to compare"
        return out
    sub = dataclasses.replace(ss.same, gpos=ss.same.gpos[pick], grot=ss.same.grot[pick],
                              offsets=ss.same.offsets[pick], styles=[ss.same.styles[i] for i in pick],
                              groups=[ss.same.groups[i] for i in pick], clip_of=ss.same.clip_of[pick])
    outs = np.stack([generate_codes(sub, [s] * len(pick), length)[0] for s in bank_styles])  # (S,B,L,J,3)
    pairs = {(bank_styles[i], bank_styles[j]): dist(outs[i], outs[j]) for i, j in combinations(range(len(outs)), 2)}
    post = [dist(posture(outs[i]), posture(outs[j])) for i, j in combinations(range(len(outs)), 2)]
    worst = max(pairs, key=pairs.get)
    out["rsmt"] = {"styles": len(bank_styles), "mean_cm": round(float(np.mean(list(pairs.values()))), 3),
                   "max_pair_cm": round(pairs[worst], 3), "max_pair": list(worst),
                   "posture_mean_cm": round(float(np.mean(post)), 3)}
    return out


__all__ = ["NOT_INDEPENDENT", "Judging", "PoseBanks", "StyleSet", "build", "score_length", "sensitivity", "splice"]


# ----------------------------------------------------------------------------------------------- output
ROWS = (("same_style", "rsmt", "rsmt, A requested"), ("same_style", "slerp", "SLERP"),
        ("same_style", "real", "real take"),
        ("switch_to_target", "rsmt", "rsmt, B requested"),
        ("switch_to_target", "rsmt_context_style_requested", "rsmt, A requested"),
        ("switch_to_target", "slerp", "SLERP"), ("switch_to_target", "real", "real B take"),
        ("requested_other", "rsmt", "rsmt, C requested"), ("requested_other", "slerp", "SLERP"))
SCENARIO_NAMES = {"same_style": "same style (A→A)", "switch_to_target": "switch (A→B)",
                  "requested_other": "other style (A→A, C)"}


def markdown_table(style: dict) -> str:
    """docs/quality.md's style table: per judge 'P(wanted) / P(context) (P(wanted) on the second half)', and the
    classifier-free win rate."""
    judges = list(style["meta"]["judges"]) + [NOT_INDEPENDENT]
    head = " | ".join(f"{j} ↑" if j != NOT_INDEPENDENT else f"{j} (not independent)" for j in judges)
    rows = [f"| L | scenario | method | {head} | closer to wanted (classifier-free) |",
            "|---:|---|---|" + "---:|" * (len(judges) + 1)]
    for length, per in sorted(style["lengths"].items(), key=lambda kv: int(kv[0])):
        for scen, method, label in ROWS:
            e = per.get(scen, {}).get(method)
            if e is None:
                if method == "rsmt" or method.startswith("rsmt_"):
                    rows.append(f"| {length} | {SCENARIO_NAMES[scen]} | {label} | not run |" + " |" * len(judges))
                continue
            late = e.get("second_half_wanted") or {}
            cells = [(f"{e['wanted'][j]:.2f} / {e['context'][j]:.2f}" if scen != "same_style" else f"{e['wanted'][j]:.2f}")
                     + (f" ({late[j]:.2f})" if j in late else "") for j in judges]
            free = e.get("closer_to_wanted")
            free_cell = "–" if free is None else f"{free:.2f} ({e['d_wanted_cm']:.1f} vs {e['d_context_cm']:.1f} cm)"
            rows.append(f"| {length} | {SCENARIO_NAMES[scen]} | {label} | " + " | ".join(cells) + f" | {free_cell} |")
    sens = style.get("sensitivity")
    if sens:
        r = sens.get("rsmt")
        gen = ("not run" if r is None else f"{r['mean_cm']:.2f} cm mean over {r['styles']} bank styles (max pair "
               f"{r['max_pair_cm']:.2f} cm, {' vs '.join(r['max_pair'])}; mean posture {r['posture_mean_cm']:.2f} cm)")
        rows.append("")
        rows.append(f"Sensitivity at L={sens['length']} ({sens['windows']} windows): generated {gen}; real takes of "
                    f"another style {sens['real_other_style_cm']:.2f} cm (posture {sens['real_posture_other_style_cm']:.2f}"
                    f" cm), same style other take {sens['real_same_style_other_take_cm']:.2f} cm.")
    return "\n".join(rows)
