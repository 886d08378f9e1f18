"""The CPU step's weight layers through the Mojo kernels (kernels/cpu_dense.mojo) against MAX's own ops, side by side.

    python bench/cpu_kernels.py [--assets assets] [--batch 1 64] [--rounds 7] [--reps 40] [--json PATH]

Each of the sampler step's weight layers at the shipped widths (from `--assets`) runs through two one-op MAX
graphs, both with symbolic widths and batch as the shipped `steps8` graph: MAX's own formulation (blocks.py:
`x @ w + b` then ELU, `moe_linear` then ELU, `lstm_cell`) and the custom op (`rsmt_dense`, `rsmt_moe_dense`,
`rsmt_lstm_cell`) with 1 and 2 worker tasks, plus numpy (numpy_blocks.py), interleaved in one process so load
from other processes hits all alike; only ratios within one run mean much. Every result is checked against numpy.
Also prints each graph's compile time (cold where this graph was never compiled on this machine).

    python bench/cpu_kernels.py --compile-steps [--cold] [--steps-per-call K] [--assets assets]

instead times the compile of the CPU `steps8` graph as inference/graphs/cpu.py builds it (the shipped model, for
this machine's CPU target) in a child process; `--cold` gives that child an empty MAX cache (MODULAR_CACHE_DIR);
`--blocks-only` builds it from blocks.py without the custom ops instead (the formulation before issue 17);
`--steps-per-call K` compiles the K-step graph instead of the engine's (40 on the CPU).

    python bench/cpu_kernels.py --versus REV [--assets assets] [--batch 1 64]

times whole 40-frame transitions (batch 1 and 64, shipped widths) of today's CPU graphs against the `prepare`
and `steps8` models shipped at git revision REV (assets/compiled, this machine's CPU target), interleaved in
one process with numpy on the same inputs (`bench/inference.py`'s runners), in runs of a few calls per engine:
a before/after of a formulation change under the same load. Also the largest position difference between the two formulations' frames.

`--preset full` (or another width preset) runs either mode on random weights of those widths instead of `--assets`
(as `bench/inference.py --preset`); the CPU graphs have symbolic widths, so REV's shipped models serve them too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import interleaved  # bench/inference.py

REPO = Path(__file__).resolve().parents[1]
#: (layer, form, activation) of the step's weight layers, in step order
LAYERS = (("state_encoder.fc1", "dense", "elu"), ("state_encoder.fc2", "dense", "none"),
          ("offset_encoder.fc1", "dense", "elu"), ("offset_encoder.fc2", "dense", "none"),
          ("embedding_fc", "dense", "none"), ("embedding_film.query", "dense", "none"),
          ("embedding_film.out_proj", "dense", "none"), ("lstm", "lstm", "none"),
          ("predictor_fc1", "dense", "elu"), ("predictor_fc2", "dense", "none"),
          ("predictor_film.query", "dense", "none"), ("predictor_film.out_proj", "dense", "none"),
          ("predictor_fc3", "dense", "elu"), ("predictor_fc4", "dense", "none"),
          ("decoder.gate_fc1", "dense", "elu"), ("decoder.gate_fc2", "dense", "elu"),
          ("decoder.gate_fc3", "dense", "none"), ("decoder.expert1", "moe", "elu"),
          ("decoder.expert2", "moe", "elu"), ("decoder.expert3", "moe", "none"))
ACT = {"none": 0, "elu": 1}


def random_assets(name: str) -> Path:
    """Random weights of width preset `name` with a one-style bank, in a temporary folder (bench/inference.py's)."""
    import tempfile

    from rsmt_studio.inference.style_bank import StyleBank
    from rsmt_studio.training.config import preset

    from inference import _load_rsmt_torch

    cfg = preset(name)
    rt = _load_rsmt_torch()
    mods = rt.random_modules(cfg, seed=0)
    assets = rt.save_assets(mods, cfg, Path(tempfile.mkdtemp(prefix="rsmt-kbench-")) / "assets",
                            note=f"random {name} weights for the benchmark")
    rng = np.random.default_rng(0)
    StyleBank({"bench": rng.normal(0, 1, (cfg.sampler.style_frames - 1, cfg.style_channels))}).save(assets)
    return assets


def build(form: str, act: str, impl: str, n_experts: int):
    """A one-op graph: impl "max" (blocks.py's ops) or "k1"/"k2" (the custom op with 1 or 2 worker tasks)."""
    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType, ops
    from rsmt_studio.inference.graphs import blocks
    from rsmt_studio.inference.graphs.gpu.fused_steps import mojo_package

    cpu = DeviceRef.CPU()

    def t(*dims):
        return TensorType(DType.float32, dims, device=cpu)

    if form == "dense":
        types = [t("batch", "x_w"), t("w_d0", "w_d1"), t("b_d0")]
    elif form == "moe":
        types = [t("batch", "x_w"), t("batch", n_experts), t("w_d0", "w_d1"), t("b_d0")]
    else:
        types = [t("batch", "x_w"), t("batch", "lstm"), t("batch", "lstm"), t("w_d0", "w_d1"), t("b_d0")]
    ext = [] if impl == "max" else [mojo_package()]
    workers = {"max": 0, "k1": 1, "k2": 2}[impl]
    with Graph(f"k_{form}_{act}_{impl}", input_types=types, custom_extensions=ext) as g:
        v = [x.tensor for x in g.inputs]
        if impl == "max":
            if form == "dense":
                y = blocks.linear(v[0], v[1], v[2])
            elif form == "moe":
                y = blocks.moe_linear(v[0], v[1], v[2], v[3], n_experts)
            else:
                h, c = blocks.lstm_cell(v[0], v[1], v[2], v[3], v[4])
                g.output(h, c)
                return g
            g.output(blocks.elu(y) if act == "elu" else y)
            return g
        if form == "dense":
            w = ops.rebind(v[1], (v[0].shape[1], "out"))
            y = ops.custom("rsmt_dense", device=cpu, values=[v[0], w, ops.rebind(v[2], ("out",))],
                           out_types=[t(v[0].shape[0], "out")], parameters={"act": ACT[act], "workers": workers})[0]
            g.output(y)
        elif form == "moe":
            w = ops.rebind(v[2], (v[0].shape[1], "eout"))
            y = ops.custom("rsmt_moe_dense", device=cpu, values=[v[0], v[1], w, ops.rebind(v[3], ("eout",))],
                           out_types=[t(v[0].shape[0], w.shape[1] // n_experts)],
                           parameters={"act": ACT[act], "workers": workers, "n_experts": n_experts})[0]
            g.output(y)
        else:
            b, hid = v[1].shape[0], v[1].shape[1]
            c_new, h_new, _ = ops.custom("rsmt_lstm_cell", device=cpu, values=v,
                                         out_types=[t(b, hid), t(b, hid), t(b, v[3].shape[1])],
                                         parameters={"workers": workers})
            g.output(h_new, c_new)
    return g


def numpy_layer(form, act, n_experts):
    from rsmt_studio.inference.graphs import numpy_blocks as K

    if form == "dense":
        return lambda x, w, b: K.elu(x @ w + b) if act == "elu" else x @ w + b
    if form == "moe":
        def moe(x, g, w, b):
            y = K.moe_linear(x, g, w, b, n_experts)
            return K.elu(y) if act == "elu" else y
        return moe
    return lambda x, h, c, w, b: K.lstm_cell(x, h, c, w, b)


def compile_child(assets: Path) -> int:
    """Build and compile cpu.py's steps graph at the engine's steps per call; prints the seconds of each."""
    from max.driver import CPU
    from max.engine import InferenceSession
    from max.graph import DeviceRef
    from rsmt_studio.inference.engine import default_steps_per_call
    from rsmt_studio.inference.graphs import cpu, networks
    from rsmt_studio.inference.runtime.cpu_target import cpu_target, is_virtual
    from rsmt_studio.inference.weights import load_assets

    if is_virtual(target := cpu_target()):
        from max.driver import set_virtual_cpu_target

        set_virtual_cpu_target(target)
    d = load_assets(assets).dims
    t0 = time.perf_counter()
    config = networks.graph_config("steps", d, int(os.environ.get("RSMT_BENCH_STEPS") or default_steps_per_call("cpu")))
    if os.environ.get("RSMT_BENCH_BLOCKS_ONLY"):  # the formulation before issue 17: blocks.py, no custom ops
        from rsmt_studio.inference.graphs import blocks

        g = networks.build(config, DeviceRef.CPU(), blocks)
    else:
        g = cpu.build_graph(config, DeviceRef.CPU())
    t1 = time.perf_counter()
    InferenceSession(devices=[CPU()]).compile(g)
    t2 = time.perf_counter()
    print(json.dumps({"target": target, "build_s": round(t1 - t0, 1), "compile_s": round(t2 - t1, 1)}), flush=True)
    # Leave without interpreter teardown: with a cold MAX cache the runtime's threads aborted the exit ("terminate
    # called without an active exception", SIGABRT) after the result was printed, and the parent's check failed.
    os._exit(0)


def compile_steps(assets: Path, cold: bool, out: Path | None, blocks_only: bool = False, steps: int | None = None) -> int:
    import tempfile

    env = {**os.environ, "MODULAR_CRASH_REPORTING_ENABLED": "false"}
    if blocks_only:
        env["RSMT_BENCH_BLOCKS_ONLY"] = "1"
    if steps:
        env["RSMT_BENCH_STEPS"] = str(steps)
    tmp = tempfile.mkdtemp(prefix="rsmt-cold-max-cache-") if cold else None
    if tmp:
        env["MODULAR_CACHE_DIR"] = tmp
    load = os.getloadavg()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, __file__, "--compile-child", "--assets", str(assets)], env=env,
                       capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res.update(formulation="blocks.py (before issue 17)" if blocks_only else "cpu.py", steps=steps, cold=cold, child_wall_s=round(time.perf_counter() - t0, 1), loadavg_before=load,
               loadavg_after=os.getloadavg(), when=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    print(json.dumps(res))
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
    return 0


def versus(rev: str, assets: Path, batches: list[int], rounds: int, out: Path | None) -> int:
    """Today's prepare + steps models against those shipped at `rev`, whole transitions, interleaved."""
    import copy
    import lzma
    import tempfile

    from max import engine as max_engine
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.runtime.cpu_target import cpu_target
    from rsmt_studio.inference.weights import adapt_all, load_assets
    from rsmt_studio.training.config import RSMTConfig

    from inference import LENGTH, MaxRunner, NumpyRunner, random_problem

    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    target = cpu_target()
    tmp = Path(tempfile.mkdtemp(prefix="rsmt-versus-"))
    new = TransitionEngine(assets, device="cpu")
    old = copy.copy(new)
    old.runners = dict(new.runners)
    # REV's own steps per call: the steps graph it shipped besides the studio's one-step graph
    listing = subprocess.run(["git", "ls-tree", "--name-only", rev, f"assets/compiled/{target}/"], cwd=REPO,
                             capture_output=True, check=True, text=True).stdout.split()
    old.steps_per_call = max(int(m.group(1)) for m in (re.search(r"/steps(\d+)\.mef\.xz$", f) for f in listing) if m)
    for graph, mef in (("prepare", "prepare"), ("steps", f"steps{old.steps_per_call}")):
        blob = subprocess.run(["git", "show", f"{rev}:assets/compiled/{target}/{mef}.mef.xz"], cwd=REPO,
                              capture_output=True, check=True).stdout
        (tmp / f"{mef}.mef").write_bytes(lzma.decompress(blob))
        runner = copy.copy(new.runners[graph])
        runner.model = new.session.session.init(max_engine.read(tmp / f"{mef}.mef"))
        old.runners[graph] = runner
    a = load_assets(assets)
    cfg = RSMTConfig.from_dict(json.loads((assets / "manifest.json").read_text())["config"])
    weights = adapt_all(a)
    res = {"rev": rev, "target": target, "assets": str(assets), "config": cfg.name,
           "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "loadavg_before": os.getloadavg(), "transition_ms": {}, "p10_p90": {}, "max_abs_cm": {}}
    for batch in batches:
        x = random_problem(cfg, batch)
        runners = {"max_now": MaxRunner(new, x), f"max_{rev}": MaxRunner(old, x), "numpy": NumpyRunner(weights, a.dims, x)}
        frames = {}
        for k in ("max_now", f"max_{rev}"):
            r = runners[k]
            h, c, lat, _ = r.engine.prepare(r.problem, LENGTH, x["z"], r.caches)
            state = (x["p9"], x["v9"], x["r9"], x["phase9"], h, c)
            frames[k] = np.concatenate([ch[0] for ch in r.engine.rollout_chunks(state, r.problem, lat, x["z"],
                                                                                 r.caches, LENGTH)], 1)
        res["max_abs_cm"][str(batch)] = float(np.abs(frames["max_now"] - frames[f"max_{rev}"]).max())
        spread: dict = {}
        # runs of `reps` calls per engine: MAX's worker threads spin for a while after a call of the old
        # formulation (multi-threaded matmuls), which slowed the call right after it when engines alternated per call
        reps = 5 if batch == 1 else 2
        # numpy apart: interleaved, OpenBLAS's spinning threads slowed the MAX call after them (docs/performance.md)
        t = interleaved({k: r.transition for k, r in runners.items() if k != "numpy"}, reps, rounds, spread)
        t |= interleaved({"numpy": runners["numpy"].transition}, reps, rounds, spread)
        res["transition_ms"][str(batch)] = t
        res["p10_p90"][str(batch)] = spread
        print(f"batch {batch}: 40-frame transition " + ", ".join(f"{k} {v} ms" for k, v in t.items())
              + f" ({new.steps_per_call} and {old.steps_per_call} steps a call); {rev}/now {t[f'max_{rev}'] / t['max_now']:.2f}x, numpy/now {t['numpy'] / t['max_now']:.2f}x, "
              f"numpy/{rev} {t['numpy'] / t[f'max_{rev}']:.2f}x; frames differ by <= "
              f"{res['max_abs_cm'][str(batch)]:.2g} cm", flush=True)
    res["loadavg_after"] = os.getloadavg()
    print(f"load average before {res['loadavg_before']}, after {res['loadavg_after']}")
    shutil.rmtree(tmp, ignore_errors=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=Path, default=REPO / "assets")
    ap.add_argument("--preset", help="random weights of this width preset (e.g. full) instead of --assets")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--layers", nargs="*", help="only these layers (default: all)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--compile-steps", action="store_true", help="time the compile of cpu.py's steps graph")
    ap.add_argument("--steps-per-call", type=int, help="with --compile-steps: this many steps (default: the engine's)")
    ap.add_argument("--cold", action="store_true", help="with --compile-steps: an empty MAX cache")
    ap.add_argument("--blocks-only", action="store_true",
                    help="with --compile-steps: the steps graph from blocks.py without custom ops (before issue 17)")
    ap.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--versus", metavar="REV", help="whole transitions against the models shipped at git REV")
    args = ap.parse_args(argv)
    if args.preset and not args.compile_child:
        args.assets = random_assets(args.preset)
        print(f"random {args.preset} weights in {args.assets}", flush=True)
    if args.versus:
        return versus(args.versus, args.assets, args.batch, args.rounds, args.json)
    if args.compile_child:
        return compile_child(args.assets)
    if args.compile_steps:
        return compile_steps(args.assets, args.cold, args.json, args.blocks_only, args.steps_per_call)

    from max.driver import CPU, Buffer
    from max.engine import InferenceSession
    from rsmt_studio.inference.weights import adapt_all, load_assets

    a = load_assets(args.assets)
    W = adapt_all(a)
    n_exp = a.dims.n_experts
    session = InferenceSession(devices=[CPU()])
    models, compile_s = {}, {}
    forms = sorted({(f, act) for n, f, act in LAYERS if not args.layers or n in args.layers})
    for form, act in forms:
        for impl in ("max", "k1", "k2"):
            t0 = time.perf_counter()
            models[form, act, impl] = session.load(build(form, act, impl, n_exp))
            compile_s[f"{form}/{act}/{impl}"] = round(time.perf_counter() - t0, 1)
            print(f"compiled {form}/{act}/{impl} in {compile_s[f'{form}/{act}/{impl}']} s", flush=True)
    load_before = os.getloadavg()
    rows = []
    rng = np.random.default_rng(0)
    for batch in args.batch:
        for name, form, act in LAYERS:
            if args.layers and name not in args.layers:
                continue
            w, b = np.ascontiguousarray(W[f"{name}.w"]), np.ascontiguousarray(W[f"{name}.b"])
            if form == "lstm":
                hid = w.shape[1] // 4
                arrs = [rng.standard_normal((batch, w.shape[0] - hid)).astype(np.float32),
                        (0.3 * rng.standard_normal((batch, hid))).astype(np.float32),
                        (0.3 * rng.standard_normal((batch, hid))).astype(np.float32), w, b]
            elif form == "moe":
                gate = rng.random((batch, n_exp)).astype(np.float32)
                arrs = [rng.standard_normal((batch, w.shape[0])).astype(np.float32), gate / gate.sum(1, keepdims=True),
                        w, b]
            else:
                arrs = [rng.standard_normal((batch, w.shape[0])).astype(np.float32), w, b]
            bufs = [Buffer.from_numpy(x) for x in arrs]
            ref = numpy_layer(form, act, n_exp)(*arrs)  # the reference
            ref = ref if isinstance(ref, tuple) else (ref,)
            fns, errs = {}, {}
            for impl in ("max", "k1", "k2"):
                m = models[form, act, impl]
                got = [o.to_numpy() for o in m.execute(*bufs)]
                errs[impl] = float(max(np.abs(gg - rr).max() for gg, rr in zip(got, ref, strict=True)))
                fns[impl] = lambda m=m, bb=bufs: m.execute(*bb)
            np_fn = numpy_layer(form, act, n_exp)
            fns["numpy"] = lambda f=np_fn, aa=arrs: f(*aa)
            t = interleaved(fns, args.reps, args.rounds)
            kb = (w.nbytes + b.nbytes) / 1e3
            row = {"layer": name, "batch": batch, "in": int(w.shape[0]), "out": int(w.shape[1]), "kb": round(kb, 1),
                   **{f"{k}_us": round(v * 1e3, 1) for k, v in t.items()},
                   "max_over_k1": round(t["max"] / t["k1"], 2), "max_over_k2": round(t["max"] / t["k2"], 2),
                   "numpy_over_k1": round(t["numpy"] / t["k1"], 2), "numpy_over_k2": round(t["numpy"] / t["k2"], 2),
                   "max_abs_err": errs}
            rows.append(row)
            print(f"B={batch:3d} {name:26s} {w.shape[0]:4d}x{w.shape[1]:<5d} max {row['max_us']:8.1f}  k1 {row['k1_us']:8.1f}"
                  f"  k2 {row['k2_us']:8.1f}  numpy {row['numpy_us']:8.1f} µs | max/k1 {row['max_over_k1']:5.2f}"
                  f" max/k2 {row['max_over_k2']:5.2f} numpy/k2 {row['numpy_over_k2']:5.2f}"
                  f" | err {max(errs.values()):.1e}", flush=True)
    for batch in args.batch:
        sel = [r for r in rows if r["batch"] == batch]
        tot = {k: sum(r[f"{k}_us"] for r in sel) for k in ("max", "k1", "k2", "numpy")}
        print(f"B={batch}: all layers: max {tot['max']:.0f} µs, k1 {tot['k1']:.0f}, k2 {tot['k2']:.0f}, numpy "
              f"{tot['numpy']:.0f}; max/k1 {tot['max'] / tot['k1']:.2f}, max/k2 {tot['max'] / tot['k2']:.2f}, "
              f"numpy/k2 {tot['numpy'] / tot['k2']:.2f}")
    out = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "loadavg_before": load_before,
           "loadavg_after": os.getloadavg(), "compile_s": compile_s, "rows": rows}
    print(f"load average before {load_before}, after {out['loadavg_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
