"""Memory as the host reports it: this process's RSS, RAM and GPU memory, and giving freed
pages back to the OS."""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from .devices import Device, detect_devices

CPU = "cpu"


def process_rss() -> int:
    """Resident set size of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def return_freed_memory() -> None:
    """Ask glibc to hand freed heap pages back to the OS, so RSS drops after an unload."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass(frozen=True)
class DeviceMemory:
    """A device's physical memory and what was free when read, in bytes."""

    device: str
    total: int
    free: int


def host_devices(devices: Iterable[Device] | None = None) -> list[DeviceMemory]:
    """The CPU's RAM and every CUDA GPU's memory, read now."""
    ram = psutil.virtual_memory()
    found = [DeviceMemory(CPU, int(ram.total), int(ram.available))]
    gpus = detect_devices() if devices is None else devices
    found += [DeviceMemory(d.id, d.total, d.free) for d in gpus if d.kind == "cuda"]
    return found
