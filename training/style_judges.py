"""Train the eval's independent style judges (motion/style_judges.py) on dataset-2 training-split takes (torch, CPU).

Why: issue 14 asks whether a transition takes on the requested style. A judge that any training loss or model
selection loads can be gamed, so these two are trained here, exported, and read only by `rsmt-studio eval`.
Dataset-2 has its seven styles in every locomotion content, so the judges classify those seven (chance 1/7).

- Windows of 10..40 frames (+1 frame before, for velocities), a style drawn uniformly then a take and a start.
- Every batch carries generation artefacts (`motion.style_judges.augment`: position/rotation jitter, a foot
  height offset, a head wobble), so the judges score style, not the artefacts of a generator.
- A fixed number of steps: no early stopping, no selection on held-out takes. Seeds fixed, one CPU thread:
  the same data gives the same weights.
- Afterwards: accuracy on held-out dataset-2 windows (the real-clip ceiling), plain and with artefacts.

    python -m rsmt_studio.training.style_judges --data ../shared/data/bandai/dataset --out assets/style_judges
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rsmt_studio.motion import features as Fe
from rsmt_studio.motion import style_judges as SJ
from rsmt_studio.training import data as D
from torch import nn
from torch.nn import functional as F

LICENCE = ("Derived from the Bandai Namco Research Motion Dataset: © 2022 Bandai Namco Research Inc., "
           "CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/). Non-commercial use only.")
MIN_LEN, MAX_LEN = 10, 40
DATASET = "dataset-2"


class GaitNet(nn.Module):
    """Same weight names as `motion.style_judges.mlp_logits`."""

    def __init__(self, n_in: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(n_in))
        self.register_buffer("input_std", torch.ones(n_in))
        self.hidden = nn.Linear(n_in, hidden)
        self.head = nn.Linear(hidden, n_classes)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / self.input_std
        return self.head(self.drop(F.relu(self.hidden(self.drop(x)))))


class AnglesNet(nn.Module):
    """Same weight names as `motion.style_judges.gru_logits`."""

    def __init__(self, n_in: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(n_in))
        self.register_buffer("input_std", torch.ones(n_in))
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / self.input_std
        states, _ = self.gru(x)
        return self.head(self.drop(states.mean(1)))


NETS = {"gait": GaitNet, "angles": AnglesNet}
DESCRIPTIONS = {
    "gait": "MLP (1 hidden layer of 64, ReLU) on window statistics: mean/std of hip-relative joint positions in "
            "each frame's facing frame, mean smoothed joint speeds, root speed, hip height mean/std; no rotations",
    "angles": "GRU (64) over per-frame joint angles (flexion between each bone and its parent bone), unit bone "
              "directions in the facing frame, bone angular speeds, hip height, root velocity in the facing frame, "
              "yaw rate; states mean-pooled, linear head; twist-free (no rotation channel), no bone lengths",
}


@dataclass
class Takes:
    """World-frame arrays of one side of the split, with style labels."""

    keys: list[str]
    labels: np.ndarray
    gpos: list[np.ndarray]
    grot: list[np.ndarray]
    ms: Fe.ModelSkeleton


def load_takes(root: Path, held_out: bool, progress: bool = True) -> tuple[Takes, list[str]]:
    """Dataset-2 takes of the committed split's train (or held-out) side, on the model skeleton."""
    records = [r for r in D.list_bandai(root) if r.dataset == DATASET]
    test = D.committed_split(D.list_bandai(root))
    records = [r for r in records if (r.key in test) == held_out]
    classes = sorted({r.style for r in records})
    gpos, grot, ms = [], [], None
    for i, rec in enumerate(records):
        if progress and (i % 50 == 0 or i == len(records) - 1):
            print(f"\r  loading {'held-out' if held_out else 'training'} takes {i + 1}/{len(records)}",
                  end="", file=sys.stderr, flush=True)
        clip, ms = Fe.model_clip(D.load_record(rec))
        p, r = Fe.global_arrays(clip)
        gpos.append(p.astype(np.float32))
        grot.append(r.astype(np.float32))
    if progress:
        print(file=sys.stderr)
    return Takes([r.key for r in records], np.array([classes.index(r.style) for r in records]), gpos, grot,
                 ms), classes


