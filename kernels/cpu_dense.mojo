"""The CPU sampler step's weight layers as Mojo custom ops: dense `act(x @ w + b)`, the 8-expert MoE layer and
the LSTM cell, for small batches on a few cores (issue 17; docs/performance.md, "CPU kernels"); a whole FiLM
block over the style tokens with the ELU after it (`rsmt_film_elu`), ~35 small graph ops in blocks.py's form; and
the step's tails as functions on raw pointers. The CPU prepare graph uses the ops; the steps graph runs each step
as one op (kernels/cpu_step.mojo) that calls these functions.

Why: at batch 1 MAX 26.7's CPU matmul split the step's six wide layers (the LSTM cell 896 x 1536, predictor
fc1/fc2, the three expert layers) into tasks across its worker threads and ran them at 1-5 GB/s while the
weights sat in cache (bench/cpu_profile.py). Here one op is one pass over the weights, split into at most
`workers` contiguous column ranges (one task each), with the bias, the expert blend and the activation (or the
LSTM's gate maths) fused in.

Layouts are the adapters' (inference/graphs/blocks.py): w (in, out) row-major; the MoE's experts side by side,
w (in, E*out) and b (E*out,); the LSTM's w = [W_ih; W_hh]^T (in + hidden, 4*hidden) in torch's gate order
(i, f, g, o), b = b_ih + b_hh. All float32, contiguous.

How, below PACKED_ROWS batch rows (the studio's batch 1): the output columns are cut into register tiles of 4
SIMD vectors (64 floats with AVX-512); a tile's accumulators run over a block of KBLOCK weight rows for ROWS batch
rows at a time (one weight load feeds ROWS FMAs) and are added into the output. The columns left over (fewer than
a tile) go by single vectors, then singly. From PACKED_ROWS rows on (compute-bound: batch 64), `_packed`: a tile
of KC weight rows x MT columns is copied into a contiguous buffer that stays in L1 and feeds every batch row,
MR rows x MT columns of accumulators at a time (docs/performance.md, "Large layers: a packed micro-kernel").
"""

import extensibility
from algorithm.cpu.rowwise import sync_parallelize
from extensibility import InputTensor, OutputTensor
from max.gpu.host import DeviceContext
from std.math import cos, exp, log, sin, sqrt, tanh
from std.memory import stack_allocation
from std.sys.info import simd_width_of

comptime FP = Pointer[Float32, MutAnyOrigin]
comptime SW = simd_width_of[DType.float32]()
comptime TILE = 4 * SW  # columns per register tile
#: weight rows per block (streams read side by side): 8 streamed a weight matrix 1.1-1.3x as fast as 16 on one core
#: of the 2-core AMD EPYC, from DRAM and from L3 (a throwaway Mojo benchmark; docs/performance.md)
comptime KBLOCK = 8
comptime ROWS = 4 if SW >= 16 else 2  # batch rows that share one weight load (AVX2 has 16 vector registers)
#: below this many multiply-adds, or batch rows, a layer runs as one task: a second task's hand-off cost
#: 0.3-0.7 ms per call on the loaded 2-core machine (bench/cpu_kernels.py), more than a batch-1 layer's work
comptime PARALLEL_MACS = 65536
comptime PARALLEL_ROWS = 8
#: from this many batch rows on, the weights go through the packed micro-kernel (_packed): MR batch rows x MT
#: columns of accumulators (12 of AVX2's 16 vector registers) over KC weight rows packed side by side (8 KiB)
comptime PACKED_ROWS = 8
comptime MR = 6
comptime MT = 2 * SW
comptime KC = 128

comptime ACT_NONE = 0
comptime ACT_ELU = 1
comptime ACT_RELU = 2

comptime MODE_DENSE = 0  # y = x @ w + b
comptime MODE_MOE = 1  # y = sum_e g[:, e] * (x @ w_e + b_e), w_e = w[:, e*out:(e+1)*out]
comptime MODE_LSTM = 2  # gates = [x, h] @ w + b -> h, c


@always_inline
def _act[act: Int, tw: Int](v: SIMD[DType.float32, tw]) -> SIMD[DType.float32, tw]:
    comptime if act == ACT_ELU:
        return max(v, 0) + (exp(min(v, 0)) - 1)  # exp(0) - 1 is exactly 0
    elif act == ACT_RELU:
        return max(v, 0)
    else:
        return v


@always_inline
def _sigmoid[tw: Int](v: SIMD[DType.float32, tw]) -> SIMD[DType.float32, tw]:
    return 1 / (1 + exp(-v))


@always_inline
def _add_into[tw: Int](yp: FP, off: Int, a: SIMD[DType.float32, tw], scale: Float32):
    yp.unsafe_store(off, yp.unsafe_load[width=tw](off) + scale * a)


@always_inline
def _accumulate[tw: Int, r: Int, gated: Bool](
    xp: FP, ldx: Int, b0: Int, wp: FP, ldw: Int, wc: Int, i0: Int, i1: Int, xi0: Int,
    yp: FP, ldy: Int, yc: Int, gp: FP, ldg: Int, e: Int,
):
    """Adds y[b0+k, yc:yc+tw] += s_k * sum over weight rows i0 <= i < i1 of x[b0+k, xi0+i-i0] * w[i, wc:wc+tw], for
    k < r, where s_k = g[b0+k, e] if gated else 1."""
    var a0 = SIMD[DType.float32, tw](0)
    var a1 = SIMD[DType.float32, tw](0)
    var a2 = SIMD[DType.float32, tw](0)
    var a3 = SIMD[DType.float32, tw](0)
    var xo = b0 * ldx + xi0 - i0
    for i in range(i0, i1):
        var wv = wp.unsafe_load[width=tw](i * ldw + wc)
        a0 += xp.unsafe_load(xo + i) * wv
        comptime if r > 1:
            a1 += xp.unsafe_load(xo + ldx + i) * wv
        comptime if r > 2:
            a2 += xp.unsafe_load(xo + 2 * ldx + i) * wv
        comptime if r > 3:
            a3 += xp.unsafe_load(xo + 3 * ldx + i) * wv
    comptime for k in range(r):
        var s: Float32 = 1
        comptime if gated:
            s = gp.unsafe_load((b0 + k) * ldg + e)
        var a = a0
        comptime if k == 1:
            a = a1
        elif k == 2:
            a = a2
        elif k == 3:
            a = a3
        _add_into[tw](yp, (b0 + k) * ldy + yc, a, s)


