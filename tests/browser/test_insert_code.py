"""``%%llm -f code --insert`` in JupyterLab and Notebook 7, on the real SmolLM2 in the notebook's
kernel: the front end creates a new cell right below, holding the first code block of the
answer as the output stores it, not run."""

from __future__ import annotations

from playwright.sync_api import expect

from llmux_jupyter.frontends.insert import OFFERED, first_code_block

from .jupyter import WAIT_MS, Jupyter, errors, outputs, prompt, source_below

NOTEBOOK = "insert.ipynb"
CELL = (
    "%%llm -f code --insert --temperature 0 --max-tokens 100 "
    "--system 'Answer with Python code in a fenced code block.'\n"
    "Write a Python function that adds two numbers."
)


def test_a_code_answer_becomes_the_cell_below(jupyter: Jupyter):
    assert jupyter.run_done("%load_ext llmux_jupyter") == ""
    cell = jupyter.wait_done(jupyter.run(CELL))
    assert not errors(cell), errors(cell)
    (answer,) = [o for o in outputs(cell) if o["output_type"] == "display_data"]
    text = answer["data"]["text/plain"]
    assert OFFERED in text
    code = first_code_block(text)
    assert code and "def " in code
    expect(cell.locator(".jp-OutputArea-output")).to_contain_text(OFFERED, timeout=WAIT_MS)
    assert source_below(cell) == code
    below = cell.locator("xpath=following-sibling::div[contains(@class, 'jp-Cell')][1]")
    expect(below.locator(".cm-content")).to_contain_text(code.splitlines()[0])
    expect(prompt(below)).to_have_text("[ ]:")  # offered, not run
    jupyter.screenshot("insert-code", cell)
