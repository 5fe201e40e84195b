"""Which accelerators the host has, and which one a ``--device`` choice means.

Detection is isolated in ``detect_devices`` so tests can describe any host; it reads NVML
(``nvidia-ml-py``) when installed, or torch when torch is already imported (or, when asked,
installed: ``%llm devices`` may import it; ``%load_ext`` never does).
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass

from ..errors import InvalidParameter


@dataclass(frozen=True)
class Device:
    """An accelerator: ``kind`` is cuda or mps; memory in bytes (0 when unknown);
    ``compute_capability`` (major, minor) of a CUDA GPU when known."""

    kind: str
    index: int = 0
    name: str = ""
    total: int = 0
    free: int = 0
    compute_capability: tuple[int, int] | None = None

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.index}" if self.kind == "cuda" else self.kind


def detect_devices(import_torch: bool = False) -> list[Device]:
    """The accelerators of this host (empty on a CPU-only machine); ``import_torch`` lets an
    installed torch be imported to ask it (slow: only where the user asked about devices)."""
    if import_torch and "torch" not in sys.modules and importlib.util.find_spec("torch"):
        import torch  # noqa: F401 - imported for the questions below
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
        capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
        devices.append(
            Device("cuda", index, str(name), int(info.total), int(info.free), capability)
        )
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
        capability = tuple(torch.cuda.get_device_capability(index))
        devices.append(Device("cuda", index, name, int(total), int(free), capability))
    return devices
