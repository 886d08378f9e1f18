"""Build the shipped style bank: one style code per style, computed from training clips.

A style code is what the sampler's style encoder makes of a 120-frame style clip: both FiLM blocks' (gamma,
beta, keys, values). Shipping codes instead of clips keeps the Bandai motion itself out of the assets (its
licence allows derived works with attribution, and a code cannot be played back as motion). For each style we
encode windows of that style's *training-split* clips (locomotion first, since most transitions are locomotion;
other contents where a style has none) and keep the medoid window: the one whose AdaIN (gamma, beta) is
closest to the style's mean. Codes depend on the sampler weights, so the file records their hash and the
engine refuses a bank made for other weights.

    .venv/bin/python -m rsmt_studio.inference.builders.make_style_bank [--bandai ../shared/data/bandai/dataset]

numpy + MAX only (no torch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ATTRIBUTION = ("Style codes computed by rsmt-studio's style encoder from clips of the Bandai-Namco-Research-"
               "Motiondataset; © 2022 Bandai Namco Research Inc., CC BY-NC 4.0 "
               "(https://creativecommons.org/licenses/by-nc/4.0/)")
LOCOMOTION = ("walk", "run")
WINDOWS_PER_STYLE = 12


def training_keys(splits: Path) -> set[str]:
    return {line.strip() for line in (splits / "train.txt").read_text().splitlines() if line.strip()}


def entry_key(path: Path) -> str:
    """`dataset-N/<stem>`, the key the committed split lists use."""
    return f"{path.stem.split('_', 1)[0]}/{path.stem}"


def candidate_windows(clips, frames: int, per_style: int) -> list[tuple[str, int]]:
    """(clip index, start) pairs spread evenly over a style's clips, `frames` long."""
    spans = []
    for i, clip in enumerate(clips):
        for start in range(0, max(clip.num_frames - frames, 0) + 1, frames // 2):
            spans.append((i, start))
    if len(spans) <= per_style:
        return spans
    pick = np.linspace(0, len(spans) - 1, per_style).round().astype(int)
    return [spans[k] for k in pick]


def build(bandai: Path, assets: Path, splits: Path, log=print):
    from rsmt_studio.inference.engine import CACHE_NAMES, TransitionEngine
    from rsmt_studio.inference.style_bank import StyleBank
    from rsmt_studio.motion.datasets import index_bandai

    engine = TransitionEngine(assets)
    frames = int(engine.assets.config.get("sampler", {}).get("style_frames", 120))
    keep = training_keys(splits)
    dataset = index_bandai(bandai)
    by_style: dict[str, list] = {}
    for entry in dataset:
        if entry_key(Path(entry.path)) in keep and entry.style:
            by_style.setdefault(entry.style, []).append(entry)
    entries: dict[str, np.ndarray] = {}
    provenance: dict[str, dict] = {}
    for style in sorted(by_style):
        chosen = [e for e in by_style[style] if e.content in LOCOMOTION] or by_style[style]
        clips = [e.load() for e in sorted(chosen, key=lambda e: e.name)]
        clips = [c for c in clips if c.num_frames >= frames]
        if not clips:
            log(f"{style}: no training clip of {frames} frames; skipped")
            continue
        codes, where = [], []
        for i, start in candidate_windows(clips, frames, WINDOWS_PER_STYLE):
            window = clips[i].slice(start, start + frames)
            codes.append(engine._encode_style(style, engine.style_features(window)).arrays)
            where.append((clips[i].name, start, start + frames))
        adain = np.stack([np.concatenate([c[0].ravel(), c[1].ravel(), c[4].ravel(), c[5].ravel()]) for c in codes])
        medoid = int(np.argmin(np.linalg.norm(adain - adain.mean(0), axis=1)))
        for name, arr in zip(CACHE_NAMES, codes[medoid]):
            entries[f"{style}/{name}"] = arr
        provenance[style] = {"clip": where[medoid][0], "frames": list(where[medoid][1:]),
                             "windows_considered": len(codes)}
        log(f"{style}: code from {where[medoid][0]} [{where[medoid][1]}:{where[medoid][2]}] "
            f"(medoid of {len(codes)} windows)")
    bank = StyleBank(entries, {"weights_hash": engine.assets.weights_hash(),
                               "provenance": json.dumps(provenance), "licence": ATTRIBUTION})
    return bank.save(assets), provenance


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bandai", type=Path, default=REPO.parent / "shared/data/bandai/dataset")
    p.add_argument("--assets", type=Path, default=REPO / "assets")
    p.add_argument("--splits", type=Path, default=REPO / "training" / "splits")
    args = p.parse_args(argv)
    if not args.bandai.is_dir():
        print(f"make_style_bank: {args.bandai}: no Bandai dataset folder", file=sys.stderr)
        return 2
    path, provenance = build(args.bandai, args.assets, args.splits)
    print(f"wrote {path} ({len(provenance)} styles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
