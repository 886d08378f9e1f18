"""Benchmark `rsmt-studio serve`: N concurrent clients for a bounded time on 127.0.0.1, against the same requests
run one by one through the engine in-process, in one run.

    python bench/serve.py [--clients 16] [--seconds 30] [--length 40] [--steps-per-call 8] [--device cpu] [--workers 1]
                          [--rounds N] [--mix 256] [--json OUT.json]

First the in-process baseline (`TransitionEngine.generate`, one request after another, the service not yet
started, so they never share the CPU); then the service as a subprocess (`--max-batch`, `--batch-window-ms`), N
client threads (the real `rsmt_studio.client`) each sending requests back to back until the time is up. Reports
latency p50/p95/p99, throughput, batch sizes the service reached, errors (must be 0) and the server's resident
memory at start and end. Requests are drawn deterministically from Bandai clips (../shared/data/bandai).

`--rounds N`: instead of a time bound, the clients send the whole mix (`--mix` requests) N times, and the server's
RSS and memo sizes (`/v1/info` `queue.memos`) are recorded after each round, so growth shows as warm-up that stops
or as a leak that does not (docs/service.md, "Memory").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "bandai" / "dataset" / "Bandai-Namco-Research-Motiondataset-1" / "data"
CLIPS = ("dataset-1_walk_normal_001.bvh", "dataset-1_run_active_001.bvh", "dataset-1_bow_angry_001.bvh",
         "dataset-1_walk_proud_001.bvh")


def requests_mix(n: int, length: int, styles: list[str], seed: int = 0) -> list[dict]:
    """`n` deterministic requests over the bench clips (frames inside each clip's range)."""
    from rsmt_studio.motion.bvh_reader import read_bvh

    names = [c for c in CLIPS if (DATA / c).is_file()]
    if len(names) < 2:
        raise SystemExit(f"bench/serve.py: needs Bandai clips under {DATA}")
    frames = {c: read_bvh(DATA / c).num_frames for c in names}
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s, t = rng.choice(names, 2, replace=True)
        out.append({"source_path": str(s), "source_frame": int(rng.integers(9, frames[s])),
                    "target_path": str(t), "target_frame": int(rng.integers(0, frames[t])),
                    "style": styles[i % len(styles)], "length": length, "seed": int(i)})
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_process(reqs: list[dict], args) -> dict:
    """The same requests one by one through TransitionEngine.generate in this process."""
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.motion.bvh_reader import read_bvh

    engine = TransitionEngine(None, device=args.device, steps_per_call=args.steps_per_call)
    clips = {c: read_bvh(DATA / c) for c in {r["source_path"] for r in reqs} | {r["target_path"] for r in reqs}}
    r0 = reqs[0]  # warm-up: style codes and phase memo of the first clip
    engine.generate(clips[r0["source_path"]], r0["source_frame"], clips[r0["target_path"]], r0["target_frame"],
                    r0["style"], r0["length"], seed=0)
    lat = []
    t_end = time.perf_counter() + args.baseline_seconds
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() < t_end:
        r = reqs[i % len(reqs)]
        t1 = time.perf_counter()
        engine.generate(clips[r["source_path"]], r["source_frame"], clips[r["target_path"]], r["target_frame"],
                        r["style"], r["length"], seed=r["seed"])
        lat.append((time.perf_counter() - t1) * 1e3)
        i += 1
    dt = time.perf_counter() - t0
    del engine
    return {"requests": len(lat), "seconds": round(dt, 2), "transitions_per_s": round(len(lat) / dt, 2),
            "p50_ms": round(pct(lat, 50), 2), "p95_ms": round(pct(lat, 95), 2), "p99_ms": round(pct(lat, 99), 2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """RSS of the server and its worker processes (`--workers N`)."""
    kids = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    return rss_mb(pid) + sum(rss_mb(k) for k in kids if Path(f"/proc/{k}/status").exists())


def queue_by_worker(url: str, workers: int, tries: int = 50) -> dict[int, dict]:
    """`/v1/info`'s queue of every worker process: fresh connections, concurrently, until each has answered."""
    from concurrent.futures import ThreadPoolExecutor

    from rsmt_studio.client import Client, ServiceError

    def one(_):
        try:
            d = Client(url, timeout=600).info()
            return d["worker_pid"], d["queue"]
        except ServiceError:  # a worker still loading its engine
            return None

    seen: dict[int, dict] = {}
    for _ in range(tries):
        with ThreadPoolExecutor(4 * workers) as pool:
            seen.update(x for x in pool.map(one, range(8 * workers)) if x is not None)
        if len(seen) >= workers:
            return seen
        time.sleep(0.5)
    raise RuntimeError(f"only {len(seen)} of {workers} server workers answered /v1/info")


def through_service(reqs: list[dict], args) -> dict:
    from rsmt_studio.client import Client, ServiceError

    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-serve-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rsmt_studio.app.cli", "serve", "--port", str(port), "--device", args.device,
             "--library-root", str(DATA), "--steps-per-call", str(args.steps_per_call), "--max-batch",
             str(args.max_batch), "--batch-window-ms", str(args.window_ms), "--max-queue",
             str(max(256, 2 * args.clients)), "--workers", str(args.workers)], stdout=fh, stderr=subprocess.STDOUT,
            cwd=REPO, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        client = Client(url, timeout=600)
        client.wait_ready(timeout=3600)
        queue_by_worker(url, args.workers)  # every worker has loaded its engine
        for _ in range(4 * args.workers):  # warm-up (style codes, clip memos), as the baseline had
            client.transition(**reqs[0])
        info0 = queue_by_worker(url, args.workers)
        mem0 = tree_rss_mb(proc.pid)
        lat: list[float] = []
        errors: dict[str, int] = {}
        lock = threading.Lock()
        rounds: list[dict] = []

        def worker(k: int, stop: float | None) -> None:
            """Back to back until `stop`; with `stop=None` (a round) this client's share of the mix, once."""
            i = k
            while (time.perf_counter() < stop) if stop is not None else (i < len(reqs)):
                r = reqs[i % len(reqs)]
                t1 = time.perf_counter()
                try:
                    client.transition(**r)
                    ms = (time.perf_counter() - t1) * 1e3
                    with lock:
                        lat.append(ms)
                except (ServiceError, OSError) as exc:
                    key = f"{getattr(exc, 'status', type(exc).__name__)}"
                    with lock:
                        errors[key] = errors.get(key, 0) + 1
                i += args.clients

        def clients(stop: float | None) -> None:
            threads = [threading.Thread(target=worker, args=(k, stop)) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.seconds + 900)

        t0 = time.perf_counter()
        if not args.rounds:
            clients(time.perf_counter() + args.seconds)
        for n in range(args.rounds):  # the same requests every round: memory after each
            t1, done = time.perf_counter(), len(lat)
            clients(None)
            q = client.info()["queue"]
            rounds.append({"round": n + 1, "requests": len(lat) - done, "seconds": round(time.perf_counter() - t1, 2),
                           "completed_total": q["counts"].get("completed", 0), "rss_mb": round(tree_rss_mb(proc.pid), 1),
                           "memos": q.get("memos", {})})
            print(f"round {n + 1}: {rounds[-1]['requests']} requests in {rounds[-1]['seconds']} s, server RSS "
                  f"{rounds[-1]['rss_mb']} MB, memos {rounds[-1]['memos']}", file=sys.stderr, flush=True)
        dt = time.perf_counter() - t0
        info1 = queue_by_worker(url, args.workers)
        mem1 = tree_rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    sizes: dict[int, int] = {}
    for pid, q1 in info1.items():  # summed over the worker processes
        for k, v in q1["batch_sizes"].items():
            sizes[int(k)] = sizes.get(int(k), 0) + v - info0.get(pid, {}).get("batch_sizes", {}).get(k, 0)
    sizes = {k: v for k, v in sorted(sizes.items()) if v}
    rows = sum(k * v for k, v in sizes.items())
    return {"clients": args.clients, "workers": args.workers, "requests": len(lat), "seconds": round(dt, 2),
            "transitions_per_s": round(len(lat) / dt, 2), "p50_ms": round(pct(lat, 50), 2),
            "p95_ms": round(pct(lat, 95), 2), "p99_ms": round(pct(lat, 99), 2), "errors": errors,
            "batch_sizes": sizes, "mean_batch": round(rows / max(1, sum(sizes.values())), 2),
            "max_batch_reached": max(sizes) if sizes else 0, "rss_mb_start": round(mem0, 1),
            "rss_mb_end": round(mem1, 1), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0, help="how long the clients send (bounded)")
    p.add_argument("--baseline-seconds", type=float, default=None, help="in-process run time (default: --seconds)")
    p.add_argument("--length", type=int, default=40)
    p.add_argument("--steps-per-call", type=int, default=8)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="server processes (`rsmt-studio serve --workers`)")
    p.add_argument("--window-ms", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=0,
                   help="instead of --seconds: send the whole request mix N times (the clients share each round) "
                        "and record the server's RSS and memo sizes after every round")
    p.add_argument("--mix", type=int, default=256, help="distinct requests in the mix (one round sends each once)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.baseline_seconds = args.baseline_seconds or args.seconds
    from rsmt_studio.inference.engine import default_assets_dir
    from rsmt_studio.inference.style_bank import StyleBank

    styles = StyleBank.load(default_assets_dir()).names[:4]
    reqs = requests_mix(args.mix, args.length, styles)
    base = in_process(reqs, args)
    serv = through_service(reqs, args)
    result = {"bench": "serve", "device": args.device, "length": args.length, "steps_per_call": args.steps_per_call,
              "cpu_count": os.cpu_count(), "in_process_sequential": base, "service": serv,
              "throughput_ratio_service_vs_sequential": round(serv["transitions_per_s"] / base["transitions_per_s"], 2),
              "p50_ratio_service_vs_sequential": round(serv["p50_ms"] / base["p50_ms"], 2)}
    print(f"{'':28s}{'in-process 1-by-1':>20s}{'service':>14s}")
    for key in ("requests", "transitions_per_s", "p50_ms", "p95_ms", "p99_ms"):
        print(f"{key:28s}{base[key]:>20}{serv[key]:>14}")
    print(f"{'clients':28s}{1:>20}{serv['clients']:>14}")
    print(f"errors: {serv['errors'] or 0}   batch sizes reached: {serv['batch_sizes']} (mean {serv['mean_batch']})")
    print(f"server RSS ({serv['workers']} worker process(es) and their parent): {serv['rss_mb_start']} MB at start, "
          f"{serv['rss_mb_end']} MB at end")
    if serv["rounds"]:
        print(f"{'round':>6s}{'requests':>10s}{'completed':>11s}{'seconds':>9s}{'RSS MB':>9s}  memos")
        for r in serv["rounds"]:
            print(f"{r['round']:>6}{r['requests']:>10}{r['completed_total']:>11}{r['seconds']:>9}{r['rss_mb']:>9}  "
                  + " ".join(f"{k}={v}" for k, v in r["memos"].items()))
    print(f"throughput service / in-process sequential: {result['throughput_ratio_service_vs_sequential']}x; "
          f"p50 latency ratio {result['p50_ratio_service_vs_sequential']}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if serv["errors"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
