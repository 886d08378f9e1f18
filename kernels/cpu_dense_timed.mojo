"""Timed twins of kernels/cpu_dense.mojo's CPU ops (the weight layers, the FiLM block and the step's two tails), for the on-demand step profile (issue 17; the latency
panel's "Profile step", docs/performance.md "CPU kernels: the step profile").

Why: MAX 26.7 records nothing per op on the CPU (`MODULAR_ENABLE_PROFILING` only emits NVTX ranges for GPUs, and
its `detailed` level aborts a CPU process), so a kernel reports its own time: each op here calls the untimed op's
`execute` unchanged (the same code, so the same numbers) between two reads of the monotonic clock, and writes the
nanoseconds in between to an extra (1,) int64 output. inference/graphs/cpu_profile.py builds the profiling steps
graph with these and sums the outputs per op kind. The shipped graphs never use them.

This file is not part of cpu_dense.mojo on purpose: the compiled models' cache key hashes cpu_dense.mojo byte for
byte (runtime/cache.py), and the shipped ones must stay valid.
"""

import extensibility
from extensibility import InputTensor, OutputTensor
from max.gpu.host import DeviceContext
from std.time import perf_counter_ns

from .cpu_dense import Dense, FilmElu, LSTMCell, MoEDense
from .cpu_step import I64P, W1, W2, _sampler_step

comptime IP = Pointer[Int64, MutAnyOrigin]


@always_inline
def _record(ns: OutputTensor[dtype=DType.int64, rank=1, ...], t0: Int, t1: Int):
    rebind[IP](ns.unsafe_ptr()).unsafe_store(0, Int64(t1 - t0))


