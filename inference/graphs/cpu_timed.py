"""The CPU steps graph with its kernels timed: the profiling variant behind the latency panel's "Profile step".

MAX 26.7 has no per-op timing on the CPU (docs/performance.md, "CPU step: profile and floor"), so the kernels
time themselves: kernels/cpu_dense_timed.mojo holds a timed twin of each of cpu_blocks.py's custom ops
(`rsmt_dense_timed`, ..., `rsmt_sampler_step_timed`), which runs the untimed op's code unchanged and also returns
the nanoseconds spent in it; the whole step's twin returns them per kind of work inside it.

`build_graph` is cpu.py's: `networks.build` with cpu_blocks.py, the same nets.py maths and graph inputs, except that
the blocks are `TimedBlocks`, which emit the timed twins where cpu_blocks.py emits the ops, and the graph gets two
more outputs after the steps graph's six:

- `kernel_ns` (5,) int64: nanoseconds spent during the call in the dense, MoE and LSTM-cell kernels, the fused
  FiLM blocks and the step's tails (the phase update and decoder inputs; apply-delta and the next frame's encoder
  inputs), in `KINDS` order (the glue between them inside the whole-step op counts with the kernel it precedes);
  MAX's own few ops around the steps (the first step's encoder inputs, the stacks of the outputs), the runtime
  and `execute` are not timed: they are the rest of the call;
- `kernel_ops` (5,) int64: how many of each the call ran (constants of the graph).

Why a module of its own, not a flag in cpu.py or cpu_blocks.py: the compiled models' cache key hashes the code of
those modules (runtime/cache.py), so any change there would re-key the shipped compiled models
(assets/compiled). Nothing the shipped graphs are built from imports this module; its key covers it, the modules
it builds with and both kernel files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from max.dtype import DType
from max.graph import Graph, TensorType, TensorValue, ops
from max.graph.graph import default_custom_extensions_scope
from rsmt_studio.inference.graphs import cpu_blocks, networks

#: The op kinds timed, in the order of the `kernel_ns` and `kernel_ops` outputs: the weight layers, the fused FiLM
#: blocks and the step's two tails (kernels/cpu_step.mojo's T_DENSE ... T_TAILS).
KINDS = ("dense", "moe", "lstm", "film", "tails")
#: The kernels a whole sampler step (`rsmt_sampler_step`) runs, by kind (kernels/cpu_step.mojo).
STEP_OPS = {"dense": 12, "moe": 3, "lstm": 1, "film": 2, "tails": 2}
#: Outputs the timed graph adds after the steps graph's.
EXTRA_OUTPUTS = 2


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """The steps graph of `config` (networks.graph_config("steps", ...)) with its kernels timed."""
    if config.get("graph") != "steps":
        raise ValueError("only the steps graph has a timed variant")
    blocks = TimedBlocks()
    with default_custom_extensions_scope(cpu_blocks.kernels_package()):
        g = networks.build(config, device_ref, blocks)
        _append_outputs(g, blocks.outputs)
    return g


class TimedBlocks:
    """cpu_blocks.py with every custom op's timed twin (cpu_blocks.py's builders, shapes and parameters, through
    an `emit` that emits the twin); everything else is cpu_blocks.py's (so blocks.py's). `outputs()` gives the
    `kernel_ns` and `kernel_ops` values of the graph it built."""

    def __init__(self) -> None:
        self.times: dict[str, list[TensorValue]] = {k: [] for k in KINDS}  # (1,) ns values, or (5,) in KINDS order
        self.counts: dict[str, int] = {k: 0 for k in KINDS}  # ops of each kind the graph runs

    def __getattr__(self, name: str) -> Any:
        return getattr(cpu_blocks, name)

    def linear(self, *args, **kwargs) -> TensorValue:
        return cpu_blocks.linear(*args, **kwargs, emit=self._emit("dense"))

    def moe_linear(self, *args, **kwargs) -> TensorValue:
        return cpu_blocks.moe_linear(*args, **kwargs, emit=self._emit("moe"))

    def lstm_cell(self, *args, **kwargs) -> tuple[TensorValue, TensorValue]:
        return cpu_blocks.lstm_cell(*args, **kwargs, emit=self._emit("lstm"))

    def film_elu(self, *args, **kwargs) -> TensorValue:
        return cpu_blocks.film_elu(*args, **kwargs, emit=self._emit("film"))

    def sampler_step(self, *args, **kwargs) -> tuple[TensorValue, ...]:
        return cpu_blocks.sampler_step(*args, **kwargs, emit=self._emit("step"))

    def _emit(self, kind: str) -> cpu_blocks.Emit:
        """An `emit` for cpu_blocks.py's builders that emits the op's timed twin: the op's outputs are returned,
        its time, (1,) int64, is kept for `outputs`."""

        def emit(op: str, device, values: list, out_types: list, parameters: dict) -> list[TensorValue]:
            n = len(KINDS) if kind == "step" else 1
            *outs, ns = ops.custom(f"{op}_timed", device=device, values=values,
                                   out_types=[*out_types, TensorType(DType.int64, (n,), device=device)],
                                   parameters=parameters)
            if kind == "step":  # the whole step's twin times each kind inside it (kernels/cpu_dense_timed.mojo)
                for i, k in enumerate(KINDS):
                    self.times[k].append(ns[i : i + 1])
                    self.counts[k] += STEP_OPS[k]
            else:
                self.times[kind].append(ns)
                self.counts[kind] += 1
            return outs

        return emit

    def outputs(self, device) -> list[TensorValue]:
        """[kernel_ns (3,), kernel_ops (3,)] (int64, in `KINDS` order), built in the current graph."""
        if not any(self.times.values()):
            raise RuntimeError("the graph ran no kernel through TimedBlocks")
        zero = ops.constant(np.zeros(1, np.int64), DType.int64, device=device)
        per_kind = [ops.sum(ops.concat(self.times[k], 0), 0) if self.times[k] else zero for k in KINDS]
        counts = ops.constant(np.array([self.counts[k] for k in KINDS], np.int64), DType.int64, device=device)
        return [ops.concat(per_kind, 0), counts]


def _append_outputs(g: Graph, extra) -> None:
    """Give the finished graph `g` the outputs `extra(device)` after its own.

    networks.build ends the graph itself (`Graph.output`, once), and MAX 26.7 has no public call that adds
    outputs to a finished graph; so its output op is read back and replaced, by the calls `Graph.output_types` and
    `Graph.output` themselves make (MAX is pinned; a change there fails this build, never the shipped graphs')."""
    from max._core import Value as _CoreValue
    from max.graph import Value

    with g:
        terminator = g._body.operations[-1]
        values = [Value.from_mlir(_CoreValue._from_cmlir(v)) for v in terminator.operands]
        n = len(g.output_types)
        g._erase_output_if_present()
        g.output(*values, *extra(values[0].device))
    if len(g.output_types) != n + EXTRA_OUTPUTS:
        raise RuntimeError(f"the timed steps graph has {len(g.output_types)} outputs, expected {n + EXTRA_OUTPUTS}")
