"""Compiled CPU models shipped with the assets, so a first start loads in seconds instead of compiling for minutes.

A cold compile of the app's four CPU graphs takes 5-8 minutes on 2 cores (issue #15), nearly all of it MAX's
kernel JIT. The graphs hold no weights and have symbolic widths, so the compiled program depends only on the
graph code, the static structure, the MAX version and the CPU target (`GraphSpec.key()`); it can be built once,
for portable targets (`x86-64-v3` = AVX2, `x86-64-v4` = AVX-512, via `set_virtual_cpu_target`), and shipped.

Layout (package data, so it goes into the wheel): `assets/compiled/manifest.json` plus
`assets/compiled/<target>/<graph>.mef.xz` (xz: ~2.5x smaller than gzip on MEFs, decompressed in ~50 ms).

At start `ensure_compiled` calls `install_shipped` (runtime/shipped.py): each CPU graph missing from the cache
whose key (graph code hash, structure, MAX version, this CPU's target) matches a shipped entry is decompressed,
checked against its SHA-256 and written atomically into the cache; anything else is compiled locally as before. The manifest also
records the hash of the shipped weights the models were built with: CPU models carry no weights, so a model
whose key matches serves any weights of that structure (the tests' tiny random ones too), but the staleness
check (`stale_reasons`, tests/inference/test_ship_compiled.py) demands a regeneration when any part changes.

Regenerate (one command; compiles both targets, one child per graph, then compresses):

    rsmt-studio compile --ship          # or: python -m rsmt_studio.inference.builders.ship_compiled
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import lzma
import sys
import time
from pathlib import Path
from typing import Any

from rsmt_studio.inference.runtime.cache import GraphSpec, _source_hash, max_version
from rsmt_studio.inference.runtime.shipped import (  # noqa: F401 (re-exported for callers)
    SUFFIX,
    install_shipped,
    load_manifest,
    ship_dir,
    shipped_entry,
)
from rsmt_studio.motion.atomic import atomic_write_bytes, atomic_write_text

#: The portable targets shipped: AVX2 machines (2013+) and AVX-512 ones.
TARGETS = ("x86-64-v3", "x86-64-v4")
#: What regenerates them (named in the staleness test's message).
REGENERATE = "rsmt-studio compile --ship  (or: python -m rsmt_studio.inference.builders.ship_compiled)"


def app_specs(target: str, assets=None) -> dict[str, GraphSpec]:
    """The CPU graphs the app runs (deephase, style, prepare, steps at the default steps per call, and the
    studio's one-step graph that starts a streamed transition) for `target`, keyed by the engine's graph names."""
    from rsmt_studio.inference.engine import default_assets_dir, default_steps_per_call
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.weights import load_assets

    assets = assets or load_assets(default_assets_dir())
    specs = model_specs(assets.dims, "cpu", default_steps_per_call("cpu"), first_step=True)
    return {k: dataclasses.replace(s, cpu_target=target) for k, s in specs.items()}


def stale_reasons(folder: Path | None = None, assets=None) -> list[str]:
    """Why the shipped models do not match the code, MAX, the shipped weights or their own files ([] = fresh)."""
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.weights import load_assets

    folder = folder or ship_dir()
    manifest = load_manifest(folder)
    if not manifest:
        return [f"{folder}/manifest.json is missing or unreadable"]
    assets = assets or load_assets(default_assets_dir())
    reasons = []
    if manifest.get("max_version") != max_version():
        reasons.append(f"built with MAX {manifest.get('max_version')}, installed MAX is {max_version()}")
    if manifest.get("weights_hash") != assets.weights_hash():
        reasons.append(f"built for weights {manifest.get('weights_hash')}, shipped weights are {assets.weights_hash()}")
    for target in TARGETS:
        shipped = manifest.get("targets", {}).get(target, {})
        for name, spec in app_specs(target, assets).items():
            entry = shipped.get(name)
            if entry is None:
                reasons.append(f"{target}/{spec.name}: not shipped")
                continue
            if entry.get("source") != _source_hash(spec.module, "cpu"):
                reasons.append(f"{target}/{spec.name}: the graph code changed since it was compiled")
            elif entry.get("key") != spec.key():
                reasons.append(f"{target}/{spec.name}: its cache key changed (structure, steps or MAX)")
            path = folder / entry.get("file", "?")
            if not path.is_file():
                reasons.append(f"{target}/{spec.name}: {path} is missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("xz_sha256"):
                reasons.append(f"{target}/{spec.name}: {path} does not match the manifest")
    return reasons


def regenerate(targets=TARGETS, jobs: int | None = None, progress=None, folder: Path | None = None) -> dict:
    """Compile the app's CPU graphs for each target (in child processes, into the MEF cache), then write the
    compressed models and the manifest (last, atomically: a reader sees the old set or the new one)."""
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.runtime.compiler import ensure_compiled
    from rsmt_studio.inference.weights import load_assets

    folder = folder or ship_dir()
    assets = load_assets(default_assets_dir())
    per_target = {t: app_specs(t, assets) for t in targets}
    all_specs = [s for specs in per_target.values() for s in specs.values()]
    ensure_compiled(all_specs, progress=progress, jobs=jobs, shipped=False, check_runnable=False)
    old = load_manifest(folder)
    manifest: dict[str, Any] = {
        "about": "Compiled MAX CPU models of the app's graphs; made by `rsmt-studio compile --ship`. "
                 "See inference/builders/ship_compiled.py.",
        "max_version": max_version(),
        "weights_hash": assets.weights_hash(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": {t: v for t, v in old.get("targets", {}).items() if t not in per_target},
    }
    for target, specs in per_target.items():
        entries = {}
        for name, spec in specs.items():
            data = spec.mef_path().read_bytes()
            packed = lzma.compress(data, preset=6)
            rel = f"{target}/{spec.name}{SUFFIX}"
            atomic_write_bytes(folder / rel, packed)
            meta_path = spec.mef_path().with_suffix(".json")
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            entries[name] = {"graph": spec.name, "key": spec.key(), "source": _source_hash(spec.module, "cpu"),
                             "file": rel, "bytes": len(data), "xz_bytes": len(packed),
                             "sha256": hashlib.sha256(data).hexdigest(),
                             "xz_sha256": hashlib.sha256(packed).hexdigest(),
                             "compile_s": meta.get("compile_s")}
            print(f"{rel}: {len(data) / 1e6:.1f} MB -> {len(packed) / 1e6:.2f} MB", file=sys.stderr)
        manifest["targets"][target] = entries
        keep = {e["file"] for e in entries.values()}
        for path in sorted((folder / target).glob(f"*{SUFFIX}")):  # graphs no longer shipped
            if f"{target}/{path.name}" not in keep:
                print(f"removing {path} (no longer shipped)", file=sys.stderr)
                path.unlink()
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    from rsmt_studio.inference.runtime.compiler import CompileError, print_progress

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    p.add_argument("--jobs", type=int, default=None, help="compile children at once (default: one per core)")
    p.add_argument("--check", action="store_true", help="only say whether the shipped models are up to date")
    args = p.parse_args(argv)
    if args.check:
        reasons = stale_reasons()
        for r in reasons:
            print(r)
        print("shipped compiled models: " + ("stale; regenerate with " + REGENERATE if reasons else "up to date"))
        return 1 if reasons else 0
    t0 = time.perf_counter()
    try:
        manifest = regenerate(args.targets, jobs=args.jobs, progress=print_progress)
    except CompileError as exc:
        print(f"ship_compiled: {exc}", file=sys.stderr)
        return 1
    total = sum(e["xz_bytes"] for t in args.targets for e in manifest["targets"][t].values())
    print(f"shipped {', '.join(args.targets)} in {ship_dir()} ({total / 1e6:.1f} MB) in "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
