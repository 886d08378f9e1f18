"""The CPU formulation: the four networks' graphs (networks.py) built from blocks.py, with symbolic widths.

One compiled model per graph serves every set of layer widths, so these are the models shipped compiled in
assets/compiled (builders/ship_compiled.py). `specs` names them for the compile cache.
"""

from __future__ import annotations

from typing import Any

from max.graph import Graph
from rsmt_studio.inference.graphs import blocks, networks


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """networks.build with blocks.py (config: networks.graph_config)."""
    return networks.build(config, device_ref, blocks)
