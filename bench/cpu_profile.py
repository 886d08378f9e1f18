"""Where a CPU sampler step's time goes (issue 17, first step), and the floor this machine allows.

    python bench/cpu_profile.py [--assets assets] [--rounds 7] [--reps 40] [--perf 6] [--json PATH]
                                [--compile-only] [--skip-rates]

One sampler step at the shipped widths (batch 1) is cut into its parts, each built as its own small MAX graph
from the project's own code (graphs/nets.py with graphs/blocks.py, symbolic weight widths and batch, as the
shipped `steps8` graph is) and run side by side with the same part in numpy (graphs/numpy_blocks.py), on the
same inputs (intermediates of one real step, shipped weights, the shipped style bank's FiLM caches):

  encoders        state + offset encoder MLPs, embedding_fc
  film_embedding  the embedding FiLM block: layer norms, query, attention over the style tokens, out_proj, ELU
  lstm_tail       positional-encoding rows, noise ramp, the LSTM input concatenation
  lstm_cell       one fused LSTM cell matmul + gates
  predictor_mlp   predictor fc1..fc4 (without its FiLM block)
  film_predictor  the predictor FiLM block
  phase_update    softplus, phase advance and blend, the decoder's condition vector
  moe_gate        the gating MLP (52 -> 64 -> 64 -> 8) + softmax
  moe_experts     the three 8-expert layers (all experts in one matmul each, outputs blended), ELUs
  moe_blend       only the three expert blends of moe_experts (reshape, multiply by the gate, sum over experts)
  apply_delta     delta applied to positions and rotations, Gram-Schmidt, velocity
  linear          one `x @ w + b` graph with symbolic widths, run on each of the step's 20 weight layers

Also timed: two empty graphs (1 input / 30 inputs: one `execute` call's fixed cost, which each part pays once
and which the shipped steps8 graph pays once per 8 frames), the shipped `steps8` graph per frame (through the
engine's runner), numpy's whole step, every numpy part again in a child process that never loaded MAX ("numpy
alone": MAX's worker threads spin after each `execute` and slow numpy in the same process), the engine's
post-processing per frame (numpy FK, `generate` timings), and the floor: multiply-adds and bytes read per step
counted from the shipped weights' shapes, this machine's OpenBLAS SGEMM GFLOP/s and batch-1 SGEMV weight-streaming
GB/s at L2-, L3- and DRAM-sized matrices (1 and 2 threads, child processes), numpy's read/copy bandwidth.

MAX 26.7 has no per-op CPU timing (MODULAR_ENABLE_PROFILING=on only adds NVTX ranges for Nsight on GPUs;
=detailed aborts the process on the CPU, like `num_threads`), so `--perf S` samples S seconds each of the
steps8 graph, numpy's step and three part graphs running in a loop with Linux `perf record` and groups the
samples by where the code lives (MAX's kernels are JIT-loaded MEF code without symbols: one group).

Part graphs are compiled once in child processes (MEFs under bench/results/cpu_profile_mef/, keyed by the graph
IR, the MAX version and the CPU target); later runs only load them. Medians over interleaved rounds: MAX and
numpy alternate, so load from other processes hits both alike; only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import interleaved as _interleaved  # bench/inference.py

REPO = Path(__file__).resolve().parents[1]
MEF_DIR = REPO / "bench" / "results" / "cpu_profile_mef"
LENGTH = 40
B = "batch"


# ------------------------------------------------------------------------------------------------ the parts
def _nets():
    from rsmt_studio.inference.graphs import nets

    return nets


def encoders(K, W, d, X):
    nets = _nets()
    p, v, r = X["p"], X["v"], X["r"]
    state = nets.mlp2(K, W, "state_encoder", nets.state_features(K, p, v, r))
    offset = nets.mlp2(K, W, "offset_encoder", K.concat([nets.flat(K, X["tgt_p"] - p), nets.flat(K, X["tgt_r"] - r)],
                                                       -1))
    return offset, K.linear(state, W["embedding_fc.w"], W["embedding_fc.b"])


def film_embedding(K, W, d, X):
    cache = [X[k] for k in ("emb_gamma", "emb_beta", "emb_keys", "emb_values")]
    return (_nets().film_elu(K, W, "embedding_film", X["emb_in"], cache),)


def lstm_tail(K, W, d, X):
    """nets.lstm_input after the FiLM block (same code)."""
    emb, offset, tta, z = X["emb"], X["offset"], X["tta"], X["z"]
    b = emb.shape[0]
    idx = K.clamp_index(tta, d.max_tta)
    pe_small = K.gather_rows(W["pe_latent"], idx)
    pe_big = K.gather_rows(W["pe_film"], idx)
    h_state = emb + K.rebind(pe_big, (b, emb.shape[1]))
    pe_small = K.rebind(pe_small, (b, offset.shape[1]))
    lam = K.minimum(K.maximum((K.unsqueeze(K.to_float(tta), 1) - 5.0) / 25.0, 0.0), 1.0)
    tgt_latent = K.rebind(X["tgt_latent"], (b, offset.shape[1]))
    h_t = K.concat([offset + pe_small, tgt_latent + pe_small], -1)
    h_t = h_t + lam * K.rebind(z, (b, h_t.shape[1]))
    return K.concat([h_state, h_t], -1), h_t


def lstm_cell(K, W, d, X):
    return K.lstm_cell(X["x"], X["h"], X["c"], W["lstm.w"], W["lstm.b"])


def predictor_mlp(K, W, d, X):
    """nets.sampler_step's predictor layers; the FiLM block between fc2 and fc3 is film_predictor's (its output
    `y_film` is an input here)."""
    nets = _nets()
    y = K.elu(K.linear(K.concat([X["h"], nets.flat(K, X["phase"]), X["h_t"]], -1), W["predictor_fc1.w"],
                       W["predictor_fc1.b"]))
    y2 = K.linear(y, W["predictor_fc2.w"], W["predictor_fc2.b"])
    y4 = K.linear(K.elu(K.linear(X["y_film"], W["predictor_fc3.w"], W["predictor_fc3.b"])), W["predictor_fc4.w"],
                  W["predictor_fc4.b"])
    return y2, y4


def film_predictor(K, W, d, X):
    cache = [X[k] for k in ("pred_gamma", "pred_beta", "pred_keys", "pred_values")]
    return (_nets().film_elu(K, W, "predictor_film", X["y2"], cache),)


def phase_update(K, W, d, X):
    """nets.sampler_step from the predictor's output to the decoder's inputs (same code)."""
    nets = _nets()
    y, p, v, r, phase = X["y4"], X["p"], X["v"], X["r"], X["phase"]
    cp, b = d.n_phases, p.shape[0]
    phase_hat = K.reshape(y[:, 0 : 2 * cp], (b, cp, 2))
    amp = K.softplus(y[:, 2 * cp : 3 * cp])
    freq = y[:, 3 * cp : 4 * cp]
    o = 4 * cp
    hip_v, hip_d6, zm = y[:, o : o + 3], y[:, o + 3 : o + 9], y[:, o + 9 : o + 9 + d.manifold_latent]
    new_phase = nets.update_phase(K, d, phase, phase_hat, amp, freq)
    hip_r = r[:, 0, :] + hip_d6
    cond = K.concat([nets.flat(K, p - p[:, 0:1, :]), nets.flat(K, v), hip_v, nets.flat(K, r), hip_r], -1)
    return new_phase, cond, zm, hip_v, hip_r


def moe_gate(K, W, d, X):
    """nets.decoder's gating network (same code)."""
    nets = _nets()
    g = K.concat([nets.flat(K, X["new_phase"]), X["zm"]], -1)
    g = K.elu(K.linear(g, W["decoder.gate_fc1.w"], W["decoder.gate_fc1.b"]))
    g = K.elu(K.linear(g, W["decoder.gate_fc2.w"], W["decoder.gate_fc2.b"]))
    return (K.softmax(K.linear(g, W["decoder.gate_fc3.w"], W["decoder.gate_fc3.b"])),)


