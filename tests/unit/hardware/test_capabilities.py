"""Device capabilities with the GPU queries faked (NVML, torch): one CUDA GPU with 24 GiB and
bfloat16, two GPUs of different generations, Apple's GPU; and the CPU's features and formats."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from types import ModuleType, SimpleNamespace

import pytest

from llmux_jupyter.hardware import capabilities
from llmux_jupyter.hardware.capabilities import (
    CpuInfo,
    DeviceCapabilities,
    cpu_dtypes,
    cpu_features,
    cuda_dtypes,
    describe_host,
)

GIB = 2**30
XEON_FLAGS = "sse4_2 avx avx2 fma f16c avx512f avx512_bf16 amx_bf16 amx_int8 amx_tile"
XEON = CpuInfo("Fake Xeon", frozenset(XEON_FLAGS.split()))
LAPTOP = CpuInfo("Fake Core", frozenset({"avx", "avx2", "fma", "f16c"}))
GRAVITON = CpuInfo("Fake Neoverse", frozenset({"asimd", "asimdhp", "asimddp", "i8mm", "bf16"}))


def fake_nvml(*gpus: tuple[str, int, int, tuple[int, int]]) -> ModuleType:
    """A pynvml module describing ``gpus`` as (name, total, free, compute capability)."""
    module = ModuleType("pynvml")
    module.__spec__ = ModuleSpec("pynvml", None)
    module.NVMLError = RuntimeError
    module.nvmlInit = lambda: None
    module.nvmlDeviceGetCount = lambda: len(gpus)
    module.nvmlDeviceGetHandleByIndex = lambda index: gpus[index]
    module.nvmlDeviceGetName = lambda gpu: gpu[0]
    module.nvmlDeviceGetMemoryInfo = lambda gpu: SimpleNamespace(total=gpu[1], free=gpu[2])
    module.nvmlDeviceGetCudaComputeCapability = lambda gpu: gpu[3]
    return module


@pytest.fixture
def host(monkeypatch):
    """No CUDA from torch, no Apple GPU: only what NVML says (set per test)."""
    monkeypatch.setattr("llmux_jupyter.hardware.devices._has_mps", lambda: False)
    monkeypatch.setattr("llmux_jupyter.hardware.devices._torch_cuda_devices", list)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    return monkeypatch


def test_one_cuda_gpu_with_24_gib_and_bfloat16(host):
    host.setitem(sys.modules, "pynvml", fake_nvml(("RTX 4090", 24 * GIB, 20 * GIB, (8, 9))))
    cpu, gpu = describe_host(XEON)
    assert (cpu.id, cpu.name) == ("cpu", "Fake Xeon") and cpu.total > 0
    assert gpu == DeviceCapabilities(
        "cuda:0", "cuda", "RTX 4090", 24 * GIB, 20 * GIB, "8.9",
        ("float32", "float16", "bfloat16", "float8"),
    )  # fmt: skip


def test_two_gpus_of_different_generations(host):
    host.setitem(
        sys.modules,
        "pynvml",
        fake_nvml(("A100", 80 * GIB, 70 * GIB, (8, 0)), ("T4", 16 * GIB, 15 * GIB, (7, 5))),
    )
    _, a100, t4 = describe_host(LAPTOP)
    assert (a100.id, a100.compute_capability, a100.dtypes) == (
        "cuda:0", "8.0", ("float32", "float16", "bfloat16"),
    )  # fmt: skip
    assert (t4.id, t4.compute_capability, t4.dtypes) == ("cuda:1", "7.5", ("float32", "float16"))


def test_apple_gpu_shares_the_ram(host):
    host.setattr("llmux_jupyter.hardware.devices._has_mps", lambda: True)
    cpu, mps = describe_host(GRAVITON)
    assert (mps.id, mps.name, mps.total, mps.free) == ("mps", "Apple GPU", cpu.total, 0)
    assert mps.compute_capability is None and "float16" in mps.dtypes


def test_a_cpu_only_host(host):
    assert [d.id for d in describe_host(LAPTOP)] == ["cpu"]


@pytest.mark.parametrize(
    ("cpu", "features", "dtypes"),
    [
        (LAPTOP, ("AVX", "AVX2", "FMA", "F16C"), ("float32",)),
        (XEON, ("AVX", "AVX2", "FMA", "F16C", "AVX-512", "AVX-512 BF16", "AMX-BF16", "AMX-INT8"),
         ("float32", "bfloat16")),
        (GRAVITON, ("NEON", "NEON FP16", "NEON dot product", "I8MM", "BF16"),
         ("float32", "bfloat16", "float16")),
    ],
)  # fmt: skip
def test_cpu_features_and_native_formats(cpu, features, dtypes):
    assert cpu_features(cpu.flags) == features
    assert cpu_dtypes(cpu.flags) == dtypes


def test_compute_capability_decides_the_formats():
    assert cuda_dtypes(None) == ("float32",)
    assert cuda_dtypes((5, 2)) == ("float32",)
    assert cuda_dtypes((9, 0))[-1] == "float8"


def test_the_real_cpu_is_read_once(monkeypatch):
    calls = []
    fake = ModuleType("cpuinfo")
    fake.get_cpu_info = lambda: calls.append(1) or {"brand_raw": "X", "flags": ["AVX2"]}
    monkeypatch.setitem(sys.modules, "cpuinfo", fake)
    capabilities.cpu_info.cache_clear()
    try:
        assert capabilities.cpu_info() == CpuInfo("X", frozenset({"avx2"}))
        assert capabilities.cpu_info() == CpuInfo("X", frozenset({"avx2"})) and calls == [1]
    finally:
        capabilities.cpu_info.cache_clear()
