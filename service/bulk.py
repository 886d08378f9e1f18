"""Generating a plan's transitions in large engine calls, on one process or on Ray actors (`service.scale`).

The plan's unfinished rows are cut into blocks of `block` consecutive rows; each block is canonicalised row by row
and generated through `inference.batched` (one batch per style-cache shape), then every result is written as BVH
atomically (`motion.atomic`). A row is finished when its output file exists, which is what makes a killed run
resumable: the next run skips those rows. Both runners form the same blocks from the same plan, so they give
identical files.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rsmt_studio.motion.atomic import atomic_write_text
from rsmt_studio.service.plan import BadRow, PlanRow

FAILURES_FILE = "batch-failures.jsonl"


@dataclass
class Outcome:
    """One row's result: BVH `text`, or a failure `reason` (bad_bvh, frame_out_of_range, ...) and `message`."""

    index: int
    output: str
    text: str | None = None
    reason: str = ""
    message: str = ""
    line: int = 0


class ClipCache:
    """Recently read clips by path (a plan typically pairs a few clips many times). Same path -> same object,
    so the engine's per-clip memos (phases, style codes) hit across rows."""

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self._clips: OrderedDict[str, object] = OrderedDict()

    def get(self, path: str):
        from rsmt_studio.motion.bvh_reader import read_bvh

        if path in self._clips:
            self._clips.move_to_end(path)
            return self._clips[path]
        clip = read_bvh(path)
        self._clips[path] = clip
        while len(self._clips) > self.capacity:
            self._clips.popitem(last=False)
        return clip


def generate_block(engine, rows: list[PlanRow], clips: ClipCache, max_batch: int = 256) -> list[Outcome]:
    """Generate one block of rows with `engine` (a TransitionEngine); never raises for a bad row."""
    from rsmt_studio.inference import batched
    from rsmt_studio.inference.engine import TransitionError, _where
    from rsmt_studio.motion.bvh_writer import format_bvh
    from rsmt_studio.motion.errors import BVHError
    from rsmt_studio.service.errors import from_engine

    outcomes: dict[int, Outcome] = {}
    prepared, owners = [], []
    for row in rows:
        out = Outcome(row.index, row.output, line=row.line)
        outcomes[row.index] = out
        try:
            source = clips.get(row.source)
            target = clips.get(row.target)
            style = clips.get(row.style) if row.style.lower().endswith(".bvh") else row.style
            req = batched.Request(source, row.source_frame, target, row.target_frame, style, row.length, row.seed,
                                  foot_lock=row.foot_lock, head_steady=row.head_steady)
            prepared.append(batched.prepare(engine, req))
            owners.append(out)
        except FileNotFoundError as exc:
            out.reason, out.message = "missing_file", f"{exc.filename}: no such file"
        except BVHError as exc:
            missing = exc.found == "No such file or directory"
            out.reason, out.message = ("missing_file" if missing else "bad_bvh"), str(exc).splitlines()[0]
        except TransitionError as exc:
            msg = str(exc).splitlines()[0]
            err = from_engine(msg, _where(source), _where(target))
            out.reason, out.message = err.reason, msg
        except (OSError, ValueError) as exc:
            out.reason, out.message = "unreadable", f"{type(exc).__name__}: {exc}".splitlines()[0]
    for idx in batched.groups(prepared, max_batch, by_length=engine.capture):
        rows_ = [prepared[i] for i in idx]
        try:
            results = batched.run(engine, rows_)
        except Exception as exc:  # noqa: BLE001 - an engine failure fails its batch, not the run
            for i in idx:
                owners[i].reason, owners[i].message = "engine_error", f"{type(exc).__name__}: {exc}"[:300]
            continue
        for i, result in zip(idx, results, strict=True):
            if isinstance(result, BaseException):
                owners[i].reason, owners[i].message = "engine_error", f"{type(result).__name__}: {result}"[:300]
            elif result is not None:
                owners[i].text = format_bvh(result.clip)  # exactly what `rsmt-studio generate` writes
    return [outcomes[r.index] for r in rows]


