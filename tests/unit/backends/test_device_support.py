"""Each backend's answer to "can you use this device?", with its library's queries faked (a
CUDA build of llama.cpp or a CPU-only one, torch with two GPUs, CTranslate2, onnxruntime), the
registry's handling of missing and failing libraries, and ``llm.devices()`` putting it together."""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from types import ModuleType, SimpleNamespace

import pytest
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.base import Backend
from llmux_jupyter.backends.llamacpp import LlamaCppBackend
from llmux_jupyter.backends.openai import OpenAIBackend
from llmux_jupyter.backends.piper import PiperBackend
from llmux_jupyter.backends.registry import BackendRegistry
from llmux_jupyter.backends.torch_devices import torch_support
from llmux_jupyter.backends.whisper import WhisperBackend
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.hardware.capabilities import DeviceCapabilities, DeviceSupport
from llmux_jupyter.hardware.threads import CpuCores
from llmux_jupyter.types.values import Task

GIB = 2**30
CPU = DeviceCapabilities(
    "cpu", "cpu", "Fake CPU", 32 * GIB, 20 * GIB, None, ("float32",), ("AVX2",), CpuCores(8, 16)
)
GPU0 = DeviceCapabilities("cuda:0", "cuda", "RTX", 24 * GIB, 20 * GIB, "8.6", ("float32",))
GPU1 = DeviceCapabilities("cuda:1", "cuda", "T4", 16 * GIB, 15 * GIB, "7.5", ("float32",))
MPS = DeviceCapabilities("mps", "mps", "Apple GPU", 32 * GIB, 0, None, ("float32",))


def module(name: str, **attributes) -> ModuleType:
    fake = ModuleType(name)
    fake.__spec__ = ModuleSpec(name, None)  # so find_spec sees it installed
    fake.__dict__.update(attributes)
    return fake


@pytest.fixture
def cuda_llama(monkeypatch):
    info = b"CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | CUDA : ARCHS = 860 | USE_GRAPHS = 1 | "
    fake = module(
        "llama_cpp", llama_print_system_info=lambda: info, llama_supports_gpu_offload=lambda: True
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)


def test_llamacpp_reads_its_build(cuda_llama, monkeypatch):
    assert str(LlamaCppBackend.device_support(CPU)) == (
        "yes: this build uses SSE3, AVX2; threads: 8 decoding, 16 for prompts"
    )
    assert LlamaCppBackend.device_support(GPU0).usable is True
    assert LlamaCppBackend.device_support(MPS) == DeviceSupport(
        False, "this build has no Metal: CMAKE_ARGS=-DGGML_METAL=on pip install llama-cpp-python"
    )
    cpu_only = module(
        "llama_cpp",
        llama_print_system_info=lambda: b"CPU : AVX2 = 1 | ",
        llama_supports_gpu_offload=lambda: False,
    )
    monkeypatch.setitem(sys.modules, "llama_cpp", cpu_only)
    answer = LlamaCppBackend.device_support(GPU0)
    assert answer.usable is False and "-DGGML_CUDA=on" in answer.detail


