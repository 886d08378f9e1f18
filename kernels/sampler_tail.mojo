"""Per-frame tails of the RSMT sampler step as single GPU kernels (see inference/graphs/gpu/fused_steps.py for the layouts).

Why: at batch 1 on an H100 a transition is a chain of small kernels whose count sets its time. The maths from the
phase predictor's output to the decoder's inputs (phase update, hip rotation, the decoder's input vectors), and
from the last expert layer to the next frame's encoder inputs (expert blend, apply-delta, Gram-Schmidt, velocity,
offsets to the target), were ~30 kernels per frame as graph ops; each is one kernel here. Every thread computes
one output element and recomputes the few small vector norms it needs.
"""

import extensibility
from extensibility import InputTensor, OutputTensor, foreach
from max.gpu.host import DeviceContext
from std.math import cos, exp, log, sin, sqrt, tanh
from std.utils.coord import Coord
from std.utils.index import IndexList

comptime VEC_EPS: Float32 = 1e-8


@extensibility.register("rsmt_decoder_inputs")
struct DecoderInputs:
    """Inputs: y (B, >= 4C+9+L) the predictor's output, dprev (B, DW) whose first 2C columns are the last phase, x (B, XW) the
    frame's state vector -> D (B, DW) = [new phase (2C), zm (L), 0.. | at expert_off: p_rel, v, hip_v, r, hip_r,
    zm, 0..]."""

    @staticmethod
    def execute[target: StaticString, n_phases: Int, latent: Int, p3: Int, r6: Int, expert_off: Int,
                dt: Float32](
        d: OutputTensor[dtype=DType.float32, rank=2, ...],
        y: InputTensor[dtype=DType.float32, rank=2, ...],
        dprev: InputTensor[dtype=DType.float32, rank=2, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        ctx: DeviceContext,
    ) raises:
        def body[width: Int](idx: Coord[...]) {var y, var dprev, var x} -> SIMD[DType.float32, width]:
            var b = Int(idx[0].value())
            var i = Int(idx[1].value())
            var c2 = 2 * n_phases
            var yz = 4 * n_phases + 9  # zm's column in y
            var v: Float32 = 0
            if i < c2:
                var c = i // 2
                var lx = dprev.load[1](IndexList[2](b, 2 * c))[0]
                var ly = dprev.load[1](IndexList[2](b, 2 * c + 1))[0]
                var ln = sqrt(lx * lx + ly * ly + VEC_EPS)
                var ux = lx / ln
                var uy = ly / ln
                var ar = y.load[1](IndexList[2](b, c2 + c))[0]
                var amp = max(ar, Float32(0)) + log(Float32(1) + exp(-abs(ar)))
                var ang = Float32(6.283185307179586) * dt * y.load[1](IndexList[2](b, 3 * n_phases + c))[0]
                var cs = cos(ang)
                var sn = sin(ang)
                var ax = amp * (cs * ux - sn * uy)
                var ay = amp * (sn * ux + cs * uy)
                var hx = y.load[1](IndexList[2](b, 2 * c))[0]
                var hy = y.load[1](IndexList[2](b, 2 * c + 1))[0]
                var na = sqrt(ax * ax + ay * ay + VEC_EPS)
                var nh = sqrt(hx * hx + hy * hy + VEC_EPS)
                var dx = ax / na + hx / nh
                var dy = ay / na + hy / nh
                var nd = sqrt(dx * dx + dy * dy + VEC_EPS)
                var comp = dx if i % 2 == 0 else dy
                v = Float32(0.5) * (na + nh) * comp / nd
            elif i < c2 + latent:
                v = y.load[1](IndexList[2](b, yz + i - c2))[0]
            elif i >= expert_off:
                var k = i - expert_off
                if k < 2 * p3:  # p_rel, v
                    v = x.load[1](IndexList[2](b, k))[0]
                elif k < 2 * p3 + 3:  # hip_v
                    v = y.load[1](IndexList[2](b, 4 * n_phases + k - 2 * p3))[0]
                elif k < 2 * p3 + 3 + r6:  # r
                    v = x.load[1](IndexList[2](b, k - 3))[0]
                elif k < 2 * p3 + 9 + r6:  # hip_r = r[root] + hip_d6
                    var t = k - (2 * p3 + 3 + r6)
                    v = x.load[1](IndexList[2](b, 2 * p3 + t))[0] + y.load[1](IndexList[2](b, 4 * n_phases + 3 + t))[0]
                elif k < 2 * p3 + 9 + r6 + latent:  # zm
                    v = y.load[1](IndexList[2](b, yz + k - (2 * p3 + 9 + r6)))[0]
            return SIMD[DType.float32, width](v)

        foreach[target=target, simd_width=1](body, d, ctx)


@always_inline
def _blend[n_experts: Int](e3: InputTensor[dtype=DType.float32, rank=2, ...],
                           alpha: InputTensor[dtype=DType.float32, rank=2, ...], b: Int, m: Int) -> Float32:
    """Sum over experts of alpha[b, e] * e3[b, m*E + e]: the experts of one column are adjacent, so a power-of-two
    count is two vector loads instead of 2E dependent scalar ones."""
    comptime if n_experts == 2 or n_experts == 4 or n_experts == 8 or n_experts == 16:
        var a = alpha.load[n_experts](IndexList[2](b, 0))
        var e = e3.load[n_experts](IndexList[2](b, m * n_experts))
        return (a * e).reduce_add()
    else:
        var acc: Float32 = 0
        for k in range(n_experts):
            acc += alpha.load[1](IndexList[2](b, k))[0] * e3.load[1](IndexList[2](b, m * n_experts + k))[0]
        return acc


@extensibility.register("rsmt_advance")
struct Advance:
    """Inputs: e3 (B, (p3+r6)*E) the last expert layer before blending, expert-minor (column m*E + e), alpha (B, E) the expert gate, d (B, DW) the
    decoder inputs (hip_v, hip_r), x (B, XW) this frame's state vector, tgt_p (B, p3), tgt_r (B, r6) -> the next
    frame's state vector (B, XW) = [p_rel, v, r, tgt_p - p, tgt_r - r, 0.. | at pabs_off: p, 0..]."""

    @staticmethod
    def execute[target: StaticString, p3: Int, r6: Int, n_experts: Int, expert_off: Int, pabs_off: Int](
        xn: OutputTensor[dtype=DType.float32, rank=2, ...],
        e3: InputTensor[dtype=DType.float32, rank=2, ...],
        alpha: InputTensor[dtype=DType.float32, rank=2, ...],
        d: InputTensor[dtype=DType.float32, rank=2, ...],
        x: InputTensor[dtype=DType.float32, rank=2, ...],
        tgt_p: InputTensor[dtype=DType.float32, rank=2, ...],
        tgt_r: InputTensor[dtype=DType.float32, rank=2, ...],
        ctx: DeviceContext,
    ) raises:
        def body[width: Int](idx: Coord[...]) {var e3, var alpha, var d, var x, var tgt_p, var tgt_r} -> SIMD[
            DType.float32, width
        ]:
            var b = Int(idx[0].value())
            var i = Int(idx[1].value())
            var v: Float32 = 0
            # Which quantity this column holds: a position column m (kinds 0-3) or a rotation column q (4, 5).
            var kind = -1
            var m = 0
            if i < p3:
                kind = 0
                m = i
            elif i < 2 * p3:
                kind = 1
                m = i - p3
            elif i < 2 * p3 + r6:
                kind = 4
                m = i - 2 * p3
            elif i < 3 * p3 + r6:
                kind = 2
                m = i - (2 * p3 + r6)
            elif i < 3 * p3 + 2 * r6:
                kind = 5
                m = i - (3 * p3 + r6)
            elif i >= pabs_off and i < pabs_off + p3:
                kind = 3
                m = i - pabs_off
            if kind >= 0 and kind <= 3:
                # next position of column m (and of the root's column m % 3 for p_rel)
                var pn: Float32 = 0
                var root: Float32 = 0
                for pass_ in range(2):
                    var mm = m if pass_ == 0 else m % 3
                    var val = x.load[1](IndexList[2](b, pabs_off + mm))[0]
                    if mm < 3:
                        val += d.load[1](IndexList[2](b, expert_off + 2 * p3 + mm))[0]
                    else:
                        val += _blend[n_experts](e3, alpha, b, mm)
                    if pass_ == 0:
                        pn = val
                    else:
                        root = val
                if kind == 0:
                    v = pn - root
                elif kind == 1:
                    v = pn - x.load[1](IndexList[2](b, pabs_off + m))[0]
                elif kind == 2:
                    v = tgt_p.load[1](IndexList[2](b, m))[0] - pn
                else:
                    v = pn
            elif kind >= 4:
                # next 6-D rotation of joint m // 6, orthonormalised (Gram-Schmidt), component m % 6
                var j = m // 6
                var raw = SIMD[DType.float32, 8](0)
                for t in range(6):
                    var q = j * 6 + t
                    var val: Float32
                    if j == 0:
                        val = d.load[1](IndexList[2](b, expert_off + 2 * p3 + 3 + r6 + t))[0]
                    else:
                        val = x.load[1](IndexList[2](b, 2 * p3 + q))[0] + _blend[n_experts](e3, alpha, b, p3 + q)
                    raw[t] = val
                var na = sqrt(raw[0] * raw[0] + raw[1] * raw[1] + raw[2] * raw[2] + VEC_EPS)
                var a0 = raw[0] / na
                var a1 = raw[1] / na
                var a2 = raw[2] / na
                var dot = a0 * raw[3] + a1 * raw[4] + a2 * raw[5]
                var b0 = raw[3] - dot * a0
                var b1 = raw[4] - dot * a1
                var b2 = raw[5] - dot * a2
                var nb = sqrt(b0 * b0 + b1 * b1 + b2 * b2 + VEC_EPS)
                var t = m % 6
                var rn: Float32
                if t == 0:
                    rn = a0
                elif t == 1:
                    rn = a1
                elif t == 2:
                    rn = a2
                elif t == 3:
                    rn = b0 / nb
                elif t == 4:
                    rn = b1 / nb
                else:
                    rn = b2 / nb
                if kind == 4:
                    v = rn
                else:
                    v = tgt_r.load[1](IndexList[2](b, m))[0] - rn
            return SIMD[DType.float32, width](v)

        foreach[target=target, simd_width=1](body, xn, ctx)


@extensibility.register("rsmt_lstm_gates")
struct LSTMGates:
    """Inputs: gates (B, 4H) the LSTM cell's pre-activations (torch's order i, f, g, o), hc (B, 2H) = [h, c] of
    the last step -> [h, c] of this step. One kernel instead of the three MAX made of the gate maths."""

    @staticmethod
    def execute[target: StaticString, hidden: Int](
        hc_next: OutputTensor[dtype=DType.float32, rank=2, ...],
        gates: InputTensor[dtype=DType.float32, rank=2, ...],
        hc: InputTensor[dtype=DType.float32, rank=2, ...],
        ctx: DeviceContext,
    ) raises:
        def body[width: Int](idx: Coord[...]) {var gates, var hc} -> SIMD[DType.float32, width]:
            var b = Int(idx[0].value())
            var col = Int(idx[1].value())
            var j = col % hidden
            var gi = gates.load[1](IndexList[2](b, j))[0]
            var gf = gates.load[1](IndexList[2](b, hidden + j))[0]
            var gg = gates.load[1](IndexList[2](b, 2 * hidden + j))[0]
            var go = gates.load[1](IndexList[2](b, 3 * hidden + j))[0]
            var c = hc.load[1](IndexList[2](b, hidden + j))[0]
            var i = Float32(1) / (Float32(1) + exp(-gi))
            var f = Float32(1) / (Float32(1) + exp(-gf))
            var o = Float32(1) / (Float32(1) + exp(-go))
            var c_new = f * c + i * tanh(gg)
            var v = o * tanh(c_new) if col < hidden else c_new
            return SIMD[DType.float32, width](v)

        foreach[target=target, simd_width=1](body, hc_next, ctx)