def moe_experts(K, W, d, X):
    """nets.decoder's expert layers (same code)."""
    cond, zm, alpha, e = X["cond"], X["zm"], X["alpha"], d.n_experts
    h = K.elu(K.moe_linear(K.concat([cond, zm], -1), alpha, W["decoder.expert1.w"], W["decoder.expert1.b"], e))
    h = K.elu(K.moe_linear(K.concat([h, zm], -1), alpha, W["decoder.expert2.w"], W["decoder.expert2.b"], e))
    return (K.moe_linear(h, alpha, W["decoder.expert3.w"], W["decoder.expert3.b"], e),)


def moe_blend(K, W, d, X):
    """Only the blends of the three expert layers: the second half of blocks.moe_linear / numpy_blocks.moe_linear
    on the layers' pre-blend outputs (B, E*out)."""
    from rsmt_studio.inference.graphs import blocks

    e, alpha = d.n_experts, X["alpha"]
    outs = []
    for key in ("y1", "y2", "y3"):
        y = X[key]
        if K is blocks:
            from max.graph import ops

            batch = y.shape[0]
            out = y.shape[1] // e
            y = ops.reshape(ops.rebind(y, (batch, out * e)), (batch, e, out))
            g = ops.reshape(ops.rebind(alpha, (batch, e)), (batch, e, 1))
            outs.append(ops.sum(y * g, axis=1).reshape((batch, out)))
        else:
            outs.append((y.reshape(y.shape[0], e, -1) * alpha[:, :, None]).sum(axis=1))
    return tuple(outs)


def apply_delta(K, W, d, X):
    p_next, r_next = _nets().apply_delta(K, d, X["p"], X["r"], X["delta"], X["hip_v"], X["hip_r"])
    return p_next, p_next - X["p"], r_next


def linear(K, W, d, X):
    return (K.linear(X["x"], W["w"], W["b"]),)


def call_1in(K, W, d, X):
    return (X["x0"] + 1.0,)


def call_30in(K, W, d, X):
    return (X["x0"] + 1.0,)


# name: (function, {input: symbolic shape (None: as the array, static)}, weight prefixes, what it is)
PARTS = {
    "encoders": (encoders, {"p": None, "v": None, "r": None, "tgt_p": None, "tgt_r": None},
                 ("state_encoder.", "offset_encoder.", "embedding_fc."), "state + offset encoder MLPs, embedding_fc"),
    "film_embedding": (film_embedding, {"emb_in": (B, "emb_w"), "emb_gamma": (B, "emb_w"), "emb_beta": (B, "emb_w"),
                                        "emb_keys": (B, "emb_t", "emb_w"), "emb_values": (B, "emb_t", "emb_w")},
                       ("embedding_film.",), "FiLM block, style-token attention (embedding)"),
    "lstm_tail": (lstm_tail, {"emb": (B, "emb_w"), "offset": (B, "latent"), "tgt_latent": (B, "latent"),
                              "tta": (B,), "z": (B, "zdim")},
                  ("pe_latent", "pe_film"), "PE rows, noise ramp, LSTM input concat"),
    "lstm_cell": (lstm_cell, {"x": (B, "x_w"), "h": (B, "lstm"), "c": (B, "lstm")}, ("lstm.",), "LSTM cell"),
    "predictor_mlp": (predictor_mlp, {"h": (B, "lstm"), "phase": None, "h_t": (B, "ht_w"), "y_film": (B, "pred_w")},
                      ("predictor_fc",), "predictor fc1..fc4 (its FiLM apart)"),
    "film_predictor": (film_predictor, {"y2": (B, "pred_w"), "pred_gamma": (B, "pred_w"), "pred_beta": (B, "pred_w"),
                                        "pred_keys": (B, "pred_t", "pred_w"), "pred_values": (B, "pred_t", "pred_w")},
                       ("predictor_film.",), "FiLM block, style-token attention (predictor)"),
    "phase_update": (phase_update, {"y4": (B, "y_w"), "p": None, "v": None, "r": None, "phase": None}, (),
                     "phase advance + blend, decoder condition"),
    "moe_gate": (moe_gate, {"new_phase": None, "zm": None}, ("decoder.gate_fc",), "MoE gating MLP + softmax"),
    "moe_experts": (moe_experts, {"cond": None, "zm": None, "alpha": None}, ("decoder.expert",),
                    "MoE: 3 expert layers (8 experts, matmul + blend)"),
    "moe_blend": (moe_blend, {"y1": (B, "e1"), "y2": (B, "e2"), "y3": (B, "e3"), "alpha": None}, (),
                  "  of which: the 3 expert blends only"),
    "apply_delta": (apply_delta, {"p": None, "r": None, "delta": (B, "delta_w"), "hip_v": None, "hip_r": None}, (),
                    "apply delta, Gram-Schmidt, velocity"),
    "call_1in": (call_1in, {"x0": (B, 3)}, (), "empty graph, 1 input (call overhead)"),
    "linear": (linear, {"x": (B, "x_w")}, (), "one linear layer, symbolic widths: each of the step's layers"),
    "call_30in": (call_30in, {f"x{i}": (B, f"w{i}") for i in range(30)}, (), "empty graph, 30 inputs"),
}
MAIN_PARTS = [n for n in PARTS if n != "linear"]
STEP_PARTS = ["encoders", "film_embedding", "lstm_tail", "lstm_cell", "predictor_mlp", "film_predictor", "phase_update",
              "moe_gate", "moe_experts", "apply_delta"]


def part_weights(prefixes, W) -> list[str]:
    return sorted(n for n in W if any(n == p or n.startswith(p) for p in prefixes))


