"""Memory: this process's RSS, what the host has free, and the per-device budgets models share."""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from .devices import Device, detect_devices
from .errors import InvalidParameter
from .specs import RequiredMemory
from .units import parse_bytes

CPU = "cpu"
DEFAULT_FRACTION = 0.8


def process_rss() -> int:
    """Resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def return_freed_memory() -> None:
    """Ask glibc to hand freed heap pages back to the OS, so RSS drops after an unload."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def charges(device: str, memory: RequiredMemory) -> dict[str, int]:
    """Which budget pays for what: RAM to 'cpu', accelerator memory to its GPU.

    Apple's GPU shares the RAM, so MPS memory is charged to 'cpu'; remote models charge nothing.
    """
    if device == "remote":
        return {}
    gpu = device if device.startswith("cuda") else CPU
    result: dict[str, int] = {}
    for key, amount in ((CPU, memory.ram), (gpu, memory.vram)):
        if amount:
            result[key] = result.get(key, 0) + amount
    return result


@dataclass(frozen=True)
class DeviceMemory:
    """A device's physical memory and what was free when read, in bytes."""

    device: str
    total: int
    free: int


@dataclass(frozen=True)
class DeviceBudget:
    """How much of a device our models may use."""

    device: str
    budget: int
    total: int


def host_devices(devices: Iterable[Device] | None = None) -> list[DeviceMemory]:
    """The CPU's RAM and every CUDA GPU's memory, read now."""
    ram = psutil.virtual_memory()
    found = [DeviceMemory(CPU, int(ram.total), int(ram.available))]
    gpus = detect_devices() if devices is None else devices
    found += [DeviceMemory(d.id, d.total, d.free) for d in gpus if d.kind == "cuda"]
    return found


def plan_budgets(
    host: Iterable[DeviceMemory], setting: str = "", fraction: float = DEFAULT_FRACTION
) -> dict[str, DeviceBudget]:
    """Budgets per device: ``fraction`` of what was free, unless ``setting`` says otherwise.

    ``setting`` is '' , one size for every device ('12GiB'), or sizes per device
    ('cpu=16GiB,cuda:0=20GiB'; devices not named keep the default).
    """
    if not 0 < fraction <= 1:
        raise InvalidParameter(f"memory_fraction must be in (0, 1], not {fraction}.")
    budgets = {d.device: DeviceBudget(d.device, int(d.free * fraction), d.total) for d in host}
    for item in filter(None, (part.strip() for part in setting.split(","))):
        name, equals, size = item.rpartition("=")
        targets = [name.strip()] if equals else list(budgets)
        for target in targets:
            if target not in budgets:
                known = ", ".join(budgets)
                raise InvalidParameter(f"No device {target!r} for a memory budget ({known}).")
            budgets[target] = DeviceBudget(target, parse_bytes(size), budgets[target].total)
    return budgets
