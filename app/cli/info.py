"""`rsmt-studio info FILE...`: what a BVH file holds (joints, channels, frames, fps, duration, labels).

Exit status 0 when every file reads, else 2 with one line per bad file on stderr (never a traceback), so
scripts can validate folders of clips.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE",
                        help="BVH files to describe (a folder means every *.bvh below it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per file instead of text")
    parser.add_argument("--joints", action="store_true", help="also list every joint with its channels")
    parser.add_argument("--mapping", action="store_true",
                        help="also show how the rig maps onto the model's roles (exit 2 if it cannot be mapped)")


def describe(path: Path) -> dict:
    """Facts about one BVH file as plain data (raises BVHError for an invalid file)."""
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.datasets import labels_from_path

    clip = read_bvh(path)
    sk = clip.skeleton
    style, content = labels_from_path(path)
    layouts = Counter(" ".join(c) if c else "(none)" for c in sk.channels)
    return {
        "path": str(path),
        "joints": sk.num_joints,
        "root": sk.names[sk.roots[0]],
        "end_sites": len(sk.end_sites),
        "channels": sum(len(c) for c in sk.channels),
        "channel_layouts": dict(layouts),
        "rotation_orders": dict(Counter(o or "(none)" for o in sk.rotation_orders)),
        "frames": clip.num_frames,
        "fps": clip.fps,
        "duration_s": clip.duration,
        "style": style,
        "content": content,
        "joint_list": [{"name": n, "parent": sk.names[p] if p >= 0 else None, "channels": list(c)}
                       for n, p, c in zip(sk.names, sk.parents.tolist(), sk.channels)],
    }


def _print_text(info: dict, with_joints: bool) -> None:
    print(info["path"])
    print(f"  joints     {info['joints']} (root {info['root']}, {info['end_sites']} End Sites)")
    layouts = "; ".join(f"{n}x [{k}]" for k, n in info["channel_layouts"].items())
    print(f"  channels   {info['channels']} per frame: {layouts}")
    print("  rotation   " + ", ".join(f"{n}x {k}" for k, n in info["rotation_orders"].items()))
    print(f"  frames     {info['frames']} at {info['fps']:g} fps = {info['duration_s']:.3f} s")
    labels = ", ".join(f"{k} {info[k]}" for k in ("style", "content") if info[k]) or "none"
    print(f"  labels     {labels}")
    if with_joints:
        for j in info["joint_list"]:
            print(f"    {j['name']:<24} parent {j['parent'] or '-':<24} {' '.join(j['channels'])}")


def run(args: argparse.Namespace) -> int:
    from rsmt_studio.motion import BVHError

    status = 0
    paths: list[Path] = []
    for given in args.files:
        found = sorted(given.rglob("*.bvh")) if given.is_dir() else []
        paths.extend(found or [given])  # an empty folder falls through to read_bvh's "a directory" error
    for path in paths:
        try:
            info = describe(path)
        except BVHError as exc:
            print(f"rsmt-studio info: {exc}", file=sys.stderr)
            status = 2
            continue
        except Exception as exc:  # noqa: BLE001 - the contract is one line, never a traceback
            print(f"rsmt-studio info: {path}: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 2
            continue
        report = _mapping(path) if args.mapping else None
        if args.json:
            if not args.joints:
                info.pop("joint_list")
            if report is not None:
                info["mapping"] = report
            print(json.dumps(info))
        else:
            _print_text(info, args.joints)
            if report is not None:
                print("\n".join("  " + line for line in report["text"].splitlines()))
        if report is not None and report["error"]:
            print(f"rsmt-studio info: {path}: cannot be mapped: {report['error']}", file=sys.stderr)
            status = 2
    return status


def _mapping(path: Path) -> dict:
    """The rig's mapping onto the model's roles as plain data (docs/retargeting.md)."""
    from rsmt_studio.inference.rigs import load_model_rig
    from rsmt_studio.motion import read_bvh
    from rsmt_studio.motion.retarget import mapping_report
    from rsmt_studio.motion.retarget.model_rig import is_model_rig

    clip = read_bvh(path)
    if is_model_rig(clip.skeleton, load_model_rig(None)):
        return {"model_rig": True, "roles": {}, "leftover": {}, "error": None,
                "text": "mapping: the model's own rig (no retargeting)"}
    report, _ = mapping_report(clip)
    return {"model_rig": False, "roles": {r.role: r.joint for r in report.roles if r.joint},
            "leftover": report.leftover, "error": report.error, "text": report.text()}