# ------------------------------------------------------------------------------------------------ inputs
def load(assets: Path):
    from rsmt_studio.inference.style_bank import StyleBank
    from rsmt_studio.inference.weights import adapt_all, load_assets

    a = load_assets(assets)
    W = adapt_all(a)
    bank = StyleBank.load(assets)
    return a, W, bank


def step_inputs(W, d, caches, seed: int = 0) -> dict[str, np.ndarray]:
    """Every part's inputs: a random (batch 1) state, the shipped style caches, and one numpy step's
    intermediates, computed part by part."""
    from rsmt_studio.inference.graphs import numpy_blocks as K

    rng = np.random.default_rng(seed)
    f = np.float32
    np_, j, c = d.n_pos_joints, d.n_joints, d.n_phases
    lstm = W["lstm.w"].shape[1] // 4
    latent = W["offset_encoder.fc2.w"].shape[1]
    X = {"p": rng.normal(0, 20, (1, np_, 3)).astype(f), "v": rng.normal(0, 1, (1, np_, 3)).astype(f),
         "r": rng.normal(0, 1, (1, j, 6)).astype(f), "phase": rng.normal(0, 1, (1, c, 2)).astype(f),
         "tgt_p": rng.normal(0, 20, (1, np_, 3)).astype(f), "tgt_r": rng.normal(0, 1, (1, j, 6)).astype(f),
         "tgt_latent": rng.normal(0, 1, (1, latent)).astype(f), "z": rng.normal(0, 0.5, (1, 2 * latent)).astype(f),
         "h": rng.normal(0, 0.3, (1, lstm)).astype(f), "c": rng.normal(0, 0.3, (1, lstm)).astype(f),
         "tta": np.array([20], np.int64)}
    names = ("emb_gamma", "emb_beta", "emb_keys", "emb_values", "pred_gamma", "pred_beta", "pred_keys", "pred_values")
    X.update({n: np.ascontiguousarray(a, dtype=f) for n, a in zip(names, caches, strict=True)})
    X["offset"], X["emb_in"] = encoders(K, W, d, X)
    (X["emb"],) = film_embedding(K, W, d, X)
    X["x"], X["h_t"] = lstm_tail(K, W, d, X)
    h_new, _ = lstm_cell(K, W, d, X)
    X["y_film"] = np.zeros((1, W["predictor_fc2.w"].shape[1]), f)
    X2 = dict(X, h=h_new)
    X["y2"], _ = predictor_mlp(K, W, d, X2)
    (X["y_film"],) = film_predictor(K, W, d, X)
    _, X["y4"] = predictor_mlp(K, W, d, dict(X2, y_film=X["y_film"]))
    X["new_phase"], X["cond"], X["zm"], X["hip_v"], X["hip_r"] = phase_update(K, W, d, X)
    (X["alpha"],) = moe_gate(K, W, d, X)
    (X["delta"],) = moe_experts(K, W, d, X)
    e = d.n_experts
    x1 = np.concatenate([X["cond"], X["zm"]], -1)
    X["y1"] = x1 @ W["decoder.expert1.w"] + W["decoder.expert1.b"]
    h1 = K.elu(K.moe_linear(x1, X["alpha"], W["decoder.expert1.w"], W["decoder.expert1.b"], e))
    X["y2e"] = np.concatenate([h1, X["zm"]], -1) @ W["decoder.expert2.w"] + W["decoder.expert2.b"]
    h2 = K.elu(K.moe_linear(np.concatenate([h1, X["zm"]], -1), X["alpha"], W["decoder.expert2.w"],
                            W["decoder.expert2.b"], e))
    X["y3"] = h2 @ W["decoder.expert3.w"] + W["decoder.expert3.b"]
    X["x0"] = X["p"][:, 0, :].copy()
    for i in range(1, 30):
        X[f"x{i}"] = np.zeros((1, 4), f)
    return {k: np.ascontiguousarray(v) for k, v in X.items()}


def part_arrays(name: str, X) -> dict[str, np.ndarray]:
    """A part's data inputs by its own input names."""
    _, spec, _, _ = PARTS[name]
    alias = {"y2": "y2e"} if name == "moe_blend" else {}
    return {k: X[alias.get(k, k)] for k in spec}


# ------------------------------------------------------------------------------------------------ graphs
def build_part(name: str, d, shapes: dict[str, tuple], weight_ranks: dict[str, int], dtypes: dict[str, str]):
    """The part as a MAX graph: data inputs (symbolic dims where the shipped graph has them), then its weights
    with symbolic dims (as networks.build gives them), built from blocks.py."""
    from max.dtype import DType
    from max.graph import DeviceRef, Graph, TensorType
    from rsmt_studio.inference.graphs import blocks

    fn, spec, _, _ = PARTS[name]
    cpu = DeviceRef.CPU()
    types = [TensorType(DType.int64 if dtypes[k] == "int64" else DType.float32, tuple(shapes[k]), device=cpu)
             for k in spec]
    wnames = sorted(weight_ranks)
    types += [TensorType(DType.float32, tuple(f"{w.replace('.', '_')}_d{i}" for i in range(weight_ranks[w])),
                         device=cpu) for w in wnames]
    with Graph(f"prof_{name}", input_types=types) as g:
        vals = [v.tensor for v in g.inputs]
        X = dict(zip(spec, vals[: len(spec)]))
        Wv = dict(zip(wnames, vals[len(spec):]))
        g.output(*fn(blocks, Wv, d, X))
    return g


def graph_descr(name: str, d, X, W) -> dict:
    """What build_part needs, as JSON (for the compile child)."""
    _, spec, prefixes, _ = PARTS[name]
    if name == "linear":
        return {"name": name, "dims": d.to_json(), "shapes": {"x": [B, "x_w"]}, "dtypes": {"x": "float32"},
                "weights": {"w": 2, "b": 1}}
    arrays = part_arrays(name, X)
    shapes = {k: ([B, *arrays[k].shape[1:]] if s is None else list(s)) for k, s in spec.items()}
    return {"name": name, "dims": d.to_json(), "shapes": shapes,
            "dtypes": {k: str(arrays[k].dtype) for k in spec},
            "weights": {w: W[w].ndim for w in part_weights(prefixes, W)}}


STEP_LAYERS = ("state_encoder.fc1", "state_encoder.fc2", "offset_encoder.fc1", "offset_encoder.fc2", "embedding_fc",
               "embedding_film.query", "embedding_film.out_proj", "lstm", "predictor_fc1", "predictor_fc2",
               "predictor_film.query", "predictor_film.out_proj", "predictor_fc3", "predictor_fc4",
               "decoder.gate_fc1", "decoder.gate_fc2", "decoder.gate_fc3", "decoder.expert1", "decoder.expert2",
               "decoder.expert3")


