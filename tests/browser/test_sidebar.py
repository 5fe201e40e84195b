"""The LLMux panel in a real JupyterLab and a real Notebook 7 (the same tests in each), in a real
Chromium, on the real SmolLM2.

The tests run in file order on one notebook page per front end (module fixture ``jupyter``):
load the extension, stream an answer, inspect the panel, poke the comm, use the buttons, unload,
then follow a kernel change, a notebook switch (JupyterLab) and a restart with a later
``%load_ext``. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from ..integration.kernel import Kernel, llmux_kernel
from .jupyter import LAB, WAIT_MS, Jupyter, output_text

LONG_ANSWER = (
    "%%llm --max-tokens 160 --temperature 0\n"
    "Write the numbers from one to one hundred in words, separated by commas."
)
OPEN = "async path => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }"
SESSION = "window.jupyterapp.shell.currentWidget.sessionContext"
KERNEL_STATE = "sorted((m.name, m.pinned, m.keep_alive) for m in llm.ps())"


def model_card(jupyter: Jupyter, name: str = "smollm2"):
    return jupyter.sidebar().locator(f".jp-llmux-model[data-model='{name}']")


def test_answer_is_visible_while_the_cell_still_runs(jupyter: Jupyter):
    jupyter.run_done("%load_ext llmux_jupyter\nfrom llmux_jupyter import llm")
    cell = jupyter.run(LONG_ANSWER)
    # Both at once: answer text on the page while the prompt still reads [*].
    jupyter.page.wait_for_function(
        """cell => {
            const prompt = cell.querySelector('.jp-InputPrompt').textContent;
            const output = cell.querySelector('.jp-OutputArea-output.jp-RenderedMarkdown');
            return prompt.includes('*') && output !== null && output.textContent.trim() !== '';
        }""",
        arg=cell.element_handle(),
        timeout=WAIT_MS,
    )
    jupyter.screenshot("notebook-streaming")
    jupyter.wait_done(cell)
    answer = output_text(cell)
    assert re.search(r"[a-z]{3}", answer.lower()), answer
    jupyter.screenshot("notebook-done")


def test_sidebar_shows_the_loaded_model_and_its_memory(jupyter: Jupyter):
    panel = jupyter.sidebar()
    card = model_card(jupyter)
    expect(card).to_be_visible(timeout=WAIT_MS)
    expect(card.locator(".jp-llmux-model-meta")).to_have_text("llamacpp · chat · cpu")
    expect(card.locator(".jp-llmux-measured")).to_have_text(re.compile(r"[\d.]+ MiB measured"))
    expect(card.locator(".jp-llmux-estimate")).to_have_text(re.compile(r"[\d.]+ MiB estimated"))
    expect(card.locator(".jp-llmux-model-keepalive")).to_contain_text("unloads in")
    cpu = panel.locator(".jp-llmux-device[data-device='cpu']")
    expect(cpu).to_contain_text("used")
    expect(cpu.locator(".jp-llmux-bar-used")).to_be_visible()
    jupyter.expect_status(re.compile(r"LLMux: 1 model · [\d.]+ GiB"))
    jupyter.screenshot("sidebar-light")
    jupyter.screenshot("sidebar-panel-light", panel)
    jupyter.theme("JupyterLab Dark")
    jupyter.screenshot("sidebar-dark")
    jupyter.theme("JupyterLab Light")


def test_sidebar_updates_while_a_generation_runs(jupyter: Jupyter):
    panel = jupyter.sidebar()
    cell = jupyter.run(LONG_ANSWER.replace("one hundred", "ninety"))
    handles = [cell.element_handle(), panel.element_handle()]
    # The token count shown while the cell runs, once above `floor`, then above that again
    # (with a speed by then).
    tokens_while_running = """([cell, panel, floor]) => {
        const tokens = panel.querySelector('.jp-llmux-running .jp-llmux-tokens');
        const speed = panel.querySelector('.jp-llmux-running .jp-llmux-speed');
        const running = cell.querySelector('.jp-InputPrompt').textContent.includes('*');
        const count = tokens === null ? 0 : parseInt(tokens.textContent);
        const fast = floor === 0 || /[0-9.]+ tok[/]s/.test(speed.textContent);
        return running && fast && count > floor ? count : false;
    }"""
    first = jupyter.page.wait_for_function(tokens_while_running, arg=[*handles, 0], timeout=WAIT_MS)
    jupyter.page.wait_for_function(
        tokens_while_running, arg=[*handles, first.json_value()], timeout=WAIT_MS
    )
    expect(model_card(jupyter).locator(".jp-llmux-state-busy")).to_be_visible()
    jupyter.screenshot("sidebar-generating")
    jupyter.wait_done(cell)
    expect(panel.locator(".jp-llmux-running")).to_have_count(0, timeout=WAIT_MS)
    expect(model_card(jupyter).locator(".jp-llmux-state-idle")).to_be_visible()


MALFORMED = [
    {"op": "exec", "code": "import os; os.remove('llmux.ipynb')"},
    {"op": "unload"},
    {"op": "unload", "model": 42},
    {"op": "unload", "model": "smollm2", "force": True},
    {"op": "pin", "model": "no-such-model"},
    {"op": "keep_alive", "model": "smollm2", "duration": "whenever"},
    {"op": "keep_alive", "model": "smollm2", "duration": True},
    "unload smollm2",
    ["unload", "smollm2"],
]

SEND_RAW = """async messages => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const comm = kernel.createComm('llmux');
    const replies = [];
    comm.onMsg = msg => {
        if (msg.content.data.type === 'reply') { replies.push(msg.content.data); }
    };
    comm.open({});
    messages.forEach(message => comm.send(message));
    const deadline = Date.now() + 120000;
    while (replies.length < messages.length && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 100));
    }
    comm.close();
    return replies;
}"""


def test_malformed_comm_messages_are_rejected_and_change_nothing(jupyter: Jupyter):
    before = jupyter.kernel_value(KERNEL_STATE)
    assert "smollm2" in before
    replies = jupyter.page.evaluate(SEND_RAW, MALFORMED)
    assert len(replies) == len(MALFORMED)
    assert all(reply["ok"] is False and reply["error"] for reply in replies), replies
    assert "Unknown op 'exec'" in replies[0]["error"]
    assert jupyter.kernel_value(KERNEL_STATE) == before
    assert jupyter.kernel_value("__import__('os').path.exists('llmux.ipynb')") == "True"
    expect(model_card(jupyter)).to_be_visible()
    expect(model_card(jupyter).locator(".jp-llmux-pinned")).to_have_count(0)


def test_pin_and_keep_alive_buttons(jupyter: Jupyter):
    card = model_card(jupyter)
    card.locator(".jp-llmux-pin").click()
    expect(card.locator(".jp-llmux-pinned")).to_be_visible(timeout=WAIT_MS)
    expect(card.locator(".jp-llmux-pin")).to_have_text("Unpin")
    assert jupyter.kernel_value("llm.ps()[0].pinned") == "True"
    card.locator(".jp-llmux-pin").click()
    expect(card.locator(".jp-llmux-pinned")).to_have_count(0, timeout=WAIT_MS)
    card.locator(".jp-llmux-duration").fill("10m")
    card.locator(".jp-llmux-set-keepalive").click()
    expect(card.locator(".jp-llmux-model-keepalive")).to_contain_text(
        "keep-alive 10m", timeout=WAIT_MS
    )
    assert jupyter.kernel_value("(llm.ps()[0].pinned, llm.ps()[0].keep_alive)") == "(False, 600.0)"
    card.locator(".jp-llmux-duration").fill("soon")
    card.locator(".jp-llmux-set-keepalive").click()
    expect(jupyter.sidebar().locator(".jp-llmux-error")).to_contain_text("not a duration")
    jupyter.sidebar().locator(".jp-llmux-error button").click()
    assert jupyter.kernel_value("llm.ps()[0].keep_alive") == "600.0"


def test_unload_button_frees_the_model(jupyter: Jupyter):
    panel = jupyter.sidebar()
    model_card(jupyter).locator(".jp-llmux-unload").click()
    expect(model_card(jupyter)).to_have_count(0, timeout=WAIT_MS)
    expect(panel).to_contain_text("Loaded models (0)")
    jupyter.expect_status(re.compile(r"LLMux: 0 models · 0\.0 GiB"))
    assert "(no model loaded)" in jupyter.run_done("%llm ps")
    jupyter.screenshot("sidebar-after-unload", panel)


@pytest.fixture(scope="module")
def another_notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """A second real kernel of the same user (it shares the server's memory ledger, in
    ``$LLMUX_RUNTIME_DIR``), as a notebook's kernel the server started would be."""
    env = {"JPY_SESSION_NAME": "/home/me/analysis.ipynb"}
    with llmux_kernel(tmp_path_factory.mktemp("another-config"), env=env) as kernel:
        yield kernel


