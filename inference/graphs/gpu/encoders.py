"""The GPU's `deephase` and `style` graphs: networks.py's, built from gpu/blocks.py for the weights' static shapes.

(The GPU's `prepare` and `steps` graphs are fused_prepare.py's and fused_steps.py's.)
"""

from __future__ import annotations

from typing import Any

from max.graph import Graph
from rsmt_studio.inference.graphs import networks
from rsmt_studio.inference.graphs.gpu import blocks


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """networks.build with gpu/blocks.py (config: networks.graph_config plus "weight_shapes" and "data_dims")."""
    return networks.build(config, device_ref, blocks)
