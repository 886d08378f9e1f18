"""BVH reading speed: our reader vs bvhio.readAsBvh on one big file, and the Bandai folder cold vs cached.

    .venv/bin/python bench/bvh_read.py [--json OUT.json] [--bandai DIR] [--repeats N]

1. Writes a 10,000-frame, 24-joint BVH (root 6 channels, 23 joints x 3 rotations, fixed-point 6 decimals: the
   common layout of 100STYLE/CMU-style files) into a temporary folder, then times ``read_bvh`` and
   ``bvhio.readAsBvh`` on it in the same run (best of N; ratio = bvhio / ours) and reports MB/s.
2. Reads every Bandai file with ``read_bvh`` (parse only), then opens the whole folder twice through
   ``motion.datasets``: "cold" = index + parse every file + fill an empty clip cache; "cached" = a fresh index +
   load every clip from that cache. All passes read files the OS already has in its page cache (a priming pass
   reads them first), so the ratio is about parsing, not disk.
Ratios are the figures to quote; absolute times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BANDAI = REPO.parent / "shared" / "data" / "bandai" / "dataset"


def make_big_file(path: Path, frames: int = 10_000, joints: int = 24, seed: int = 0) -> None:
    """A smooth synthetic motion on a 24-joint chain-and-branches skeleton, written by our writer."""
    from rsmt_studio.motion import Clip, Skeleton, write_bvh
    from rsmt_studio.motion import rotations as R

    rng = np.random.default_rng(seed)
    parents = [-1] + [max(0, j - 1 - (j % 5 == 0) * 3) for j in range(1, joints)]
    rot_xyz = ("Zrotation", "Xrotation", "Yrotation")
    channels = [("Xposition", "Yposition", "Zposition", *rot_xyz)] + [rot_xyz] * (joints - 1)
    sk = Skeleton(names=[f"Joint{j:02d}" for j in range(joints)], parents=parents,
                  offsets=rng.uniform(-15, 15, (joints, 3)), channels=channels,
                  rotation_orders=["ZXY"] * joints, end_sites={joints - 1: np.array([0.0, 5.0, 0.0])})
    t = np.arange(frames)[:, None] / 30.0
    amp = rng.uniform(5, 60, (1, joints, 3))
    freq = rng.uniform(0.2, 2.0, (1, joints, 3))
    euler = np.deg2rad(amp * np.sin(2 * np.pi * freq * t[..., None] + rng.uniform(0, 6, (1, joints, 3))))
    pos = np.broadcast_to(sk.offsets, (frames, joints, 3)).copy()
    pos[:, 0] = np.c_[100 * np.sin(t[:, 0] / 3), 95 + 3 * np.sin(4 * t[:, 0]), 150 * t[:, 0] / 10]
    clip = Clip(skeleton=sk, fps=30.0, local_pos=pos, local_rot=R.euler_to_quat(euler, "ZXY"))
    write_bvh(clip, path, overwrite=True)


def best_of(fn, repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def bench_big_file(repeats: int) -> dict:
    import bvhio
    from rsmt_studio.motion import read_bvh

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big_10000x24.bvh"
        make_big_file(path)
        size_mb = path.stat().st_size / 1e6
        read_bvh(path)  # warm-up: imports (pandas) and the OS page cache, for both readers alike
        ours_best, ours_med, clip = best_of(lambda: read_bvh(path), repeats)
        theirs_best, theirs_med, bvh = best_of(lambda: bvhio.readAsBvh(str(path)), max(1, repeats // 2))
        # sanity: both read the same numbers (bvhio keeps float32)
        root = bvh.Root
        assert clip.num_frames == bvh.FrameCount == 10_000 and clip.num_joints == 24
        their_pos = np.array([[k.Position.x, k.Position.y, k.Position.z] for k in root.Keyframes])
        max_diff = float(np.abs(their_pos - clip.root_pos).max())
    return {
        "file_mb": round(size_mb, 2), "frames": clip.num_frames, "joints": clip.num_joints,
        "ours_best_s": ours_best, "ours_median_s": ours_med,
        "bvhio_best_s": theirs_best, "bvhio_median_s": theirs_med,
        "speedup_best": theirs_best / ours_best, "speedup_median": theirs_med / ours_med,
        "ours_mb_per_s": size_mb / ours_best, "bvhio_mb_per_s": size_mb / theirs_best,
        "root_position_max_abs_diff_cm": max_diff,
    }


def bench_bandai(root: Path) -> dict | None:
    if not root.is_dir():
        return None
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.cache import ClipCache
    from rsmt_studio.motion.datasets import index_bandai

    files = sorted(root.rglob("*.bvh"))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    for p in files:  # prime the OS page cache so every timed pass below reads from memory
        p.read_bytes()
    t0 = time.perf_counter()
    for p in files:
        read_bvh(p)
    parse_only = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ds = index_bandai(root, cache=ClipCache(tmp))
        clips = ds.load_all()
        cold = time.perf_counter() - t0
        frames = sum(c.num_frames for c in clips)
        del clips
        t0 = time.perf_counter()
        ds2 = index_bandai(root, cache=ClipCache(tmp))
        clips2 = ds2.load_all()
        cached = time.perf_counter() - t0
        assert ds2.cache.hits == len(ds2) and ds2.cache.misses == 0
        cache_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    return {
        "files": len(ds), "frames": frames, "bvh_mb": round(size_mb, 1), "cache_mb": round(cache_mb, 1),
        "parse_only_s": parse_only, "parse_only_mb_per_s": size_mb / parse_only,
        "cold_s": cold, "cached_s": cached, "speedup": cold / cached, "cold_mb_per_s": size_mb / cold,
        "clips_loaded_cached": len(clips2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--bandai", type=Path, default=DEFAULT_BANDAI, help="Bandai dataset folder")
    ap.add_argument("--repeats", type=int, default=5, help="timing repeats for our reader (bvhio gets half)")
    args = ap.parse_args(argv)

    big = bench_big_file(args.repeats)
    bandai = bench_bandai(args.bandai)
    print(f"BVH read benchmark  (python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load avg {os.getloadavg()[0]:.2f})")
    print(f"{'case':<44}{'time (s)':>10}{'MB/s':>9}{'ratio':>9}")
    print(f"{'10,000 frames x 24 joints, ' + str(big['file_mb']) + ' MB':<44}")
    print(f"{'  ours  read_bvh (best)':<44}{big['ours_best_s']:>10.3f}{big['ours_mb_per_s']:>9.1f}"
          f"{big['speedup_best']:>8.1f}x")
    print(f"{'  bvhio readAsBvh (best)':<44}{big['bvhio_best_s']:>10.3f}{big['bvhio_mb_per_s']:>9.1f}{1:>8.1f}x")
    print(f"{'  (medians: ours / bvhio)':<44}{big['ours_median_s']:>10.3f}{big['bvhio_median_s']:>9.3f}"
          f"{big['speedup_median']:>8.1f}x")
    if bandai:
        label = f"Bandai folder, {bandai['files']} files, {bandai['bvh_mb']} MB"
        print(f"{label:<44}")
        print(f"{'  read_bvh every file (no cache)':<44}{bandai['parse_only_s']:>10.3f}"
              f"{bandai['parse_only_mb_per_s']:>9.1f}")
        print(f"{'  cold: index + parse + fill cache':<44}{bandai['cold_s']:>10.3f}{bandai['cold_mb_per_s']:>9.1f}"
              f"{1:>8.1f}x")
        print(f"{'  cached: index + load from cache':<44}{bandai['cached_s']:>10.3f}{'':>9}{bandai['speedup']:>8.1f}x")
    else:
        print(f"Bandai folder not found at {args.bandai}: skipped")
    result = {"big_file": big, "bandai": bandai, "load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
              "python": platform.python_version(), "numpy": np.__version__}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
