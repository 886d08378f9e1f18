"""Inference benchmark: MAX vs PyTorch eager vs ONNX Runtime vs numpy, same machine, same weights, one run.

    python bench/inference.py [--quick] [--preset full|small|tiny | --assets DIR] [--gpu] --json OUT.json

What is timed (medians over interleaved rounds, style caches precomputed for every engine):
- frame: one sampler step (state encoders, FiLM, LSTM, phase predictor, phase update, MoE decoder);
- transition: a 40-frame transition = target latent + 8-frame LSTM warm-up + 40 sampler steps. MAX runs it as
  1 + 40/k calls (k steps unrolled per graph; k = 1 is reported too); the others call their step 40 times.
Also: the floor (weight bytes read per frame / the rate a batch-1 SGEMV streams a matrix of that size: from L3
when the weights fit, as docs/performance.md's floor), peak RSS of the engine process, idle
CPU of the engine process with and without the worker's idle stop, and (`--gpu`) MAX vs torch on the GPU.
Post-processing (numpy FK/IK, identical for every engine) is reported once, separately.
numpy is timed twice: in this process, interleaved with the others, and alone in a child process that never loads
MAX ("numpy in its own process"), because MAX's worker threads spin after each call and slow what runs beside them.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LENGTH = 40


def _load_rsmt_torch():
    spec = importlib.util.spec_from_file_location("rsmt_torch", REPO / "tests" / "inference" / "rsmt_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_ms(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def interleaved(fns: dict, reps: int, rounds: int, spread: dict | None = None,
                settle_s: float = 0.05) -> dict[str, float]:
    """Median per engine over `rounds` interleaved rounds of `reps` calls (noise from other load is shared);
    `spread`, if given, receives each engine's [10th, 90th] percentile. A multi-threaded engine's workers spin for
    a while after its last call and slow whichever call comes next (in a fixed order the same MAX model lost ~16 %
    at batch 1 to its place after numpy), so each engine's block starts after `settle_s` of quiet, untimed, and
    odd rounds run the engines in reverse order."""
    for fn in fns.values():
        fn()
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(rounds):
        for k, fn in (list(fns.items()) if i % 2 == 0 else list(fns.items())[::-1]):
            time.sleep(settle_s)
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples[k].append((time.perf_counter() - t0) * 1e3)
    if spread is not None:
        spread.update({k: [round(float(np.percentile(v, q)), 4) for q in (10, 90)] for k, v in samples.items()})
    return {k: round(statistics.median(v), 4) for k, v in samples.items()}


# ------------------------------------------------------------------------------------------------ inputs
def random_problem(cfg, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    np_, j, c = cfg.skeleton.n_pos_joints, cfg.skeleton.n_joints, cfg.phase.n_phases
    f = np.float32
    return {
        "ctx_p": (rng.normal(0, 20, (batch, 8, np_, 3))).astype(f), "ctx_v": rng.normal(0, 1, (batch, 8, np_, 3)).astype(f),
        "ctx_r": rng.normal(0, 1, (batch, 8, j, 6)).astype(f),
        "p9": rng.normal(0, 20, (batch, np_, 3)).astype(f), "v9": rng.normal(0, 1, (batch, np_, 3)).astype(f),
        "r9": rng.normal(0, 1, (batch, j, 6)).astype(f), "phase9": rng.normal(0, 1, (batch, c, 2)).astype(f),
        "tgt_p": rng.normal(0, 20, (batch, np_, 3)).astype(f), "tgt_v": rng.normal(0, 1, (batch, np_, 3)).astype(f),
        "tgt_r": rng.normal(0, 1, (batch, j, 6)).astype(f),
        "z": rng.normal(0, 0.5, (batch, 2 * cfg.sampler.latent)).astype(f),
        "style": rng.normal(0, 1, (batch, cfg.sampler.style_frames - 1, cfg.style_channels)).astype(f),
    }


# ------------------------------------------------------------------------------------------------ engines
class MaxRunner:
    def __init__(self, engine, x):
        from rsmt_studio.inference.engine import Problem

        self.engine = engine
        # One style per row, held read-only like the engine's style codes (a captured replay then recognises
        # them without comparing 465 MB at batch 1024).
        self.caches = [np.array(np.broadcast_to(a, (x["p9"].shape[0], *a.shape[1:])), np.float32)
                       for a in engine.runners["style"](x["style"])]
        for a in self.caches:
            a.flags.writeable = False
        self.problem = Problem(frame=None, ms=None, ctx_p=x["ctx_p"], ctx_v=x["ctx_v"], ctx_r=x["ctx_r"],
                               p9=x["p9"], v9=x["v9"], r9=x["r9"], tgt_p=x["tgt_p"], tgt_v=x["tgt_v"],
                               tgt_r=x["tgt_r"])
        self.x = x

    def transition(self):
        e, x = self.engine, self.x
        h, c, lat, _ = e.prepare(self.problem, LENGTH, x["z"], self.caches)
        state = (x["p9"], x["v9"], x["r9"], x["phase9"], h, c)
        for _ in e.rollout_chunks(state, self.problem, lat, x["z"], self.caches, LENGTH):
            pass

    def frame(self):
        e, x = self.engine, self.x
        b = x["p9"].shape[0]
        k = e.steps_per_call
        h = np.zeros((b, e.lstm_width), np.float32)
        tta = np.full((b, k), 20, np.int64)
        e.runners["steps"](x["p9"], x["v9"], x["r9"], x["phase9"], h, h, x["tgt_p"], x["tgt_r"],
                           np.zeros((b, e.z_width // 2), np.float32), tta, x["z"], *e.film_caches(self.caches))


class MaxCapturedRunner(MaxRunner):
    """The same transition replayed from captured device graphs (GPU; `TransitionEngine.captured_chunks`)."""

    def transition(self):
        return [c[:3] for c in self.engine.captured_chunks(self.problem, LENGTH, self.x["z"], self.caches,
                                                            self.x["phase9"])]

    def eager_frames(self):
        e, x = self.engine, self.x
        h, c, lat, _ = e.prepare(self.problem, LENGTH, x["z"], self.caches)
        state = (x["p9"], x["v9"], x["r9"], x["phase9"], h, c)
        return [c[:3] for c in e.rollout_chunks(state, self.problem, lat, x["z"], self.caches, LENGTH)]


class TorchRunner:
    def __init__(self, mods, x, device="cpu"):
        import torch
        from rsmt_studio.training import networks as N

        self.torch, self.N, self.dev = torch, N, device
        self.samp = mods["sampler"].to(device)
        self.dec = mods["manifold"].decoder.to(device)
        t = {k: torch.from_numpy(v).to(device) for k, v in x.items()}
        self.t = t
        with torch.no_grad():
            self.cache = self.samp.style_cache(t["style"])
        self.b = x["p9"].shape[0]

    def sync(self):
        if self.dev != "cpu":
            self.torch.cuda.synchronize()

    def transition(self):
        torch, N, t, samp = self.torch, self.N, self.t, self.samp
        with torch.no_grad():
            tgt = samp.target(t["tgt_p"], t["tgt_v"], t["tgt_r"])
            h = c = torch.zeros(self.b, samp.lstm.hidden_size, device=self.dev)
            k = 10 + LENGTH
            for s in range(1, 9):
                x, _ = samp.lstm_input(t["ctx_p"][:, s - 1], t["ctx_v"][:, s - 1], t["ctx_r"][:, s - 1], tgt,
                                       torch.full((self.b,), k - s, device=self.dev), t["z"], self.cache)
                h, c = samp.lstm(x, (h, c))
            state = N.SamplerState(t["p9"], t["v9"], t["r9"], t["phase9"], h, c)
            for i in range(LENGTH):
                state, _ = samp.step(state, tgt, torch.full((self.b,), LENGTH + 1 - i, device=self.dev), t["z"],
                                     self.cache, self.dec)
        self.sync()

    def frame(self):
        torch, N, t, samp = self.torch, self.N, self.t, self.samp
        with torch.no_grad():
            tgt = N.Target(t["tgt_p"], t["tgt_r"], torch.zeros(self.b, t["z"].shape[1] // 2, device=self.dev))
            h = torch.zeros(self.b, samp.lstm.hidden_size, device=self.dev)
            samp.step(N.SamplerState(t["p9"], t["v9"], t["r9"], t["phase9"], h, h), tgt,
                      torch.full((self.b,), 20, device=self.dev), t["z"], self.cache, self.dec)
        self.sync()


class NumpyRunner:
    def __init__(self, weights, dims, x):
        from rsmt_studio.inference.graphs import nets
        from rsmt_studio.inference.graphs import numpy_blocks as K

        self.nets, self.K, self.W, self.d, self.x = nets, K, weights, dims, x
        self.caches = nets.style_caches(K, weights, x["style"])
        self.b = x["p9"].shape[0]
        self.hsz = weights["lstm.w"].shape[1] // 4

    def transition(self):
        nets, K, W, d, x = self.nets, self.K, self.W, self.d, self.x
        b = self.b
        tta = np.broadcast_to(np.array([10 + LENGTH - s for s in range(1, 9)]), (b, 8))
        zeros = np.zeros((b, self.hsz), np.float32)
        h, c, lat, _ = nets.prepare(K, W, d, x["ctx_p"], x["ctx_v"], x["ctx_r"], x["tgt_p"], x["tgt_v"], x["tgt_r"],
                                    tta, x["z"], self.caches[:4], zeros, zeros)
        p, v, r, ph = x["p9"], x["v9"], x["r9"], x["phase9"]
        for i in range(LENGTH):
            p, v, r, ph, h, c = nets.sampler_step(K, W, d, p, v, r, ph, h, c, x["tgt_p"], x["tgt_r"], lat,
                                                  np.full(b, LENGTH + 1 - i), x["z"], self.caches)

    def frame(self):
        nets, K, W, d, x = self.nets, self.K, self.W, self.d, self.x
        h = np.zeros((self.b, self.hsz), np.float32)
        nets.sampler_step(K, W, d, x["p9"], x["v9"], x["r9"], x["phase9"], h, h, x["tgt_p"], x["tgt_r"],
                          np.zeros((self.b, x["z"].shape[1] // 2), np.float32), np.full(self.b, 20), x["z"],
                          self.caches)


class OnnxRunner:
    """ONNX Runtime on the torch modules exported with the TorchScript exporter (one step; one warm-up)."""

    def __init__(self, mods, x):
        import onnxruntime as ort
        import torch
        from rsmt_studio.training import networks as N

        samp, dec = mods["sampler"], mods["manifold"].decoder
        for m in (samp, dec):
            m.requires_grad_(False)

        class Step(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.samp, self.dec = samp, dec

            def forward(self, p, v, r, phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, *cache):
                cache = N.StyleCache(N.FilmCache(*cache[:4]), N.FilmCache(*cache[4:]))
                st, _ = self.samp.step(N.SamplerState(p, v, r, phase, h, c), N.Target(tgt_p, tgt_r, tgt_latent),
                                       tta, z, cache, self.dec)
                return st.p, st.v, st.r, st.phase, st.h, st.c

        class Prepare(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.samp = samp

            def forward(self, ctx_p, ctx_v, ctx_r, tgt_p, tgt_v, tgt_r, tta, z, g, b, k, v):
                cache = N.StyleCache(N.FilmCache(g, b, k, v), N.FilmCache(g, b, k, v))
                tgt = self.samp.target(tgt_p, tgt_v, tgt_r)
                h = c = torch.zeros(ctx_p.shape[0], self.samp.lstm.hidden_size)
                for s in range(8):
                    xi, _ = self.samp.lstm_input(ctx_p[:, s], ctx_v[:, s], ctx_r[:, s], tgt, tta[:, s], z, cache)
                    h, c = self.samp.lstm(xi, (h, c))
                return h, c, tgt.latent

        t = {k: torch.from_numpy(v) for k, v in x.items()}
        b = x["p9"].shape[0]
        with torch.no_grad():
            cache = samp.style_cache(t["style"])
        self.cache = [a.numpy() for a in (*cache.embedding, *cache.predictor)]
        lat = np.zeros((b, x["z"].shape[1] // 2), np.float32)
        hsz = samp.lstm.hidden_size
        zeros = np.zeros((b, hsz), np.float32)
        step_in = [x["p9"], x["v9"], x["r9"], x["phase9"], zeros, zeros, x["tgt_p"], x["tgt_r"], lat,
                   np.full(b, 20, np.int64), x["z"], *self.cache]
        names = ["p", "v", "r", "phase", "h", "c", "tgt_p", "tgt_r", "tgt_latent", "tta", "z"] + [
            f"cache{i}" for i in range(8)]
        self.step_sess = self._export(Step(), step_in, names, ort)
        self.step_names = names
        tta8 = np.broadcast_to(np.array([10 + LENGTH - s for s in range(1, 9)], np.int64), (b, 8)).copy()
        prep_in = [x["ctx_p"], x["ctx_v"], x["ctx_r"], x["tgt_p"], x["tgt_v"], x["tgt_r"], tta8, x["z"], *self.cache[:4]]
        prep_names = ["ctx_p", "ctx_v", "ctx_r", "tgt_p", "tgt_v", "tgt_r", "tta", "z", "g", "b", "k", "v"]
        self.prep_sess = self._export(Prepare(), prep_in, prep_names, ort)
        self.prep_feed = dict(zip(prep_names, prep_in))
        self.x, self.b, self.zeros, self.lat = x, b, zeros, lat

    @staticmethod
    def _export(module, inputs, names, ort):
        import torch

        buf = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module, tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs), buf,
                              input_names=names, dynamo=False, opset_version=17)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def transition(self):
        x = self.x
        h, c, lat = self.prep_sess.run(None, self.prep_feed)
        p, v, r, ph = x["p9"], x["v9"], x["r9"], x["phase9"]
        for i in range(LENGTH):
            feed = dict(zip(self.step_names, [p, v, r, ph, h, c, x["tgt_p"], x["tgt_r"], lat,
                                              np.full(self.b, LENGTH + 1 - i, np.int64), x["z"], *self.cache]))
            p, v, r, ph, h, c = self.step_sess.run(None, feed)

    def frame(self):
        x = self.x
        feed = dict(zip(self.step_names, [x["p9"], x["v9"], x["r9"], x["phase9"], self.zeros, self.zeros,
                                          x["tgt_p"], x["tgt_r"], self.lat, np.full(self.b, 20, np.int64), x["z"],
                                          *self.cache]))
        self.step_sess.run(None, feed)


# ------------------------------------------------------------------------------------------------ extras
_SGEMV_PROBE = """
import sys, time
import numpy as np
w = np.ones((max(int(sys.argv[1]), 2**20) // 4096, 1024), dtype=np.float32)
x = np.ones((1, w.shape[0]), dtype=np.float32)
times = []
for _ in range(60):
    t0 = time.perf_counter()
    x @ w
    times.append(time.perf_counter() - t0)
print(w.nbytes / sorted(times[5:])[len(times[5:]) // 2] / 1e9)  # the median read (the best varies 2x run to run)
"""


def memory_bandwidth_gbs(nbytes: int) -> float:
    """GB/s at which a batch-1 SGEMV (numpy's BLAS, its threads) streams an `nbytes` matrix, read again and again:
    the weights' size, so from L3 where they fit, as each sampler step reads them (docs/performance.md's floor
    table). In a child process: in this one MAX's spinning worker threads slow BLAS's (MAX ran under a floor probed
    here), and a sum over 200 MB (DRAM, one core) understated it too (numpy ran under that floor at the full
    widths)."""
    out = subprocess.run([sys.executable, "-c", _SGEMV_PROBE, str(nbytes)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_figures(assets: Path, clip_pair, quick: bool) -> dict:
    """Peak RSS of the engine process, and its idle CPU after a transition, with and without idle stop."""
    from rsmt_studio.inference.worker import EngineWorker

    out = {}
    window = 2.0 if quick else 5.0
    for label, stop in (("spinning", None), ("idle_stopped", 0.3)):
        with EngineWorker(assets, device="cpu", idle_stop_s=stop) as w:
            src, tgt = clip_pair
            for _ in range(3):
                w.generate(src, 60, tgt, 80, w.styles[0], LENGTH, seed=0)
            time.sleep(0.6)
            c0 = cpu_seconds(w.pid)
            time.sleep(window)
            out[label] = round((cpu_seconds(w.pid) - c0) / window, 4)
            out["peak_rss_mb"] = round(vm_hwm_mb(w.pid), 1)
            t0 = time.perf_counter()
            w.generate(src, 60, tgt, 80, w.styles[0], LENGTH, seed=0)
            out[f"first_transition_after_idle_ms_{label}"] = round((time.perf_counter() - t0) * 1e3, 2)
    return out


def synthetic_clips(cfg):
    """A source and a target clip on a 21-joint Bandai-like rig, when the data is not there."""
    from rsmt_studio.motion.bvh_reader import read_bvh

    data = REPO.parent / "shared" / "data" / "bandai" / "dataset" / "Bandai-Namco-Research-Motiondataset-1" / "data"
    return read_bvh(data / "dataset-1_run_active_001.bvh"), read_bvh(data / "dataset-1_bow_angry_001.bvh")


def weight_bytes(weights: dict[str, np.ndarray], names) -> int:
    return int(sum(weights[n].nbytes for n, _ in names))


# ------------------------------------------------------------------------------------------------ main
def numpy_alone_ms(assets: Path, quick: bool) -> dict[str, float]:
    """numpy's 40-frame transition (batch 1 and 64, the same problems) in a child process that never loads MAX,
    PyTorch or ONNX Runtime: in this process MAX's worker threads spin after each call and slow numpy (1.4x at
    batch 1 on 2026-12-03), which flatters MAX's ratio to it."""
    out = subprocess.run([sys.executable, __file__, "--numpy-alone", str(assets)] + (["--quick"] if quick else []),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _numpy_alone_child(assets: Path, quick: bool) -> None:
    from rsmt_studio.inference.weights import adapt_all, load_assets
    from rsmt_studio.training.config import RSMTConfig

    a = load_assets(assets)
    cfg = RSMTConfig.from_dict(json.loads((assets / "manifest.json").read_text())["config"])
    weights = adapt_all(a)
    res = {}
    for batch in (1, 64):
        r = NumpyRunner(weights, a.dims, random_problem(cfg, batch))
        res[str(batch)] = round(median_ms(r.transition, (3 if quick else 7) if batch == 1 else 2, 1), 4)
    print(json.dumps(res))


def run_cpu(args, cfg, mods, assets: Path) -> dict:
    from rsmt_studio.inference.engine import TransitionEngine, default_steps_per_call
    from rsmt_studio.inference.graphs import networks
    from rsmt_studio.inference.runtime.compiler import print_progress
    from rsmt_studio.inference.weights import adapt_all, load_assets

    engines = {k: TransitionEngine(assets, device="cpu", steps_per_call=k, progress=print_progress)
               for k in args.steps}
    a = load_assets(assets)
    weights = adapt_all(a)
    reps, rounds = (3, 3) if args.quick else (5, 6)
    result: dict = {"widths": cfg.to_dict()["sampler"] | {"manifold": cfg.to_dict()["manifold"]},
                    "preset": cfg.name, "steps_per_call": args.steps}
    for batch in (1, 64):
        x = random_problem(cfg, batch)
        runners = {f"max_k{k}": MaxRunner(e, x) for k, e in engines.items()}
        runners["torch"] = TorchRunner(mods, x)
        runners["onnxruntime"] = OnnxRunner(mods, x)
        runners["numpy"] = NumpyRunner(weights, a.dims, x)
        trans = interleaved({k: r.transition for k, r in runners.items()}, 1 if batch > 1 else reps, rounds)
        frame = interleaved({k: r.frame for k, r in runners.items() if not k.startswith("max_k")}, reps, rounds)
        # "max" is the app's own setting (the CPU engine's steps per call) where it was timed, else the fastest
        app_k = f"max_k{default_steps_per_call('cpu')}"
        best = app_k if app_k in runners else min((k for k in runners if k.startswith("max_")), key=lambda k: trans[k])
        trans["max"] = trans[best]
        # One MAX step call runs k frames: per generated frame = call time / k.
        calls = interleaved({f"max_k{k}": runners[f"max_k{k}"].frame for k in args.steps}, reps, rounds)
        frame |= {name: round(ms / int(name.removeprefix("max_k")), 4) for name, ms in calls.items()}
        frame["max"] = frame[best]
        block = {"transition_ms": trans, "frame_ms": frame, "max_best": best}
        if batch == 1:
            result.update(block)
        else:
            result[f"batch{batch}"] = block
    step_bytes = weight_bytes(weights, networks.weight_inputs("steps")) - weights["pe_latent"].nbytes - weights[
        "pe_film"].nbytes
    prep_bytes = weight_bytes(weights, networks.weight_inputs("prepare"))
    bw = memory_bandwidth_gbs(step_bytes)
    floor_frame = step_bytes / (bw * 1e9) * 1e3
    result["floor"] = {
        "bandwidth_gbs": round(bw, 2), "weight_bytes_per_frame": step_bytes,
        "frame_ms": round(floor_frame, 4),
        "transition_ms": round(LENGTH * floor_frame + prep_bytes / (bw * 1e9) * 1e3, 4),
        "note": "each step reads every weight once, at the rate a batch-1 SGEMV streams a matrix of the weights' "
                "size (L3 where they fit); the arithmetic is 3-9x below it (docs/performance.md)",
    }
    result["floor"]["max_over_floor"] = round(result["transition_ms"]["max"] / result["floor"]["transition_ms"], 2)
    result["compile"] = {k: {n: json.loads(s.mef_path().with_suffix(".json").read_text()).get("compile_s")
                             for n, s in e.specs.items() if s.mef_path().with_suffix(".json").is_file()}
                         for k, e in engines.items()}
    result["load_ms"] = {f"max_k{k}": round(e.load_ms, 1) for k, e in engines.items()}
    # Post-processing and a real transition through the public API (numpy FK/IK; same for every engine).
    clips = synthetic_clips(cfg)
    e = engines[max(args.steps)]
    tr = e.generate(clips[0], 60, clips[1], 80, e.styles[0], LENGTH, seed=0)
    result["engine_generate"] = tr.timings.as_dict()
    if not args.skip_worker:
        result.update(worker_figures(assets, clips, args.quick))
    result["rss_bench_process_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def run_gpu(args, cfg, mods, assets: Path) -> dict:
    """MAX (captured device graphs, and eager `execute`) vs PyTorch eager on the GPU, plus how far the GPU's frames
    are from the numpy reference on the same inputs."""
    import torch
    from rsmt_studio.inference.engine import TransitionEngine, engine_weights
    from rsmt_studio.inference.graphs import model_specs
    from rsmt_studio.inference.runtime.compiler import ensure_compiled, print_progress
    from rsmt_studio.inference.weights import load_assets

    k = max(args.steps)
    only = ("style", "prepare", "steps", "chain", "fold")
    a = load_assets(assets)
    weights = engine_weights(a)
    specs = [s for n, s in model_specs(a.dims, "gpu", k, chain=True, weights=weights).items() if n in only]
    t0 = time.perf_counter()
    ensure_compiled(specs, progress=print_progress, jobs=len(specs))  # every graph in its own child at once
    compile_s = time.perf_counter() - t0
    engine = TransitionEngine(a, device="gpu", steps_per_call=k, only=only, capture=True)
    engines = {"max_graph": engine}
    out: dict = {"device": torch.cuda.get_device_name(0), "steps_per_call": k, "transition_ms": {}, "frame_ms": {},
                 "captured_vs_eager_max_abs_cm": {}, "capture_ms": {}, "vs_numpy_max_abs_cm": {},
                 "compile_s_all_in_parallel": round(compile_s, 1),
                 "variants": {"max_graph": "fused_film.py (FiLM layers folded into the style caches) + "
                                           "fused_prepare.py + fused_steps.py + kernels/ (Mojo custom ops) on "
                                           "gpu/blocks.py",
                              "max": "the max_graph formulation, eager execute per call (no capture)",
                              "torch": "PyTorch eager, CUDA"}}
    reps, rounds = (3, 3) if args.quick else (5, 5)
    for batch in (1, 64, 1024):
        x = random_problem(cfg, batch)
        graphs_ = {name: MaxCapturedRunner(e, x) for name, e in engines.items()}
        for name, runner in graphs_.items():
            t0 = time.perf_counter()
            replayed = runner.transition()  # the first call captures (one eager run of every graph)
            if name == "max_graph":
                out["capture_ms"][str(batch)] = round((time.perf_counter() - t0) * 1e3, 1)
                eager = runner.eager_frames()
                out["captured_vs_eager_max_abs_cm"][str(batch)] = max_abs(replayed, eager)
            if batch == 1:  # the GPU (TF32 matmuls) against the float32 numpy reference, same inputs
                out["vs_numpy_max_abs_cm"][name] = max_abs(replayed, numpy_frames(weights, a.dims, x))
        runners = {**graphs_, "max": MaxRunner(engine, x), "torch": TorchRunner(mods, x, device="cuda")}
        # batch 1 (the target's case, and the noisiest): 25 interleaved samples, median and 10th-90th percentile
        spread: dict = {}
        trans = interleaved({n: r.transition for n, r in runners.items()}, 1, rounds if batch > 1 else 5 * reps,
                            spread if batch == 1 else None)
        if batch == 1:
            out["transition_ms_p10_p90"] = spread
        key = "" if batch == 1 else f"_batch{batch}"
        out["transition_ms"].update({f"{n}{key}": v for n, v in trans.items()})
        out["frame_ms"].update({f"{n}{key}": round(v / LENGTH, 4) for n, v in trans.items()})
        if batch == 1024:
            out["transitions_per_s_batch1024"] = {n: round(1024 / (v / 1e3), 1) for n, v in trans.items()}
    out["floor"] = gpu_floor(engine, out["transition_ms"]["max_graph"])
    mods["sampler"].cpu()
    mods["manifold"].cpu()
    return out


def max_abs(chunks_a, chunks_b) -> float:
    """Largest difference of the positions of two rollouts given as per-call (p, r, phase) chunks."""
    pa = np.concatenate([c[0] for c in chunks_a], axis=1)
    pb = np.concatenate([c[0] for c in chunks_b], axis=1)
    return float(np.abs(pa - pb).max())


def numpy_frames(weights, dims, x) -> list[tuple[np.ndarray]]:
    """Positions of the same transition (style encoder included) by the numpy blocks, row 0, as one chunk."""
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as K

    one = {k: v[:1] for k, v in x.items()}
    cache = nets.style_caches(K, weights, one["style"])
    hsz = weights["lstm.w"].shape[1] // 4
    zeros = np.zeros((1, hsz), np.float32)
    tta = np.array([[10 + LENGTH - s for s in range(1, 9)]])
    h, c, lat, _ = nets.prepare(K, weights, dims, one["ctx_p"], one["ctx_v"], one["ctx_r"], one["tgt_p"],
                                one["tgt_v"], one["tgt_r"], tta, one["z"], cache[:4], zeros, zeros)
    p, v, r, ph = one["p9"], one["v9"], one["r9"], one["phase9"]
    ps = []
    for i in range(LENGTH):
        p, v, r, ph, h, c = nets.sampler_step(K, weights, dims, p, v, r, ph, h, c, one["tgt_p"], one["tgt_r"], lat,
                                              np.full(1, LENGTH + 1 - i), one["z"], cache)
        ps.append(p)
    return [(np.stack(ps, 1),)]


def gpu_floor(engine, measured_ms: float) -> dict:
    """Weight bytes per frame / device memory bandwidth (a device-to-device copy of 1 GiB, timed with torch)."""
    import torch
    from rsmt_studio.inference.graphs import networks
    from rsmt_studio.inference.weights import adapt_all

    src = torch.empty(256 * 2**20, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    bw = 2 * src.numel() * 4 * 10 / (time.perf_counter() - t0) / 1e9  # read + write
    del src, dst
    weights = adapt_all(engine.assets)
    step_bytes = weight_bytes(weights, networks.weight_inputs("steps")) - weights["pe_latent"].nbytes - weights[
        "pe_film"].nbytes
    prep_bytes = weight_bytes(weights, networks.weight_inputs("prepare"))
    frame = step_bytes / (bw * 1e9) * 1e3
    transition = LENGTH * frame + prep_bytes / (bw * 1e9) * 1e3
    return {"bandwidth_gbs": round(bw, 1), "weight_bytes_per_frame": step_bytes, "frame_ms": round(frame, 5),
            "transition_ms": round(transition, 4), "max_graph_over_floor": round(measured_ms / transition, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--preset", default="full", help="random weights of this width preset (default full)")
    ap.add_argument("--assets", type=Path, default=None, help="use these weights instead of random ones")
    ap.add_argument("--steps", type=int, nargs="+", default=[8, 40],
                    help="MAX steps per call to compare (the 'max' column is the CPU engine's own, 40, where timed)")
    ap.add_argument("--gpu", action="store_true", help="also MAX vs torch on the GPU")
    ap.add_argument("--cpu-only-skip", action="store_true", help="with --gpu: skip the CPU section")
    ap.add_argument("--skip-worker", action="store_true", help="skip peak-RSS / idle measurements")
    ap.add_argument("--numpy-alone", type=Path, metavar="ASSETS", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.numpy_alone:  # the child of numpy_alone_ms: numpy only, nothing else loaded
        _numpy_alone_child(args.numpy_alone, args.quick)
        return 0
    if args.json is None:
        ap.error("--json is required")
    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    import torch
    from rsmt_studio.training.config import RSMTConfig, preset

    rt = _load_rsmt_torch()
    tmp = Path(tempfile.mkdtemp(prefix="rsmt-bench-"))
    if args.assets:
        manifest = json.loads((args.assets / "manifest.json").read_text())
        cfg = RSMTConfig.from_dict(manifest["config"])
        from rsmt_studio.inference.weights import load_assets

        st = load_assets(args.assets).state
        mods = rt.random_modules(cfg)
        for name, m in mods.items():
            if st.get(name):
                m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in st[name].items()})
        assets = args.assets
    else:
        cfg = preset(args.preset)
        mods = rt.random_modules(cfg, seed=0)
        assets = rt.save_assets(mods, cfg, tmp / "assets", note=f"random {args.preset} weights for the benchmark")
        from rsmt_studio.inference.style_bank import StyleBank

        rng = np.random.default_rng(0)
        StyleBank({"bench": rng.normal(0, 1, (cfg.sampler.style_frames - 1, cfg.style_channels))}).save(assets)
    torch.set_num_threads(os.cpu_count() or 1)
    report: dict = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()},
                    "params_per_frame": sum(p.numel() for n, p in mods["sampler"].named_parameters()
                                            if not n.startswith("style_encoder") and "ada_fc" not in n
                                            and ".key." not in n and ".value." not in n
                                            and "target_encoder" not in n)
                    + sum(p.numel() for p in mods["manifold"].decoder.parameters())}
    if not args.cpu_only_skip:
        report["cpu"] = run_cpu(args, cfg, mods, assets)
        alone = numpy_alone_ms(assets, args.quick)
        report["cpu"]["transition_ms"]["numpy_alone"] = alone["1"]
        report["cpu"]["batch64"]["transition_ms"]["numpy_alone"] = alone["64"]
    if args.gpu:
        report["gpu"] = run_gpu(args, cfg, mods, assets)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = args.json.with_name(f".{args.json.name}.tmp")
    tmp_json.write_text(json.dumps(report, indent=1))
    os.replace(tmp_json, args.json)
    print_table(report)
    return 0


def print_table(report: dict) -> None:
    for dev in ("cpu", "gpu"):
        r = report.get(dev)
        if not r:
            continue
        print(f"\n== {dev.upper()} ==")
        for key in ("transition_ms", "frame_ms"):
            if key in r:
                print(f"{key:16s}" + "  ".join(f"{k}={v}" for k, v in r[key].items()))
            if "batch64" in r and key in r["batch64"]:
                print(f"{key + ' b64':16s}" + "  ".join(f"{k}={v}" for k, v in r["batch64"][key].items()))
        for key in ("transition_ms_p10_p90", "floor", "transitions_per_s_batch1024", "captured_vs_eager_max_abs_cm",
                    "capture_ms", "vs_numpy_max_abs_cm", "compile_s_all_in_parallel"):
            if key in r:
                print(f"{key:16s}{r[key]}")
        for key in ("spinning", "idle_stopped", "peak_rss_mb"):
            if key in r:
                print(f"{key:16s}{r[key]}")
    if "cpu" in report:
        print()
        for batch, block in ((1, report["cpu"]), (64, report["cpu"].get("batch64", {}))):
            t = block.get("transition_ms")
            if not t:
                continue
            peers = ", ".join(f"{name} {t[k]} ms ({t[k] / t['max']:.2f}x)"
                              for k, name in (("torch", "torch"), ("onnxruntime", "ONNX Runtime"), ("numpy", "numpy"),
                                              ("numpy_alone", "numpy in its own process")) if k in t)
            print(f"CPU 40-frame transition, batch {batch}: MAX {t['max']} ms; {peers} (peer time / MAX time)")


if __name__ == "__main__":
    sys.exit(main())
