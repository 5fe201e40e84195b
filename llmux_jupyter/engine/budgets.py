"""Per-device memory budgets the kernel's models share, and what each model is charged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    """One device's memory: held by our models (estimates), by other kernels' models (from
    the host ledger), the budget, and the device's size."""

    device: str
    used: int
    budget: int
    total: int
    others: int = 0


def plan_budgets(
    host: Iterable[DeviceMemory],
    setting: str = "",
    fraction: float = DEFAULT_FRACTION,
    elsewhere: Mapping[str, int] | None = None,
) -> dict[str, DeviceBudget]:
    """Budgets per device: ``fraction`` of what was free plus what other kernels' models held
    then (``elsewhere``), unless ``setting`` says otherwise.

    A budget covers the models of every llmux kernel on the machine: a load must fit beside
    what the other kernels hold. Counting their models in the default budget keeps it the same
    in every kernel, however many models were loaded when each one started.

    ``setting`` is '' , one size for every device ('12GiB'), or sizes per device
    ('cpu=16GiB,cuda:0=20GiB'; devices not named keep the default).
    """
    if not 0 < fraction <= 1:
        raise InvalidParameter(f"memory_fraction must be in (0, 1], not {fraction}.")
    held = elsewhere or {}
    budgets = {
        d.device: DeviceBudget(
            d.device, int(min(d.total, d.free + held.get(d.device, 0)) * fraction), d.total
        )
        for d in host
    }
    for item in filter(None, (part.strip() for part in setting.split(","))):
        name, equals, size = item.rpartition("=")
        targets = [name.strip()] if equals else list(budgets)
        for target in targets:
            if target not in budgets:
                known = ", ".join(budgets)
                raise InvalidParameter(f"No device {target!r} for a memory budget ({known}).")
            budgets[target] = DeviceBudget(target, parse_bytes(size), budgets[target].total)
    return budgets
