"""Loading compiled MEFs into a MAX session and running them with bound weights.

`GraphRunner` keeps the weight buffers resident on the device (and alive: on CPU MAX reads the numpy memory
without copying), so a call only moves the per-call inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rsmt_studio.inference.runtime.cache import GraphSpec
from rsmt_studio.inference.runtime.devices import DeviceChoice


class MaxSession:
    """One MAX InferenceSession for one device; loads MEFs (never compiles)."""

    def __init__(self, device: DeviceChoice) -> None:
        from max.engine import InferenceSession

        self.device = device
        self.driver_device = device.driver_device()
        self.session = InferenceSession(devices=[self.driver_device])

    def load(self, spec: GraphSpec):
        """Load the spec's MEF (a few ms); raises FileNotFoundError when it was not compiled yet."""
        from max import engine

        path = spec.mef_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not compiled yet (run `rsmt-studio compile`)")
        return self.session.init(engine.read(path))

    def to_device(self, array: np.ndarray):
        from max.driver import Buffer

        buf = Buffer.from_numpy(np.ascontiguousarray(array, dtype=array.dtype))
        return buf if self.device.kind == "cpu" else buf.to(self.driver_device)


class GraphRunner:
    """A loaded model plus its weights, bound once: `runner(*inputs) -> list[np.ndarray]`."""

    def __init__(self, session: MaxSession, spec: GraphSpec, weights: Sequence[np.ndarray]) -> None:
        self.session = session
        self.spec = spec
        self.model = session.load(spec)
        # Keep the host arrays alive: on CPU the buffers alias them.
        self._host_weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self._weight_buffers = [session.to_device(w) for w in self._host_weights]

    @property
    def weights(self) -> list[np.ndarray]:
        """The bound weights (host arrays, in input order): another graph of the same weights can bind them too."""
        return list(self._host_weights)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        # Scalars (loop counts) stay on the host: MAX reads them there to drive control flow.
        bufs = [self.session.to_device(np.ascontiguousarray(x)) if np.ndim(x) else _host(x) for x in inputs]
        outs = self.model.execute(*bufs, *self._weight_buffers)
        if self.session.device.kind == "cpu":
            return [o.to_numpy() for o in outs]
        from max.driver import CPU

        return [o.to(CPU()).to_numpy() for o in outs]


def _host(x: np.ndarray):
    from max.driver import Buffer

    return Buffer.from_numpy(np.array(x))  # np.ascontiguousarray would make a 0-d array 1-d
