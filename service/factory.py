"""Build the service from its settings: in the `serve` process itself, or in each of `--workers N` processes.

Why several processes: each request costs 11-13 ms of single-threaded Python around the graph calls before HTTP and
JSON (canonicalising the request, post-processing, the BVH text), against ~0.03 ms of GPU time per row in a large
batch (bench/batch_profile.py, bench/inference.py --gpu), and
one process's engine thread and event loop share the GIL (docs/service.md, "GPU"). uvicorn's worker processes share
the listening socket; each builds its own engine (compiled models load from the shared cache, under its file lock)
and batches the requests it accepted. Worker processes are spawned, so they get their settings from the environment
(`SETTINGS_ENV`, JSON) through `app_from_env`, the factory uvicorn imports by name.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

SETTINGS_ENV = "RSMT_STUDIO_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """What `rsmt-studio serve` was asked for (validated by the CLI)."""

    device: str
    assets: str | None
    steps_per_call: int | None  # None: the engine's default for its device
    library_root: str | None
    api_key: str | None
    max_batch: int
    window_ms: float
    max_queue: int
    max_length: int
    max_body_bytes: int
    max_clip_frames: int

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise RuntimeError(f"{SETTINGS_ENV} is not set: start workers through `rsmt-studio serve --workers N`")
        return cls(**json.loads(raw))


def build_app(s: ServeSettings) -> FastAPI:
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.service.app import create_app
    from rsmt_studio.service.host import EngineHost
    from rsmt_studio.service.library import ClipStore
    from rsmt_studio.service.schemas import Limits

    limits = Limits(max_body_bytes=s.max_body_bytes, max_length=s.max_length, max_clip_frames=s.max_clip_frames,
                    max_queue=s.max_queue, max_batch=s.max_batch, window_ms=s.window_ms)
    make_engine = functools.partial(TransitionEngine, Path(s.assets) if s.assets else None, device=s.device,
                                    steps_per_call=s.steps_per_call)
    host = EngineHost(make_engine, max_batch=s.max_batch, window_s=s.window_ms / 1e3, max_queue=s.max_queue)
    store = ClipStore(Path(s.library_root) if s.library_root else None, s.max_clip_frames)
    return create_app(host, store, limits, api_key=s.api_key)


def app_from_env() -> FastAPI:
    """uvicorn's factory in each worker process."""
    return build_app(ServeSettings.from_env())
