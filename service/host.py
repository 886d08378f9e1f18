"""`EngineHost`: the one thread that owns the `TransitionEngine`, and the batching in front of it.

Why one thread: MAX models and the engine's memos are not shared between threads, and on a small machine two
concurrent graph calls only fight for the same cores. Requests queue here; the thread takes the first one, waits
at most `window_s` for more (never when `max_batch` are already waiting) and runs them together through
`inference.batched` (one `prepare` call and ceil(L / steps) `steps` calls for the whole batch). Admission is
bounded (`max_queue` requests admitted and not yet finished); beyond it the service answers 503.

The engine is built in this thread at start-up (compiling the graphs if the cache lacks them, in a child process),
so the HTTP server answers `/health` with the compile progress meanwhile.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rsmt_studio.inference import batched
from rsmt_studio.inference.engine import (
    CancelToken,
    Transition,
    TransitionChunk,
    TransitionEngine,
    TransitionError,
)
from rsmt_studio.service.errors import FieldError, from_engine


class Cancelled(RuntimeError):
    """The request's client went away; its work was dropped."""


@dataclass(eq=False)
class TransitionJob:
    """One admitted transition request. `on_chunk` runs in the engine thread (keep it cheap and thread-safe)."""

    request: batched.Request
    source_where: str
    target_where: str
    on_chunk: Callable[[TransitionChunk], None] | None = None
    result: Future = field(default_factory=Future)
    cancel: CancelToken = field(default_factory=CancelToken)
    batch_size: int = 0

    def __post_init__(self) -> None:
        self.request.cancel = self.cancel


@dataclass(eq=False)
class CallJob:
    """Any other engine work (phases, style codes): `fn(engine)` in the engine thread."""

    fn: Callable[[TransitionEngine], Any]
    result: Future = field(default_factory=Future)


