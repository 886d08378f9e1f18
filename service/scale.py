"""`rsmt-studio batch --ray`: the plan's blocks on Ray actors, one `TransitionEngine` per device (the `scale` extra).

Why Ray and not a home-made pool: it already starts workers across machines, places one actor per GPU
(`num_gpus=1`), restarts lost ones and moves the data; our part is only the actor and the stream of blocks. The
driver compiles the graphs once (into the shared cache) before the actors load them, streams blocks to the actors
(at most two in flight each, so a slow actor never holds the queue), and writes every result itself, atomically,
exactly as the single-process runner does: the same blocks, the same files.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rsmt_studio.service.bulk import ClipCache, Summary, blocks, finish, generate_block, split, write_outcomes
from rsmt_studio.service.plan import BadRow, PlanRow

IN_FLIGHT_PER_ACTOR = 2


class ScaleUnavailable(RuntimeError):
    """Ray is not installed (the `scale` extra)."""


class EngineActor:
    """Holds one engine (one device) and a clip cache; `run(rows)` generates a block."""

    def __init__(self, assets: str | None, device: str, steps_per_call: int) -> None:
        from rsmt_studio.inference.engine import TransitionEngine

        self.engine = TransitionEngine(assets, device=device, steps_per_call=steps_per_call)
        self.clips = ClipCache()
        self.pid = os.getpid()

    def run(self, rows: list[PlanRow]):
        return generate_block(self.engine, rows, self.clips, len(rows) or 1)

    def where(self) -> int:
        return self.pid


def compile_first(assets: str | None, device: str, steps_per_call: int) -> None:
    """Compile the graphs the actors need once, here, so N actors do not compile the same graphs N times."""
    from rsmt_studio.inference.engine import default_assets_dir, engine_weights
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled, print_progress
    from rsmt_studio.inference.runtime.devices import select_device
    from rsmt_studio.inference.weights import load_assets

    a = load_assets(assets or default_assets_dir())
    kind = select_device(device).kind
    gpu = kind != "cpu"
    specs = model_specs(a.dims, kind, steps_per_call, chain=gpu, weights=engine_weights(a) if gpu else None)
    ensure_compiled(specs.values(), progress=print_progress)


def run_ray(rows: list[PlanRow | BadRow], out: Path, address: str = "local", workers: int | None = None,
            device: str = "cpu", assets: Path | None = None, steps_per_call: int | None = None, block: int = 256,
            progress: Callable[[int, int], None] | None = None) -> Summary:
    try:
        import ray
    except ModuleNotFoundError:
        raise ScaleUnavailable("--ray needs the 'scale' extra (pip install 'rsmt-studio[scale]')") from None
    from rsmt_studio.inference.engine import default_steps_per_call
    from rsmt_studio.inference.runtime.devices import select_device

    steps = steps_per_call or default_steps_per_call(select_device(device).kind)
    t0 = time.perf_counter()
    todo, failures, skipped = split(rows, out)
    assets_s = str(assets) if assets else None
    compile_first(assets_s, device, steps)
    env = {k: v for k, v in os.environ.items() if k.startswith("RSMT_STUDIO_")}
    started = not ray.is_initialized()
    if started:
        kwargs = {"include_dashboard": False, "log_to_driver": False, "runtime_env": {"env_vars": env}}
        if address == "local":
            ray.init(num_cpus=max(os.cpu_count() or 1, workers or 2), **kwargs)
        else:
            ray.init(address=address, **kwargs)
    try:
        gpu = device == "gpu"
        n = workers or (max(1, int(ray.cluster_resources().get("GPU", 0))) if gpu else 2)
        actor_cls = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(EngineActor)
        actors = [actor_cls.remote(assets_s, device, steps) for _ in range(n)]
        pids = ray.get([a.where.remote() for a in actors])  # waits until every actor has its engine
        print(f"ray: {len(set(pids))} engine actors on {device} (pids {', '.join(map(str, pids))})",
              file=sys.stderr, flush=True)
        parts = iter(list(blocks(todo, block)))
        pending: dict = {}

        def feed(actor) -> None:
            part = next(parts, None)
            if part is not None:
                pending[actor.run.remote(part)] = actor

        for actor in actors:
            for _ in range(IN_FLIGHT_PER_ACTOR):
                feed(actor)
        written = 0
        if progress and failures:
            progress(0, len(failures))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor = pending.pop(ready[0])
            w, f = write_outcomes(ray.get(ready[0]), out, failures)
            written += w
            if progress:
                progress(w, f)
            feed(actor)
    finally:
        if started:
            ray.shutdown()
    return finish(out, len(rows), skipped, written, failures, t0)