def layer_table(model, W, reps: int, rounds: int) -> list[dict]:
    """Each of the step's 20 weight layers (x @ w + b, batch 1) through one symbolic-width MAX graph, and numpy."""
    from max.driver import Buffer

    rows = []
    for name in STEP_LAYERS:
        w, b = np.ascontiguousarray(W[f"{name}.w"]), np.ascontiguousarray(W[f"{name}.b"])
        x = np.random.default_rng(0).standard_normal((1, w.shape[0])).astype(np.float32)
        bufs = [Buffer.from_numpy(a) for a in (x, b, w)]  # build_part orders weights by name
        got = model.execute(*bufs)[0].to_numpy()
        err = float(np.abs(got - (x @ w + b)).max())
        t = interleaved({"max": lambda m=model, bb=bufs: m.execute(*bb), "numpy": lambda x=x, w=w, b=b: x @ w + b}, reps, rounds)
        m, n = t["max"]["median_ms"], t["numpy"]["median_ms"]
        rows.append({"layer": name, "in": int(w.shape[0]), "out": int(w.shape[1]), "kb": round((w.nbytes + b.nbytes) / 1e3, 1),
                     "max_us": round(m * 1e3, 1), "numpy_us": round(n * 1e3, 1), "max_over_numpy": round(m / n, 2),
                     "max_gbs": round((w.nbytes + b.nbytes) / (m / 1e3) / 1e9, 2),
                     "numpy_gbs": round((w.nbytes + b.nbytes) / (n / 1e3) / 1e9, 2), "max_vs_numpy_abs": err})
    return rows


def graph_key(descr: dict) -> tuple[object, str]:
    from rsmt_studio.inference.graphs.nets import Dims
    from rsmt_studio.inference.runtime.cache import max_version
    from rsmt_studio.inference.runtime.cpu_target import cpu_target

    g = build_part(descr["name"], Dims(**descr["dims"]), descr["shapes"], descr["weights"], descr["dtypes"])
    ir = str(g)
    key = hashlib.sha256(f"{ir}\n{max_version()}\n{cpu_target()}".encode()).hexdigest()[:16]
    return g, key, ir


def mef_path(name: str, key: str) -> Path:
    return MEF_DIR / f"{name}-{key}.mef"


def compile_child(descr_file: Path) -> int:
    """Compile the described graphs for this machine's CPU target (as the app's compile worker does)."""
    from max.driver import CPU
    from max.engine import InferenceSession
    from rsmt_studio.inference.runtime.cpu_target import cpu_target, is_virtual

    if is_virtual(target := cpu_target()):
        from max.driver import set_virtual_cpu_target

        set_virtual_cpu_target(target)
    session = InferenceSession(devices=[CPU()])
    for descr in json.loads(descr_file.read_text()):
        g, key, _ = graph_key(descr)
        path = mef_path(descr["name"], key)
        if path.is_file():
            continue
        t0 = time.perf_counter()
        compiled = session.compile(g)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        compiled.export_mef(str(tmp))
        os.replace(tmp, path)
        path.with_suffix(".json").write_text(json.dumps({"compile_s": round(time.perf_counter() - t0, 1)}))
        print(f"compiled {descr['name']} in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


def ensure_parts(descrs: list[dict], jobs: int = 2) -> dict[str, tuple[Path, str, int]]:
    """{name: (MEF path, key, graph ops)}; compiles the missing ones in `jobs` child processes."""
    MEF_DIR.mkdir(parents=True, exist_ok=True)
    out, missing = {}, []
    for descr in descrs:
        _, key, ir = graph_key(descr)
        n_ops = sum(1 for line in ir.splitlines()
                    if (" = rmo." in line or " = mo." in line) and "mo.chain" not in line and "mo.constant" not in line)
        out[descr["name"]] = (mef_path(descr["name"], key), key, n_ops)
        if not mef_path(descr["name"], key).is_file():
            missing.append(descr)
    if missing:
        print(f"compiling {len(missing)} part graphs in {jobs} child processes (once; cached in {MEF_DIR})",
              flush=True)
        procs = []
        for i in range(jobs):
            chunk = missing[i::jobs]
            if not chunk:
                continue
            f = MEF_DIR / f".jobs-{os.getpid()}-{i}.json"
            f.write_text(json.dumps(chunk))
            procs.append(subprocess.Popen([sys.executable, __file__, "--compile-child", str(f)],
                                          env={**os.environ, "MODULAR_CRASH_REPORTING_ENABLED": "false"}))
        if any(p.wait() != 0 for p in procs):
            raise RuntimeError("a part graph failed to compile")
    return out


# ------------------------------------------------------------------------------------------------ timing
def interleaved(fns: dict, reps: int, rounds: int) -> dict[str, dict]:
    """Median (and 10th/90th percentile) of single-call times in ms, engines alternating every `reps` calls:
    bench/inference.py's interleaved timing, reported with its spread."""
    spread: dict[str, list[float]] = {}
    med = _interleaved(fns, reps, rounds, spread)
    return {k: {"median_ms": med[k], "p10_ms": spread[k][0], "p90_ms": spread[k][1]} for k in fns}


def machine() -> dict:
    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__}
    try:
        lscpu = subprocess.run(["lscpu"], check=False, capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "L1d cache", "L2 cache", "L3 cache", "CPU(s)", "Core(s) per socket",
                             "Thread(s) per core", "CPU max MHz"):
                info[k.strip()] = v.strip()
        flags = next((ln for ln in lscpu.splitlines() if ln.startswith("Flags")), "")
        info["avx512f"] = " avx512f " in f" {flags.split(':')[-1]} "
        info["amx_tile"] = " amx_tile " in f" {flags.split(':')[-1]} "
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        info["max"] = version("max")
    except PackageNotFoundError:
        info["max"] = "unknown"
    return info


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], check=False, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return Path("/proc/loadavg").read_text().strip()


# ------------------------------------------------------------------------------------------------ floor
FLOOR_CHILD = r"""
import json, statistics, sys, time
import numpy as np
def med(fn, reps):
    fn(); fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)
n = 1536
a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
b = a.copy()
t = med(lambda: a @ b, 9)
out = {"sgemm_n": n, "sgemm_gflops": 2 * n**3 / t / 1e9}
gemv = {}
for label, mb in (("L2", 1), ("L3", 15), ("DRAM", 768)):
    k = int(mb * 2**20 / 4 / 1024)
    w = np.random.default_rng(1).standard_normal((k, 1024)).astype(np.float32)
    x = np.ones((1, k), np.float32)
    t = med(lambda: x @ w, 15 if mb < 100 else 5)
    gemv[label] = {"mb": mb, "gbs": w.nbytes / t / 1e9, "us": t * 1e6}
    del w
out["sgemv"] = gemv
print(json.dumps(out))
"""


