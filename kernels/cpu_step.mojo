"""The CPU sampler step as one Mojo custom op, `rsmt_sampler_step` (issue 17; docs/performance.md, "The whole step
as one op").

Why: with the weight layers, the FiLM blocks and the step's tails as custom ops (cpu_dense.mojo), a step was still
~57 graph ops (20 custom ops, ~37 of MAX's own: slices, concatenations, ELUs, gathers, the gate's softmax), and
the time outside the timed kernels was 0.46-0.51 ms a frame, ~40 % of the call. One op a step by itself gained
3-6 %; what it buys is cheap long calls: a `steps` call costs ~1.35 ms beyond its steps on the 2-core CPU (MAX's
runtime), and a graph of 40 such ops compiles in about a minute, so the CPU engine runs a whole 40-frame transition
in one call (engine.STEPS_PER_CALL), 1.33x faster a frame than 8 a call (docs/performance.md, "The whole step as
one op"). The op calls the same kernels (cpu_dense.mojo's `_run`, `_film_elu`, `_step_head`, `_step_advance`) one
after the other on its own scratch, with the glue between them in plain loops, so the maths and numbers are theirs.

nets._step, in order (nets.py is the reference; `B` rows; widths come from the weights at run time):
    state  = fc2(elu(fc1(state_in)))              state_encoder        offset = the same, offset_encoder
    emb    = film_elu(embedding_fc(state))        the embedding FiLM block with its style cache
    i      = min(tta, max_tta); lam = clip((tta - 5) / 25, 0, 1)
    h_t    = [offset + pe_latent[i], tgt_latent + pe_latent[i]] + lam * z   (the sampler's latent, twice)
    h, c   = lstm([emb + pe_film[i], h_t], h, c)
    y      = fc4(elu(fc3(film_elu(fc2(elu(fc1([h, phase, h_t])))))))   the predictor, its FiLM block
    phase', gate_in, expert_in = step_head(y, phase, state_in)
    alpha  = softmax(g3(elu(g2(elu(g1(gate_in))))))
    delta  = moe3(elu(moe2([elu(moe1(expert_in)), zm])))                zm = y[4C + 9 : 4C + 9 + L]
    p', v', r', state_in', offset_in' = step_advance(delta, y, p, r, tgt_p, tgt_r)

A step whose every row has tta 0 is padding (engine.rollout_chunks runs the last call past the transition's end and
drops those frames): it holds the frame (p' = p, v' = v, ... ) instead of computing it, so a call of many steps
costs only the steps a transition uses.
"""

import extensibility
from extensibility import InputTensor, OutputTensor
from max.gpu.host import DeviceContext
from std.math import exp
from std.memory import stack_allocation
from std.time import perf_counter_ns

from .cpu_dense import (
    ACT_ELU,
    ACT_NONE,
    FP,
    MODE_DENSE,
    MODE_LSTM,
    MODE_MOE,
    SW,
    _film_elu,
    _run,
    _step_advance,
    _step_head,
)

comptime I64P = Pointer[Int64, MutAnyOrigin]
#: kinds of the timed twin's (5,) nanosecond output, as graphs/cpu_timed.py KINDS
comptime T_DENSE = 0
comptime T_MOE = 1
comptime T_LSTM = 2
comptime T_FILM = 3
comptime T_TAILS = 4

comptime W2 = InputTensor[dtype=DType.float32, rank=2, ...]
comptime W1 = InputTensor[dtype=DType.float32, rank=1, ...]


@always_inline
def _fp(t: InputTensor[dtype=DType.float32, ...]) -> FP:
    return rebind[FP](t.unsafe_ptr())


@always_inline
def _fo(t: OutputTensor[dtype=DType.float32, ...]) -> FP:
    return rebind[FP](t.unsafe_ptr())


def _layer_ok(w: W2, b: W1, n_in: Int, op: StaticString, what: StaticString) raises:
    """A weight layer (in, out) with its bias (out,), contiguous, that takes n_in inputs."""
    if Int(w.dim_size(0)) != n_in or Int(b.dim_size(0)) != Int(w.dim_size(1)):
        raise Error(op, ": ", what, " does not fit its input (weight rows or bias width)")
    if Int(w.dim_size(1)) > 1 and Int(w.stride_length(1)) != 1 or Int(w.stride_length(0)) != Int(w.dim_size(1)):
        raise Error(op, ": ", what, " must be contiguous")


