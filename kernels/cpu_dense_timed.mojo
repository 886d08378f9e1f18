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

from .cpu_dense import Dense, FilmElu, LSTMCell, MoEDense, StepAdvance, StepHead

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


@extensibility.register("rsmt_step_head_timed")
struct StepHeadTimed:
    """`rsmt_step_head`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, n_phases: Int, latent: Int, p3: Int, ang_scale: Float32](
        new_phase: OutputTensor[dtype=DType.float32, rank=3, ...],
        gate_in: OutputTensor[dtype=DType.float32, rank=2, ...],
        expert_in: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        y: InputTensor[dtype=DType.float32, rank=2, ...],
        phase: InputTensor[dtype=DType.float32, rank=3, ...],
        state: InputTensor[dtype=DType.float32, rank=2, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        StepHead.execute[target, n_phases, latent, p3, ang_scale](new_phase, gate_in, expert_in, y, phase, state, ctx)
        _record(ns, t0, perf_counter_ns())


@extensibility.register("rsmt_step_advance_timed")
struct StepAdvanceTimed:
    """`rsmt_step_advance`, plus ns (1,) int64: the nanoseconds spent in it. CPU only."""

    @staticmethod
    def execute[target: StaticString, n_phases: Int](
        p_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        v_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        r_next: OutputTensor[dtype=DType.float32, rank=3, ...],
        state: OutputTensor[dtype=DType.float32, rank=2, ...],
        offset: OutputTensor[dtype=DType.float32, rank=2, ...],
        ns: OutputTensor[dtype=DType.int64, rank=1, ...],
        delta: InputTensor[dtype=DType.float32, rank=2, ...],
        y: InputTensor[dtype=DType.float32, rank=2, ...],
        p: InputTensor[dtype=DType.float32, rank=3, ...],
        r: InputTensor[dtype=DType.float32, rank=3, ...],
        tgt_p: InputTensor[dtype=DType.float32, rank=3, ...],
        tgt_r: InputTensor[dtype=DType.float32, rank=3, ...],
        ctx: DeviceContext,
    ) raises:
        var t0 = perf_counter_ns()
        StepAdvance.execute[target, n_phases](p_next, v_next, r_next, state, offset, delta, y, p, r, tgt_p, tgt_r, ctx)
        _record(ns, t0, perf_counter_ns())

