"""The multiplexer with real llama.cpp models: estimates vs measured, leaks, LRU, races."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.llamacpp import LlamaCppBackend
from llmux_jupyter.errors import ModelLoadError, OutOfMemoryBudget
from llmux_jupyter.hardware.memory import process_rss
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.units import format_bytes

MIB = 2**20


@pytest.fixture
def api(tmp_path, smollm2_path):
    llm = LLM(Catalog(tmp_path / "models.json"))
    for name, n_ctx in (("small-a", 512), ("small-b", 512), ("small-c", 512), ("wide", 8192)):
        llm.register(name, backend="llamacpp", path=str(smollm2_path), n_ctx=n_ctx)
    yield llm
    llm.unload(all=True)


@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_estimate_is_within_25_percent_of_measured(api, n_ctx):
    api.load("smollm2", n_ctx=n_ctx)  # the library's one-time set-up is not the model's
    api.unload("smollm2")
    model = api.load("smollm2", n_ctx=n_ctx + 1)
    estimate, measured = model.estimate.total, model.measured.total
    print(
        f"\nsmollm2 n_ctx={n_ctx + 1}: estimate {format_bytes(estimate)}, "
        f"measured {format_bytes(measured)} ({estimate / measured - 1:+.0%})"
    )
    assert 0.75 * measured <= estimate <= 1.25 * measured


def test_ten_load_unload_cycles_do_not_leak(api):
    api.load("small-a")
    api.unload("small-a")
    gc.collect()
    start = process_rss()
    size = 0
    for _ in range(10):
        model = api.load("small-a")
        size = model.measured.total
        api.chat("Hi", model="small-a", max_tokens=4)
        api.unload("small-a")
    gc.collect()
    growth = process_rss() - start
    print(f"\nRSS growth after 10 cycles: {format_bytes(growth)} (model {format_bytes(size)})")
    assert growth <= 0.05 * size


def test_lru_eviction_pinning_and_refusal_with_real_models(api):
    one = api.load("small-a").estimate.ram
    api.manager.budgets["cpu"] = type(api.manager.budgets["cpu"])("cpu", int(2.5 * one), 0)
    api.load("small-b")
    api.chat("Hi", model="small-a", max_tokens=2)  # b is now the least recently used
    api.load("small-c")
    assert sorted(m.name for m in api.ps()) == ["small-a", "small-c"]
    api.pin("small-a")
    api.pin("small-c")
    before = sorted((m.name, m.loaded_at) for m in api.ps())
    with pytest.raises(OutOfMemoryBudget, match=r"small-b needs .* MiB on cpu, but only"):
        api.load("small-b")
    assert sorted((m.name, m.loaded_at) for m in api.ps()) == before


def test_eviction_never_happens_under_a_running_generation(api):
    one = api.load("small-a").estimate.ram
    api.manager.budgets["cpu"] = type(api.manager.budgets["cpu"])("cpu", int(1.5 * one), 0)
    stream = api.chat(
        "Write a long story about the sea.", model="small-a", stream=True, max_tokens=400
    )
    outcome: dict[str, object] = {}
    started = threading.Event()

    def race() -> None:
        started.wait()
        try:
            api.load("small-b")
        except OutOfMemoryBudget as error:
            outcome["refused"] = str(error)

    racer = threading.Thread(target=race)
    racer.start()
    pieces = []
    for piece in stream:
        pieces.append(piece)
        if len(pieces) == 3:
            started.set()
            racer.join()
        if len(pieces) == 20:
            break
    assert "small-a" in outcome["refused"] and "busy" in outcome["refused"]
    assert [m.name for m in api.ps()] == ["small-a"]
    assert len(pieces) == 20


def test_failed_load_leaves_nothing_and_gives_memory_back(api, monkeypatch):
    api.load("small-a")
    api.unload("small-a")
    gc.collect()
    start = process_rss()
    real_load = LlamaCppBackend.load

    def load_then_fail(self):
        real_load(self)
        raise RuntimeError("injected failure after the weights were loaded")

    monkeypatch.setattr(LlamaCppBackend, "load", load_then_fail)
    with pytest.raises(ModelLoadError, match="injected failure"):
        api.load("small-a")
    gc.collect()
    assert api.ps() == []
    assert process_rss() - start < 20 * MIB


def test_keep_alive_unloads_a_real_model_when_idle(api):
    events = []
    api.manager.events.subscribe(events.append)
    api.load("small-a", keep_alive="1s")
    api.chat("Hi", model="small-a", max_tokens=2)
    deadline = time.monotonic() + 30
    while api.manager.is_loaded("small-a") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not api.manager.is_loaded("small-a")
    assert [e.detail.get("reason") for e in events if e.kind == "evicted"] == [
        "keep-alive 1s expired"
    ]
