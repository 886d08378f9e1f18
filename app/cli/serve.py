"""`rsmt-studio serve`: transitions over HTTP for plug-ins and pipelines (FastAPI on uvicorn; the `serve` extra).

Binds 127.0.0.1 by default. The engine loads (compiling the graphs into the cache on first use, in a child
process) while the server already answers `/health` with the progress. Routes and error shapes:
docs/service.md; OpenAPI page at /docs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--device", choices=("cpu", "gpu", "auto"), default="cpu")
    parser.add_argument("--library-root", type=Path, default=None,
                        help="folder whose BVH files requests may name by path (source_path, target_path); "
                             "without it only BVH text is accepted")
    parser.add_argument("--api-key", default=None, help="require this key (X-API-Key or Authorization: Bearer) "
                        "on /v1 routes; also read from $RSMT_STUDIO_API_KEY")
    parser.add_argument("--assets", type=Path, default=None, help="model folder (default: the shipped assets)")
    parser.add_argument("--steps-per-call", type=int, default=None,
                        help="sampler steps per MAX call (default 8; each value is its own compiled graph)")
    parser.add_argument("--max-batch", type=int, default=64, help="requests per engine call (default 64)")
    parser.add_argument("--batch-window-ms", type=float, default=5.0,
                        help="how long to wait for more requests to batch (default 5 ms)")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="admitted unfinished requests before answering 503 (default 256)")
    parser.add_argument("--max-length", type=int, default=240, help="longest transition in frames (default 240)")
    parser.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body (default 16 MiB)")
    parser.add_argument("--max-clip-frames", type=int, default=20_000, help="longest BVH clip in a request")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes, each with its own engine and batching (default 1); more serve more "
                             "requests per second where the cores allow (docs/service.md, \"GPU\")")
    parser.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    import os

    try:
        import uvicorn
        from rsmt_studio.service.factory import SETTINGS_ENV, ServeSettings, build_app
    except ModuleNotFoundError as exc:
        print(f"rsmt-studio serve: needs the 'serve' extra (pip install 'rsmt-studio[serve]'): {exc}",
              file=sys.stderr)
        return 2

    def fail(msg: str) -> int:
        print(f"rsmt-studio serve: {msg}", file=sys.stderr)
        return 2

    if args.library_root is not None and not args.library_root.is_dir():
        return fail(f"--library-root {args.library_root}: not a folder")
    for name in ("max_batch", "max_queue", "max_length", "max_clip_frames", "workers"):
        if getattr(args, name) < 1:
            return fail(f"--{name.replace('_', '-')} must be at least 1")
    settings = ServeSettings(
        device=args.device, assets=str(args.assets) if args.assets else None,
        steps_per_call=args.steps_per_call,
        library_root=str(args.library_root) if args.library_root else None,
        api_key=args.api_key or os.environ.get("RSMT_STUDIO_API_KEY") or None, max_batch=args.max_batch,
        window_ms=args.batch_window_ms, max_queue=args.max_queue, max_length=args.max_length,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_clip_frames=args.max_clip_frames)
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(f"rsmt-studio serve: http://{args.host}:{args.port} (OpenAPI: /docs; loading the engine on "
          f"{args.device}{workers})", file=sys.stderr, flush=True)
    common = {"host": args.host, "port": args.port, "log_level": args.log_level, "timeout_graceful_shutdown": 2}
    if args.workers == 1:
        uvicorn.run(build_app(settings), **common)
    else:  # spawned workers read their settings from the environment (service/factory.py)
        os.environ[SETTINGS_ENV] = settings.to_env()
        uvicorn.run("rsmt_studio.service.factory:app_from_env", factory=True, workers=args.workers, **common)
    return 0  # the app's lifespan stopped the engine thread
