"""The model picker (``llm.picker()``) rendered by JupyterLab's ipywidgets manager in a real
Chromium, driving the real SmolLM2 in the notebook's kernel.

The tests run in file order on their own notebook and kernel: show the picker, click Load,
click Use, follow an unload typed in another cell, then show a button's error in the widget.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, expect

from .lab import WAIT_MS, Lab

NOTEBOOK = "picker.ipynb"
MODEL = "smollm2"


def control(lab: Lab, role: str, model: str = MODEL) -> Locator:
    return lab.page.locator(f".llmux-picker .llmux-picker-{role}.llmux-model-{model}")


def assert_fits(lab: Lab) -> None:
    """Every task's grid fits the output area (at 1400 px): nothing to scroll sideways to."""
    widths = lab.page.evaluate(
        "() => [...document.querySelectorAll('.llmux-picker .widget-gridbox')]"
        ".map(grid => [grid.clientWidth, grid.scrollWidth])"
    )
    assert widths and all(scroll <= client for client, scroll in widths), widths


def test_picker_renders_every_model_not_loaded(lab: Lab):
    lab.run_done("%load_ext llmux_jupyter\nfrom llmux_jupyter import llm")
    lab.run_done("picker = llm.picker()\npicker")
    picker = lab.page.locator(".llmux-picker")
    expect(picker).to_be_visible(timeout=WAIT_MS)
    expect(control(lab, "badge")).to_have_text("not loaded")
    expect(control(lab, "name", "whisper-tiny-en")).to_have_text("whisper-tiny.en")
    expect(picker).to_contain_text("Speech-to-text")
    expect(control(lab, "load")).to_be_enabled()
    expect(control(lab, "unload")).to_be_disabled()
    expect(picker.locator(".llmux-picker-memory")).to_contain_text("cpu")
    assert_fits(lab)
    lab.screenshot("picker-not-loaded", picker)


def test_load_button_loads_the_model_and_the_badge_follows(lab: Lab):
    control(lab, "load").click()
    badge = control(lab, "badge")
    expect(badge).to_contain_text("loaded on cpu", timeout=WAIT_MS)
    expect(badge).to_contain_text(re.compile(r"measured [\d.]+ MiB"))
    expect(control(lab, "load")).to_be_disabled()
    expect(control(lab, "unload")).to_be_enabled()
    expect(lab.page.locator(".llmux-picker-memory")).to_contain_text(re.compile(r"models [1-9]"))
    assert lab.kernel_value("[m.name for m in llm.ps()]") == "['smollm2']"
    lab.screenshot("picker-loaded", lab.page.locator(".llmux-picker"))


def test_use_button_sets_the_default_of_percent_percent_llm(lab: Lab):
    use = control(lab, "use", "smollm2-hf")
    expect(use).to_have_text("Use")
    use.click()
    expect(use).to_have_text("Default", timeout=WAIT_MS)
    expect(control(lab, "use")).to_have_text("Use")
    default = "llm.manager.default_for(__import__('llmux_jupyter').Task.CHAT)"
    assert lab.kernel_value(default) == "'smollm2-hf'"
    lab.run_done(f"%llm use {MODEL}")  # and the magic is reflected back in the widget
    expect(control(lab, "use")).to_have_text("Default", timeout=WAIT_MS)


def test_an_unload_in_another_cell_shows_live(lab: Lab):
    lab.run_done(f"%llm unload {MODEL}")
    expect(control(lab, "badge")).to_have_text("not loaded", timeout=WAIT_MS)
    expect(control(lab, "load")).to_be_enabled()


def test_a_failed_load_shows_in_the_widget_and_changes_nothing(lab: Lab):
    lab.run_done(
        "open('not-a-model.gguf', 'wb').write(b'not a GGUF')\n"
        "llm.register('broken', backend='llamacpp', path='not-a-model.gguf')\n"
        f"llm.load('{MODEL}')"
    )
    control(lab, "load", "broken").click()
    error = lab.page.locator(".llmux-picker-error")
    expect(error).to_contain_text("Load broken: ModelLoadError", timeout=WAIT_MS)
    expect(control(lab, "badge", "broken")).to_contain_text("error")
    expect(control(lab, "badge")).to_contain_text("loaded on cpu")
    assert lab.kernel_value("[m.name for m in llm.ps()]") == "['smollm2']"
    assert_fits(lab)
    lab.screenshot("picker-error", lab.page.locator(".llmux-picker"))
    lab.theme("JupyterLab Dark")
    lab.screenshot("picker-dark", lab.page.locator(".llmux-picker"))
    lab.theme("JupyterLab Light")
