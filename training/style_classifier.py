"""A small style classifier for the quality benchmark, trained on real training-split clips (torch, CPU).

Why: `rsmt-studio eval` reports how often a transition "reads" as the style that was asked for. A judge trained
on real training clips only, and scored on real held-out clips (the ceiling), keeps that figure honest.

It judges windows of 10..40 frames (the benchmark's transition lengths) from per-frame root-space features
(`motion.metrics.classifier_features`: pos | velocity | rot6d of joints 1..J-1): two 'same' 1-D convolutions
with ReLU, mean pooling over time, a linear head. Classes are balanced while sampling (a style is drawn
uniformly, then a window of it). Mirrored clips are used as augmentation (style does not depend on handedness).

Export: `style_classifier.safetensors` (float32, torch names) + `style_classifier.json` (classes, feature
definition, normalisation lives in the safetensors, training facts, held-out accuracy, licence). The eval runs
the numpy forward in `motion.metrics.StyleClassifier`, so it needs no torch.

    python -m rsmt_studio.training.style_classifier --data BANDAI_ROOT_OR_PREPROCESSED.npz --out assets/style_classifier
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rsmt_studio.motion import metrics as M
from rsmt_studio.training import data as D
from torch import nn
from torch.nn import functional as F

LICENCE = ("Derived from the Bandai Namco Research Motion Dataset: © 2022 Bandai Namco Research Inc., "
           "CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/). Non-commercial use only.")
MIN_LEN, MAX_LEN = 10, 40
SPLIT_TEST = Path(__file__).resolve().parent / "splits" / "test.txt"


class StyleClassifierNet(nn.Module):
    """Same architecture and weight names as `motion.metrics.StyleClassifier` (its numpy twin)."""

    def __init__(self, channels: int, n_classes: int, hidden: int = 96):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(channels))
        self.register_buffer("input_std", torch.ones(channels))
        self.conv1 = nn.Conv1d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.head = nn.Linear(hidden, n_classes)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,T,C) raw features -> logits (B, n_classes)."""
        x = ((x - self.input_mean) / self.input_std).transpose(1, 2)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(self.drop(x)))
        return self.head(self.drop(x.mean(-1)))


def sequence_features(md: D.MotionData) -> list[np.ndarray]:
    """Per sequence (T-1, C): row i describes frame i+1 (velocity from frame i); a window's rows are a slice."""
    out = []
    for s in range(md.n_sequences):
        a, n = int(md.starts[s]), int(md.lengths[s])
        out.append(M.classifier_features(md.gpos[a : a + n], md.grot[a : a + n], md.ms))
    return out