def test_sidebar_shows_the_other_kernels_share_live(jupyter: Jupyter, another_notebook: Kernel):
    panel = jupyter.sidebar()
    assert another_notebook.run("%llm load smollm2").status == "ok"
    # No event in this kernel: the panel follows the ledger on its own.
    others = panel.locator(".jp-llmux-device[data-device='cpu'] .jp-llmux-others")
    expect(others).to_have_text(re.compile(r"other kernels [\d.]+ MiB"), timeout=WAIT_MS)
    expect(panel.locator(".jp-llmux-bar-others")).to_be_visible()
    kernel = panel.locator(".jp-llmux-kernel")
    expect(kernel.locator(".jp-llmux-kernel-notebook")).to_have_text("/home/me/analysis.ipynb")
    expect(kernel.locator(".jp-llmux-kernel-models")).to_have_text(
        re.compile(r"^smollm2 [\d.]+ MiB \(cpu\)$")
    )
    jupyter.screenshot("sidebar-other-kernels", panel)
    assert another_notebook.run("%llm unload smollm2").status == "ok"
    expect(panel.locator(".jp-llmux-elsewhere")).to_have_count(0, timeout=WAIT_MS)
    expect(others).to_have_count(0)


def test_sidebar_follows_a_kernel_change(jupyter: Jupyter):
    panel = jupyter.sidebar()
    jupyter.page.evaluate(f"async () => {{ await {SESSION}.changeKernel({{name: 'python3'}}); }}")
    expect(panel.locator(".jp-llmux-not-loaded")).to_contain_text(
        "Extension not loaded in this kernel", timeout=WAIT_MS
    )
    jupyter.expect_status(None)
    jupyter.screenshot("sidebar-not-loaded", panel)
    jupyter.wait_kernel_idle()
    for number in range(5):  # after each cell the panel tries again: quietly, leaving nothing
        assert jupyter.run_done(f"number = {number}") == ""
    assert jupyter.kernel_value("len(__import__('comm').get_comm_manager().comms)") == "0"
    expect(panel.locator(".jp-llmux-not-loaded")).to_be_visible()
    jupyter.run_done("%load_ext llmux_jupyter\nfrom llmux_jupyter import llm")
    expect(panel).to_contain_text("Loaded models (0)", timeout=WAIT_MS)
    jupyter.expect_status(re.compile(r"LLMux: 0 models"))


