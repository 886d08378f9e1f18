"""The GPU formulation: which graph is built from which file, the weights' GPU layout, the FiLM fold.

The fastest measured on an H100 (docs/performance.md; earlier formulations are at commit 1a90fba):

| graph | file | what |
|---|---|---|
| `deephase`, `style` | `encoders.py` | networks.py's graphs from `blocks.py` (widths padded to 32, conv1d as a matmul over unfolded windows, attention as multiply + reduce) |
| `prepare` | `fused_prepare.py` | the 8 warm-up frames batched, the LSTM recurrence with a Mojo op |
| `steps` | `fused_steps.py` | k sampler steps with the per-frame tails as Mojo custom ops (`kernels/sampler_tail.mojo`) |
| `fold` | `fused_film.py` | once per style: the FiLM query and output layers folded into the style caches (`FilmFold`) |
| `chain` | `chain_graph.py` | the last frame of a `steps` call, so captured device graphs keep the state on the GPU |

All are built for the weights' static shapes (one compiled model per set of widths) and replayed as captured
device graphs (runtime/device_graphs.py). The tests build them for the CPU and compare them with numpy.
"""

from __future__ import annotations

import numpy as np
from rsmt_studio.inference.graphs.gpu import blocks, fused_film, fused_prepare, fused_steps

#: The weights each fused graph module takes, in input order (the encoders take networks.weight_inputs').
WEIGHT_INPUTS = {
    "rsmt_studio.inference.graphs.gpu.fused_steps": fused_steps.weight_inputs,
    "rsmt_studio.inference.graphs.gpu.fused_prepare": fused_prepare.weight_inputs,
    "rsmt_studio.inference.graphs.gpu.fused_film": lambda: list(fused_film.FOLD),
}


def specs(dims, device: str, steps_per_call: int, weights: dict[str, np.ndarray] | None) -> dict:
    """model_specs on a GPU: the table above, for the static shapes of adapted `weights`."""
    from rsmt_studio.inference.graphs import networks
    from rsmt_studio.inference.runtime.cache import GraphSpec

    if weights is None:
        raise ValueError("GPU graphs are built for the weights' shapes: pass weights")
    k = steps_per_call

    def encoder_config(g: str) -> dict:
        cfg = networks.graph_config(g, dims, k)
        cfg["weight_shapes"] = {n: list(blocks.padded_shape(n, weights[n].shape)) for n, _ in networks.weight_inputs(g)}
        cfg["data_dims"] = networks.width_dims(weights)
        return cfg

    out = {g: GraphSpec(g, "rsmt_studio.inference.graphs.gpu.encoders", encoder_config(g), device)
           for g in ("deephase", "style")}
    out["prepare"] = GraphSpec("prepare", "rsmt_studio.inference.graphs.gpu.fused_prepare",
                               fused_prepare.graph_config(weights, dims), device)
    out["steps"] = GraphSpec(f"steps{k}", "rsmt_studio.inference.graphs.gpu.fused_steps",
                             fused_steps.graph_config(weights, dims, k), device)
    out["fold"] = GraphSpec("film_fold", "rsmt_studio.inference.graphs.gpu.fused_film",
                            fused_film.graph_config(weights), device)
    return out


def device_weights(adapted: dict[str, np.ndarray], dims) -> dict[str, np.ndarray]:
    """Adapted weights -> the GPU graphs' inputs: padded (blocks.device_layout) plus the fused graphs' weights."""
    out = blocks.device_layout(adapted)
    out.update(fused_steps.fused_weights(adapted, dims))
    out.update(fused_prepare.fused_weights(adapted))
    out.update(fused_film.fused_weights(adapted))
    return out


class FilmFold:
    """The style caches as the fused graphs take them: each FiLM block's keys and values folded with its query and
    output layers (fused_film.py) by the `fold` graph, once per style code. Codes are read-only, so they are
    recognised by identity (memoised, at most 16); anything else is folded on every call."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self._folded: dict[tuple[int, ...], tuple[tuple, tuple]] = {}

    def __call__(self, caches) -> tuple[np.ndarray, ...]:
        from rsmt_studio.inference.runtime.device_graphs import is_frozen

        key = tuple(id(a) for a in caches)
        hit = self._folded.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], caches, strict=True)):
            return hit[1]
        keys_values = [caches[i] for block in fused_film.BLOCKS for i in fused_film.KEYS_VALUES[block]]
        outs = []
        for a in self.runner(*[np.ascontiguousarray(a, np.float32) for a in keys_values]):
            a = np.array(a, np.float32)  # owned and read-only: a captured replay then skips re-uploading it
            a.flags.writeable = False  # (recognised by identity, device_graphs._Uploaded)
            outs.append(a)
        kq_e, vo_e, kq_p, vo_p = outs
        folded = (caches[0], caches[1], kq_e, vo_e, caches[4], caches[5], kq_p, vo_p)
        if all(is_frozen(a) for a in caches):
            if len(self._folded) >= 16:  # bounded: a long session meets many styles
                self._folded.pop(next(iter(self._folded)))
            self._folded[key] = (tuple(caches), folded)
        return folded
