"""``llm.devices()`` and ``%llm devices`` on this machine for real: its CPU, and what the
installed libraries (llama.cpp's build, torch, CTranslate2, onnxruntime) say they can use."""

from __future__ import annotations

import psutil

from llmux_jupyter.api import LLM
from llmux_jupyter.hardware.threads import CpuCores
from llmux_jupyter.models.catalog import Catalog

from .kernel import llmux_kernel

HEAVY = ("torch", "llama_cpp", "ctranslate2", "onnxruntime", "cpuinfo")


def test_the_real_cpu_and_backends(tmp_path):
    llm = LLM(Catalog(tmp_path / "models.json"))
    reports = llm.devices()
    cpu = reports[0]
    assert cpu.device.id == "cpu" and cpu.device.name and cpu.device.total > 2**30
    assert cpu.budget == llm.manager.budgets["cpu"].budget
    assert "AVX2" in cpu.device.features and "float32" in cpu.device.dtypes  # an x86-64 CI VM
    usable = len(psutil.Process().cpu_affinity())
    assert cpu.device.cores == CpuCores(psutil.cpu_count(logical=False), usable)
    support = cpu.backends
    assert support["llamacpp"].usable and "AVX2" in support["llamacpp"].detail
    decoding = min(cpu.device.cores.physical, usable)
    assert f"threads: {decoding} decoding, {usable} for prompts" in support["llamacpp"].detail
    assert support["transformers"].usable and "torch" in support["transformers"].detail
    assert support["faster-whisper"].usable and "int8" in support["faster-whisper"].detail
    assert support["piper"].usable and "CPUExecutionProvider" in support["piper"].detail
    assert str(support["openai"]) == "runs on its server"
    gpus = [report for report in reports if report.device.kind == "cuda"]
    for gpu in gpus:  # only where a GPU is lent to the run
        assert gpu.device.compute_capability and gpu.budget is not None


def test_devices_in_a_kernel_imports_the_libraries_only_when_asked(tmp_path):
    with llmux_kernel(tmp_path) as kernel:
        check = f"sorted(m for m in {HEAVY!r} if m in __import__('sys').modules)"
        assert kernel.value(check) == []
        run = kernel.run("%llm devices")
        assert run.status == "ok", run.error
        devices, backends = (m["content"]["data"] for m in run.displays)
        assert "<caption style='text-align:left'><b>Devices</b>" in devices["text/html"]
        assert devices["text/plain"].splitlines()[3].startswith("cpu ")
        assert devices["text/plain"].splitlines()[3].endswith(" logical")  # the cores column
        assert "yes: this build uses" in backends["text/plain"]
        assert kernel.value(check) != []
