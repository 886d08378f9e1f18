"""The RSMT networks as MAX graphs: one formulation per device.

- `nets.py`: the networks' inference maths, written once against a blocks module `K` (MAX blocks or numpy).
- `networks.py`: the four graphs of a transition (`deephase`, `style`, `prepare`, `steps`) from nets.py for a
  given blocks module: their inputs and `build`.
- `blocks.py`: the MAX building blocks (the CPU's); `numpy_blocks.py`: the same in numpy, the reference of the
  tests and the benchmark's numpy engine.
- `cpu.py`: the CPU formulation (blocks.py, symbolic widths; these models are shipped compiled).
- `cpu_timed.py`: the CPU steps graph with its kernels timed (the on-demand step profile; never shipped).
- `gpu/`: the GPU formulation (its `__init__` says which file builds which graph).

`model_specs` names an engine's graphs on a device for the compile cache, `spec_weight_names` the weights each
takes, `device_weights` lays the adapted weights out as that device's graphs take them. A graph's cache key hashes
the code of the modules of this package that its builder imports (runtime/cache.py), so code outside these
files never invalidates a compiled model.
"""

from __future__ import annotations

import numpy as np


def model_specs(dims, device: str, steps_per_call: int, chain: bool = False,
                weights: dict[str, np.ndarray] | None = None, first_step: bool = False,
                profile: bool = False) -> dict:
    """The graphs an engine needs, as cache specs {"deephase", "style", "prepare", "steps", ...: GraphSpec}.

    CPU: cpu.py's four graphs, whatever the widths, and with `first_step` (and more than one step per call) the
    one-step graph as "steps_first", which starts a streamed transition. GPU: gpu/'s, built for the static shapes
    of `weights` (adapted, as `weights.adapt_all` gives them), plus the FiLM `fold` graph. `chain`: plus the
    last-frame graph that captured device graphs need (GPU; on the CPU only for tests). `profile` (CPU): plus the
    steps graph with its kernels timed (cpu_timed.py) as "steps_profile", which the engine's step profile
    compiles on demand."""
    from rsmt_studio.inference.graphs import networks
    from rsmt_studio.inference.graphs.gpu import chain_graph
    from rsmt_studio.inference.runtime.cache import GraphSpec

    k = int(steps_per_call)
    if device == "cpu":
        specs = {g: GraphSpec(g if g != "steps" else f"steps{k}", "rsmt_studio.inference.graphs.cpu",
                              networks.graph_config(g, dims, k), device)
                 for g in networks.GRAPHS}
        if first_step and k > 1:
            specs["steps_first"] = GraphSpec("steps1", "rsmt_studio.inference.graphs.cpu",
                                             networks.graph_config("steps", dims, 1), device)
        if profile:
            specs["steps_profile"] = GraphSpec(f"steps{k}_timed", "rsmt_studio.inference.graphs.cpu_timed",
                                               networks.graph_config("steps", dims, k), device)
    else:
        from rsmt_studio.inference.graphs import gpu

        specs = gpu.specs(dims, device, k, weights)
    if chain:
        specs["chain"] = GraphSpec(f"chain{k}", "rsmt_studio.inference.graphs.gpu.chain_graph",
                                   chain_graph.chain_config(dims, k), device)
    return specs


def spec_weight_names(name: str, spec) -> list[str]:
    """The weights a graph of `model_specs` takes, in its input order."""
    from rsmt_studio.inference.graphs import gpu, networks

    if name == "chain":
        return []
    if spec.module in gpu.WEIGHT_INPUTS:
        return [w for w, _ in gpu.WEIGHT_INPUTS[spec.module]()]
    return [w for w, _ in networks.weight_inputs("steps" if name in ("steps_first", "steps_profile") else name)]


def device_weights(weights: dict[str, np.ndarray], device: str, dims) -> dict[str, np.ndarray]:
    """Adapted weights -> the layouts a device's graphs take (the CPU's are the adapted ones)."""
    if device == "cpu":
        return weights
    from rsmt_studio.inference.graphs import gpu

    return gpu.device_weights(weights, dims)
