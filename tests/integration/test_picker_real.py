"""The picker driving the real manager and llama.cpp with the real SmolLM2 model."""

from __future__ import annotations

import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.budgets import DeviceBudget
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.frontends.picker import ModelPicker
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.types.values import Task

MIB = 2**20


@pytest.fixture
def api(tmp_path, smollm2_path):
    llm = LLM(Catalog(tmp_path / "models.json"))
    llm.register("copy", backend="llamacpp", path=str(smollm2_path), n_ctx=512)
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("these are notes, not a model\n" * 100)
    llm.register("not-gguf", backend="llamacpp", path=str(not_gguf))
    yield llm
    llm.unload(all=True)


@pytest.fixture
def picker(api):
    picker = ModelPicker(api)
    yield picker
    picker.close()


@pytest.fixture
def shell(api):
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, api))
    return shell


def wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_load_use_generate_and_unload_through_the_picker(api, picker, shell):
    row = picker.rows["smollm2"]
    assert "not loaded" in row.badge.value and row.unload.disabled
    row.device.value = "cpu"
    row.keep_alive.value = "30m"
    row.load.click()
    (model,) = api.ps()
    assert model.name == "smollm2" and model.device == "cpu" and model.keep_alive == 1800
    assert "loaded on cpu" in row.badge.value and "idle" in row.badge.value
    assert row.load.disabled and not row.unload.disabled and picker.error == ""
    memory = picker.memory_area.children[0].children[1]
    assert memory.value == model.estimate.total > 50 * MIB

    picker.rows["copy"].use.click()  # the default for %%llm
    assert api.manager.default_for(Task.CHAT) == "copy"
    assert picker.rows["copy"].use.description == "Default" and row.use.description == "Use"
    shell.run_cell_magic("llm", "--max-tokens 3 --temperature 0", "Say hi")
    assert api.last.model == "copy"
    assert "loaded on cpu" in picker.rows["copy"].badge.value  # loaded on first use
    shell.run_line_magic("llm", "use smollm2")  # the magic, reflected back
    assert row.use.description == "Default" and picker.rows["copy"].use.description == "Use"
    shell.run_cell_magic("llm", "--max-tokens 3 --temperature 0", "Say hi")
    assert api.last.model == "smollm2"

    row.unload.click()
    assert [m.name for m in api.ps()] == ["copy"]
    assert "not loaded" in row.badge.value and not row.load.disabled
    assert memory.value == api.ps()[0].estimate.total


def test_a_file_that_is_not_gguf_fails_in_the_widget_and_changes_nothing(api, picker):
    picker.rows["smollm2"].load.click()
    before = [(m.name, m.device) for m in api.ps()]
    picker.rows["not-gguf"].load.click()
    assert picker.error.startswith("Load not-gguf: ModelLoadError:")
    assert "GGUF" in picker.error
    assert "error:" in picker.rows["not-gguf"].badge.value
    assert not picker.rows["not-gguf"].load.disabled
    assert [(m.name, m.device) for m in api.ps()] == before
    assert "loaded on cpu" in picker.rows["smollm2"].badge.value


def test_a_tiny_budget_refuses_in_the_widget_and_evicts_nothing(api, picker):
    picker.rows["copy"].pin.value = True  # pinned at load
    picker.rows["copy"].load.click()
    assert api.ps()[0].pinned
    held = api.ps()[0].estimate.total
    budgets = api.manager.budgets
    api.manager.budgets = {"cpu": DeviceBudget("cpu", held + MIB, budgets["cpu"].total)}
    try:
        picker.rows["smollm2"].load.click()
        assert "OutOfMemoryBudget: smollm2 needs" in picker.error and "pinned" in picker.error
        assert [m.name for m in api.ps()] == ["copy"]
        assert "error: smollm2 needs" in picker.rows["smollm2"].badge.value
    finally:
        api.manager.budgets = budgets


def test_the_keep_alive_timer_thread_updates_the_picker(api, picker):
    api.load("smollm2", keep_alive=0.3)
    row = picker.rows["smollm2"]
    assert wait_for(lambda: "evicted: keep-alive" in row.badge.value)
    assert api.ps() == [] and row.unload.disabled
    assert picker.memory_area.children[0].children[1].value == 0