@extensibility.register("rsmt_dense_timed")
struct DenseTimed:
    """`rsmt_dense`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, act: Int, workers: Int](
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        Dense.execute[target, act, workers](y, x, w, b, ctx)
        _record(ns, t0, perf_counter_ns())


@extensibility.register("rsmt_moe_dense_timed")
struct MoEDenseTimed:
    """`rsmt_moe_dense`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, act: Int, workers: Int, n_experts: Int](
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        g: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        MoEDense.execute[target, act, workers, n_experts](y, x, g, w, b, ctx)
        _record(ns, t0, perf_counter_ns())


@extensibility.register("rsmt_lstm_cell_timed")
struct LSTMCellTimed:
    """`rsmt_lstm_cell`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, workers: Int](
        c_new: OutputTensor[dtype=DType.float32, rank=2, ...],
        h_new: OutputTensor[dtype=DType.float32, rank=2, ...],
        gates: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        h: InputTensor[dtype=DType.float32, rank=2, ...],
        c: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        LSTMCell.execute[target, workers](c_new, h_new, gates, x, h, c, w, b, ctx)
        _record(ns, t0, perf_counter_ns())


@extensibility.register("rsmt_film_elu_timed")
struct FilmEluTimed:
    """`rsmt_film_elu`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, workers: Int](
        out_: OutputTensor[dtype=DType.float32, rank=2, ...],
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        q: OutputTensor[dtype=DType.float32, rank=2, ...],
        ctx_: OutputTensor[dtype=DType.float32, rank=2, ...],
        att: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        gamma: InputTensor[dtype=DType.float32, rank=2, ...],
        beta: InputTensor[dtype=DType.float32, rank=2, ...],
        keys: InputTensor[dtype=DType.float32, rank=3, ...],
        values: InputTensor[dtype=DType.float32, rank=3, ...],
        wq: InputTensor[dtype=DType.float32, rank=2, ...],
        bq: InputTensor[dtype=DType.float32, rank=1, ...],
        scale: InputTensor[dtype=DType.float32, rank=1, ...],
        wo: InputTensor[dtype=DType.float32, rank=2, ...],
        bo: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        FilmElu.execute[target, workers](out_, y, q, ctx_, att, x, gamma, beta, keys, values, wq, bq, scale, wo, bo, ctx)
        _record(ns, t0, perf_counter_ns())


@extensibility.register("rsmt_sampler_step_timed")
struct SamplerStepTimed:
    """`rsmt_sampler_step`, plus ns (5,) int64: the nanoseconds spent in its dense layers, expert layers, LSTM cell,
    FiLM blocks and tails (graphs/cpu_timed.py KINDS); the glue between them counts in the kernel it precedes.
    CPU only."""

    @staticmethod
    def execute[target: StaticString, n_phases: Int, latent: Int, p3: Int, ang_scale: Float32, max_tta: Int,
                n_experts: Int, workers: Int](
        p_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        v_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        r_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        phase_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        h_next: OutputTensor[dtype=DType.float32, rank=2, ...],
        c_next: OutputTensor[dtype=DType.float32, rank=2, ...],
        state_next: OutputTensor[dtype=DType.float32, rank=2, ...],
        offset_next: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        state_in: W2, offset_in: W2,
        p: InputTensor[dtype=DType.float32, rank=3, ...],
        r: InputTensor[dtype=DType.float32, rank=3, ...],
        phase: InputTensor[dtype=DType.float32, rank=3, ...],
        h: W2, c: W2,
        tgt_p: InputTensor[dtype=DType.float32, rank=3, ...],
        tgt_r: InputTensor[dtype=DType.float32, rank=3, ...],
        tgt_latent: W2,
        tta: InputTensor[dtype=DType.int64, rank=1, ...],
        z: W2,
        e_gamma: W2, e_beta: W2,
        e_keys: InputTensor[dtype=DType.float32, rank=3, ...],
        e_values: InputTensor[dtype=DType.float32, rank=3, ...],
        p_gamma: W2, p_beta: W2,
        p_keys: InputTensor[dtype=DType.float32, rank=3, ...],
        p_values: InputTensor[dtype=DType.float32, rank=3, ...],
        se1_w: W2, se1_b: W1, se2_w: W2, se2_b: W1, oe1_w: W2, oe1_b: W1, oe2_w: W2, oe2_b: W1,
        emb_w: W2, emb_b: W1, ef_qw: W2, ef_qb: W1, ef_ow: W2, ef_ob: W1, ef_scale: W1,
        pe_latent: W2, pe_film: W2, lstm_w: W2, lstm_b: W1,
        f1_w: W2, f1_b: W1, f2_w: W2, f2_b: W1, f3_w: W2, f3_b: W1, f4_w: W2, f4_b: W1,
        pf_qw: W2, pf_qb: W1, pf_ow: W2, pf_ob: W1, pf_scale: W1,
        g1_w: W2, g1_b: W1, g2_w: W2, g2_b: W1, g3_w: W2, g3_b: W1,
        x1_w: W2, x1_b: W1, x2_w: W2, x2_b: W1, x3_w: W2, x3_b: W1,
        ctx: DeviceContext,
    ) raises:
        var nsp = rebind[IP](ns.unsafe_ptr())
        for k in range(5):
            nsp.unsafe_store(k, Int64(0))
        _sampler_step[True, n_phases, latent, p3, ang_scale, max_tta, n_experts, workers](
            p_next, v_next, r_next, phase_next, h_next, c_next, state_next, offset_next, state_in, offset_in, p, r,
            phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, e_gamma, e_beta, e_keys, e_values, p_gamma, p_beta, p_keys,
            p_values, se1_w, se1_b, se2_w, se2_b, oe1_w, oe1_b, oe2_w, oe2_b, emb_w, emb_b, ef_qw, ef_qb, ef_ow,
            ef_ob, ef_scale, pe_latent, pe_film, lstm_w, lstm_b, f1_w, f1_b, f2_w, f2_b, f3_w, f3_b, f4_w, f4_b,
            pf_qw, pf_qb, pf_ow, pf_ob, pf_scale, g1_w, g1_b, g2_w, g2_b, g3_w, g3_b, x1_w, x1_b, x2_w, x2_b, x3_w,
            x3_b, rebind[I64P](nsp))
