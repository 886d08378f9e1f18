"""Where compiled MAX models (MEF files) live, and when they are stale.

A MEF holds the compiled program but no weights (weights are graph inputs, bound at load time), so the key is
what changes the *program*: the graph module and the building blocks' source, the graph's static structure
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


@functools.cache
def _source_hash(module_name: str, device: str = "cpu") -> str:
    """Hash of the code of the graph module and of the maths it builds from (nets.py, blocks.py, and on
    accelerators gpu_blocks.py, fused_steps.py and the Mojo kernels, so GPU-only changes leave CPU models valid).

    The syntax tree without docstrings is hashed, so comments, docstrings and formatting do not invalidate
    MEFs; any change to the code does.
    """
    h = hashlib.sha256()
    names = [module_name, "rsmt_studio.inference.nets", "rsmt_studio.inference.blocks"]
    if module_name != "rsmt_studio.inference.graphs":  # other graph modules build on graphs.py's input lists
        names.append("rsmt_studio.inference.graphs")
    if device != "cpu":  # fused_steps: its layouts and op wrappers, which fused_prepare builds on too
        names += ["rsmt_studio.inference.gpu_blocks", "rsmt_studio.inference.fused_steps"]
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        h.update(_code_fingerprint(Path(spec.origin).read_text()).encode())
    if device != "cpu":  # the Mojo custom ops (kernels/*.mojo) that GPU graphs may use, byte for byte
        kernels = importlib.util.find_spec("rsmt_studio.kernels")
        for path in sorted(Path(kernels.origin).parent.glob("*.mojo")):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _code_fingerprint(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
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
        from rsmt_studio.inference import cpu_target

        if self.device != "cpu":
            return cpu_target.host_fingerprint()
        return self.cpu_target or cpu_target.cpu_target()

    def key(self) -> str:
        payload = {
            "name": self.name,
            "module": self.module,
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
        from rsmt_studio.inference.devices import DeviceChoice

        module = importlib.import_module(self.module)
        return module.build_graph(self.config, DeviceChoice(self.device).ref())  # type: ignore[arg-type]
