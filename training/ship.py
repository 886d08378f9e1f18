"""Turn a finished training run folder into the shipped model assets (no torch needed).

Why a separate step: a run folder holds checkpoints, optimiser state and phase labels (hundreds of MB); the
app needs only the inference weights plus a manifest that says what they are, where they came from and under
which licence they may be used. The manifest is what `inference.weights.load_assets` reads first.

    python -m rsmt_studio.training.ship --run runs/small --out assets --data out/bandai.npz \
        --command "rsmt-studio train ... (see docs/training-run.md)"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ATTRIBUTION = (
    "Weights derived from the Bandai Namco Research Motion Dataset "
    "(https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset): "
    "© 2022 Bandai Namco Research Inc. Licensed under CC BY-NC 4.0 "
    "(https://creativecommons.org/licenses/by-nc/4.0/): non-commercial use only, attribution required."
)
STAGE_FILES = {"phase": "phase", "manifold": "manifold", "sampler": "sampler", "phase_predictor": "phase-predictor"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _last_metrics(path: Path) -> dict[str, Any]:
    """Last epoch line of a stage's JSON-lines metrics, plus the summed wall time of all its sessions."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    epochs = [r for r in rows if "epoch" in r]
    if not epochs:
        return rows[-1] if rows else {}
    last = dict(epochs[-1])
    # elapsed_s restarts at each resumed session: add the last value of every session.
    total, prev = 0.0, -1.0
    for r in epochs:
        t = float(r.get("elapsed_s", 0.0))
        if t < prev:
            total += prev
        prev = t
    last["wall_s_total"] = round(total + prev, 1)
    return last


def build_manifest(run: Path, data: Path | None, command: str, hardware: str | None) -> dict[str, Any]:
    config = json.loads((run / "config.json").read_text())
    skeleton = json.loads((run / "skeleton.json").read_text())
    metrics = {}
    for stage, stem in STAGE_FILES.items():
        p = run / f"{stem}.metrics.jsonl"
        if p.is_file():
            metrics[stage] = _last_metrics(p)
    devices = {m.get("device") for m in metrics.values() if m.get("device")}
    weights = {stage: f"{stem}.safetensors" for stage, stem in STAGE_FILES.items()
               if (run / f"{stem}.safetensors").is_file()}
    return {
        "format": "rsmt-studio-model/1",
        "name": config.get("name", "model"),
        "config": config,
        "skeleton": skeleton,
        "weights": weights,
        "weights_sha256": {stage: _sha256(run / name) for stage, name in weights.items()},
        "normalisation": {
            "style_encoder": "sampler.safetensors: style_encoder.input_mean (per channel), "
                             "style_encoder.input_std (per feature block)",
            "phase": "phase.safetensors: window-mean removal + BatchNorm running statistics",
            "manifold_sampler": "raw canonical units (cm); losses scaled by the mean bone length",
        },
        "split_hash": skeleton.get("split_hash"),
        "data_sha256": _sha256(data) if data and data.is_file() else None,
        "training": {
            "hardware": hardware or (min(devices) if devices else "unknown"),
            "wall_s_per_stage": {s: m.get("wall_s_total") for s, m in metrics.items()},
            "command": command,
        },
        "metrics": metrics,
        "licence": "CC BY-NC 4.0",
        "attribution": ATTRIBUTION,
    }


def ship(run: Path, out: Path, data: Path | None, command: str, hardware: str | None) -> Path:
    manifest = build_manifest(run, data, command, hardware)
    out.mkdir(parents=True, exist_ok=True)
    for name in manifest["weights"].values():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
        os.close(fd)
        shutil.copyfile(run / name, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; shipped files must be world-readable
        os.replace(tmp, out / name)
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=out)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / "manifest.json")
    return out / "manifest.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder")
    ap.add_argument("--out", type=Path, required=True, help="assets folder to write")
    ap.add_argument("--data", type=Path, help="the preprocessed .npz it was trained on (for its hash)")
    ap.add_argument("--command", default="", help="how the run was made (recorded in the manifest)")
    ap.add_argument("--hardware", default=None)
    args = ap.parse_args(argv)
    for need in ("config.json", "skeleton.json"):
        if not (args.run / need).is_file():
            print(f"ship: {args.run / need}: missing (not a training run folder)", file=sys.stderr)
            return 2
    path = ship(args.run, args.out, args.data, args.command, args.hardware)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