class WindowSampler:
    """Random windows of one length per batch, styles drawn uniformly (class balance)."""

    def __init__(self, feats: list[np.ndarray], labels: np.ndarray, seqs: np.ndarray, n_classes: int):
        self.feats, self.labels = feats, labels
        self.by_class = [[int(s) for s in seqs if labels[s] == c and len(feats[s]) >= MIN_LEN]
                         for c in range(n_classes)]
        self.classes = [c for c, members in enumerate(self.by_class) if members]

    def batch(self, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for c in rng.choice(self.classes, size=n):
            members = [s for s in self.by_class[c] if len(self.feats[s]) >= length] or self.by_class[c]
            w = np.array([len(self.feats[s]) for s in members], np.float64)
            s = members[rng.choice(len(members), p=w / w.sum())]
            f = self.feats[s]
            ln = min(length, len(f))
            a = int(rng.integers(0, len(f) - ln + 1))
            win = f[a : a + ln]
            if ln < length:  # a short clip: repeat its last frame (rare; only clips under 40 frames)
                win = np.concatenate([win, np.repeat(win[-1:], length - ln, axis=0)])
            xs.append(win)
            ys.append(c)
        return np.stack(xs), np.array(ys)


def held_out_windows(feats: list[np.ndarray], labels: np.ndarray, seqs: np.ndarray, length: int,
                     stride: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic windows at a fixed stride over held-out sequences."""
    xs, ys = [], []
    for s in seqs:
        f = feats[s]
        for a in range(0, len(f) - length + 1, stride):
            xs.append(f[a : a + length])
            ys.append(labels[s])
    return np.stack(xs), np.array(ys)


def load_data(path: Path, progress: bool = True) -> D.MotionData:
    """A preprocessed .npz (training.data.preprocess) or a Bandai root (preprocessed into a temp file)."""
    def report(i: int, n: int, what: str) -> None:
        if progress and (i % 50 == 0 or i == n - 1):
            print(f"\r  {i + 1}/{n} {what[:60]:<60}", end="", file=sys.stderr, flush=True)

    if path.is_file():
        md = D.MotionData.load(path, mirror=True, progress=report)
    else:
        records = D.list_bandai(path)
        test = D.read_split_list(SPLIT_TEST)  # the committed split (same as D.split_records(records))
        with tempfile.TemporaryDirectory() as tmp:
            D.preprocess(records, test, Path(tmp) / "data.npz", progress=report)
            md = D.MotionData.load(Path(tmp) / "data.npz", mirror=True, progress=report)
    if progress:
        print(file=sys.stderr)
    return md


def keys_sha(keys) -> str:
    """sha256 of sorted held-out clip keys: the eval checks it judges the split the classifier held out."""
    return hashlib.sha256("\n".join(sorted(str(k) for k in keys)).encode()).hexdigest()[:16]


def test_keys_sha(md: D.MotionData) -> str:
    per_clip = md.is_test[:: len(md.is_test) // len(md.clip_names)]
    return keys_sha(n for n, t in zip(md.clip_names, per_clip) if t)


def train(md: D.MotionData, steps: int, batch: int, hidden: int, seed: int, threads: int
          ) -> tuple[StyleClassifierNet, dict]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    classes = md.style_names
    labels = np.array([classes.index(s) for s in md.styles])
    print("features ...", file=sys.stderr, flush=True)
    feats = sequence_features(md)
    train_seqs, test_seqs = md.sequences(False), md.sequences(True)
    allf = np.concatenate([feats[s] for s in train_seqs])
    net = StyleClassifierNet(allf.shape[1], len(classes), hidden)
    net.input_mean.copy_(torch.as_tensor(allf.mean(0)))
    net.input_std.copy_(torch.as_tensor(np.maximum(allf.std(0), 1e-3)))
    sampler = WindowSampler(feats, labels, train_seqs, len(classes))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for step in range(steps):
        net.train()
        x, y = sampler.batch(rng, batch, int(rng.integers(MIN_LEN, MAX_LEN + 1)))
        loss = F.cross_entropy(net(torch.as_tensor(x)), torch.as_tensor(y), label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"\r  step {step + 1}/{steps} loss {loss.item():.3f} {time.perf_counter() - t0:.0f}s",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    net.eval()
    acc = {}
    with torch.no_grad():
        for length in (10, 20, 40):
            x, y = held_out_windows(feats, labels, test_seqs, length)
            pred = net(torch.as_tensor(x)).argmax(-1).numpy()
            acc[str(length)] = round(float(np.mean(pred == y)), 4)
            xt, yt = sampler.batch(np.random.default_rng(1), 2048, length)
            acc[f"train_{length}"] = round(float(np.mean(net(torch.as_tensor(xt)).argmax(-1).numpy() == yt)), 4)
    info = {
        "steps": steps, "batch": batch, "hidden": hidden, "seed": seed, "train_seconds": round(time.perf_counter() - t0, 1),
        "held_out_window_accuracy": acc, "train_sequences": len(train_seqs),
        "held_out_sequences": len(test_seqs),
    }
    return net, info


def export(net: StyleClassifierNet, classes: list[str], info: dict, md: D.MotionData, out: Path) -> None:
    """Atomic write of the safetensors + JSON pair into `out`."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    meta = {
        "format": "rsmt-studio style classifier 1",
        "classes": classes,
        "features": "motion.metrics.classifier_features: per frame, own facing frame, [pos | vel | rot6d] of "
                    "joints 1..J-1 (velocity from the previous frame)",
        "joints": list(md.ms.names),
        "window_frames": [MIN_LEN, MAX_LEN],
        "split_hash": md.split_hash,
        "test_keys_sha": test_keys_sha(md),
        "training": {**info, "device": "cpu", "torch": torch.__version__, "machine": platform.machine(),
                     "cpu_threads": torch.get_num_threads()},
        "licence": LICENCE,
        "attribution": "© 2022 Bandai Namco Research Inc.",
        "license_id": "CC-BY-NC-4.0",
    }
    for name, write in (("style_classifier.safetensors", lambda p: save_file(state, str(p), metadata={
                            "licence": LICENCE})),
                        ("style_classifier.json", lambda p: p.write_text(json.dumps(meta, indent=1) + "\n"))):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, out / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="preprocessed .npz or the Bandai dataset folder")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "style_classifier")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    md = load_data(args.data)
    net, info = train(md, args.steps, args.batch, args.hidden, args.seed, args.threads)
    export(net, md.style_names, info, md, args.out)
    print(json.dumps(info["held_out_window_accuracy"]), file=sys.stderr)
    print(f"wrote {args.out}/style_classifier.{{safetensors,json}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
