"""Where llama.cpp puts a model, with the host's devices and the wheel's GPU support faked."""

import sys
import types

import pytest

from llmux_jupyter.backends import llamacpp
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.hardware.devices import Device
from llmux_jupyter.models.chat_template import ChatSetup
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import LoadOptions, ModelSpec
from llmux_jupyter.types.values import Task

GIB = 2**30
GPUS = [Device("cuda", 0, "small", 8 * GIB, 1 * GIB), Device("cuda", 1, "big", 24 * GIB, 20 * GIB)]


def backend(device="auto", gpus=(), wheel_gpu=True, monkeypatch=None, **settings):
    monkeypatch.setattr(llamacpp, "detect_devices", lambda: list(gpus))
    fake = types.SimpleNamespace(llama_supports_gpu_offload=lambda: wheel_gpu)
    monkeypatch.setitem(sys.modules, "llama_cpp", fake)
    spec = ModelSpec("m", "llamacpp", Task.CHAT, FileSource("/m.gguf"))
    return llamacpp.LlamaCppBackend(spec, LoadOptions(device=device, settings=settings))


def test_cpu_host_runs_on_cpu(monkeypatch):
    assert backend(monkeypatch=monkeypatch).placement() == ("cpu", 0)


def test_cuda_host_offloads_every_layer_to_the_freest_gpu(monkeypatch):
    chosen = backend(gpus=GPUS, monkeypatch=monkeypatch)
    assert chosen.placement() == ("cuda:1", -1)
    assert chosen.device == "cuda:1"
    assert backend("cuda:0", GPUS, monkeypatch=monkeypatch, n_gpu_layers=10).placement() == (
        "cuda:0", 10)  # fmt: skip


def test_cpu_only_wheel_falls_back_or_refuses(monkeypatch):
    assert backend(gpus=GPUS, wheel_gpu=False, monkeypatch=monkeypatch).placement() == ("cpu", 0)
    with pytest.raises(InvalidParameter, match="no GPU support; reinstall it with CMAKE_ARGS"):
        backend("cuda", GPUS, wheel_gpu=False, monkeypatch=monkeypatch).placement()


def test_gpu_estimate_goes_to_vram(monkeypatch):
    chosen = backend(gpus=GPUS, monkeypatch=monkeypatch, n_ctx=300)
    info = types.SimpleNamespace(tensor_bytes=1000, vocabulary_size=10,
                                 kv_cache_bytes=lambda n_ctx: n_ctx * 2)  # fmt: skip
    chosen._gguf_info, chosen._chat = info, ChatSetup("completion")
    memory = chosen.required_memory()
    assert memory.vram == 1000 + 600 + 512 * 10 * 4
    assert memory.ram == llamacpp.CPU_OVERHEAD
