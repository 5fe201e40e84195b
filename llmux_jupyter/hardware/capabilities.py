"""What each device of the host can do: memory, CUDA compute capability, the number formats it
computes natively, and the CPU's instruction sets that matter to inference (AVX2, AVX-512,
AMX, NEON...). The backends say, each for itself, whether and how they can use a device
(``Backend.device_support``); the API puts the two together (``llm.devices()``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import psutil

from .devices import Device, detect_devices
from .memory import CPU
from .threads import CpuCores, cpu_cores

# CPU flags (as /proc/cpuinfo and py-cpuinfo name them) worth showing, with their usual names.
CPU_FEATURES = (
    ("avx", "AVX"),
    ("avx2", "AVX2"),
    ("fma", "FMA"),
    ("f16c", "F16C"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx512f", "AVX-512"),
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("avx512_fp16", "AVX-512 FP16"),
    ("amx_bf16", "AMX-BF16"),
    ("amx_int8", "AMX-INT8"),
    ("asimd", "NEON"),
    ("neon", "NEON"),
    ("asimdhp", "NEON FP16"),
    ("asimddp", "NEON dot product"),
    ("i8mm", "I8MM"),
    ("bf16", "BF16"),
    ("sve", "SVE"),
    ("sme", "SME"),
)
# Flags that give the CPU native arithmetic in a half-precision format.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
FP16_FLAGS = frozenset({"avx512_fp16", "asimdhp"})


@dataclass(frozen=True)
class CpuInfo:
    """The processor's name and its feature flags (lower case, as the OS reports them)."""

    name: str
    flags: frozenset[str]


@dataclass(frozen=True)
class DeviceCapabilities:
    """One device: ``id`` is cpu, cuda:N or mps; memory in bytes (0 when unknown);
    ``dtypes``: the number formats it computes natively; ``features``: CPU instruction sets;
    ``cores``: the CPU's cores (None for an accelerator)."""

    id: str
    kind: str
    name: str
    total: int
    free: int
    compute_capability: str | None = None
    dtypes: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    cores: CpuCores | None = None


@dataclass(frozen=True)
class DeviceSupport:
    """Whether one backend can use one device (None: it cannot tell, or is not installed),
    and how: its library's own answer."""

    usable: bool | None
    detail: str

    def __str__(self) -> str:
        prefix = {True: "yes: ", False: "no: ", None: ""}[self.usable]
        return prefix + self.detail


@dataclass(frozen=True)
class DeviceReport:
    """A device, our models' memory budget on it (None when it has none of its own: Apple's
    GPU shares the RAM's budget), and each backend's use of it."""

    device: DeviceCapabilities
    budget: int | None
    backends: dict[str, DeviceSupport] = field(default_factory=dict)


def describe_host(cpu: CpuInfo | None = None) -> list[DeviceCapabilities]:
    """The CPU and every accelerator, read now (an installed torch is imported to ask it)."""
    cpu = cpu or cpu_info()
    ram = psutil.virtual_memory()
    found = [
        DeviceCapabilities(
            CPU,
            CPU,
            cpu.name,
            int(ram.total),
            int(ram.available),
            dtypes=cpu_dtypes(cpu.flags),
            features=cpu_features(cpu.flags),
            cores=cpu_cores(),
        )
    ]
    found += [_accelerator(device, int(ram.total)) for device in detect_devices(import_torch=True)]
    return found


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's processor, from py-cpuinfo (read once: it takes about a second)."""
    try:
        import cpuinfo
    except ImportError:
        return CpuInfo("unknown processor (pip install py-cpuinfo)", frozenset())
    info = cpuinfo.get_cpu_info()
    name = info.get("brand_raw") or info.get("arch_string_raw") or "unknown processor"
    return CpuInfo(str(name), frozenset(str(flag).lower() for flag in info.get("flags", ())))


def cpu_features(flags: frozenset[str]) -> tuple[str, ...]:
    """The instruction sets among ``flags`` that inference libraries use, by their names."""
    names = [name for flag, name in CPU_FEATURES if flag in flags]
    return tuple(dict.fromkeys(names))


def cpu_dtypes(flags: frozenset[str]) -> tuple[str, ...]:
    """float32, plus the half-precision formats the CPU computes in hardware."""
    dtypes = ["float32"]
    if flags & BF16_FLAGS:
        dtypes.append("bfloat16")
    if flags & FP16_FLAGS:
        dtypes.append("float16")
    return tuple(dtypes)


def cuda_dtypes(capability: tuple[int, int] | None) -> tuple[str, ...]:
    """The formats a CUDA GPU computes natively, from its compute capability: float16 from
    5.3, bfloat16 from 8.0 (Ampere), float8 from 8.9 (Ada, Hopper)."""
    if capability is None:
        return ("float32",)
    dtypes = ["float32"]
    if capability >= (5, 3):
        dtypes.append("float16")
    if capability >= (8, 0):
        dtypes.append("bfloat16")
    if capability >= (8, 9):
        dtypes.append("float8")
    return tuple(dtypes)


def _accelerator(device: Device, ram: int) -> DeviceCapabilities:
    if device.kind == "mps":  # Apple's GPU shares the RAM
        return DeviceCapabilities(
            device.id, "mps", device.name, ram, 0, dtypes=("float32", "float16", "bfloat16")
        )
    capability = device.compute_capability
    return DeviceCapabilities(
        device.id,
        device.kind,
        device.name,
        device.total,
        device.free,
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
        dtypes=cuda_dtypes(capability),
    )