def test_sidebar_follows_a_notebook_switch(jupyter: Jupyter):
    if jupyter.app is not LAB:
        pytest.skip("Notebook 7 opens every notebook in a page of its own")
    panel = jupyter.sidebar()
    jupyter.page.evaluate(OPEN, "other.ipynb")
    expect(panel.locator(".jp-llmux-notebook")).to_have_text("other.ipynb", timeout=WAIT_MS)
    expect(panel.locator(".jp-llmux-not-loaded")).to_be_visible(timeout=WAIT_MS)
    jupyter.expect_status(None)
    jupyter.page.evaluate(OPEN, "llmux.ipynb")
    expect(panel.locator(".jp-llmux-notebook")).to_have_text("llmux.ipynb", timeout=WAIT_MS)
    expect(panel).to_contain_text("Loaded models (0)", timeout=WAIT_MS)


def test_sidebar_follows_a_restart_and_a_later_load_ext(jupyter: Jupyter):
    panel = jupyter.sidebar()
    jupyter.page.evaluate(f"async () => {{ await {SESSION}.session.kernel.restart(); }}")
    expect(panel.locator(".jp-llmux-not-loaded")).to_be_visible(timeout=WAIT_MS)
    jupyter.wait_kernel_idle()
    jupyter.run_done("%load_ext llmux_jupyter")
    expect(panel).to_contain_text("Loaded models (0)", timeout=WAIT_MS)
    jupyter.run_done("%llm load smollm2")
    expect(model_card(jupyter)).to_be_visible(timeout=WAIT_MS)
