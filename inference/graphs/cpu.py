"""The CPU formulation: the four networks' graphs (networks.py) built from cpu_blocks.py, with symbolic widths.

cpu_blocks.py is blocks.py with the weight layers as Mojo CPU kernels (kernels/cpu_dense.mojo); the graphs are
built with the kernels' package in scope. One compiled model per graph serves every set of layer widths, so
these are the models shipped compiled in assets/compiled (builders/ship_compiled.py). `specs` names them for the
compile cache.
"""

from __future__ import annotations

from typing import Any

from max.graph import Graph
from max.graph.graph import default_custom_extensions_scope
from rsmt_studio.inference.graphs import cpu_blocks, networks


def build_graph(config: dict[str, Any], device_ref) -> Graph:
    """networks.build with cpu_blocks.py (config: networks.graph_config)."""
    with default_custom_extensions_scope(cpu_blocks.kernels_package()):
        return networks.build(config, device_ref, cpu_blocks)
