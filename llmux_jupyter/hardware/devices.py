"""Which accelerators the host has, and which one a ``--device`` choice means.

Detection is isolated in ``detect_devices`` so tests can describe any host; it reads NVML
(``nvidia-ml-py``) when installed, or torch when torch is already imported, and never
imports torch itself.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

from ..errors import InvalidParameter


@dataclass(frozen=True)
class Device:
    """An accelerator: ``kind`` is cuda or mps; memory in bytes (0 when unknown)."""

    kind: str
    index: int = 0
    name: str = ""
    total: int = 0
    free: int = 0

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.index}" if self.kind == "cuda" else self.kind


def detect_devices() -> list[Device]:
    """The accelerators of this host (empty on a CPU-only machine)."""
    devices = _nvml_devices()
    if not devices and "torch" in sys.modules:
        devices = _torch_cuda_devices()
    if _has_mps():
        devices.append(Device("mps", name="Apple GPU"))
    return devices


def resolve_device(requested: str, devices: list[Device]) -> str:
    """Turn auto | cpu | cuda | cuda:N | mps into a device id, or raise InvalidParameter."""
    cuda = [d for d in devices if d.kind == "cuda"]
    choice = requested.strip().lower()
    if choice == "auto":
        if cuda:
            return max(cuda, key=lambda d: d.free).id
        return "mps" if any(d.kind == "mps" for d in devices) else "cpu"
    if choice == "cpu":
        return "cpu"
    if choice == "cuda":
        if not cuda:
            raise InvalidParameter("--device cuda: this machine has no CUDA GPU; use cpu or auto.")
        return max(cuda, key=lambda d: d.free).id
    if choice.startswith("cuda:"):
        index = choice.partition(":")[2]
        ids = [d.id for d in cuda]
        if choice not in ids:
            known = ", ".join(ids) or "none"
            raise InvalidParameter(
                f"--device {requested}: no CUDA device {index} (found: {known})."
            )
        return choice
    if choice == "mps":
        if not any(d.kind == "mps" for d in devices):
            raise InvalidParameter("--device mps: Apple's GPU is not available here; use auto.")
        return "mps"
    raise InvalidParameter(f"Unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps.")


def _nvml_devices() -> list[Device]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    devices = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        devices.append(Device("cuda", index, str(name), int(info.total), int(info.free)))
    return devices


def _has_mps() -> bool:
    """Apple's GPU: asked of torch when it is imported, else guessed from the platform."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].backends.mps.is_available())
    return sys.platform == "darwin" and platform.machine() == "arm64"


def _torch_cuda_devices() -> list[Device]:
    torch = sys.modules["torch"]
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        name = torch.cuda.get_device_name(index)
        devices.append(Device("cuda", index, name, int(total), int(free)))
    return devices