class EngineHost:
    def __init__(self, make_engine: Callable[..., TransitionEngine], max_batch: int = 64, window_s: float = 0.005,
                 max_queue: int = 256) -> None:
        self.max_batch = int(max_batch)
        self.window_s = float(window_s)
        self.max_queue = int(max_queue)
        self.engine: TransitionEngine | None = None
        self.state = "starting"  # starting -> compiling/loading -> ready | failed
        self.progress: dict[str, dict] = {}
        self.error: str | None = None
        self.stats: Counter = Counter()
        self.batch_sizes: Counter = Counter()
        self._admitted = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._make_engine = make_engine
        self.closing = threading.Event()
        self._thread = threading.Thread(target=self._main, name="rsmt-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------ called from the server
    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def try_admit(self) -> bool:
        """Reserve a place for one request; False when `max_queue` are admitted and unfinished."""
        with self._lock:
            if self._admitted >= self.max_queue:
                self.stats["rejected_queue_full"] += 1
                return False
            self._admitted += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def submit(self, job: TransitionJob | CallJob) -> Future:
        """Queue an admitted job (the place taken by `try_admit` is freed when it resolves)."""
        job.result.add_done_callback(lambda _f: self.release())
        self._queue.put(job)
        return job.result

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            admitted = self._admitted
        return {"state": self.state, "admitted": admitted, "max_queue": self.max_queue, "max_batch": self.max_batch,
                "window_ms": self.window_s * 1e3, "counts": dict(self.stats),
                "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
                "memos": memo_sizes(self.engine)}

    def close(self, timeout: float = 10.0) -> None:
        """Stop the engine thread (after the batch it is running); a compile still running is cancelled."""
        self.closing.set()
        self._queue.put(None)
        self._thread.join(timeout)

    # ------------------------------------------------------------------------------ the engine thread
    def _on_progress(self, event: dict) -> None:
        self.state = "compiling"
        name = str(event.get("name") or event.get("graph") or "graphs")
        self.progress[name] = {k: v for k, v in event.items() if isinstance(v, (str, int, float, bool))}

    def _main(self) -> None:
        try:
            self.state = "loading"
            # a compile in progress stops (its child processes end) when the server shuts down
            self.engine = self._make_engine(progress=self._on_progress, cancel_compile=self.closing.is_set)
            self.state = "ready"
        except BaseException as exc:  # noqa: BLE001 - reported by /health; the server stays up to say why
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.state = "failed"
            self._drain(RuntimeError(f"engine failed to start: {self.error}"))
            return
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._serve(job)
            # Nothing of a finished job may stay referenced while this thread waits for the next one: a local
            # here kept the last batch (its clips, posted BVH text, results) alive for as long as the service idled.
            del job

    def _serve(self, job: TransitionJob | CallJob) -> None:
        """One job, or a batch of transitions gathered behind it (any other work waits until after the batch)."""
        if isinstance(job, CallJob):
            self._call(job)
            return
        jobs, deferred = [job], []
        deadline = time.perf_counter() + self.window_s
        while len(jobs) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.perf_counter()
                if wait <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
            if nxt is None:
                self._queue.put(None)
                break
            (deferred if isinstance(nxt, CallJob) else jobs).append(nxt)
        self._transitions(jobs)
        for d in deferred:
            self._call(d)

    def _drain(self, exc: BaseException) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if job is None:
                return
            job.result.set_exception(exc)

    def _call(self, job: CallJob) -> None:
        if not job.result.set_running_or_notify_cancel():
            return
        try:
            job.result.set_result(job.fn(self.engine))
        except BaseException as exc:  # noqa: BLE001 - handed to the request's future
            job.result.set_exception(exc)

    def _transitions(self, jobs: list[TransitionJob]) -> None:
        engine = self.engine
        prepared: list[batched.Prepared] = []
        owners: list[TransitionJob] = []
        for job in jobs:
            if job.cancel.cancelled:
                self.stats["cancelled"] += 1
                job.result.set_exception(Cancelled("client disconnected"))
                continue
            try:
                prepared.append(batched.prepare(engine, job.request))
                owners.append(job)
            except TransitionError as exc:
                self.stats["failed"] += 1
                job.result.set_exception(from_engine(str(exc).splitlines()[0], job.source_where, job.target_where))
            except BaseException as exc:  # noqa: BLE001 - handed to the request's future
                self.stats["failed"] += 1
                job.result.set_exception(exc)
        for idx in batched.groups(prepared, self.max_batch, by_length=engine.capture):
            rows = [prepared[i] for i in idx]
            group = [owners[i] for i in idx]
            for job in group:
                job.batch_size = len(group)
            self.batch_sizes[len(group)] += 1
            self.stats["batches"] += 1

            def on_chunk(i: int, chunk: TransitionChunk, group=group) -> None:
                cb = group[i].on_chunk
                if cb is not None and not group[i].cancel.cancelled:
                    cb(chunk)

            try:
                results = batched.run(engine, rows, on_chunk, streamed=[job.on_chunk is not None for job in group])
            except BaseException as exc:  # noqa: BLE001 - handed to the request's future
                traceback.print_exc()
                for job in group:
                    self.stats["failed"] += 1
                    job.result.set_exception(exc if isinstance(exc, (FieldError, TransitionError)) else
                                             RuntimeError(f"engine error: {exc}"))
                continue
            for job, result in zip(group, results, strict=True):
                if result is None:
                    self.stats["cancelled"] += 1
                    job.result.set_exception(Cancelled("client disconnected"))
                elif isinstance(result, BaseException):
                    self.stats["failed"] += 1
                    if isinstance(result, TransitionError):
                        result = from_engine(str(result).splitlines()[0], job.source_where, job.target_where)
                    job.result.set_exception(result)
                else:
                    self.stats["completed"] += 1
                    self.stats["frames"] += int(job.request.length)
                    job.result.set_result(result)


def memo_sizes(engine: TransitionEngine | None) -> dict[str, int]:
    """Entries in the engine's per-clip memos (each a `BoundedMemo`), for `/v1/info` and the memory bench: a
    service that sees endless new clips must see these stop at their bounds. Read without the engine thread's
    lock (`len` of a dict), so a figure may be one request old."""
    if engine is None:
        return {}
    out = {}
    rigs = getattr(engine, "rigs", None)
    for name, memo in (("style_codes", getattr(engine, "_style_cache", None)),
                       ("phase_tracks", getattr(engine, "_phase_cache", None)),
                       ("rig_bindings", getattr(rigs, "_bindings", None)),
                       ("rig_clips", getattr(rigs, "_clips", None)),
                       ("rig_frames", getattr(rigs, "_trips", None))):
        if memo is not None:
            out[name] = len(memo)
    return out


__all__ = ["CallJob", "Cancelled", "EngineHost", "Transition", "TransitionJob", "memo_sizes"]
