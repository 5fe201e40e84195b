"""The model picker (``llmux_jupyter.picker()``) rendered by the ipywidgets manager of
JupyterLab and of Notebook 7 (the same tests in each) in a real Chromium, driving the real
SmolLM2 in the notebook's kernel.

The tests run in file order on their own notebook and kernel: show the picker, click Load,
click Use, follow an unload typed in another cell, then show a button's error in the widget.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from .jupyter import WAIT_MS, Jupyter

NOTEBOOK = "picker.ipynb"
MODEL = "smollm2"


def control(jupyter: Jupyter, role: str, model: str = MODEL) -> Locator:
    return jupyter.page.locator(f".llmux-picker .llmux-picker-{role}.llmux-model-{model}")


def assert_fits(jupyter: Jupyter) -> None:
    """Every task's grid fits the output area (at 1400 px): nothing to scroll sideways to."""
    widths = jupyter.page.evaluate(
        "() => [...document.querySelectorAll('.llmux-picker .widget-gridbox')]"
        ".map(grid => [grid.clientWidth, grid.scrollWidth])"
    )
    assert widths and all(scroll <= client for client, scroll in widths), widths


def test_picker_renders_every_model_not_loaded(jupyter: Jupyter):
    jupyter.run_done("%load_ext llmux_jupyter\nfrom llmux_jupyter import llm")
    jupyter.run_done("import llmux_jupyter\npicker = llmux_jupyter.picker()\npicker")
    picker = jupyter.page.locator(".llmux-picker")
    expect(picker).to_be_visible(timeout=WAIT_MS)
    expect(control(jupyter, "badge")).to_have_text("not loaded")
    expect(control(jupyter, "name", "whisper-tiny-en")).to_have_text("whisper-tiny.en")
    expect(picker).to_contain_text("Speech-to-text")
    expect(control(jupyter, "load")).to_be_enabled()
    expect(control(jupyter, "unload")).to_be_disabled()
    expect(picker.locator(".llmux-picker-memory")).to_contain_text("cpu")
    assert_fits(jupyter)
    jupyter.screenshot("picker-not-loaded", picker)


def test_load_button_loads_the_model_and_the_badge_follows(jupyter: Jupyter):
    control(jupyter, "load").click()
    badge = control(jupyter, "badge")
    expect(badge).to_contain_text("loaded on cpu", timeout=WAIT_MS)
    expect(badge).to_contain_text(re.compile(r"measured [\d.]+ MiB"))
    expect(control(jupyter, "load")).to_be_disabled()
    expect(control(jupyter, "unload")).to_be_enabled()
    expect(jupyter.page.locator(".llmux-picker-memory")).to_contain_text(
        re.compile(r"models [1-9]")
    )
    assert jupyter.kernel_value("[m.name for m in llm.ps()]") == "['smollm2']"
    jupyter.screenshot("picker-loaded", jupyter.page.locator(".llmux-picker"))


def test_use_button_sets_the_default_of_percent_percent_llm(jupyter: Jupyter):
    use = control(jupyter, "use", "smollm2-hf")
    expect(use).to_have_text("Use")
    use.click()
    expect(use).to_have_text("Default", timeout=WAIT_MS)
    expect(control(jupyter, "use")).to_have_text("Use")
    default = "llm.manager.default_for(__import__('llmux_jupyter').Task.CHAT)"
    assert jupyter.kernel_value(default) == "'smollm2-hf'"
    jupyter.run_done(f"%llm use {MODEL}")  # and the magic is reflected back in the widget
    expect(control(jupyter, "use")).to_have_text("Default", timeout=WAIT_MS)


def test_an_unload_in_another_cell_shows_live(jupyter: Jupyter):
    jupyter.run_done(f"%llm unload {MODEL}")
    expect(control(jupyter, "badge")).to_have_text("not loaded", timeout=WAIT_MS)
    expect(control(jupyter, "load")).to_be_enabled()


def test_a_failed_load_shows_in_the_widget_and_changes_nothing(jupyter: Jupyter):
    jupyter.run_done(
        "open('not-a-model.gguf', 'wb').write(b'not a GGUF')\n"
        "llm.register('broken', backend='llamacpp', path='not-a-model.gguf')\n"
        f"llm.load('{MODEL}')"
    )
    control(jupyter, "load", "broken").click()
    error = jupyter.page.locator(".llmux-picker-error")
    expect(error).to_contain_text("Load broken: ModelLoadError", timeout=WAIT_MS)
    expect(control(jupyter, "badge", "broken")).to_contain_text("error")
    expect(control(jupyter, "badge")).to_contain_text("loaded on cpu")
    assert jupyter.kernel_value("[m.name for m in llm.ps()]") == "['smollm2']"
    assert_fits(jupyter)
    jupyter.screenshot("picker-error", jupyter.page.locator(".llmux-picker"))
    jupyter.theme("JupyterLab Dark")
    jupyter.screenshot("picker-dark", jupyter.page.locator(".llmux-picker"))
    jupyter.theme("JupyterLab Light")
