"""Child process that compiles graphs into MEF files: `python -m rsmt_studio.inference.runtime.compile_worker`.

Compiling inside the app's process stalls every other MAX `execute` there for seconds (measured in
docs/performance.md), so the app never compiles in-process: it runs this module, reads one JSON object per line
of progress from its stdout, and loads the finished MEFs in milliseconds. Jobs arrive as a JSON list of
`GraphSpec`s on stdin. Each MEF is written to a temporary file and renamed into place, under a lock, so a
killed compile never leaves a half-written model and two processes never compile the same graph twice.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Self


def _emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class _Lock:
    """An exclusive lock file next to the MEF (POSIX flock; a no-op where fcntl is missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows
            pass
        return self

    def __exit__(self, *exc) -> None:
        assert self.fd is not None
        os.close(self.fd)


def compile_one(spec, index: int, total: int) -> float:
    """Compile `spec` into its MEF path unless it already exists; returns seconds spent compiling."""
    from max.engine import InferenceSession
    from rsmt_studio.inference.runtime.cache import max_version

    path = spec.mef_path()
    with _Lock(path.with_suffix(".lock")):
        if path.is_file():
            _emit(event="cached", name=spec.name, index=index, total=total, path=str(path))
            return 0.0
        _emit(event="start", name=spec.name, index=index, total=total)
        t0 = time.perf_counter()
        graph = spec.build()
        session = InferenceSession(devices=[spec_device(spec)])
        done = threading.Event()

        def tick() -> None:
            while not done.wait(1.0):
                _emit(event="progress", name=spec.name, index=index, total=total,
                      elapsed_s=round(time.perf_counter() - t0, 1))

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            compiled = session.compile(graph)
        finally:
            done.set()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        compiled.export_mef(str(tmp))
        os.replace(tmp, path)
        seconds = time.perf_counter() - t0
        meta = {**spec.to_json(), "key": spec.key(), "max_version": max_version(), "compile_s": round(seconds, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        meta_tmp = path.with_name(f".{path.name}.{os.getpid()}.json.tmp")
        meta_tmp.write_text(json.dumps(meta, indent=1))
        os.replace(meta_tmp, path.with_suffix(".json"))
        _emit(event="done", name=spec.name, index=index, total=total, seconds=round(seconds, 2), path=str(path))
        return seconds


def spec_device(spec):
    from rsmt_studio.inference.runtime.devices import DeviceChoice

    return DeviceChoice(spec.device).driver_device()


def set_cpu_target(jobs) -> None:
    """Compile CPU graphs for their named target (portable machine code; the cache key names it). MAX takes
    one target per process, before its first CPU kernel compile, so all jobs of a worker must share it."""
    from rsmt_studio.inference.runtime.cpu_target import is_virtual

    targets = {spec.target() for spec in jobs if spec.device == "cpu"}
    if len(targets) > 1:
        raise ValueError(f"one compile worker compiles for one CPU target, got {sorted(targets)}")
    if targets and is_virtual(target := targets.pop()):
        from max.driver import set_virtual_cpu_target

        set_virtual_cpu_target(target)


def main() -> int:
    from rsmt_studio.inference.runtime.cache import GraphSpec

    jobs = [GraphSpec.from_json(j) for j in json.loads(sys.stdin.read())]
    try:
        set_cpu_target(jobs)
        for i, spec in enumerate(jobs):
            compile_one(spec, i, len(jobs))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it there
        _emit(event="error", message=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        return 1
    _emit(event="finished", total=len(jobs))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    sys.exit(main())