def measure_machine_rates() -> dict:
    """OpenBLAS SGEMM GFLOP/s and batch-1 SGEMV weight-streaming GB/s with 1 and 2 threads (child processes,
    so the thread count is fixed before OpenBLAS starts), and numpy's one-thread read bandwidth (sum) and copy
    bandwidth at L2-, L3- and DRAM-sized arrays."""
    out: dict = {}
    for threads in (1, 2):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        res = subprocess.run([sys.executable, "-c", FLOOR_CHILD], check=False, capture_output=True, text=True, env=env,
                             timeout=300)
        out[f"blas_{threads}thread"] = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {
            "error": res.stderr[-500:]}
    bw = {}
    for label, mb in (("L2_1MiB", 1), ("L3_16MiB", 16), ("DRAM_1GiB", 1024)):
        a = np.ones(int(mb * 2**20 / 4), np.float32)
        dst = np.empty_like(a)
        reps = 21 if mb < 100 else 5
        ts, tc = [], []
        a.sum()
        np.copyto(dst, a)
        for _ in range(reps):
            t0 = time.perf_counter()
            a.sum()
            ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            np.copyto(dst, a)
            tc.append(time.perf_counter() - t0)
        bw[label] = {"read_sum_gbs": round(a.nbytes / statistics.median(ts) / 1e9, 2),
                     "copy_gbs_read_plus_write": round(2 * a.nbytes / statistics.median(tc) / 1e9, 2)}
        del a, dst
    out["numpy_1thread"] = bw
    return out


def step_counts(W, d, caches) -> dict:
    """Exact multiply-adds and bytes read per sampler step at batch 1, from the weights' shapes (the CPU
    formulation computes every expert, so the experts' MACs are E x in x out)."""
    per: dict[str, dict] = {}

    def add(part, macs, nbytes):
        e = per.setdefault(part, {"macs": 0, "weight_bytes": 0})
        e["macs"] += int(macs)
        e["weight_bytes"] += int(nbytes)

    def lin(part, name):
        w, b = W[f"{name}.w"], W[f"{name}.b"]
        add(part, w.shape[0] * w.shape[1], w.nbytes + b.nbytes)

    for n in ("state_encoder.fc1", "state_encoder.fc2", "offset_encoder.fc1", "offset_encoder.fc2", "embedding_fc"):
        lin("encoders", n)
    t_emb, t_pred = caches[2].shape[1], caches[6].shape[1]
    for part, prefix, t, cache in (("film_embedding", "embedding_film", t_emb, caches[0:4]),
                                   ("film_predictor", "predictor_film", t_pred, caches[4:8])):
        lin(part, f"{prefix}.query")
        lin(part, f"{prefix}.out_proj")
        dmod = W[f"{prefix}.query.w"].shape[1]
        # logits keys @ q and att @ values: 2 x T x D, reading both (T, D) caches + gamma, beta
        add(part, 2 * t * dmod, sum(a[0].nbytes for a in cache))
    add("lstm_tail", 0, W["pe_latent"].shape[1] * 4 + W["pe_film"].shape[1] * 4)  # two gathered rows
    lin("lstm_cell", "lstm")
    for i in range(1, 5):
        lin("predictor_mlp", f"predictor_fc{i}")
    for i in range(1, 4):
        lin("moe_gate", f"decoder.gate_fc{i}")
    for i in range(1, 4):
        w = W[f"decoder.expert{i}.w"]
        lin("moe_experts", f"decoder.expert{i}")
        add("moe_experts", w.shape[1], 0)  # the blend: E x out multiply-adds
    total_macs = sum(v["macs"] for v in per.values())
    total_bytes = sum(v["weight_bytes"] for v in per.values())
    return {"per_part": per, "macs": total_macs, "bytes": total_bytes,
            "style_tokens": {"embedding": int(t_emb), "predictor": int(t_pred)}}


def floor(counts: dict, rates: dict) -> dict:
    one = rates.get("blas_1thread", {})
    two = rates.get("blas_2thread", {})
    out = {"macs_per_step": counts["macs"], "bytes_per_step": counts["bytes"],
           "mb_per_step": round(counts["bytes"] / 1e6, 3)}
    for label, r in (("1core", one), ("2core", two)):
        if "sgemm_gflops" not in r:
            continue
        peak_macs = r["sgemm_gflops"] / 2 * 1e9
        bw_l3 = r["sgemv"]["L3"]["gbs"] * 1e9
        compute_ms = counts["macs"] / peak_macs * 1e3
        bytes_ms = counts["bytes"] / bw_l3 * 1e3
        f = max(compute_ms, bytes_ms)
        out[label] = {"sgemm_gflops": round(r["sgemm_gflops"], 1), "sgemv_l3_gbs": round(r["sgemv"]["L3"]["gbs"], 1),
                      "sgemv_l2_gbs": round(r["sgemv"]["L2"]["gbs"], 1),
                      "sgemv_dram_gbs": round(r["sgemv"]["DRAM"]["gbs"], 1),
                      "compute_ms_per_frame": round(compute_ms, 4), "bytes_ms_per_frame": round(bytes_ms, 4),
                      "floor_ms_per_frame": round(f, 4), "floor_ms_per_transition": round(LENGTH * f, 3),
                      "target_3x_ms_per_frame": round(3 * f, 4), "target_3x_ms_per_transition": round(3 * LENGTH * f, 2)}
    return out