@always_inline
def _rows[tw: Int, gated: Bool](
    n_rows: Int, xp: FP, ldx: Int, xi0: Int, i0: Int, i1: Int, wp: FP, ldw: Int, wc: Int,
    yp: FP, ldy: Int, yc: Int, gp: FP, ldg: Int, e: Int,
):
    """_accumulate over every batch row, ROWS rows at a time, for the weight rows i0 .. i1 (x's columns from xi0)."""
    if i1 <= i0:
        return
    var b = 0
    while b + ROWS <= n_rows:
        _accumulate[tw, ROWS, gated](xp, ldx, b, wp, ldw, wc, i0, i1, xi0, yp, ldy, yc, gp, ldg, e)
        b += ROWS
    while b < n_rows:
        _accumulate[tw, 1, gated](xp, ldx, b, wp, ldw, wc, i0, i1, xi0, yp, ldy, yc, gp, ldg, e)
        b += 1


@always_inline
def _tile[tw: Int, stage: Int, mode: Int, act: Int](
    c: Int, e0: Int, e1: Int, k0: Int, k1: Int, n_rows: Int, xp: FP, ldx: Int, n_in: Int, hp: FP, ldh: Int, wp: FP, bp: FP, gp: FP,
    n_groups: Int, n_cols: Int, yp: FP, sp: FP, cp: FP, hn: FP,
):
    """Columns c .. c+tw of the layer's output (MoE: of every expert; LSTM: hidden units, of all four gates):
    stage 0 sets the accumulators to the bias (the MoE: the gate-blended biases), stage 1 adds the weight rows
    k0 .. k1 of [x; h] (h: the LSTM's) of the groups (experts, gates) e0 .. e1, stage 2 applies the activation or the LSTM's gate maths."""
    var ldw = n_groups * n_cols
    comptime if stage == 0:
        for b in range(n_rows):
            comptime if mode == MODE_DENSE:
                yp.unsafe_store(b * n_cols + c, bp.unsafe_load[width=tw](c))
            elif mode == MODE_MOE:
                var acc = SIMD[DType.float32, tw](0)
                for e in range(n_groups):
                    acc += gp.unsafe_load(b * n_groups + e) * bp.unsafe_load[width=tw](e * n_cols + c)
                yp.unsafe_store(b * n_cols + c, acc)
            else:
                for e in range(n_groups):
                    sp.unsafe_store(b * ldw + e * n_cols + c, bp.unsafe_load[width=tw](e * n_cols + c))
    elif stage == 1:
        var xk1 = min(k1, n_in)  # rows of this block that multiply x; the LSTM's rows from n_in on multiply h
        for e in range(e0, e1):
            comptime if mode == MODE_DENSE:
                _rows[tw, False](n_rows, xp, ldx, k0, k0, xk1, wp, ldw, c, yp, n_cols, c, gp, n_groups, e)
            elif mode == MODE_MOE:
                _rows[tw, True](n_rows, xp, ldx, k0, k0, xk1, wp, ldw, e * n_cols + c, yp, n_cols, c, gp, n_groups, e)
            else:
                var sc = e * n_cols + c
                _rows[tw, False](n_rows, xp, ldx, k0, k0, xk1, wp, ldw, sc, sp, ldw, sc, gp, n_groups, e)
                var hk0 = max(k0, n_in)
                _rows[tw, False](n_rows, hp, ldh, hk0 - n_in, hk0, k1, wp, ldw, sc, sp, ldw, sc, gp, n_groups, e)
    else:
        for b in range(n_rows):
            comptime if mode == MODE_LSTM:
                var o = b * ldw + c
                var gi = _sigmoid[tw](sp.unsafe_load[width=tw](o))
                var gf = _sigmoid[tw](sp.unsafe_load[width=tw](o + n_cols))
                var gg = tanh(sp.unsafe_load[width=tw](o + 2 * n_cols))
                var go = _sigmoid[tw](sp.unsafe_load[width=tw](o + 3 * n_cols))
                var c_new = gf * cp.unsafe_load[width=tw](b * n_cols + c) + gi * gg
                yp.unsafe_store(b * n_cols + c, c_new)
                hn.unsafe_store(b * n_cols + c, go * tanh(c_new))
            else:
                comptime if act != ACT_NONE:
                    var o = b * n_cols + c
                    yp.unsafe_store(o, _act[act, tw](yp.unsafe_load[width=tw](o)))


