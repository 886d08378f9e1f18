"""Where a batch of N service-like requests spends its time in-process, on the service's engine-thread path.

    python bench/batch_profile.py [--device gpu] [--rows 256] [--rounds 3] [--json OUT.json]

`batched.prepare` for every request (canonicalising it, DeepPhase at the source frame), then `batched.run` (the
shared graph calls and each row's post-processing), then `format_bvh` of every result (the service's BVH answer),
each timed per round; the last round is also profiled (cProfile, top functions by cumulative time). Requests are
`bench/serve.py`'s deterministic mix over four Bandai clips and four bank styles, 40 frames each.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    sys.path.insert(0, str(REPO / "bench"))
    import serve as S
    from rsmt_studio.inference import batched
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.motion.bvh_reader import read_bvh
    from rsmt_studio.motion.bvh_writer import format_bvh

    engine = TransitionEngine(None, device=args.device, steps_per_call=8)
    reqs = S.requests_mix(args.rows, 40, list(engine.styles)[:4])
    clips = {c: read_bvh(S.DATA / c) for c in S.CLIPS if (S.DATA / c).is_file()}

    def request(r: dict) -> batched.Request:
        return batched.Request(clips[r["source_path"]], r["source_frame"], clips[r["target_path"]],
                               r["target_frame"], r["style"], r["length"], r["seed"])

    rounds = []
    prof = cProfile.Profile()
    for k in range(args.rounds):
        last = k == args.rounds - 1
        t0 = time.perf_counter()
        prepared = [batched.prepare(engine, request(r)) for r in reqs]
        t1 = time.perf_counter()
        if last:
            prof.enable()
        results = batched.run(engine, prepared)
        if last:
            prof.disable()
        t2 = time.perf_counter()
        for res in results:
            format_bvh(res.clip)
        t3 = time.perf_counter()
        n = len(reqs)
        rounds.append({"prepare_ms_per_row": (t1 - t0) * 1e3 / n, "run_ms_per_row": (t2 - t1) * 1e3 / n,
                       "format_bvh_ms_per_row": (t3 - t2) * 1e3 / n})
        print(f"round {k}: {n} rows  prepare {rounds[-1]['prepare_ms_per_row']:.2f}  run "
              f"{rounds[-1]['run_ms_per_row']:.2f}  format_bvh {rounds[-1]['format_bvh_ms_per_row']:.2f} ms/row")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    if args.json:
        args.json.write_text(json.dumps({"bench": "batch_profile", "device": args.device, "rows": args.rows,
                                         "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
