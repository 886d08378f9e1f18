"""`rsmt-studio compile`: build the MAX models into the cache ahead of time, with progress.

Compiling happens in a child process (as it always does); later starts load the MEFs in milliseconds.
`--ship` regenerates the compiled models shipped in assets/compiled (inference/builders/ship_compiled.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    parser.add_argument("--assets", type=Path, default=None, help="model folder (default: the shipped assets)")
    parser.add_argument("--steps-per-call", type=int, nargs="+", default=None,
                        help="sampler steps per graph call to compile (default: the engine's)")
    parser.add_argument("--list", action="store_true", help="show the cache entries and whether each is built")
    parser.add_argument("--ship", action="store_true",
                        help="regenerate the shipped compiled CPU models in assets/compiled (x86-64-v3 and v4)")
    parser.add_argument("--jobs", type=int, default=None, help="compile children at once (default: one per core)")


def run(args: argparse.Namespace) -> int:
    if args.ship:
        from rsmt_studio.inference.builders.ship_compiled import main as ship_main

        return ship_main([] if args.jobs is None else ["--jobs", str(args.jobs)])
    from rsmt_studio.inference.engine import default_assets_dir, default_steps_per_call, engine_weights
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.cache import mef_dir
    from rsmt_studio.inference.runtime.compiler import CompileError, ensure_compiled, print_progress
    from rsmt_studio.inference.runtime.devices import DeviceUnavailableError, select_device
    from rsmt_studio.inference.weights import AssetError, load_assets

    try:
        assets = load_assets(args.assets or default_assets_dir())
        device = select_device(args.device)
    except (AssetError, DeviceUnavailableError) as exc:
        print(f"rsmt-studio compile: {exc}", file=sys.stderr)
        return 2
    specs = {}
    gpu = device.kind != "cpu"  # the engine captures device graphs there (chain) and builds for the widths
    weights = engine_weights(assets) if gpu else None
    default_k = default_steps_per_call(device.kind)
    for k in args.steps_per_call or [default_k]:
        # with the default steps per call, also the one-step graph the studio starts its streams with on the CPU
        specs.update({s.mef_path(): s for s in model_specs(assets.dims, device.kind, k, chain=gpu, weights=weights,
                                                           first_step=k == default_k).values()})
    if args.list:
        from rsmt_studio.inference.runtime.shipped import load_manifest, shipped_entry

        manifest = load_manifest()
        for path, spec in specs.items():
            state = "built  " if spec.is_compiled() else "shipped" if shipped_entry(manifest, spec) else "missing"
            print(f"{state} {spec.name:10s} {path}")
        return 0
    print(f"cache: {mef_dir()}", file=sys.stderr)
    for spec in specs.values():
        if spec.is_compiled():
            print(f"{spec.name}: already compiled", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        ensure_compiled(specs.values(), progress=print_progress, jobs=args.jobs)
    except CompileError as exc:
        print(f"rsmt-studio compile: {exc}", file=sys.stderr)
        return 1
    print(f"{len(specs)} graphs ready in {time.perf_counter() - t0:.1f} s ({device.label})")
    return 0
