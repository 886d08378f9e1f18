"""Timed twins of kernels/cpu_dense.mojo's three CPU ops, for the on-demand step profile (issue 17; the latency
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

from .cpu_dense import Dense, LSTMCell, MoEDense

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
