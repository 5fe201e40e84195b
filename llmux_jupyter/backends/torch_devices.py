"""Whether torch (under transformers and Chatterbox) can use a device: its own answers."""

from __future__ import annotations

from ..hardware.capabilities import DeviceCapabilities, DeviceSupport


def torch_support(device: DeviceCapabilities) -> DeviceSupport:
    """torch's build and what it reports for ``device`` (CPU capability, CUDA, MPS)."""
    import torch

    version = torch.__version__
    if device.kind == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        return DeviceSupport(True, f"torch {version}, CPU kernels for {capability}")
    if device.kind == "mps":
        if torch.backends.mps.is_available():
            return DeviceSupport(True, f"torch {version} MPS")
        return DeviceSupport(False, f"torch {version} sees no MPS device")
    index = int(device.id.partition(":")[2] or 0)
    if not torch.cuda.is_available():
        return DeviceSupport(
            False, f"torch {version} is built without CUDA: install a CUDA build of torch"
        )
    if index >= torch.cuda.device_count():
        return DeviceSupport(False, f"torch sees {torch.cuda.device_count()} CUDA devices")
    bf16 = ", bfloat16" if torch.cuda.get_device_capability(index) >= (8, 0) else ""
    return DeviceSupport(True, f"torch {version}, CUDA {torch.version.cuda}{bf16}")
