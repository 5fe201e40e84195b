"""JupyterLab and Notebook 7 with our labextension disabled, like any front end without it (VS
Code, Colab, a JupyterLab where it is turned off): ``%load_ext`` shows nothing and the page logs
no error (the kernel opens no comm it would have to handle); the magics and the picker work."""

from __future__ import annotations

from playwright.sync_api import expect

from .jupyter import EXTENSION, WAIT_MS, Jupyter

NOTEBOOK = "plain.ipynb"
DISABLED = (EXTENSION,)


def test_load_ext_is_silent_and_the_magics_and_picker_work(jupyter: Jupyter):
    expect(jupyter.page.locator("#llmux-sidebar")).to_have_count(0)
    expect(jupyter.page.locator(".jp-llmux-status")).to_have_count(0)
    assert jupyter.run_done("%load_ext llmux_jupyter\nfrom llmux_jupyter import llm") == ""
    answer = jupyter.run_done(
        "%%llm --temperature 0 --max-tokens 12\nWhat is the capital of France? One word."
    )
    assert "Paris" in answer
    assert "smollm2" in jupyter.run_done("%llm ps")
    jupyter.run_done("from llmux_jupyter import picker\npicker()")
    expect(jupyter.page.locator(".llmux-picker")).to_contain_text("loaded on cpu", timeout=WAIT_MS)
    assert jupyter.run_done("%reload_ext llmux_jupyter") == ""
    jupyter.screenshot("without-panel")