@always_inline
def _tick[timed: Bool](nsp: I64P, kind: Int, t0: Int) -> Int:
    """Adds the nanoseconds since t0 to kind's total (timed twin only); the new t0."""
    comptime if timed:
        var t1 = Int(perf_counter_ns())
        nsp.unsafe_store(kind, nsp.unsafe_load(kind) + Int64(t1 - t0))
        return t1
    else:
        return 0


@always_inline
def _now[timed: Bool]() -> Int:
    comptime if timed:
        return Int(perf_counter_ns())
    else:
        return 0


@always_inline
def _dense[act: Int, workers: Int](n_rows: Int, xp: FP, ldx: Int, w: W2, b: W1, yp: FP) raises:
    """y (B, out) contiguous = act(x @ w + b), cpu_dense.mojo's Dense."""
    _run[MODE_DENSE, act, workers](n_rows, xp, ldx, Int(w.dim_size(0)), xp, 0, 0, _fp(w), _fp(b), xp, 1,
                                   Int(w.dim_size(1)), yp, xp, xp, xp)


@always_inline
def _moe[act: Int, workers: Int, n_experts: Int](n_rows: Int, xp: FP, ldx: Int, gp: FP, w: W2, b: W1,
                                                  yp: FP) raises:
    """y (B, out) contiguous = act(sum_e g[:, e] (x @ w_e + b_e)), cpu_dense.mojo's MoEDense; g (B, E) contiguous."""
    _run[MODE_MOE, act, workers](n_rows, xp, ldx, Int(w.dim_size(0)), xp, 0, 0, _fp(w), _fp(b), gp, n_experts,
                                 Int(w.dim_size(1)) // n_experts, yp, xp, xp, xp)


@always_inline
def _copy_rows(n_rows: Int, n: Int, sp: FP, lds: Int, so: Int, dp: FP, ldd: Int, do_: Int):
    """dst[b, do_ : do_ + n] = src[b, so : so + n] for every row."""
    for b in range(n_rows):
        var j = 0
        while j + SW <= n:
            dp.unsafe_store(b * ldd + do_ + j, sp.unsafe_load[width=SW](b * lds + so + j))
            j += SW
        while j < n:
            dp.unsafe_store(b * ldd + do_ + j, sp.unsafe_load(b * lds + so + j))
            j += 1


@extensibility.register("rsmt_sampler_step")
struct SamplerStep:
    """One sampler step (the module docstring's maths) for a batch of B rows. Data: state_in (B, 2 p3 + r6),
    offset_in (B, p3 + r6), p (B, Np, 3), r (B, J, 6), phase (B, C, 2), h, c (B, H), tgt_p, tgt_r, tgt_latent (B, L),
    tta (B,) int64, z (B, 2L), then each FiLM block's style cache gamma, beta (B, D), keys, values (B, T, D)
    (embedding, predictor); then the weights in graphs/networks.py's order. Outputs: p', v', r', phase', h', c',
    state_in', offset_in'. CPU only."""

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
        comptime if target != "cpu":
            raise Error("rsmt_sampler_step is a CPU kernel")
        _sampler_step[False, n_phases, latent, p3, ang_scale, max_tta, n_experts, workers](
            p_next, v_next, r_next, phase_next, h_next, c_next, state_next, offset_next, state_in, offset_in, p, r,
            phase, h, c, tgt_p, tgt_r, tgt_latent, tta, z, e_gamma, e_beta, e_keys, e_values, p_gamma, p_beta, p_keys,
            p_values, se1_w, se1_b, se2_w, se2_b, oe1_w, oe1_b, oe2_w, oe2_b, emb_w, emb_b, ef_qw, ef_qb, ef_ow,
            ef_ob, ef_scale, pe_latent, pe_film, lstm_w, lstm_b, f1_w, f1_b, f2_w, f2_b, f3_w, f3_b, f4_w, f4_b,
            pf_qw, pf_qb, pf_ow, pf_ob, pf_scale, g1_w, g1_b, g2_w, g2_b, g3_w, g3_b, x1_w, x1_b, x2_w, x2_b, x3_w,
            x3_b, rebind[I64P](stack_allocation[1, Int64]()))  # not read: untimed


def _sampler_step[timed: Bool, n_phases: Int, latent: Int, p3: Int, ang_scale: Float32, max_tta: Int,
                  n_experts: Int, workers: Int](
    p_next: OutputTensor[dtype=DType.float32, rank=3, ...],
    v_next: OutputTensor[dtype=DType.float32, rank=3, ...],
    r_next: OutputTensor[dtype=DType.float32, rank=3, ...],
    phase_next: OutputTensor[dtype=DType.float32, rank=3, ...],
    h_next: OutputTensor[dtype=DType.float32, rank=2, ...],
    c_next: OutputTensor[dtype=DType.float32, rank=2, ...],
    state_next: OutputTensor[dtype=DType.float32, rank=2, ...],
    offset_next: OutputTensor[dtype=DType.float32, rank=2, ...],
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
    nsp: I64P,
) raises:
    """SamplerStep's work; with `timed`, adds each kind's nanoseconds to nsp[0..5) (T_DENSE ... T_TAILS)."""
    comptime op = "rsmt_sampler_step"
    comptime C = n_phases
    comptime L = latent
    var n_rows = Int(p.dim_size(0))
    var n_p = Int(p.dim_size(1))
    var n_j = Int(r.dim_size(1))
    var r6 = 6 * n_j
    var sw = 2 * p3 + r6
    var ow = p3 + r6
    var hid = Int(h.dim_size(1))
    var sl = Int(tgt_latent.dim_size(1))  # the sampler's latent (h_t is two of them); L is the manifold's (zm)
    # ---- shapes: every layer against the vector it reads, so a mismatch is an error, never garbage
    if 3 * n_p != p3 or Int(p.dim_size(2)) != 3 or Int(r.dim_size(2)) != 6:
        raise Error(op, ": positions must be (B, Np, 3) with Np fixed by the graph, rotations (B, J, 6)")
    if Int(state_in.dim_size(1)) != sw or Int(offset_in.dim_size(1)) != ow:
        raise Error(op, ": the encoder inputs do not match the frame")
    if Int(phase.dim_size(1)) != C or Int(phase.dim_size(2)) != 2:
        raise Error(op, ": the phase does not match the step's dims")
    if Int(z.dim_size(1)) != 2 * sl or Int(tta.dim_size(0)) != n_rows or Int(c.dim_size(1)) != hid:
        raise Error(op, ": the noise, the time-to-arrival or the cell state does not match the batch")
    _layer_ok(se1_w, se1_b, sw, op, "state_encoder.fc1")
    _layer_ok(se2_w, se2_b, Int(se1_w.dim_size(1)), op, "state_encoder.fc2")
    _layer_ok(oe1_w, oe1_b, ow, op, "offset_encoder.fc1")
    _layer_ok(oe2_w, oe2_b, Int(oe1_w.dim_size(1)), op, "offset_encoder.fc2")
    if Int(oe2_w.dim_size(1)) != sl or Int(pe_latent.dim_size(1)) != sl:
        raise Error(op, ": the offset encoder and pe_latent must be the latent's width")
    _layer_ok(emb_w, emb_b, Int(se2_w.dim_size(1)), op, "embedding_fc")
    var de = Int(emb_w.dim_size(1))
    _layer_ok(ef_qw, ef_qb, de, op, "embedding_film.query")
    _layer_ok(ef_ow, ef_ob, de, op, "embedding_film.out_proj")
    if Int(pe_film.dim_size(1)) != de or Int(e_gamma.dim_size(1)) != de or Int(e_keys.dim_size(2)) != de:
        raise Error(op, ": pe_film and the embedding block's style cache must be its width")
    if Int(pe_film.dim_size(0)) <= max_tta or Int(pe_latent.dim_size(0)) <= max_tta:
        raise Error(op, ": the positional-encoding tables are shorter than max_tta")
    _layer_ok(lstm_w, lstm_b, de + 2 * sl + hid, op, "lstm")
    if Int(lstm_w.dim_size(1)) != 4 * hid:
        raise Error(op, ": the LSTM weight must be (in + H, 4H)")
    _layer_ok(f1_w, f1_b, hid + 2 * C + 2 * sl, op, "predictor_fc1")
    _layer_ok(f2_w, f2_b, Int(f1_w.dim_size(1)), op, "predictor_fc2")
    var dp = Int(f2_w.dim_size(1))
    _layer_ok(pf_qw, pf_qb, dp, op, "predictor_film.query")
    _layer_ok(pf_ow, pf_ob, dp, op, "predictor_film.out_proj")
    if Int(p_gamma.dim_size(1)) != dp or Int(p_keys.dim_size(2)) != dp:
        raise Error(op, ": the predictor block's style cache must be its width")
    _layer_ok(f3_w, f3_b, dp, op, "predictor_fc3")
    _layer_ok(f4_w, f4_b, Int(f3_w.dim_size(1)), op, "predictor_fc4")
    var yw = Int(f4_w.dim_size(1))
    if yw < 4 * C + 9 + L:
        raise Error(op, ": the predictor's output is too narrow for the step's dims")
    _layer_ok(g1_w, g1_b, 2 * C + L, op, "decoder.gate_fc1")
    _layer_ok(g2_w, g2_b, Int(g1_w.dim_size(1)), op, "decoder.gate_fc2")
    _layer_ok(g3_w, g3_b, Int(g2_w.dim_size(1)), op, "decoder.gate_fc3")
    if Int(g3_w.dim_size(1)) != n_experts:
        raise Error(op, ": the gate network must give one weight per expert")
    _layer_ok(x1_w, x1_b, sw + 9 + L, op, "decoder.expert1")
    var e1 = Int(x1_w.dim_size(1)) // n_experts
    _layer_ok(x2_w, x2_b, e1 + L, op, "decoder.expert2")
    var e2 = Int(x2_w.dim_size(1)) // n_experts
    _layer_ok(x3_w, x3_b, e2, op, "decoder.expert3")
    if Int(x3_w.dim_size(1)) // n_experts < p3 + r6:
        raise Error(op, ": the decoder's output is too narrow for the frame")
    var n_te = Int(e_keys.dim_size(1))
    var n_tp = Int(p_keys.dim_size(1))
    if n_te < 1 or n_tp < 1 or Int(e_values.dim_size(1)) != n_te or Int(p_values.dim_size(1)) != n_tp:
        raise Error(op, ": a style cache holds no tokens, or keys and values differ")
    if Int(e_keys.stride_length(2)) != 1 or Int(e_values.stride_length(2)) != 1 or Int(
        p_keys.stride_length(2)
    ) != 1 or Int(p_values.stride_length(2)) != 1:
        raise Error(op, ": a style token's keys and values must be contiguous")

    # ---- a padding step (every row's tta 0: engine.rollout_chunks runs past the transition's end) holds the frame
    var ttap = rebind[Pointer[Int64, MutAnyOrigin]](tta.unsafe_ptr())
    var live = False
    for b in range(n_rows):
        var tv = ttap.unsafe_load(b * Int(tta.stride_length(0)))
        if tv < 0:
            raise Error(op, ": a time to arrival is negative (the positional-encoding tables start at 0)")
        if tv != 0:
            live = True
    if not live:
        _copy_rows(n_rows, p3, _fp(p), Int(p.stride_length(0)), 0, _fo(p_next), p3, 0)
        _copy_rows(n_rows, p3, _fp(state_in), Int(state_in.stride_length(0)), p3, _fo(v_next), p3, 0)
        _copy_rows(n_rows, r6, _fp(r), Int(r.stride_length(0)), 0, _fo(r_next), r6, 0)
        _copy_rows(n_rows, 2 * C, _fp(phase), Int(phase.stride_length(0)), 0, _fo(phase_next), 2 * C, 0)
        _copy_rows(n_rows, hid, _fp(h), Int(h.stride_length(0)), 0, _fo(h_next), hid, 0)
        _copy_rows(n_rows, hid, _fp(c), Int(c.stride_length(0)), 0, _fo(c_next), hid, 0)
        _copy_rows(n_rows, sw, _fp(state_in), Int(state_in.stride_length(0)), 0, _fo(state_next), sw, 0)
        _copy_rows(n_rows, ow, _fp(offset_in), Int(offset_in.stride_length(0)), 0, _fo(offset_next), ow, 0)
        return

    # ---- scratch, (B, width) each, in one allocation
    var w_se1 = Int(se1_w.dim_size(1))
    var w_se2 = Int(se2_w.dim_size(1))
    var w_oe1 = Int(oe1_w.dim_size(1))
    var w_f1 = Int(f1_w.dim_size(1))
    var w_f3 = Int(f3_w.dim_size(1))
    var w_g1 = Int(g1_w.dim_size(1))
    var w_g2 = Int(g2_w.dim_size(1))
    var w_e3 = Int(x3_w.dim_size(1)) // n_experts
    var xw = de + 2 * sl  # the LSTM input [h_state, h_t]
    var fw = hid + 2 * C + 2 * sl  # predictor_fc1's input [h, phase, h_t]
    var film_d = max(de, dp)
    var widths: List[Int] = [w_se1, w_se2, w_oe1, sl, de, de, xw, fw, w_f1, dp, dp, w_f3, yw, 2 * C + L, sw + 9 + L,
                           w_g1, w_g2, n_experts, e1, e1 + L, e2, w_e3, 4 * hid, film_d, film_d, film_d,
                           max(n_te, n_tp)]
    var total = 0
    for w in widths:
        total += n_rows * w
    var scratch = List[Float32](length=total, fill=0)  # owns the memory; kept alive to the end (see below)
    var base = scratch.unsafe_ptr()
    var buf = List[FP]()
    var off = 0
    for w in widths:
        buf.append(rebind[FP](base + off))
        off += n_rows * w
    var se_h = buf[0]
    var state = buf[1]
    var oe_h = buf[2]
    var offset = buf[3]
    var e_pre = buf[4]
    var emb = buf[5]
    var x = buf[6]
    var f_in = buf[7]
    var y1 = buf[8]
    var y2 = buf[9]
    var y3 = buf[10]
    var y4 = buf[11]
    var y = buf[12]
    var gate_in = buf[13]
    var expert_in = buf[14]
    var g1 = buf[15]
    var g2 = buf[16]
    var alpha = buf[17]
    var h1 = buf[18]
    var h1zm = buf[19]
    var h2 = buf[20]
    var delta = buf[21]
    var gates = buf[22]
    var film_y = buf[23]  # the FiLM blocks' scratch: y, q, ctx (B, D) and att (B, T)
    var film_q = buf[24]
    var film_c = buf[25]
    var film_a = buf[26]

    var t0 = _now[timed]()
    # ---- the encoders and the embedding
    _dense[ACT_ELU, workers](n_rows, _fp(state_in), Int(state_in.stride_length(0)), se1_w, se1_b, se_h)
    _dense[ACT_NONE, workers](n_rows, se_h, w_se1, se2_w, se2_b, state)
    _dense[ACT_ELU, workers](n_rows, _fp(offset_in), Int(offset_in.stride_length(0)), oe1_w, oe1_b, oe_h)
    _dense[ACT_NONE, workers](n_rows, oe_h, w_oe1, oe2_w, oe2_b, offset)
    _dense[ACT_NONE, workers](n_rows, state, w_se2, emb_w, emb_b, e_pre)
    t0 = _tick[timed](nsp, T_DENSE, t0)
    _film_elu[workers](n_rows, de, n_te, e_pre, de, _fp(e_gamma), Int(e_gamma.stride_length(0)), _fp(e_beta),
                       Int(e_beta.stride_length(0)), _fp(e_keys), Int(e_keys.stride_length(0)),
                       Int(e_keys.stride_length(1)), _fp(e_values), Int(e_values.stride_length(0)),
                       Int(e_values.stride_length(1)), _fp(ef_qw), _fp(ef_qb), _fp(ef_scale).unsafe_load(0),
                       _fp(ef_ow), _fp(ef_ob), emb, film_y, film_q, film_c, film_a)
    t0 = _tick[timed](nsp, T_FILM, t0)
    # ---- the LSTM input [emb + pe_film[i], h_t], h_t = [offset + pe_latent[i], tgt_latent + pe_latent[i]] + lam z
    var pel = _fp(pe_latent)
    var pef = _fp(pe_film)
    var tlp = _fp(tgt_latent)
    var zp = _fp(z)
    for b in range(n_rows):
        var tv = Int(ttap.unsafe_load(b * Int(tta.stride_length(0))))
        var i = min(tv, max_tta)
        var lam = min(max((Float32(tv) - 5.0) / 25.0, Float32(0)), Float32(1))
        var xo = b * xw
        for j in range(de):
            x.unsafe_store(xo + j, emb.unsafe_load(b * de + j) + pef.unsafe_load(i * de + j))
        for j in range(sl):
            var pe = pel.unsafe_load(i * sl + j)
            x.unsafe_store(xo + de + j, offset.unsafe_load(b * sl + j) + pe
                           + lam * zp.unsafe_load(b * Int(z.stride_length(0)) + j))
            x.unsafe_store(xo + de + sl + j, tlp.unsafe_load(b * Int(tgt_latent.stride_length(0)) + j) + pe
                           + lam * zp.unsafe_load(b * Int(z.stride_length(0)) + sl + j))
    # ---- the LSTM cell
    _run[MODE_LSTM, ACT_NONE, workers](n_rows, x, xw, xw, _fp(h), Int(h.stride_length(0)), hid, _fp(lstm_w),
                                       _fp(lstm_b), _fp(lstm_b), 4, hid, _fo(c_next), gates, _fp(c), _fo(h_next))
    t0 = _tick[timed](nsp, T_LSTM, t0)
    # ---- the predictor over [h, phase, h_t]
    _copy_rows(n_rows, hid, _fo(h_next), hid, 0, f_in, fw, 0)
    _copy_rows(n_rows, 2 * C, _fp(phase), Int(phase.stride_length(0)), 0, f_in, fw, hid)
    _copy_rows(n_rows, 2 * sl, x, xw, de, f_in, fw, hid + 2 * C)
    _dense[ACT_ELU, workers](n_rows, f_in, fw, f1_w, f1_b, y1)
    _dense[ACT_NONE, workers](n_rows, y1, w_f1, f2_w, f2_b, y2)
    t0 = _tick[timed](nsp, T_DENSE, t0)
    _film_elu[workers](n_rows, dp, n_tp, y2, dp, _fp(p_gamma), Int(p_gamma.stride_length(0)), _fp(p_beta),
                       Int(p_beta.stride_length(0)), _fp(p_keys), Int(p_keys.stride_length(0)),
                       Int(p_keys.stride_length(1)), _fp(p_values), Int(p_values.stride_length(0)),
                       Int(p_values.stride_length(1)), _fp(pf_qw), _fp(pf_qb), _fp(pf_scale).unsafe_load(0),
                       _fp(pf_ow), _fp(pf_ob), y3, film_y, film_q, film_c, film_a)
    t0 = _tick[timed](nsp, T_FILM, t0)
    _dense[ACT_ELU, workers](n_rows, y3, dp, f3_w, f3_b, y4)
    _dense[ACT_NONE, workers](n_rows, y4, w_f3, f4_w, f4_b, y)
    t0 = _tick[timed](nsp, T_DENSE, t0)
    # ---- the phase update and the decoder's inputs
    _step_head[n_phases, latent, p3, ang_scale](n_rows, y, yw, _fp(phase), Int(phase.stride_length(0)),
                                                _fp(state_in), Int(state_in.stride_length(0)), sw,
                                                _fo(phase_next), gate_in, expert_in)
    t0 = _tick[timed](nsp, T_TAILS, t0)
    # ---- the gate network and its softmax
    _dense[ACT_ELU, workers](n_rows, gate_in, 2 * C + L, g1_w, g1_b, g1)
    _dense[ACT_ELU, workers](n_rows, g1, w_g1, g2_w, g2_b, g2)
    _dense[ACT_NONE, workers](n_rows, g2, w_g2, g3_w, g3_b, alpha)
    t0 = _tick[timed](nsp, T_DENSE, t0)
    for b in range(n_rows):
        var o = b * n_experts
        var top = alpha.unsafe_load(o)
        for e in range(1, n_experts):
            top = max(top, alpha.unsafe_load(o + e))
        var s: Float32 = 0
        for e in range(n_experts):
            var v = exp(alpha.unsafe_load(o + e) - top)
            alpha.unsafe_store(o + e, v)
            s += v
        for e in range(n_experts):
            alpha.unsafe_store(o + e, alpha.unsafe_load(o + e) / s)
    # ---- the three expert layers ([elu(moe1), zm] feeds moe2)
    _moe[ACT_ELU, workers, n_experts](n_rows, expert_in, sw + 9 + L, alpha, x1_w, x1_b, h1)
    _copy_rows(n_rows, e1, h1, e1, 0, h1zm, e1 + L, 0)
    _copy_rows(n_rows, L, y, yw, 4 * C + 9, h1zm, e1 + L, e1)
    _moe[ACT_ELU, workers, n_experts](n_rows, h1zm, e1 + L, alpha, x2_w, x2_b, h2)
    _moe[ACT_NONE, workers, n_experts](n_rows, h2, e2, alpha, x3_w, x3_b, delta)
    t0 = _tick[timed](nsp, T_MOE, t0)
    # ---- the next frame and its encoder inputs
    _step_advance[n_phases](n_rows, p3, r6, delta, w_e3, y, yw, _fp(p), Int(p.stride_length(0)), _fp(r),
                            Int(r.stride_length(0)), _fp(tgt_p), Int(tgt_p.stride_length(0)), _fp(tgt_r),
                            Int(tgt_r.stride_length(0)), _fo(p_next), _fo(v_next), _fo(r_next), _fo(state_next),
                            _fo(offset_next))
    t0 = _tick[timed](nsp, T_TAILS, t0)
    _ = len(scratch)  # the scratch lives until here: the pointers above do not keep it alive