def blocks(rows: list[PlanRow], size: int) -> Iterator[list[PlanRow]]:
    for k in range(0, len(rows), size):
        yield rows[k : k + size]


class Progress:
    """One status line on stderr: rows done of total, written, failed, skipped, rate, ETA."""

    def __init__(self, total: int, skipped: int, stream=sys.stderr) -> None:
        self.total, self.skipped, self.stream = total, skipped, stream
        self.written = self.failed = 0
        self.t0 = time.perf_counter()
        self.tty = getattr(stream, "isatty", lambda: False)()

    def update(self, written: int = 0, failed: int = 0) -> None:
        self.written += written
        self.failed += failed
        done = self.written + self.failed
        dt = time.perf_counter() - self.t0
        rate = self.written / dt if dt > 0 else 0.0
        left = self.total - self.skipped - done
        eta = f", ETA {left / rate:.0f} s" if rate > 0 and left > 0 else ""
        line = (f"[{done + self.skipped}/{self.total}] written {self.written}, failed {self.failed}, "
                f"skipped {self.skipped} (done before), {rate:.1f} transitions/s{eta}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream)


@dataclass
class Summary:
    total: int
    written: int
    skipped: int
    failed: int
    by_reason: dict[str, int]
    seconds: float
    transitions_per_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def split(rows: list[PlanRow | BadRow], out: Path) -> tuple[list[PlanRow], list[Outcome], int]:
    """(rows still to do, failures of unreadable rows, rows skipped because their output exists). Temporary files
    a killed run left beside unfinished outputs (atomic writes' `.NAME.*.tmp`) are removed."""
    todo, bad, skipped = [], [], 0
    for r in rows:
        if isinstance(r, PlanRow):
            target = out / r.output
            if target.parent.is_dir() and not target.is_file():
                for stale in target.parent.glob(f".{target.name}.*.tmp"):
                    stale.unlink(missing_ok=True)
    for r in rows:
        if isinstance(r, BadRow):
            bad.append(Outcome(r.index, r.output, None, "bad_row", f"{r.column}: {r.message}", r.line))
        elif (out / r.output).is_file():
            skipped += 1
        else:
            todo.append(r)
    return todo, bad, skipped


def write_outcomes(outcomes: Iterable[Outcome], out: Path, failures: list[Outcome]) -> tuple[int, int]:
    written = failed = 0
    for o in outcomes:
        if o.text is not None:
            atomic_write_text(out / o.output, o.text)
            written += 1
        else:
            failures.append(o)
            failed += 1
    return written, failed


def finish(out: Path, total: int, skipped: int, written: int, failures: list[Outcome], t0: float) -> Summary:
    """Write the failures file (replaced each run: it lists what is still failing) and the summary."""
    lines = [json.dumps({"line": f.line, "row": f.index, "output": f.output, "reason": f.reason,
                         "message": f.message}) for f in sorted(failures, key=lambda f: f.index)]
    path = out / FAILURES_FILE
    if lines:
        atomic_write_text(path, "\n".join(lines) + "\n")
    elif path.exists():
        path.unlink()
    dt = time.perf_counter() - t0
    return Summary(total, written, skipped, len(failures), dict(Counter(f.reason for f in failures)), round(dt, 3),
                   round(written / dt, 3) if dt > 0 else 0.0)


def run_local(engine, rows: list[PlanRow | BadRow], out: Path, block: int = 256,
              progress: Callable[[int, int], None] | None = None) -> Summary:
    """The plan on this process's engine, block by block."""
    t0 = time.perf_counter()
    todo, failures, skipped = split(rows, out)
    clips = ClipCache()
    written = 0
    if progress and failures:
        progress(0, len(failures))
    for part in blocks(todo, block):
        w, f = write_outcomes(generate_block(engine, part, clips, block), out, failures)
        written += w
        if progress:
            progress(w, f)
    return finish(out, len(rows), skipped, written, failures, t0)
