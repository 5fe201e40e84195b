"""Ghost-text code completion in JupyterLab and Notebook 7, from the real Qwen2.5-Coder GGUF in
the notebook's own kernel: typing ``def fibonacci(n):`` + Enter brings ghost text, Tab accepts
it into the cell; while another cell runs, typing brings nothing and that cell is unaffected."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, expect

from .jupyter import WAIT_MS, Jupyter, errors, output_text, prompt

NOTEBOOK = "completion.ipynb"
CODER = "qwen2.5-coder-0.5b"
# Longer than the provider's debounce and a completion's first token on a quiet machine: had
# a request gone out, ghost text would be showing by then.
QUIET_MS = 8_000


def source(jupyter: Jupyter, cell: Locator) -> str:
    return cell.evaluate(
        """node => window.jupyterapp.shell.currentWidget.content.widgets
            .find(widget => widget.node === node).model.sharedModel.getSource()"""
    )


def type_in_new_cell(jupyter: Jupyter, text: str) -> Locator:
    """Click into the last (empty) cell, type ``text`` key by key, then Enter."""
    cell = jupyter.cells.nth(jupyter.cells.count() - 1)
    cell.locator(".cm-content").click()
    jupyter.page.keyboard.type(text)
    jupyter.page.keyboard.press("Enter")
    return cell


def test_ghost_text_after_enter_and_tab_accepts_it(jupyter: Jupyter):
    out = jupyter.run_done(f"%load_ext llmux_jupyter\n%llm complete --model {CODER}")
    assert f"Code completion with {CODER}" in out
    cell = type_in_new_cell(jupyter, "def fibonacci(n):")
    ghost = cell.locator(".jp-GhostText")
    expect(ghost).to_be_visible(timeout=WAIT_MS)
    expect(cell.locator(".jp-GhostText-streamingIndicator")).to_have_count(0, timeout=WAIT_MS)
    suggested = ghost.inner_text()
    assert "return" in suggested, suggested
    jupyter.screenshot("completion-ghost", cell)
    jupyter.page.keyboard.press("Tab")
    expect(ghost).to_have_count(0)
    text = source(jupyter, cell)
    assert text.startswith("def fibonacci(n):\n    ") and "return" in text, text
    assert text.replace(" ", "").endswith(suggested.replace(" ", "").rstrip()), (text, suggested)


def test_while_a_cell_runs_typing_brings_nothing_and_the_cell_is_unaffected(
    jupyter: Jupyter, tmp_path: Path
):
    go = tmp_path / "go"  # the cell runs until the test has seen what it needs
    jupyter.page.keyboard.press("Escape")
    jupyter.page.keyboard.press("b")  # a new cell below, in command mode
    sleeping = jupyter.run(
        f"import pathlib, time\nwhile not pathlib.Path({str(go)!r}).exists(): time.sleep(0.05)\n"
        "print('slept')"
    )
    expect(prompt(sleeping)).to_have_text("[*]:")
    cell = type_in_new_cell(jupyter, "def fibonacci(n):")
    jupyter.page.keyboard.type("x")  # another keystroke, and a line with text
    jupyter.page.wait_for_timeout(QUIET_MS)
    expect(prompt(sleeping)).to_have_text("[*]:")  # still sleeping: it was all "busy"
    expect(cell.locator(".jp-GhostText")).to_have_count(0)
    go.touch()
    jupyter.wait_done(sleeping)
    assert not errors(sleeping) and output_text(sleeping).strip() == "slept"