@always_inline
def _stage[stage: Int, mode: Int, act: Int](
    t: Int, n_tasks: Int, k0: Int, k1: Int, n_rows: Int, xp: FP, ldx: Int, n_in: Int, hp: FP, ldh: Int, wp: FP,
    bp: FP, gp: FP, n_groups: Int, n_cols: Int, yp: FP, sp: FP, cp: FP, hn: FP,
):
    """One stage of every tile of task t of n_tasks: its contiguous share of the register tiles; the last task
    also takes the columns left over (fewer than a tile: by vectors of SW, 8, 4, then singly)."""
    var n_tiles = n_cols // TILE
    # stage 1 goes group by group (expert, gate), so that the columns it reads ascend across the tiles
    var n_passes = n_groups if stage == 1 else 1
    for p in range(n_passes):
        var e0 = p if stage == 1 else 0
        var e1 = p + 1 if stage == 1 else n_groups
        for k in range(t * n_tiles // n_tasks, (t + 1) * n_tiles // n_tasks):
            _tile[TILE, stage, mode, act](k * TILE, e0, e1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp,
                                          n_groups, n_cols, yp, sp, cp, hn)
        if t == n_tasks - 1:
            var c = n_tiles * TILE
            while c + SW <= n_cols:
                _tile[SW, stage, mode, act](c, e0, e1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                            n_cols, yp, sp, cp, hn)
                c += SW
            while c + 8 <= n_cols:  # narrower vectors before single columns (168 = 128 + 32 + 8)
                _tile[8, stage, mode, act](c, e0, e1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                c += 8
            while c + 4 <= n_cols:
                _tile[4, stage, mode, act](c, e0, e1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                c += 4
            while c < n_cols:
                _tile[1, stage, mode, act](c, e0, e1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                c += 1


@always_inline
def _pack(wp: FP, ldw: Int, wc: Int, k0: Int, k1: Int, pk: FP):
    """pk[(k - k0) * MT + j] = w[k, wc + j] for k0 <= k < k1, j < MT: a tile's weight rows side by side."""
    for k in range(k0, k1):
        pk.unsafe_store((k - k0) * MT, wp.unsafe_load[width=MT](k * ldw + wc))


@always_inline
def _micro[r: Int, gated: Bool](
    xp: FP, ldx: Int, b0: Int, xi0: Int, nk: Int, pk: FP, yp: FP, ldy: Int, yc: Int, gp: FP, ldg: Int, e: Int,
):
    """y[b0+k, yc:yc+MT] += s_k * sum over j < nk of x[b0+k, xi0+j] * pk[j, :], for k < r (r <= MR), where s_k =
    g[b0+k, e] if gated else 1: r x MT accumulators in registers (12 vectors at r = 6), one packed weight load
    feeding r multiply-adds."""
    var a0 = SIMD[DType.float32, MT](0)
    var a1 = SIMD[DType.float32, MT](0)
    var a2 = SIMD[DType.float32, MT](0)
    var a3 = SIMD[DType.float32, MT](0)
    var a4 = SIMD[DType.float32, MT](0)
    var a5 = SIMD[DType.float32, MT](0)
    var xo = b0 * ldx + xi0
    for j in range(nk):
        var wv = pk.unsafe_load[width=MT](j * MT)
        a0 += xp.unsafe_load(xo + j) * wv
        comptime if r > 1:
            a1 += xp.unsafe_load(xo + ldx + j) * wv
        comptime if r > 2:
            a2 += xp.unsafe_load(xo + 2 * ldx + j) * wv
        comptime if r > 3:
            a3 += xp.unsafe_load(xo + 3 * ldx + j) * wv
        comptime if r > 4:
            a4 += xp.unsafe_load(xo + 4 * ldx + j) * wv
        comptime if r > 5:
            a5 += xp.unsafe_load(xo + 5 * ldx + j) * wv
    comptime for k in range(r):
        var s: Float32 = 1
        comptime if gated:
            s = gp.unsafe_load((b0 + k) * ldg + e)
        var a = a0
        comptime if k == 1:
            a = a1
        elif k == 2:
            a = a2
        elif k == 3:
            a = a3
        elif k == 4:
            a = a4
        elif k == 5:
            a = a5
        _add_into[MT](yp, (b0 + k) * ldy + yc, a, s)


@always_inline
def _micro_rows[gated: Bool](
    n_rows: Int, xp: FP, ldx: Int, xi0: Int, nk: Int, pk: FP, yp: FP, ldy: Int, yc: Int, gp: FP, ldg: Int, e: Int,
):
    """_micro over every batch row, MR rows at a time, then the rows left over in one call."""
    var b = 0
    while b + MR <= n_rows:
        _micro[MR, gated](xp, ldx, b, xi0, nk, pk, yp, ldy, yc, gp, ldg, e)
        b += MR
    var rest = n_rows - b
    comptime for r in range(1, MR):
        if rest == r:
            _micro[r, gated](xp, ldx, b, xi0, nk, pk, yp, ldy, yc, gp, ldg, e)


def _packed[mode: Int, act: Int](
    t: Int, n_tasks: Int, n_rows: Int, xp: FP, ldx: Int, n_in: Int, hp: FP, ldh: Int, n_h: Int, wp: FP, bp: FP,
    gp: FP, n_groups: Int, n_cols: Int, yp: FP, sp: FP, cp: FP, hn: FP,
):
    """Stage 1 of task t for a batch of PACKED_ROWS rows or more: the product is compute-bound there, and the
    single-row loop nest re-read each weight block from L2 (or beyond) per pair of rows: the layers' row strides
    are multiples of 4 KiB at the full widths, so a block's rows fall into the same cache sets. Here the weights
    go KC rows by MT columns at a time: a tile is packed into a contiguous buffer (8 KiB, in L1) and feeds every
    batch row, MR rows at a time, each weight vector loaded once per MR rows (_micro). The task's columns are the
    same as _stage's (its register tiles; the last task the leftover columns too, those narrower than MT by
    _tile)."""
    var n_tiles = n_cols // TILE
    var c0 = t * n_tiles // n_tasks * TILE
    var c1 = (t + 1) * n_tiles // n_tasks * TILE
    var last = t == n_tasks - 1
    var cm = c1  # the end of the columns the micro-kernel takes
    if last:
        cm = c1 + (n_cols - c1) // MT * MT
    var ldw = n_groups * n_cols
    var pk = rebind[FP](stack_allocation[KC * MT, Float32, alignment=64]())
    var k0 = 0
    while k0 < n_in + n_h:
        var k1 = min(k0 + KC, n_in + n_h)
        if k0 < n_in and k1 > n_in:  # a block does not straddle x and h
            k1 = n_in
        var src = xp  # the rows of [x; h] this block multiplies
        var lds = ldx
        var si0 = k0
        if k0 >= n_in:
            src = hp
            lds = ldh
            si0 = k0 - n_in
        for e in range(n_groups):
            for c in range(c0, cm, MT):
                var wc = e * n_cols + c
                _pack(wp, ldw, wc, k0, k1, pk)
                comptime if mode == MODE_DENSE:
                    _micro_rows[False](n_rows, src, lds, si0, k1 - k0, pk, yp, n_cols, c, gp, n_groups, e)
                elif mode == MODE_MOE:
                    _micro_rows[True](n_rows, src, lds, si0, k1 - k0, pk, yp, n_cols, c, gp, n_groups, e)
                else:
                    _micro_rows[False](n_rows, src, lds, si0, k1 - k0, pk, sp, ldw, wc, gp, n_groups, e)
            if last:
                var c = cm
                while c + SW <= n_cols:
                    _tile[SW, 1, mode, act](c, e, e + 1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                            n_cols, yp, sp, cp, hn)
                    c += SW
                while c + 8 <= n_cols:
                    _tile[8, 1, mode, act](c, e, e + 1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                    c += 8
                while c + 4 <= n_cols:
                    _tile[4, 1, mode, act](c, e, e + 1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                    c += 4
                while c < n_cols:
                    _tile[1, 1, mode, act](c, e, e + 1, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups,
                                           n_cols, yp, sp, cp, hn)
                    c += 1
        k0 = k1


def _columns[mode: Int, act: Int](
    t: Int, n_tasks: Int, n_rows: Int, xp: FP, ldx: Int, n_in: Int, hp: FP, ldh: Int, n_h: Int, wp: FP, bp: FP,
    gp: FP, n_groups: Int, n_cols: Int, yp: FP, sp: FP, cp: FP, hn: FP,
):
    """Task t of n_tasks. The weights are read KBLOCK rows at a time across the task's whole width, so the
    rows of a block are read front to back side by side (streams the hardware prefetcher follows)."""
    _stage[0, mode, act](t, n_tasks, 0, 0, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups, n_cols, yp, sp, cp,
                         hn)
    if n_rows >= PACKED_ROWS:
        _packed[mode, act](t, n_tasks, n_rows, xp, ldx, n_in, hp, ldh, n_h, wp, bp, gp, n_groups, n_cols, yp, sp, cp,
                           hn)
    else:
        var k0 = 0
        while k0 < n_in + n_h:
            var k1 = min(k0 + KBLOCK, n_in + n_h)
            if k0 < n_in and k1 > n_in:  # a block does not straddle x and h
                k1 = n_in
            _stage[1, mode, act](t, n_tasks, k0, k1, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups, n_cols,
                                 yp, sp, cp, hn)
            k0 = k1
    _stage[2, mode, act](t, n_tasks, 0, 0, n_rows, xp, ldx, n_in, hp, ldh, wp, bp, gp, n_groups, n_cols, yp, sp, cp,
                         hn)


def _run[mode: Int, act: Int, workers: Int](
    n_rows: Int, xp: FP, ldx: Int, n_in: Int, hp: FP, ldh: Int, n_h: Int, wp: FP, bp: FP, gp: FP, n_groups: Int, n_cols: Int,
    yp: FP, sp: FP, cp: FP, hn: FP,
) raises:
    var n_tasks = min(workers, max(n_cols // TILE, 1))
    if n_rows < PARALLEL_ROWS or n_rows * (n_in + n_h) * n_groups * n_cols < PARALLEL_MACS:
        n_tasks = 1
    if n_tasks == 1:
        _columns[mode, act](0, 1, n_rows, xp, ldx, n_in, hp, ldh, n_h, wp, bp, gp, n_groups, n_cols, yp, sp, cp, hn)
        return

    def task(t: Int) raises {var n_tasks, var n_rows, var xp, var ldx, var n_in, var hp, var ldh, var n_h, var wp, var bp, var gp,
                             var n_groups, var n_cols, var yp, var sp, var cp, var hn}:
        _columns[mode, act](t, n_tasks, n_rows, xp, ldx, n_in, hp, ldh, n_h, wp, bp, gp, n_groups, n_cols, yp, sp, cp, hn)

    sync_parallelize(task, n_tasks)


def _rows_ok(t: InputTensor[dtype=DType.float32, rank=2, ...], op: StaticString) raises:
    """The kernels read an input's rows with any stride, but each row's elements must be adjacent."""
    if Int(t.dim_size(1)) > 1 and Int(t.stride_length(1)) != 1:
        raise Error(op, ": an input's rows must be contiguous")


def _dense_ok(t: InputTensor[dtype=DType.float32, rank=2, ...], op: StaticString) raises:
    if Int(t.dim_size(0)) > 1 and Int(t.stride_length(0)) != Int(t.dim_size(1)) or Int(t.dim_size(1)) > 1 and Int(
        t.stride_length(1)
    ) != 1:
        raise Error(op, ": the gate and cell-state inputs must be contiguous")


@extensibility.register("rsmt_dense")
struct Dense:
    """Dense: y (B, out) = act(x (B, in) @ w (in, out) + b (out,)); act: 0 none, 1 ELU, 2 ReLU. CPU only."""

    @staticmethod
    def execute[target: StaticString, act: Int, workers: Int](
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        comptime if target != "cpu":
            raise Error("rsmt_dense is a CPU kernel")
        _rows_ok(x, "rsmt_dense")
        var xp = rebind[FP](x.unsafe_ptr())
        _run[MODE_DENSE, act, workers](Int(x.dim_size(0)), xp, Int(x.stride_length(0)), Int(w.dim_size(0)), xp, 0, 0,
                                       rebind[FP](w.unsafe_ptr()), rebind[FP](b.unsafe_ptr()), xp, 1,
                                       Int(w.dim_size(1)), rebind[FP](y.unsafe_ptr()), xp, xp, xp)


@extensibility.register("rsmt_moe_dense")
struct MoEDense:
    """MoE layer: y (B, out) = act(sum over experts e of g[:, e] * (x @ w[:, e*out:(e+1)*out] + b[e*out:(e+1)*out])):
    x (B, in), g (B, E), w (in, E*out) experts side by side, b (E*out,). CPU only."""

    @staticmethod
    def execute[target: StaticString, act: Int, workers: Int, n_experts: Int](
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        g: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        comptime if target != "cpu":
            raise Error("rsmt_moe_dense is a CPU kernel")
        _rows_ok(x, "rsmt_moe_dense")
        _dense_ok(g, "rsmt_moe_dense")
        var xp = rebind[FP](x.unsafe_ptr())
        _run[MODE_MOE, act, workers](Int(x.dim_size(0)), xp, Int(x.stride_length(0)), Int(w.dim_size(0)), xp, 0, 0,
                                     rebind[FP](w.unsafe_ptr()), rebind[FP](b.unsafe_ptr()),
                                     rebind[FP](g.unsafe_ptr()), n_experts, Int(w.dim_size(1)) // n_experts,
                                     rebind[FP](y.unsafe_ptr()), xp, xp, xp)


@extensibility.register("rsmt_lstm_cell")
struct LSTMCell:
    """LSTM cell as torch.nn.LSTMCell: x (B, in), h (B, H), c (B, H), w (in + H, 4H), b (4H,) -> c_new (B, H), h_new (B, H),
    and the pre-activation gates (B, 4H) (the kernel's scratch). CPU only."""

    @staticmethod
    def execute[target: StaticString, workers: Int](
        c_new: OutputTensor[dtype=DType.float32, rank=2, ...],
        h_new: OutputTensor[dtype=DType.float32, rank=2, ...],
        gates: OutputTensor[dtype=DType.float32, rank=2, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        h: InputTensor[dtype=DType.float32, rank=2, ...],
        c: InputTensor[dtype=DType.float32, rank=2, ...],
        w: InputTensor[dtype=DType.float32, rank=2, ...],
        b: InputTensor[dtype=DType.float32, rank=1, ...],
        ctx: DeviceContext,
    ) raises:
        comptime if target != "cpu":
            raise Error("rsmt_lstm_cell is a CPU kernel")
        _rows_ok(x, "rsmt_lstm_cell")
        _rows_ok(h, "rsmt_lstm_cell")
        _dense_ok(c, "rsmt_lstm_cell")
        var hidden = Int(h.dim_size(1))
        _run[MODE_LSTM, ACT_NONE, workers](Int(x.dim_size(0)), rebind[FP](x.unsafe_ptr()), Int(x.stride_length(0)),
                                           Int(x.dim_size(1)), rebind[FP](h.unsafe_ptr()), Int(h.stride_length(0)),
                                           hidden, rebind[FP](w.unsafe_ptr()),
                                           rebind[FP](b.unsafe_ptr()), rebind[FP](b.unsafe_ptr()), 4, hidden,
                                           rebind[FP](c_new.unsafe_ptr()), rebind[FP](gates.unsafe_ptr()),
                                           rebind[FP](c.unsafe_ptr()), rebind[FP](h_new.unsafe_ptr()))


# ------------------------------------------------------------------------------------------------ FiLM block
comptime LN_EPS: Float32 = 1e-5


@always_inline
def _mean_rstd(p: FP, o: Int, n: Int) -> SIMD[DType.float32, 2]:
    """(mean, 1 / sqrt(biased variance + LN_EPS)) of p[o : o+n] (an affine-free layer norm's statistics)."""
    var s = SIMD[DType.float32, SW](0)
    var j = 0
    while j + SW <= n:
        s += p.unsafe_load[width=SW](o + j)
        j += SW
    var total = s.reduce_add()
    while j < n:
        total += p.unsafe_load(o + j)
        j += 1
    var mean = total / Float32(n)
    var v = SIMD[DType.float32, SW](0)
    j = 0
    while j + SW <= n:
        var d = p.unsafe_load[width=SW](o + j) - mean
        v += d * d
        j += SW
    var var_sum = v.reduce_add()
    while j < n:
        var d = p.unsafe_load(o + j) - mean
        var_sum += d * d
        j += 1
    return SIMD[DType.float32, 2](mean, 1 / sqrt(var_sum / Float32(n) + LN_EPS))


@always_inline
def _film_modulate[tw: Int](xp: FP, xo: Int, gp: FP, go: Int, bp: FP, bo: Int, yp: FP, yo: Int, j: Int,
                            mean: Float32, rstd: Float32):
    """y[j:j+tw] = elu((1 + gamma) * (x - mean) * rstd + beta)."""
    var v = (1 + gp.unsafe_load[width=tw](go + j)) * ((xp.unsafe_load[width=tw](xo + j) - mean) * rstd) + \
        bp.unsafe_load[width=tw](bo + j)
    yp.unsafe_store(yo + j, _act[ACT_ELU, tw](v))


@always_inline
def _normalise[tw: Int](sp: FP, so: Int, dp: FP, dst: Int, j: Int, mean: Float32, rstd: Float32):
    dp.unsafe_store(dst + j, (sp.unsafe_load[width=tw](so + j) - mean) * rstd)


@always_inline
def _dot(ap: FP, ao: Int, bp: FP, bo: Int, n: Int) -> Float32:
    var s = SIMD[DType.float32, SW](0)
    var j = 0
    while j + SW <= n:
        s += ap.unsafe_load[width=SW](ao + j) * bp.unsafe_load[width=SW](bo + j)
        j += SW
    var total = s.reduce_add()
    while j < n:
        total += ap.unsafe_load(ao + j) * bp.unsafe_load(bo + j)
        j += 1
    return total


@always_inline
def _residual_elu[tw: Int](op: FP, yp: FP, o: Int):
    """out[o:o+tw] = elu(out + y) (both contiguous (B, D))."""
    op.unsafe_store(o, _act[ACT_ELU, tw](op.unsafe_load[width=tw](o) + yp.unsafe_load[width=tw](o)))


def _film_rows_in(
    n_rows: Int, d: Int, xp: FP, ldx: Int, gp: FP, ldg: Int, bp: FP, ldb: Int, yp: FP, np_: FP,
):
    """Per row: y = elu((1 + gamma) * LN(x) + beta) into yp (B, D) and LN(y) into np_ (B, D)."""
    for b in range(n_rows):
        var xo = b * ldx
        var go = b * ldg
        var bo = b * ldb
        var yo = b * d
        var st = _mean_rstd(xp, xo, d)
        var j = 0
        while j + SW <= d:
            _film_modulate[SW](xp, xo, gp, go, bp, bo, yp, yo, j, st[0], st[1])
            j += SW
        while j < d:
            _film_modulate[1](xp, xo, gp, go, bp, bo, yp, yo, j, st[0], st[1])
            j += 1
        st = _mean_rstd(yp, yo, d)
        j = 0
        while j + SW <= d:
            _normalise[SW](yp, yo, np_, yo, j, st[0], st[1])
            j += SW
        while j < d:
            _normalise[1](yp, yo, np_, yo, j, st[0], st[1])
            j += 1


@always_inline
def _context[tw: Int](n_t: Int, lp: FP, lo: Int, vp: FP, vo: Int, ldv1: Int, cp: FP, co: Int, c: Int):
    """ctx[c:c+tw] = sum over tokens t of att[t] * values[t, c:c+tw], in registers."""
    var a0 = SIMD[DType.float32, tw](0)
    var a1 = SIMD[DType.float32, tw](0)
    var t = 0
    while t + 2 <= n_t:  # two tokens per pass: two independent accumulators
        a0 += lp.unsafe_load(lo + t) * vp.unsafe_load[width=tw](vo + t * ldv1 + c)
        a1 += lp.unsafe_load(lo + t + 1) * vp.unsafe_load[width=tw](vo + (t + 1) * ldv1 + c)
        t += 2
    if t < n_t:
        a0 += lp.unsafe_load(lo + t) * vp.unsafe_load[width=tw](vo + t * ldv1 + c)
    cp.unsafe_store(co + c, a0 + a1)


def _film_attend(
    r0: Int, r1: Int, d: Int, n_t: Int, qp: FP, kp: FP, ldk0: Int, ldk1: Int, vp: FP, ldv0: Int, ldv1: Int,
    scale: Float32, lp: FP, cp: FP,
):
    """Rows r0 .. r1: att = softmax over t of scale * keys[b, t] . q[b] (into lp (B, T)), ctx[b] = sum_t att[t]
    values[b, t] (into cp (B, D))."""
    for b in range(r0, r1):
        var lo = b * n_t
        for t in range(n_t):
            lp.unsafe_store(lo + t, scale * _dot(kp, b * ldk0 + t * ldk1, qp, b * d, d))
        var top = lp.unsafe_load(lo)
        for t in range(1, n_t):
            top = max(top, lp.unsafe_load(lo + t))
        var total: Float32 = 0
        for t in range(n_t):
            var e = exp(lp.unsafe_load(lo + t) - top)
            lp.unsafe_store(lo + t, e)
            total += e
        var inv = 1 / total
        for t in range(n_t):
            lp.unsafe_store(lo + t, lp.unsafe_load(lo + t) * inv)
        var vo = b * ldv0
        var co = b * d
        var c = 0
        while c + 2 * SW <= d:
            _context[2 * SW](n_t, lp, lo, vp, vo, ldv1, cp, co, c)
            c += 2 * SW
        while c + SW <= d:
            _context[SW](n_t, lp, lo, vp, vo, ldv1, cp, co, c)
            c += SW
        while c < d:
            _context[1](n_t, lp, lo, vp, vo, ldv1, cp, co, c)
            c += 1


def _film_attend_tasks[workers: Int](
    n_rows: Int, d: Int, n_t: Int, qp: FP, kp: FP, ldk0: Int, ldk1: Int, vp: FP, ldv0: Int, ldv1: Int,
    scale: Float32, lp: FP, cp: FP,
) raises:
    """_film_attend over all rows; from PARALLEL_ROWS rows on split into `workers` tasks of contiguous rows (at batch
    64 the keys and values are 14 MB a block, read once)."""
    var n_tasks = min(workers, n_rows)
    if n_rows < PARALLEL_ROWS:
        n_tasks = 1
    if n_tasks <= 1:
        _film_attend(0, n_rows, d, n_t, qp, kp, ldk0, ldk1, vp, ldv0, ldv1, scale, lp, cp)
        return

    def task(t: Int) raises {var n_tasks, var n_rows, var d, var n_t, var qp, var kp, var ldk0, var ldk1, var vp,
                             var ldv0, var ldv1, var scale, var lp, var cp}:
        _film_attend(t * n_rows // n_tasks, (t + 1) * n_rows // n_tasks, d, n_t, qp, kp, ldk0, ldk1, vp, ldv0, ldv1,
                     scale, lp, cp)

    sync_parallelize(task, n_tasks)


def _contiguous_ok(t: InputTensor[dtype=DType.float32, ...], op: StaticString, what: StaticString) raises:
    """Every axis of t dense, row-major (the weights: read as (in, out) row-major; the biases: adjacent)."""
    var expect = 1
    for k in range(t.rank - 1, -1, -1):
        if Int(t.dim_size(k)) > 1 and Int(t.stride_length(k)) != expect:
            raise Error(op, ": ", what, " must be contiguous")
        expect *= Int(t.dim_size(k))


def _tokens_ok(t: InputTensor[dtype=DType.float32, rank=3, ...], b: Int, d: Int, op: StaticString) raises:
    """The keys and values (B, T, D): any strides over B and T, each token's D elements adjacent."""
    if Int(t.dim_size(0)) != b or Int(t.dim_size(2)) != d:
        raise Error(op, ": the keys and values must be (B, T, D) for x (B, D)")
    if d > 1 and Int(t.stride_length(2)) != 1:
        raise Error(op, ": a token's keys and values must be contiguous")


@extensibility.register("rsmt_film_elu")
struct FilmElu:
    """One FiLM block over the style tokens and the ELU after it (nets.film_elu), for a batch of rows:
        y   = elu((1 + gamma) * LN(x) + beta)                  LN: affine-free, biased variance, eps 1e-5
        q   = LN(y) @ wq + bq
        att = softmax_t(scale * keys[:, t] . q)
        out = elu(y + (sum_t att[t] values[:, t]) @ wo + bo)
    x, gamma, beta (B, D); keys, values (B, T, D); wq, wo (D, D) (in, out); bq, bo (D,); scale (1,). Outputs: out (B, D),
    and the op's scratch: y (B, D), q (B, D), ctx (B, D) (LN(y) first, then the attention's context) and the attention
    weights (B, T). The two D x D products are rsmt_dense's loop nest, the attention goes row by row; both split
    into `workers` tasks from PARALLEL_ROWS rows on (columns, rows), the layer norms run as one task. CPU only."""

    @staticmethod
    def execute[target: StaticString, workers: Int](
        out_: OutputTensor[dtype=DType.float32, rank=2, ...],
        y: OutputTensor[dtype=DType.float32, rank=2, ...],
        q: OutputTensor[dtype=DType.float32, rank=2, ...],
        ctx_: OutputTensor[dtype=DType.float32, rank=2, ...],
        att: OutputTensor[dtype=DType.float32, rank=2, ...],
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
        comptime if target != "cpu":
            raise Error("rsmt_film_elu is a CPU kernel")
        comptime op = "rsmt_film_elu"
        var n_rows = Int(x.dim_size(0))
        var d = Int(x.dim_size(1))
        var n_t = Int(keys.dim_size(1))
        _rows_ok(x, op)
        _rows_ok(gamma, op)
        _rows_ok(beta, op)
        _tokens_ok(keys, n_rows, d, op)
        _tokens_ok(values, n_rows, d, op)
        if n_t < 1:
            raise Error(op, ": no style tokens")
        if Int(values.dim_size(1)) != n_t:
            raise Error(op, ": the keys and values must hold the same tokens")
        if Int(wq.dim_size(0)) != d or Int(wq.dim_size(1)) != d or Int(wo.dim_size(0)) != d or Int(wo.dim_size(1)) != d:
            raise Error(op, ": the query and output weights must be (D, D)")
        _contiguous_ok(wq, op, "the query weight")
        _contiguous_ok(bq, op, "the query bias")
        _contiguous_ok(wo, op, "the output weight")
        _contiguous_ok(bo, op, "the output bias")
        _film_elu[workers](n_rows, d, n_t, rebind[FP](x.unsafe_ptr()), Int(x.stride_length(0)),
                           rebind[FP](gamma.unsafe_ptr()), Int(gamma.stride_length(0)), rebind[FP](beta.unsafe_ptr()),
                           Int(beta.stride_length(0)), rebind[FP](keys.unsafe_ptr()), Int(keys.stride_length(0)),
                           Int(keys.stride_length(1)), rebind[FP](values.unsafe_ptr()), Int(values.stride_length(0)),
                           Int(values.stride_length(1)), rebind[FP](wq.unsafe_ptr()), rebind[FP](bq.unsafe_ptr()),
                           rebind[FP](scale.unsafe_ptr()).unsafe_load(0), rebind[FP](wo.unsafe_ptr()),
                           rebind[FP](bo.unsafe_ptr()), rebind[FP](out_.unsafe_ptr()), rebind[FP](y.unsafe_ptr()),
                           rebind[FP](q.unsafe_ptr()), rebind[FP](ctx_.unsafe_ptr()), rebind[FP](att.unsafe_ptr()))


def _film_elu[workers: Int](
    n_rows: Int, d: Int, n_t: Int, xp: FP, ldx: Int, gp: FP, ldg: Int, bp: FP, ldb: Int, kp: FP, ldk0: Int, ldk1: Int,
    vp: FP, ldv0: Int, ldv1: Int, wqp: FP, bqp: FP, sc: Float32, wop: FP, bop: FP, op_: FP, yp: FP, qp: FP, cp: FP,
    lp: FP,
) raises:
    """FilmElu's maths on raw pointers (the op and the fused sampler step call it): x, gamma, beta rows at strides
    ldx, ldg, ldb; keys, values (B, T, D) at strides (ld0, ld1); wq, wo (D, D), bq, bo (D,) contiguous; out, and the
    scratch y, q, ctx (B, D) and att (B, T), contiguous."""
    _film_rows_in(n_rows, d, xp, ldx, gp, ldg, bp, ldb, yp, cp)
    # q = LN(y) @ wq + bq (LN(y) sits in the ctx buffer until the attention overwrites it)
    _run[MODE_DENSE, ACT_NONE, workers](n_rows, cp, d, d, cp, 0, 0, wqp, bqp, cp, 1, d, qp, cp, cp, cp)
    _film_attend_tasks[workers](n_rows, d, n_t, qp, kp, ldk0, ldk1, vp, ldv0, ldv1, sc, lp, cp)
    # out = elu(y + ctx @ wo + bo)
    _run[MODE_DENSE, ACT_NONE, workers](n_rows, cp, d, d, cp, 0, 0, wop, bop, cp, 1, d, op_, cp, cp, cp)
    var n = n_rows * d
    var j = 0
    while j + SW <= n:
        _residual_elu[SW](op_, yp, j)
        j += SW
    while j < n:
        _residual_elu[1](op_, yp, j)
        j += 1


# ------------------------------------------------------------------------------------------------ step tails
# The sampler step's maths between its layers (nets.sampler_step), for nets.py's layouts: the predictor's output y
# (B, >= 4C + 9 + L) = [phase_hat (2C), amp before softplus (C), freq (C), hip_v (3), hip_d6 (6), zm (L), ..];
# positions (B, Np, 3) and 6-D rotations (B, J, 6) row-major; p3 = 3 Np, r6 = 6 J. The encoders' inputs of a
# frame: state (B, 2 p3 + r6) = [p - p_root, v, r] and offset (B, p3 + r6) = [tgt_p - p, tgt_r - r]
# (nets.encoder_inputs). One task: a few hundred floats a row. kernels/cpu_step.mojo's whole-step op calls them.
comptime VEC_EPS: Float32 = 1e-8


@always_inline
def _copy(dp: FP, do_: Int, sp: FP, so: Int, n: Int):
    var j = 0
    while j + SW <= n:
        dp.unsafe_store(do_ + j, sp.unsafe_load[width=SW](so + j))
        j += SW
    while j < n:
        dp.unsafe_store(do_ + j, sp.unsafe_load(so + j))
        j += 1


def _step_head[n_phases: Int, latent: Int, p3: Int, ang_scale: Float32](
    n_rows: Int, yp: FP, ldy: Int, pp: FP, ldp: Int, sp: FP, lds: Int, sw: Int, np_: FP, gp: FP, ep: FP,
):
    """StepHead's maths on raw pointers: y, phase, state rows at strides ldy, ldp, lds (state sw wide); the new
    phase, gate and expert inputs contiguous."""
    comptime C = n_phases
    var r6 = sw - 2 * p3
    var gw = 2 * C + latent
    var ew = sw + 9 + latent
    for b in range(n_rows):
        var yo = b * ldy
        var po = b * ldp
        var go = b * gw
        for c in range(C):
            var lx = pp.unsafe_load(po + 2 * c)
            var ly = pp.unsafe_load(po + 2 * c + 1)
            var ln = sqrt(lx * lx + ly * ly + VEC_EPS)
            var ux = lx / ln
            var uy = ly / ln
            var ar = yp.unsafe_load(yo + 2 * C + c)
            var amp = max(ar, Float32(0)) + log(Float32(1) + exp(-abs(ar)))
            var ang = ang_scale * yp.unsafe_load(yo + 3 * C + c)
            var cs = cos(ang)
            var sn = sin(ang)
            var ax = amp * (cs * ux - sn * uy)
            var ay = amp * (sn * ux + cs * uy)
            var hx = yp.unsafe_load(yo + 2 * c)
            var hy = yp.unsafe_load(yo + 2 * c + 1)
            var na = sqrt(ax * ax + ay * ay + VEC_EPS)
            var nh = sqrt(hx * hx + hy * hy + VEC_EPS)
            var dx = ax / na + hx / nh
            var dy = ay / na + hy / nh
            var nd = sqrt(dx * dx + dy * dy + VEC_EPS)
            var s = Float32(0.5) * (na + nh)
            var px = s * dx / nd
            var py = s * dy / nd
            np_.unsafe_store(b * 2 * C + 2 * c, px)
            np_.unsafe_store(b * 2 * C + 2 * c + 1, py)
            gp.unsafe_store(go + 2 * c, px)
            gp.unsafe_store(go + 2 * c + 1, py)
        var zo = yo + 4 * C + 9
        _copy(gp, go + 2 * C, yp, zo, latent)
        var eo = b * ew
        var so = b * lds
        _copy(ep, eo, sp, so, 2 * p3)  # p - p_root, v
        _copy(ep, eo + 2 * p3, yp, yo + 4 * C, 3)  # hip_v
        _copy(ep, eo + 2 * p3 + 3, sp, so + 2 * p3, r6)  # r
        for t in range(6):  # hip_r = r_root + hip_d6
            ep.unsafe_store(eo + 2 * p3 + 3 + r6 + t,
                            sp.unsafe_load(so + 2 * p3 + t) + yp.unsafe_load(yo + 4 * C + 3 + t))
        _copy(ep, eo + 2 * p3 + 9 + r6, yp, zo, latent)  # zm


@always_inline
def _gram_schmidt(rp: FP, o: Int):
    """The 6-D rotation rp[o : o+6] orthonormalised in place (nets.gram_schmidt_6d)."""
    var a0 = rp.unsafe_load(o)
    var a1 = rp.unsafe_load(o + 1)
    var a2 = rp.unsafe_load(o + 2)
    var b0 = rp.unsafe_load(o + 3)
    var b1 = rp.unsafe_load(o + 4)
    var b2 = rp.unsafe_load(o + 5)
    var na = sqrt(a0 * a0 + a1 * a1 + a2 * a2 + VEC_EPS)
    a0 = a0 / na
    a1 = a1 / na
    a2 = a2 / na
    var dot = a0 * b0 + a1 * b1 + a2 * b2
    b0 = b0 - dot * a0
    b1 = b1 - dot * a1
    b2 = b2 - dot * a2
    var nb = sqrt(b0 * b0 + b1 * b1 + b2 * b2 + VEC_EPS)
    rp.unsafe_store(o, a0)
    rp.unsafe_store(o + 1, a1)
    rp.unsafe_store(o + 2, a2)
    rp.unsafe_store(o + 3, b0 / nb)
    rp.unsafe_store(o + 4, b1 / nb)
    rp.unsafe_store(o + 5, b2 / nb)


def _step_advance[n_phases: Int](
    n_rows: Int, p3: Int, r6: Int, dp: FP, ldd: Int, yp: FP, ldy: Int, pp: FP, ldp: Int, rp: FP, ldr: Int, tpp: FP,
    ldtp: Int, trp: FP, ldtr: Int, pn: FP, vn: FP, rn: FP, sn: FP, on: FP,
):
    """StepAdvance's maths on raw pointers: the inputs' rows at their strides, the outputs contiguous."""
    comptime hip = 4 * n_phases  # hip_v's column in y
    var sw = 2 * p3 + r6
    var ow = p3 + r6
    for b in range(n_rows):
        var do_ = b * ldd
        var yo = b * ldy
        var po = b * ldp
        var ro = b * ldr
        var pno = b * p3
        var rno = b * r6
        var so = b * sw
        var oo = b * ow
        var tpo = b * ldtp
        var tro = b * ldtr
        # positions: the root moves by hip_v, the other joints by the decoder's delta
        for m in range(3):
            pn.unsafe_store(pno + m, pp.unsafe_load(po + m) + yp.unsafe_load(yo + hip + m))
        var m = 3
        while m + SW <= p3:
            pn.unsafe_store(pno + m, pp.unsafe_load[width=SW](po + m) + dp.unsafe_load[width=SW](do_ + m))
            m += SW
        while m < p3:
            pn.unsafe_store(pno + m, pp.unsafe_load(po + m) + dp.unsafe_load(do_ + m))
            m += 1
        # rotations: the root's is r_root + hip_d6, the others' r + delta; then Gram-Schmidt
        for t in range(6):
            rn.unsafe_store(rno + t, rp.unsafe_load(ro + t) + yp.unsafe_load(yo + hip + 3 + t))
        var q = 6
        while q + SW <= r6:
            rn.unsafe_store(rno + q, rp.unsafe_load[width=SW](ro + q) + dp.unsafe_load[width=SW](do_ + p3 + q))
            q += SW
        while q < r6:
            rn.unsafe_store(rno + q, rp.unsafe_load(ro + q) + dp.unsafe_load(do_ + p3 + q))
            q += 1
        for j in range(r6 // 6):
            _gram_schmidt(rn, rno + 6 * j)
        # velocity, the encoders' inputs
        for m2 in range(p3):
            var x = pn.unsafe_load(pno + m2)
            var v = x - pp.unsafe_load(po + m2)
            vn.unsafe_store(pno + m2, v)
            sn.unsafe_store(so + m2, x - pn.unsafe_load(pno + m2 % 3))
            sn.unsafe_store(so + p3 + m2, v)
            on.unsafe_store(oo + m2, tpp.unsafe_load(tpo + m2) - x)
        _copy(sn, so + 2 * p3, rn, rno, r6)
        q = 0
        while q + SW <= r6:
            on.unsafe_store(oo + p3 + q, trp.unsafe_load[width=SW](tro + q) - rn.unsafe_load[width=SW](rno + q))
            q += SW
        while q < r6:
            on.unsafe_store(oo + p3 + q, trp.unsafe_load(tro + q) - rn.unsafe_load(rno + q))
            q += 1
