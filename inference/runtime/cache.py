"""Where compiled MAX models (MEF files) live, and when they are stale.

A MEF holds the compiled program but no weights (weights are graph inputs, bound at load time), so the key is
what changes the *program*: the code the graph is built from (by content, `_source_hash`), the graph's static structure
(joint counts, phase channels, experts, steps per call, ...), the device kind, the MAX version and the CPU
target the machine code is for (`cpu_target.py`: a cache shared between machines never hands a CPU code it
cannot run). Widths are
symbolic dims, so changing layer widths or weight values reuses the same MEF; a weight set whose layout does not
fit is caught by the graphs' run-time shape checks (`ops.rebind`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Overrides the cache folder (tests point it at a shared temporary folder; CI at a cached one).
CACHE_ENV = "RSMT_STUDIO_CACHE_DIR"


def cache_root() -> Path:
    """The user's cache folder for rsmt-studio (platformdirs), or `$RSMT_STUDIO_CACHE_DIR`."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rsmt-studio", appauthor=False))


def mef_dir() -> Path:
    return cache_root() / "mef"


def max_version() -> str:
    try:
        return importlib.metadata.version("max")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - MAX is a hard dependency
        return "unknown"


#: The graph code lives in this package (inference/graphs/).
GRAPHS_PACKAGE = "rsmt_studio.inference.graphs"


#: (graph module name prefix, a kernels/ file of the custom ops the modules under it use; cpu_timed.py's timed
#: twins call cpu_dense.mojo's and cpu_step.mojo's ops, which come in through its import of cpu_blocks)
KERNEL_FILES = ((f"{GRAPHS_PACKAGE}.gpu.", "sampler_tail.mojo"), (f"{GRAPHS_PACKAGE}.cpu_blocks", "cpu_dense.mojo"),
                (f"{GRAPHS_PACKAGE}.cpu_blocks", "cpu_step.mojo"),
                (f"{GRAPHS_PACKAGE}.cpu_timed", "cpu_dense_timed.mojo"))


@functools.cache
def _source_hash(module_name: str, device: str = "cpu") -> str:
    """Hash of the code a graph is built from: its builder module and every module of inference/graphs/ that it
    imports, transitively (package `__init__`s excepted), plus the Mojo files of the custom ops that code uses
    (`KERNEL_FILES`: the GPU formulation's, graphs/gpu/, and the CPU's, graphs/cpu_blocks.py). The CPU graphs
    import no GPU module, so GPU-only changes leave the CPU models (and the shipped ones) valid, and the reverse.

    By content, not by place: each module's syntax tree without docstrings and without the package paths of its
    imports, in sorted order. Comments, docstrings, formatting and moving files between folders do not invalidate
    compiled models; any change to the code does. (`device` is kept for callers; the code decides.)
    """
    sources = _graph_sources(module_name)
    h = hashlib.sha256()
    for fingerprint in sorted(_code_fingerprint(source) for source in sources.values()):
        h.update(fingerprint.encode())
    used = sorted({f for prefix, f in KERNEL_FILES if any(n.startswith(prefix) for n in sources)})
    if used:  # the custom ops, byte for byte
        kernels = Path(importlib.util.find_spec("rsmt_studio.kernels").origin).parent
        for name in used:
            h.update((kernels / name).read_bytes())
    return h.hexdigest()[:16]


def _graph_sources(module_name: str) -> dict[str, str]:
    """{module name: source} of `module_name` and the modules of GRAPHS_PACKAGE it imports, transitively."""
    sources: dict[str, str] = {}
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in sources:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        source = Path(spec.origin).read_text()
        if spec.submodule_search_locations is None:  # a module, not a package's __init__
            sources[name] = source
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            for other in found:
                if other.startswith(f"{GRAPHS_PACKAGE}.") and other not in sources and _is_module(other):
                    todo.append(other)
    return sources


def _is_module(name: str) -> bool:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError):  # `from package.module import Name`: Name is not a module
        return False
    return spec is not None and spec.origin is not None and spec.submodule_search_locations is None


def _code_fingerprint(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rsmt_studio."):
            node.module = None  # where a module lives is not part of what it computes
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


@dataclass(frozen=True)
class GraphSpec:
    """Everything needed to build one graph in another process: module, static config, device kind.

    `module` must expose `build_graph(config: dict, device_ref) -> max.graph.Graph`. `cpu_target` empty means
    this machine's (`target()`); CPU graphs are compiled for it with `set_virtual_cpu_target`.
    """

    name: str
    module: str
    config: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    device: str = "cpu"
    cpu_target: str = ""

    def target(self) -> str:
        """The CPU the machine code is for: CPU graphs a named level (or this host's fingerprint where it has
        none); accelerator graphs, whose host code is compiled for this host as it is, its fingerprint."""
        from rsmt_studio.inference.runtime import cpu_target

        if self.device != "cpu":
            return cpu_target.host_fingerprint()
        return self.cpu_target or cpu_target.cpu_target()

    def key(self) -> str:
        payload = {  # no module path: the code's content is in "source" (`_source_hash`)
            "name": self.name,
            "config": self.config,
            "device": self.device,
            "max": max_version(),
            "source": _source_hash(self.module, self.device),
            "cpu_target": self.target(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]

    def mef_path(self) -> Path:
        where = self.target() if self.device == "cpu" else self.device
        return mef_dir() / f"{self.name}-{where}-{self.key()}.mef"

    def is_compiled(self) -> bool:
        return self.mef_path().is_file()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "config": self.config, "device": self.device,
                "cpu_target": self.target()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphSpec:
        return cls(name=data["name"], module=data["module"], config=dict(data["config"]), device=data["device"],
                   cpu_target=data.get("cpu_target", ""))

    def build(self):
        """Build the MAX graph (in whichever process calls this)."""
        from rsmt_studio.inference.runtime.devices import DeviceChoice

        module = importlib.import_module(self.module)
        return module.build_graph(self.config, DeviceChoice(self.device).ref())  # type: ignore[arg-type]
