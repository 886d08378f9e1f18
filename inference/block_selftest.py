"""A graph that runs every building block once, so blocks.py can be checked against numpy.

Inputs: x (B, F), h (B, H), c (B, H), gate logits (B, E), a sequence (B, T, F), then the weights of each
block. Outputs: elu(x), softplus(x), layer_norm(x), linear(x), lstm (h', c'), moe(x), conv1d(seq), atan2(x, x')
over the first two columns, softmax(gate).
"""

from __future__ import annotations

from typing import Any

from max.dtype import DType
from max.graph import Graph, TensorType
from rsmt_studio.inference import blocks

N_EXPERTS = 4
KERNEL = 3


def input_names() -> list[str]:
    return ["x", "h", "c", "gate", "seq", "y2", "x2",
            "lin.w", "lin.b", "lstm.w", "lstm.b", "moe.w", "moe.b", "conv.w", "conv.b"]


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    f32 = DType.float32

    def t(*dims):
        return TensorType(f32, dims, device=device_ref)

    types = [
        t("batch", "feat"), t("batch", "hid"), t("batch", "hid"), t("batch", N_EXPERTS),
        t("batch", "time", "feat"), t("batch", "n"), t("batch", "n"),
        t("lin_in", "lin_out"), t("lin_out2"),
        t("lstm_in", "lstm_4h"), t("lstm_4h2"),
        t("moe_in", "moe_eo"), t("moe_eo2"),
        t(KERNEL, "conv_in", "conv_out"), t("conv_out2"),
    ]
    with Graph("block_selftest", input_types=types) as g:
        x, h, c, gate, seq, y2, x2, lw, lb, sw, sb, mw, mb, cw, cb = (v.tensor for v in g.inputs)
        h_new, c_new = blocks.lstm_cell(x, h, c, sw, sb)
        g.output(
            blocks.elu(x),
            blocks.softplus(x),
            blocks.layer_norm(x),
            blocks.linear(x, lw, lb),
            h_new,
            c_new,
            blocks.moe_linear(x, blocks.softmax(gate), mw, mb, N_EXPERTS),
            blocks.conv1d(seq, cw, cb, padding=1),
            blocks.atan2(y2, x2),
            blocks.softmax(gate),
        )
    return g