@pytest.fixture
def cuda_torch(monkeypatch):
    fake = module(
        "torch",
        __version__="2.9.0+cu124",
        version=SimpleNamespace(cuda="12.4"),
        backends=SimpleNamespace(
            cpu=SimpleNamespace(get_cpu_capability=lambda: "AVX2"),
            mps=SimpleNamespace(is_available=lambda: False),
        ),
        cuda=SimpleNamespace(
            is_available=lambda: True,
            device_count=lambda: 2,
            get_device_capability=lambda index: [(8, 6), (7, 5)][index],
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", fake)
    return fake


def test_torch_reports_cuda_bf16_and_mps(cuda_torch):
    assert str(torch_support(CPU)) == "yes: torch 2.9.0+cu124, CPU kernels for AVX2"
    assert str(torch_support(GPU0)) == "yes: torch 2.9.0+cu124, CUDA 12.4, bfloat16"
    assert str(torch_support(GPU1)) == "yes: torch 2.9.0+cu124, CUDA 12.4"
    assert str(torch_support(MPS)) == "no: torch 2.9.0+cu124 sees no MPS device"
    cuda_torch.cuda.is_available = lambda: False
    assert "built without CUDA" in torch_support(GPU0).detail


def test_ctranslate2_and_onnxruntime(monkeypatch):
    ctranslate2 = module(
        "ctranslate2",
        get_cuda_device_count=lambda: 1,
        get_supported_compute_types=lambda kind, index=0: {
            "cpu": {"int8", "float32"}, "cuda": {"float16", "int8_float16"}
        }[kind],
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "ctranslate2", ctranslate2)
    assert str(WhisperBackend.device_support(CPU)) == "yes: CTranslate2 compute types float32, int8"
    assert "float16, int8_float16" in WhisperBackend.device_support(GPU0).detail
    assert "no such CUDA device" in WhisperBackend.device_support(GPU1).detail
    assert WhisperBackend.device_support(MPS).usable is False
    onnx = module("onnxruntime", get_available_providers=lambda: ["CPUExecutionProvider"])
    monkeypatch.setitem(sys.modules, "onnxruntime", onnx)
    assert PiperBackend.device_support(CPU).usable is True
    assert "pip install onnxruntime-gpu" in PiperBackend.device_support(GPU0).detail
    assert OpenAIBackend.device_support(GPU0) == DeviceSupport(None, "runs on its server")


class Quiet(Backend):
    tasks = frozenset({Task.CHAT})

    def load(self) -> None:
        pass


class Broken(Quiet):
    @classmethod
    def device_support(cls, device):
        raise RuntimeError("driver mismatch")


class Missing(Quiet):
    requires = ("no_such_module_here",)
    extra = "nothing"


@pytest.fixture
def registry():
    found = BackendRegistry()
    found._discovered = True  # only these
    for name, cls in (("quiet", Quiet), ("broken", Broken), ("missing", Missing)):
        found.add(name, cls)
    found.add("llamacpp", LlamaCppBackend)
    return found


def test_the_registry_asks_every_backend_and_survives_a_failing_one(registry, cuda_llama):
    answers = registry.device_support(GPU0)
    assert list(answers) == ["broken", "llamacpp", "missing", "quiet"]
    assert str(answers["broken"]) == "error: RuntimeError: driver mismatch"
    assert str(answers["missing"]) == "not installed: pip install llmux-jupyter[nothing]"
    assert str(answers["quiet"]) == "does not say"
    assert answers["llamacpp"].usable is True


def test_devices_puts_devices_budgets_and_backends_together(
    registry, cuda_llama, tmp_path, monkeypatch
):
    from llmux_jupyter.models.catalog import Catalog

    monkeypatch.setattr("llmux_jupyter.api.describe_host", lambda: [CPU, GPU0, MPS])
    llm = LLM(Catalog(tmp_path / "models.json"), backends=registry)
    cpu, gpu, mps = llm.devices()
    assert cpu.device is CPU and cpu.budget == llm.manager.budgets["cpu"].budget
    assert gpu.budget is None and mps.budget is None  # no cuda:0 on the real host; MPS shares
    assert gpu.backends["llamacpp"].usable is True and mps.backends["llamacpp"].usable is False


def test_devices_magic_prints_both_tables(registry, cuda_llama, tmp_path, monkeypatch, capsys):
    from llmux_jupyter.models.catalog import Catalog

    monkeypatch.setattr("llmux_jupyter.api.describe_host", lambda: [CPU, GPU0])
    llm = LLM(Catalog(tmp_path / "models.json"), backends=registry)
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, llm))
    shell.run_line_magic("llm", "devices")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Devices" and out[1].split()[:3] == ["device", "name", "memory"]
    assert out[3].split()[:2] == ["cpu", "Fake"] and "AVX2" in out[3]
    assert out[1].split()[-1] == "cores" and out[3].endswith("8 physical, 16 logical")
    assert out[4].endswith(" -")  # a GPU has no cores of its own to show
    assert out[4].startswith("cuda:0  RTX") and "8.6" in out[4] and "shares cpu's" not in out[4]
    assert out[5] == "What each backend can use"
    assert out[6].split() == ["device", "broken", "llamacpp", "missing", "quiet"]
    assert "yes: CUDA build, every layer offloaded" in out[9]