# ------------------------------------------------------------------------------------------------ whole step
def engine_reference(assets: Path, X, caches, reps: int, rounds: int) -> tuple[dict, dict, object]:
    """The shipped steps8 graph (per frame = call / 8) and numpy's whole step, interleaved; and a real
    transition's timings through `generate` (post-processing per frame)."""
    from rsmt_studio.inference.engine import TransitionEngine
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as K

    engine = TransitionEngine(assets, device="cpu", steps_per_call=8)
    k = engine.steps_per_call
    tta = np.full((1, k), 20, np.int64)
    W, d = engine_weights_for(engine)

    def max_call():
        engine.runners["steps"](X["p"], X["v"], X["r"], X["phase"], X["h"], X["c"], X["tgt_p"], X["tgt_r"],
                                X["tgt_latent"], tta, X["z"], *engine.film_caches(caches))

    def np_step():
        nets.sampler_step(K, W, d, X["p"], X["v"], X["r"], X["phase"], X["h"], X["c"], X["tgt_p"], X["tgt_r"],
                          X["tgt_latent"], np.array([20]), X["z"], caches)

    t = interleaved({"max_steps8_call": max_call, "numpy_step": np_step}, max(3, reps // 8), rounds)
    whole = {"max_steps8_per_frame_ms": round(t["max_steps8_call"]["median_ms"] / k, 5),
             "max_steps8_call_ms": t["max_steps8_call"], "numpy_step_ms": t["numpy_step"]}
    return whole, engine_generate(engine), engine


def engine_weights_for(engine):
    from rsmt_studio.inference.weights import adapt_all

    return adapt_all(engine.assets), engine.dims


def engine_generate(engine, n: int = 3) -> dict:
    """A real 40-frame transition through `generate` (shipped default scene clips when available)."""
    try:
        from rsmt_studio.motion.bvh_reader import read_bvh

        data = REPO.parent / "shared" / "data" / "bandai" / "dataset" / "Bandai-Namco-Research-Motiondataset-1" / "data"
        src, tgt = read_bvh(data / "dataset-1_run_active_001.bvh"), read_bvh(data / "dataset-1_bow_angry_001.bvh")
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
    runs = []
    for _ in range(n):
        tr = engine.generate(src, 60, tgt, 80, engine.styles[0], LENGTH, seed=0)
        runs.append(tr.timings.as_dict())
    keys = ("style_ms", "features_ms", "prepare_ms", "sampler_ms", "postprocess_ms", "total_ms")
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys if k in runs[0]}
    med["postprocess_ms_per_frame"] = round(med.get("postprocess_ms", 0.0) / LENGTH, 4)
    med["sampler_ms_per_frame"] = round(med.get("sampler_ms", 0.0) / LENGTH, 4)
    return med


# ------------------------------------------------------------------------------------------------ perf
DSO_GROUPS = (  # perf's DSO name -> where the time goes
    ("[JIT]", "MAX kernels (JIT-loaded MEF code)"),
    ("[vdso]", "clock_gettime polling (MAX runtime's spin-wait)"),
    ("libKGENCompilerRTShared", "MAX/Mojo runtime (task queue, sync)"),
    ("libAsyncRT", "MAX/Mojo runtime (task queue, sync)"),
    ("libmax.so", "MAX engine (execute, buffers)"),
    ("libMGPRT", "MAX engine (execute, buffers)"),
    ("_core.cpython", "MAX engine (execute, buffers)"),
    ("[kernel", "OS kernel (scheduling, page faults)"),
    ("libpython", "Python interpreter"),
    ("openblas", "OpenBLAS"),
    ("_multiarray_umath", "numpy"),
    ("libc.so", "libc (malloc, memcpy)"),
    ("libstdc++", "libc (malloc, memcpy)"),
)


PERF_TARGETS = ("steps8", "numpy", "part:lstm_cell", "part:moe_experts", "part:apply_delta")


def spin_child(assets: Path, what: str, seconds: float) -> int:
    """Run the shipped steps8 graph (or numpy's step) in a loop; prints "go" when warm, then ms per call."""
    a, W, bank = load(assets)
    caches = [np.ascontiguousarray(c, np.float32) for c in bank_caches(bank, bank.names[0])]
    X = step_inputs(W, a.dims, caches)
    if what.startswith("part:"):
        from max import engine as max_engine
        from max.driver import CPU, Buffer
        from max.engine import InferenceSession

        name = what.split(":", 1)[1]
        descr = graph_descr(name, a.dims, X, W)
        _, key, _ = graph_key(descr)
        model = InferenceSession(devices=[CPU()]).init(max_engine.read(mef_path(name, key)))
        arrays = part_arrays(name, X)
        host = [arrays[k] for k in PARTS[name][1]] + [np.ascontiguousarray(W[w], np.float32)
                                                      for w in sorted(descr["weights"])]
        bufs = [Buffer.from_numpy(h) for h in host]

        def fn():
            model.execute(*bufs)
    elif what == "steps8":
        from rsmt_studio.inference.engine import TransitionEngine

        engine = TransitionEngine(assets, device="cpu", steps_per_call=8)
        tta = np.full((1, 8), 20, np.int64)

        def fn():
            engine.runners["steps"](X["p"], X["v"], X["r"], X["phase"], X["h"], X["c"], X["tgt_p"], X["tgt_r"],
                                    X["tgt_latent"], tta, X["z"], *caches)
    else:
        from rsmt_studio.inference.graphs import nets
        from rsmt_studio.inference.graphs import numpy_blocks as K

        def fn():
            nets.sampler_step(K, W, a.dims, X["p"], X["v"], X["r"], X["phase"], X["h"], X["c"], X["tgt_p"],
                              X["tgt_r"], X["tgt_latent"], np.array([20]), X["z"], caches)
    for _ in range(20):
        fn()
    print("go", flush=True)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    print(json.dumps({"calls": n, "ms_per_call": (time.perf_counter() - t0) / n * 1e3}), flush=True)
    return 0


def numpy_child(assets: Path, reps: int, rounds: int) -> int:
    """Every part and the whole step in numpy, in a process that never loaded MAX (whose idle worker threads
    spin after each `execute` and take CPU from numpy in the same process: field guide section 6)."""
    from rsmt_studio.inference.graphs import nets
    from rsmt_studio.inference.graphs import numpy_blocks as K

    a, W, bank = load(assets)
    d = a.dims
    caches = [np.ascontiguousarray(c, np.float32) for c in bank_caches(bank, bank.names[0])]
    X = step_inputs(W, d, caches)
    fns = {}
    for name in MAIN_PARTS:
        fn, _, prefixes, _ = PARTS[name]
        Wn = {w: W[w] for w in part_weights(prefixes, W)}
        arrays = part_arrays(name, X)
        fns[name] = (lambda f=fn, w=Wn, x=arrays: f(K, w, d, x))
    fns["whole_step"] = lambda: nets.sampler_step(K, W, d, X["p"], X["v"], X["r"], X["phase"], X["h"], X["c"],
                                                  X["tgt_p"], X["tgt_r"], X["tgt_latent"], np.array([20]), X["z"],
                                                  caches)
    t = interleaved(fns, reps, rounds)
    print(json.dumps({k: v["median_ms"] for k, v in t.items()}))
    return 0


def perf_profile(assets: Path, what: str, seconds: float) -> dict:
    """Sample (perf record, 999 Hz, user + kernel) a process running `what` in a loop; shares of samples by
    where the code lives. MAX's kernels run as JIT-loaded code without symbols, so they are one group."""
    import shutil

    if not shutil.which("perf"):
        return {"skipped": "perf not found"}
    data = MEF_DIR.parent / f"perf-{what.replace(':', '-')}.data"
    child = subprocess.Popen([sys.executable, __file__, "--assets", str(assets), "--spin", what, str(seconds + 2)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    if child.stdout.readline().strip() != "go":
        child.kill()
        return {"skipped": "spin child failed"}
    rec = subprocess.run(["perf", "record", "-F", "999", "-p", str(child.pid), "-o", str(data), "--", "sleep",
                          str(seconds)], check=False, capture_output=True, text=True)
    out = child.stdout.read()
    child.wait()
    if rec.returncode != 0:
        return {"skipped": f"perf record failed: {rec.stderr[-300:]}"}
    rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                         check=False, capture_output=True, text=True)
    by_dso: dict[str, float] = {}
    for line in rep.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%") and not line.lstrip().startswith("#"):
            by_dso[" ".join(parts[1:])] = by_dso.get(" ".join(parts[1:]), 0.0) + float(parts[0][:-1])
    groups: dict[str, float] = {}
    for dso, pct in by_dso.items():
        label = next((g for key, g in DSO_GROUPS if key in dso), "other")
        groups[label] = round(groups.get(label, 0.0) + pct, 2)
    try:
        loop = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        loop = {}
    return {"what": what, "seconds": seconds, "loop": loop,
            "groups_pct": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "top_dsos_pct": dict(sorted(((k, round(v, 2)) for k, v in by_dso.items()), key=lambda kv: -kv[1])[:12])}


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=REPO / "assets")
    ap.add_argument("--reps", type=int, default=40, help="calls per engine per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "cpu_profile.json")
    ap.add_argument("--compile-only", action="store_true", help="compile the part graphs and stop")
    ap.add_argument("--skip-rates", action="store_true", help="skip the GEMM / bandwidth measurements")
    ap.add_argument("--perf", type=float, default=6.0, metavar="S",
                    help="sample S seconds each of steps8, numpy's step and three part graphs with perf (0: skip)")
    ap.add_argument("--compile-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--spin", nargs=2, metavar=("WHAT", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--numpy-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("MODULAR_CRASH_REPORTING_ENABLED", "false")
    if args.compile_child:
        return compile_child(args.compile_child)
    if args.spin:
        return spin_child(args.assets, args.spin[0], float(args.spin[1]))
    if args.numpy_child:
        return numpy_child(args.assets, args.reps, args.rounds)

    load_before = uptime()
    a, W, bank = load(args.assets)
    d = a.dims
    style = bank.names[0]
    caches = [np.ascontiguousarray(x, np.float32) for x in bank_caches(bank, style)]
    X = step_inputs(W, d, caches)
    descrs = [graph_descr(n, d, X, W) for n in PARTS]
    t0 = time.perf_counter()
    parts = ensure_parts(descrs)
    compile_s = time.perf_counter() - t0
    if args.compile_only:
        print(f"part graphs ready in {compile_s:.1f} s")
        return 0

    from max import engine as max_engine
    from max.driver import CPU, Buffer
    from max.engine import InferenceSession
    from rsmt_studio.inference.graphs import numpy_blocks

    session = InferenceSession(devices=[CPU()])
    fns, np_fns, checks, keep, models = {}, {}, {}, [], {}
    for descr in descrs:
        name = descr["name"]
        path, _, _ = parts[name]
        model = session.init(max_engine.read(path))
        if name == "linear":
            models[name] = model
            continue
        arrays = part_arrays(name, X)
        wnames = sorted(descr["weights"])
        host = [arrays[k] for k in PARTS[name][1]] + [np.ascontiguousarray(W[w], np.float32) for w in wnames]
        keep.append(host)
        bufs = [Buffer.from_numpy(h) for h in host]
        fns[name] = (lambda m=model, b=bufs: m.execute(*b))
        fn = PARTS[name][0]
        Wn = {w: W[w] for w in wnames}
        np_fns[name] = (lambda f=fn, w=Wn, x=arrays: f(numpy_blocks, w, d, x))
        got = [o.to_numpy() for o in fns[name]()]
        want = np_fns[name]()
        checks[name] = round(max(float(np.abs(np.asarray(g) - np.asarray(w)).max()) for g, w in zip(got, want,
                                                                                                  strict=True)), 7)
    timings = {}
    layers = layer_table(models.pop("linear"), W, args.reps, args.rounds)
    for name in MAIN_PARTS:
        t = interleaved({"max": fns[name], "numpy": np_fns[name]}, args.reps, args.rounds)
        timings[name] = t
        print(f"  {name:16s} MAX {t['max']['median_ms'] * 1e3:8.1f} us   numpy {t['numpy']['median_ms'] * 1e3:8.1f} us",
              flush=True)
    whole, generate, _ = engine_reference(args.assets, X, caches, args.reps, args.rounds)
    res = subprocess.run([sys.executable, __file__, "--assets", str(args.assets), "--numpy-child", "--reps",
                          str(args.reps), "--rounds", str(args.rounds)], check=False, capture_output=True, text=True)
    numpy_alone = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else {}
    counts = step_counts(W, d, caches)
    rates = {} if args.skip_rates else measure_machine_rates()
    fl = floor(counts, rates) if rates else {}
    perf = ({w: perf_profile(args.assets, w, args.perf) for w in PERF_TARGETS} if args.perf > 0 else {})
    load_after = uptime()

    overhead_1 = timings["call_1in"]["max"]["median_ms"]
    overhead_30 = timings["call_30in"]["max"]["median_ms"]
    per_input = (overhead_30 - overhead_1) / 29
    rows = []
    for name in MAIN_PARTS:
        n_inputs = len(PARTS[name][1]) + len(descrs[list(PARTS).index(name)]["weights"])
        m, n = timings[name]["max"]["median_ms"], timings[name]["numpy"]["median_ms"]
        call = overhead_1  # the 1-input empty graph: steady run to run (the 30-input one is not)
        cnt = counts["per_part"].get(name, {"macs": 0, "weight_bytes": 0})
        inner = max(m - call, 1e-6)  # for us per op
        alone = numpy_alone.get(name)
        rows.append({"part": name, "what": PARTS[name][3], "graph_ops": parts[name][2], "inputs": n_inputs,
                     "max_us": round(m * 1e3, 1), "max_minus_empty_call_us": round(max(m - call, 0.0) * 1e3, 1),
                     "numpy_us": round(n * 1e3, 1), "max_over_numpy": round(m / n, 2) if n else None,
                     "numpy_alone_us": round(alone * 1e3, 1) if alone else None,
                     "max_over_numpy_alone": round(m / alone, 2) if alone else None,
                     "macs": cnt["macs"], "weight_bytes": cnt["weight_bytes"],
                     "max_weight_gbs": round(cnt["weight_bytes"] / (m / 1e3) / 1e9, 2) if cnt["weight_bytes"] else None,
                     "numpy_weight_gbs": round(cnt["weight_bytes"] / (n / 1e3) / 1e9, 2) if cnt["weight_bytes"] else None,
                     "max_us_per_op": round(inner * 1e3 / parts[name][2], 2) if parts[name][2] else None,
                     "max_vs_numpy_abs": checks[name]})
    sums = {k: round(sum(r[k] or 0.0 for r in rows if r["part"] in STEP_PARTS), 1)
            for k in ("max_us", "max_minus_empty_call_us", "numpy_us", "numpy_alone_us")}
    sums["graph_ops"] = sum(r["graph_ops"] for r in rows if r["part"] in STEP_PARTS)
    report = {"what": "bench/cpu_profile.py: one sampler step at batch 1 in parts, MAX (CPU) vs numpy",
              "assets": str(args.assets), "style": style, "dims": d.to_json(), "machine": machine(),
              "uptime_before": load_before, "uptime_after": load_after,
              "reps": args.reps, "rounds": args.rounds, "compile_or_load_s": round(compile_s, 1),
              "call_overhead_ms": {"1_input": overhead_1, "30_inputs": overhead_30, "per_input": round(per_input, 6)},
              "parts": rows, "sum_of_step_parts": sums, "layers": layers, "timings": timings,
              "whole_step": {**whole, "numpy_alone_step_ms": numpy_alone.get("whole_step")},
              "engine_generate": generate, "counts": counts, "rates": rates, "floor": fl, "perf": perf,
              "max_profiling": MAX_PROFILING_NOTE}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print_table(report)
    print(f"\nJSON: {args.json}")
    return 0


MAX_PROFILING_NOTE = (
    "MAX 26.7's profiling (MODULAR_ENABLE_PROFILING=on|detailed, max.profiler.Tracer) emits NVTX ranges for "
    "Nsight Systems on GPUs; it gives no per-op CPU timings, so the per-op view here is per part graph.")


def bank_caches(bank, style: str):
    """A shipped style's stored FiLM caches, batch 1 (as the engine's StyleCode holds them)."""
    from rsmt_studio.inference.engine import CACHE_NAMES

    if not bank.has_code(style):
        raise RuntimeError("the style bank holds features, not FiLM caches; use the shipped assets")
    return bank.code(style, CACHE_NAMES)


def print_table(r: dict) -> None:
    print(f"\nmachine: {r['machine'].get('Model name')}, {r['machine'].get('cpu_count')} cores, "
          f"L2 {r['machine'].get('L2 cache')}, L3 {r['machine'].get('L3 cache')}")
    print(f"load: before [{r['uptime_before']}]\n      after  [{r['uptime_after']}]")
    print(f"\n{'part':16s} {'ops':>4s} {'in':>3s} {'MAX us':>8s} {'-empty':>8s} {'us/op':>6s} {'numpy':>8s} "
          f"{'MAX/np':>7s} {'np alone':>8s} {'MAX/npa':>7s} {'kMAC':>6s} {'KB':>6s} {'GB/s MAX':>8s} {'np':>5s}  what")

    def f(x, w, p=1):
        return f"{x:{w}.{p}f}" if isinstance(x, (int, float)) else f"{'-':>{w}s}"

    for row in r["parts"]:
        print(f"{row['part']:16s} {row['graph_ops']:4d} {row['inputs']:3d} {f(row['max_us'], 8)} "
              f"{f(row['max_minus_empty_call_us'], 8)} {f(row['max_us_per_op'], 6)} {f(row['numpy_us'], 8)} "
              f"{f(row['max_over_numpy'], 7, 2)} {f(row['numpy_alone_us'], 8)} {f(row['max_over_numpy_alone'], 7, 2)} "
              f"{row['macs'] / 1e3:6.0f} {row['weight_bytes'] / 1e3:6.0f} {f(row['max_weight_gbs'], 8)} "
              f"{f(row['numpy_weight_gbs'], 5)}  {row['what']}")
    s = r["sum_of_step_parts"]
    print(f"{'sum (step parts)':16s} {s['graph_ops']:4d} {'':3s} {s['max_us']:8.1f} {s['max_minus_empty_call_us']:8.1f} "
          f"{'':6s} {s['numpy_us']:8.1f} {s['max_us'] / s['numpy_us']:7.2f} {s['numpy_alone_us']:8.1f} "
          f"{s['max_us'] / max(s['numpy_alone_us'], 1e-9):7.2f}")
    print(f"\n{'layer (x @ w + b)':24s} {'in x out':>11s} {'KB':>6s} {'MAX us':>8s} {'numpy us':>8s} {'MAX/np':>6s} "
          f"{'GB/s MAX':>8s} {'numpy':>6s}")
    for row in r.get("layers", []):
        print(f"{row['layer']:24s} {row['in']:5d}x{row['out']:<5d} {row['kb']:6.0f} {row['max_us']:8.1f} "
              f"{row['numpy_us']:8.1f} {row['max_over_numpy']:6.2f} {row['max_gbs']:8.2f} {row['numpy_gbs']:6.2f}")
    if r.get("layers"):
        print(f"{'sum of the 20 layers':24s} {'':11s} {sum(x['kb'] for x in r['layers']):6.0f} "
              f"{sum(x['max_us'] for x in r['layers']):8.1f} {sum(x['numpy_us'] for x in r['layers']):8.1f}")
    w = r["whole_step"]
    print(f"\nwhole step: MAX steps8 {w['max_steps8_per_frame_ms'] * 1e3:.1f} us per frame "
          f"(call {w['max_steps8_call_ms']['median_ms']:.3f} ms / 8); numpy step {w['numpy_step_ms']['median_ms'] * 1e3:.1f} us "
          f"in this process, {(w.get('numpy_alone_step_ms') or float('nan')) * 1e3:.1f} us in a process without MAX")
    g = r["engine_generate"]
    if "total_ms" in g:
        print(f"generate (40 frames): total {g['total_ms']} ms, sampler {g['sampler_ms']} ms "
              f"({g['sampler_ms_per_frame']} per frame), postprocess {g['postprocess_ms']} ms "
              f"({g['postprocess_ms_per_frame']} per frame), prepare {g['prepare_ms']} ms")
    f = r.get("floor") or {}
    if f:
        print(f"\nper step: {f['macs_per_step'] / 1e6:.3f} M multiply-adds, {f['mb_per_step']} MB read")
        for label in ("1core", "2core"):
            if label in f:
                x = f[label]
                print(f"  {label}: SGEMM {x['sgemm_gflops']} GFLOP/s, SGEMV L2/L3/DRAM {x['sgemv_l2_gbs']}/"
                      f"{x['sgemv_l3_gbs']}/{x['sgemv_dram_gbs']} GB/s -> compute {x['compute_ms_per_frame']} ms, "
                      f"bytes {x['bytes_ms_per_frame']} ms; floor {x['floor_ms_per_frame']} ms/frame, "
                      f"{x['floor_ms_per_transition']} ms/transition; 3x target {x['target_3x_ms_per_transition']} ms")
        bw = r["rates"].get("numpy_1thread", {})
        print("  numpy 1-thread read (sum) / copy GB/s: " + ", ".join(
            f"{k} {v['read_sum_gbs']}/{v['copy_gbs_read_plus_write']}" for k, v in bw.items()))
    for what, p in (r.get("perf") or {}).items():
        if "groups_pct" in p:
            print(f"\nperf, {what} in a loop ({p['loop'].get('ms_per_call', float('nan')):.2f} ms per call): "
                  + ", ".join(f"{k} {v}%" for k, v in p["groups_pct"].items()))


if __name__ == "__main__":
    sys.exit(main())
