"""Per-device memory budgets the kernel's models share, and what each model is charged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidParameter
from ..hardware.memory import CPU, DeviceMemory
from ..types.values import RequiredMemory
from ..units import parse_bytes

DEFAULT_FRACTION = 0.8


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
class DeviceBudget:
    """How much of a device our models may use."""

    device: str
    budget: int
    total: int


@dataclass(frozen=True)
class BudgetUse:
    """One device's memory: held by our models (estimates), our budget, and its size."""

    device: str
    used: int
    budget: int
    total: int


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