def sample_batch(takes: Takes, rng: np.random.Generator, batch: int, frames: int, n_classes: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`batch` windows of `frames` frames, styles drawn uniformly (class balance)."""
    long_enough = np.array([len(p) >= frames for p in takes.gpos])
    ps, rs, ys = [], [], []
    for y in rng.integers(0, n_classes, batch):
        cands = np.flatnonzero((takes.labels == y) & long_enough)
        t = int(cands[rng.integers(len(cands))])
        a = int(rng.integers(0, len(takes.gpos[t]) - frames + 1))
        ps.append(takes.gpos[t][a : a + frames])
        rs.append(takes.grot[t][a : a + frames])
        ys.append(y)
    return np.stack(ps).astype(np.float64), np.stack(rs).astype(np.float64), np.array(ys)


def held_out_windows(takes: Takes, frames: int, stride: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = [(t, a) for t in range(len(takes.gpos)) for a in range(0, len(takes.gpos[t]) - frames + 1, stride)]
    return (np.stack([takes.gpos[t][a : a + frames] for t, a in idx]).astype(np.float64),
            np.stack([takes.grot[t][a : a + frames] for t, a in idx]).astype(np.float64),
            np.array([takes.labels[t] for t, _ in idx]))


def train_one(name: str, train: Takes, n_classes: int, steps: int, batch: int, seed: int) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feat = SJ.FEATURES[name]
    # input statistics from augmented training windows of every length
    stats = []
    for frames in range(MIN_LEN + 1, MAX_LEN + 2, 5):
        p, r, _ = sample_batch(train, rng, 64, frames, n_classes)
        x = feat(*SJ.augment(p, r, train.ms, rng), train.ms)
        stats.append(x.reshape(-1, x.shape[-1]))
    allx = np.concatenate(stats)
    net = NETS[name](allx.shape[-1], n_classes)
    net.input_mean.copy_(torch.as_tensor(allx.mean(0)))
    net.input_std.copy_(torch.as_tensor(np.maximum(allx.std(0), 1e-3)))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        frames = int(rng.integers(MIN_LEN, MAX_LEN + 1)) + 1
        p, r, y = sample_batch(train, rng, batch, frames, n_classes)
        x = feat(*SJ.augment(p, r, train.ms, rng), train.ms)
        loss = F.cross_entropy(net(torch.as_tensor(x, dtype=torch.float32)), torch.as_tensor(y),
                               label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"\r  {name}: step {step + 1}/{steps} loss {loss.item():.3f} {time.perf_counter() - t0:.0f}s",
                  end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    net.eval()
    return net, {"steps": steps, "batch": batch, "seed": seed, "train_seconds": round(time.perf_counter() - t0, 1),
                 "inputs": int(allx.shape[-1])}


def ceilings(judge: SJ.StyleJudge, held: Takes, seed: int) -> dict:
    """Accuracy on held-out windows (stride 20) of L scored frames, plain and with generation artefacts."""
    out = {}
    for length in (10, 20, 40):
        p, r, y = held_out_windows(held, length + 1)
        want = [judge.classes[i] for i in y]
        plain = judge.predict(p, r, held.ms)
        noisy = judge.predict(*SJ.augment(p, r, held.ms, np.random.default_rng(seed)), held.ms)
        out[str(length)] = {"windows": len(y), "accuracy": round(float(np.mean([a == b for a, b in zip(plain, want)])), 4),
                            "with_artefacts": round(float(np.mean([a == b for a, b in zip(noisy, want)])), 4)}
    return out


def keys_sha(keys) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the Bandai dataset folder")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "style_judges")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from safetensors.torch import save_file

    if not args.data.is_dir():
        print(f"style_judges: {args.data}: not a folder", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train, classes = load_takes(args.data, held_out=False)
    held, held_classes = load_takes(args.data, held_out=True)
    if held_classes != classes:
        print(f"style_judges: held-out styles {held_classes} differ from training styles {classes}", file=sys.stderr)
        return 2
    all_test = D.committed_split(D.list_bandai(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    judges_meta = {}
    for k, name in enumerate(SJ.JUDGES):
        net, info = train_one(name, train, len(classes), args.steps, args.batch, args.seed + k)
        state = {k2: v.detach().float().contiguous() for k2, v in net.state_dict().items()}
        _atomic(args.out / f"{name}.safetensors", lambda p, s=state: save_file(s, str(p), metadata={"licence": LICENCE}))
        judge = SJ.StyleJudge(name, classes, {k2: v.double().numpy() for k2, v in net.state_dict().items()}, {})
        judges_meta[name] = {"architecture": DESCRIPTIONS[name], "training": info,
                             "held_out_ceiling": ceilings(judge, held, seed=123)}
        print(f"  {name}: held-out {judges_meta[name]['held_out_ceiling']}", file=sys.stderr)
    manifest = {
        "format": "rsmt-studio style judges 1",
        "classes": classes,
        "chance": round(1 / len(classes), 4),
        "judges": judges_meta,
        "independence": "loaded only by `rsmt-studio eval`: no training loss, critic or model selection reads "
                        "these files (tests/eval/test_style_judges.py greps training/ for it)",
        "trained_on": {
            "data": f"Bandai {DATASET} (all contents), takes on the train side of training/splits (committed lists)",
            "train_takes": len(train.keys), "train_keys_sha": keys_sha(train.keys),
            "held_out_takes": len(held.keys), "held_out_keys_sha": keys_sha(held.keys),
            "test_keys_sha": keys_sha(all_test),
            "windows": f"{MIN_LEN}..{MAX_LEN} scored frames + 1 before, styles drawn uniformly",
            "augmentation": "motion.style_judges.augment: position jitter sigma U(0,1) cm, rotation jitter sigma "
                            "U(0,3) deg, feet offset U(-3,+1) cm per window, head wobble up to 15 deg at 0.5-3 Hz",
            "selection": "none: fixed step count, the held-out figures are measured after training only",
        },
        "command": "python -m rsmt_studio.training.style_judges --data ../shared/data/bandai/dataset "
                   f"--out assets/style_judges --steps {args.steps} --batch {args.batch} --seed {args.seed}",
        "environment": {"torch": torch.__version__, "machine": platform.machine(), "threads": 1},
        "licence": LICENCE,
        "attribution": "© 2022 Bandai Namco Research Inc.",
        "license_id": "CC-BY-NC-4.0",
    }
    _atomic(args.out / SJ.MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n"))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
