"""Which MAX device inference runs on: CPU by default, the GPU when asked for and present.

The choice is made once per engine, never hard-coded: a graph built for a GPU that is not there only fails
after a long compile (see the MAX field guide), so we check `accelerator_count()` before building anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

DeviceKind = Literal["cpu", "gpu"]

#: Environment override used when the caller passes no explicit device ("cpu", "gpu" or "auto").
DEVICE_ENV = "RSMT_STUDIO_DEVICE"


class DeviceUnavailableError(RuntimeError):
    """The user asked for a GPU on a machine without one."""


def gpu_count() -> int:
    """Number of MAX accelerators visible (0 when the driver or the GPU is missing)."""
    from max.driver import accelerator_count

    try:
        return int(accelerator_count())
    except Exception:  # noqa: BLE001 - a broken driver means "no GPU" for us
        return 0


@dataclass(frozen=True)
class DeviceChoice:
    """A resolved device: its kind, and how to get MAX's objects for it."""

    kind: DeviceKind

    def driver_device(self):  # -> max.driver.Device
        from max.driver import CPU, Accelerator

        return Accelerator() if self.kind == "gpu" else CPU()

    def ref(self):  # -> max.graph.DeviceRef
        from max.graph import DeviceRef

        return DeviceRef.GPU() if self.kind == "gpu" else DeviceRef.CPU()

    @property
    def label(self) -> str:
        return "GPU" if self.kind == "gpu" else "CPU"


def select_device(requested: str | None = None) -> DeviceChoice:
    """Resolve "cpu", "gpu", "auto" or None (env `RSMT_STUDIO_DEVICE`, else CPU).

    "auto" takes the GPU only when one is present; "gpu" without one raises `DeviceUnavailableError`.
    """
    choice = (requested or os.environ.get(DEVICE_ENV) or "cpu").strip().lower()
    if choice in ("gpu", "cuda", "accelerator"):
        if gpu_count() == 0:
            raise DeviceUnavailableError("no GPU available to MAX on this machine (accelerator_count() == 0)")
        return DeviceChoice("gpu")
    if choice == "auto":
        return DeviceChoice("gpu" if gpu_count() > 0 else "cpu")
    if choice == "cpu":
        return DeviceChoice("cpu")
    raise ValueError(f"unknown device {requested!r}: expected cpu, gpu or auto")


def available_devices() -> list[DeviceKind]:
    """Devices a UI may offer: always the CPU, the GPU when present."""
    return ["cpu", "gpu"] if gpu_count() > 0 else ["cpu"]
