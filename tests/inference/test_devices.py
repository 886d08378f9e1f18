"""Device choice: CPU by default, GPU only when asked for and present, env override, clear error otherwise."""

from __future__ import annotations

import pytest
from rsmt_studio.inference.runtime import devices
from rsmt_studio.inference.runtime.devices import DeviceUnavailableError, select_device


def test_cpu_is_the_default(monkeypatch):
    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    assert select_device(None).kind == "cpu"
    assert select_device(None).label == "CPU"


def test_auto_takes_the_gpu_only_when_present(monkeypatch):
    monkeypatch.setattr(devices, "gpu_count", lambda: 0)
    assert select_device("auto").kind == "cpu"
    assert devices.available_devices() == ["cpu"]
    monkeypatch.setattr(devices, "gpu_count", lambda: 1)
    assert select_device("auto").kind == "gpu"
    assert devices.available_devices() == ["cpu", "gpu"]


def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(devices, "gpu_count", lambda: 0)
    with pytest.raises(DeviceUnavailableError, match="no GPU"):
        select_device("gpu")


def test_env_override_and_bad_names(monkeypatch):
    monkeypatch.setattr(devices, "gpu_count", lambda: 1)
    monkeypatch.setenv(devices.DEVICE_ENV, "gpu")
    assert select_device(None).kind == "gpu"
    assert select_device("cpu").kind == "cpu"  # an explicit choice wins over the environment
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")


def test_real_driver_query_matches_this_machine():
    from max.driver import accelerator_count

    assert devices.gpu_count() == accelerator_count()
