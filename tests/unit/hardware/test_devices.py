import sys
from types import SimpleNamespace

import pytest

from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.hardware import devices as devices_module
from llmux_jupyter.hardware.devices import Device, detect_devices, resolve_device

GIB = 2**30
TWO_GPUS = [Device("cuda", 0, "A", 24 * GIB, 2 * GIB), Device("cuda", 1, "B", 24 * GIB, 20 * GIB)]


def test_auto_picks_the_gpu_with_most_free_memory():
    assert resolve_device("auto", TWO_GPUS) == "cuda:1"
    assert resolve_device("cuda", TWO_GPUS) == "cuda:1"
    assert resolve_device("cuda:0", TWO_GPUS) == "cuda:0"


def test_auto_falls_back_to_mps_then_cpu():
    assert resolve_device("auto", [Device("mps")]) == "mps"
    assert resolve_device("auto", []) == "cpu"
    assert resolve_device("CPU", TWO_GPUS) == "cpu"


@pytest.mark.parametrize(
    ("requested", "devices", "message"),
    [
        ("cuda", [], "no CUDA GPU"),
        ("cuda:2", TWO_GPUS, r"no CUDA device 2 \(found: cuda:0, cuda:1\)"),
        ("mps", [], "not available"),
        ("tpu", [], "Unknown device 'tpu'"),
    ],
)
def test_impossible_devices_are_refused(requested, devices, message):
    with pytest.raises(InvalidParameter, match=message):
        resolve_device(requested, devices)


def test_imported_torch_is_asked_about_cuda_and_mps(monkeypatch):
    """Without NVML, an imported torch describes the host (here: one GPU and Apple's GPU)."""
    fake_torch = SimpleNamespace(
        cuda=SimpleNamespace(
            is_available=lambda: True,
            device_count=lambda: 1,
            mem_get_info=lambda index: (3 * GIB, 8 * GIB),
            get_device_name=lambda index: "Fake GPU",
            get_device_capability=lambda index: (8, 6),
        ),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: True)),
    )
    monkeypatch.setattr(devices_module, "_nvml_devices", list)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert detect_devices() == [
        Device("cuda", 0, "Fake GPU", 8 * GIB, 3 * GIB, (8, 6)),
        Device("mps", name="Apple GPU"),
    ]
