"""Shipped compiled models: install the one matching a CPU graph into the compile cache instead of compiling it.

`assets/compiled/manifest.json` plus `assets/compiled/<target>/<graph>.mef.xz` (made by
builders/ship_compiled.py, which says why and how). At start `ensure_compiled` calls `install_shipped`: each CPU
graph missing from the cache whose key (graph code, structure, MAX version, this CPU's target) matches a shipped
entry is decompressed, checked against its SHA-256 and written atomically into the cache; anything else is
compiled as before.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import time
from pathlib import Path
from typing import Any

from rsmt_studio.inference.runtime.cache import GraphSpec, max_version
from rsmt_studio.motion.atomic import atomic_write_bytes, atomic_write_text

SUFFIX = ".mef.xz"


def ship_dir() -> Path:
    """`assets/compiled` of the installed package (the checkout's assets/ in an editable install)."""
    import rsmt_studio.assets as pkg

    return Path(pkg.__file__).resolve().parent / "compiled"


def load_manifest(folder: Path | None = None) -> dict[str, Any]:
    """The shipped manifest, or {} when none is shipped (or it does not parse: then everything compiles)."""
    path = (folder or ship_dir()) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def shipped_entry(manifest: dict[str, Any], spec: GraphSpec) -> dict[str, Any] | None:
    """The manifest entry of a shipped model for `spec` (same key: code, structure, MAX, CPU target), if any."""
    for entry in manifest.get("targets", {}).get(spec.target(), {}).values():
        if isinstance(entry, dict) and entry.get("key") == spec.key():
            return entry
    return None


def install_shipped(specs, progress=None, folder: Path | None = None) -> list[str]:
    """Put the shipped model of every CPU spec that is not in the cache yet and has a matching shipped entry
    into the cache (decompressed, SHA-256 checked, atomic, under the compile lock). Returns their names.

    A damaged or mismatching file is skipped (and so compiled locally), never installed."""
    from rsmt_studio.inference.runtime.compile_worker import _Lock
    from rsmt_studio.inference.runtime.cpu_target import can_run

    folder = folder or ship_dir()
    manifest = None
    installed = []
    for spec in specs:
        if spec.device != "cpu" or spec.is_compiled() or not can_run(spec.target()):
            continue
        if manifest is None:
            manifest = load_manifest(folder)
        entry = shipped_entry(manifest, spec)
        if entry is None:
            continue
        t0 = time.perf_counter()
        try:
            data = lzma.decompress((folder / entry["file"]).read_bytes())
        except (OSError, lzma.LZMAError, KeyError):
            continue
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            continue
        path = spec.mef_path()
        with _Lock(path.with_suffix(".lock")):
            if not path.is_file():
                atomic_write_bytes(path, data)
                meta = {**spec.to_json(), "key": spec.key(), "max_version": max_version(),
                        "shipped_from": str(folder / entry["file"])}
                atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        seconds = time.perf_counter() - t0
        installed.append(spec.name)
        if progress is not None:
            progress({"event": "shipped", "name": spec.name, "target": spec.target(), "seconds": round(seconds, 3),
                      "path": str(path)})
    return installed
