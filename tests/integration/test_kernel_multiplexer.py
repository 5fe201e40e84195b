"""The multiplexer from a notebook's point of view: %config budgets, keep-alive, pins, %llm ps."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def kernel_with_copies(kernel, smollm2_path):
    """Three names for the SmolLM2 file (distinct models to the manager), removed afterwards."""
    names = ("copy-a", "copy-b", "copy-c")
    setup = "\n".join(
        f"%llm register {name} --backend llamacpp --path {smollm2_path} --set n_ctx=512"
        for name in names
    )
    assert kernel.run("%llm unload --all\n" + setup).status == "ok"
    yield kernel
    cleanup = kernel.run(
        "%config LLMux.memory_budget = ''\n%llm unload --all\n"
        + "\n".join(f"%llm unregister {name}" for name in names)
    )
    assert cleanup.status == "ok", cleanup.error


def names_loaded(kernel) -> list[str]:
    return kernel.value("sorted(m.name for m in llm.ps())")


def test_budget_from_config_evicts_lru_and_refuses_with_numbers(kernel_with_copies):
    kernel = kernel_with_copies
    size = kernel.value("llm.load('copy-a').estimate.ram")
    run = kernel.run(f"%config LLMux.memory_budget = 'cpu={int(size * 2.5)}'\n%llm load copy-b")
    assert run.status == "ok", run.error
    run = kernel.run("%%llm -m copy-a --max-tokens 2 --thread lru\nHi")
    assert run.status == "ok", run.error
    assert kernel.run("%llm load copy-c").status == "ok"
    assert names_loaded(kernel) == ["copy-a", "copy-c"]
    kernel.run("%llm pin copy-a\n%llm pin copy-c")
    refused = kernel.run("%llm load copy-b")
    assert refused.error["ename"] == "OutOfMemoryBudget"
    assert "copy-b needs" in refused.error["evalue"] and "pinned" in refused.error["evalue"]
    assert names_loaded(kernel) == ["copy-a", "copy-c"]


def test_keep_alive_zero_unloads_after_the_cell(kernel_with_copies):
    """On an unloaded model and on a loaded one: loaded now, unloaded after its next use."""
    kernel = kernel_with_copies
    run = kernel.run("%llm load copy-a --keep-alive 0")
    assert run.status == "ok" and names_loaded(kernel) == ["copy-a"]
    assert "Keep-alive 0: it unloads after its next use." in run.stdout
    assert kernel.run("%%llm -m copy-a --max-tokens 3 --thread k0\nHi").status == "ok"
    assert names_loaded(kernel) == []
    assert kernel.run("%llm load copy-a").status == "ok"
    run = kernel.run("%llm load copy-a --keep-alive 0")
    assert run.status == "ok", run.error
    assert "copy-a is already loaded on cpu" in run.stdout
    assert "Keep-alive 0: it unloads after its next use." in run.stdout
    assert names_loaded(kernel) == ["copy-a"]
    assert kernel.run("%%llm -m copy-a --max-tokens 3 --thread k0\nHi").status == "ok"
    assert names_loaded(kernel) == []


def test_keep_alive_expires_while_the_user_works_elsewhere(kernel_with_copies):
    kernel = kernel_with_copies
    assert kernel.run("%llm load copy-b --keep-alive 1s").status == "ok"
    deadline = time.monotonic() + 30
    while names_loaded(kernel) and time.monotonic() < deadline:
        assert kernel.run("x = sum(range(1000))").status == "ok"  # other cells run meanwhile
        time.sleep(0.2)
    assert names_loaded(kernel) == []


def test_ps_shows_estimates_budgets_and_keep_alive_in_html(kernel_with_copies):
    kernel = kernel_with_copies
    kernel.run("%llm load copy-a --keep-alive 10m --pin")
    run = kernel.run("%llm ps")
    models, budgets = (m["content"]["data"] for m in run.displays)
    html = models["text/html"]
    for column in ("estimate", "measured", "pinned", "keep-alive", "expires in", "last used",
                   "threads"):  # fmt: skip
        assert column in html
    threads = kernel.value("str(llm.manager.get_loaded('copy-a').backend.cpu_threads())")
    assert threads.endswith(" for prompts") and threads in html
    assert "copy-a" in html and "10m" in html and "var(--jp-" in html
    assert "#" not in html.split("<tbody>")[0].split("style=")[1][:200]  # theme colours only
    assert "budget" in budgets["text/plain"] and "cpu" in budgets["text/plain"]
    assert kernel.run("%llm unpin copy-a\n%llm keep-alive copy-a 0").status == "ok"
    assert names_loaded(kernel) == []


def test_bad_multiplexer_input_is_one_clear_error(kernel_with_copies):
    kernel = kernel_with_copies
    # %config reports a rejected value itself (one line on stderr) and keeps the old one.
    run = kernel.run("%config LLMux.memory_budget = 'lots'")
    assert "'lots' is not a size: write e.g. 12GiB" in run.stderr
    assert kernel.value("llm.config.memory_budget") == ""
    for code, ename, message in [
        ("%llm load copy-a --keep-alive soon", "InvalidParameter", "'soon' is not a duration"),
        ("%llm pin copy-b", "ModelNotLoaded", "'copy-b' is not loaded"),
        ("%llm keep-alive nope 5m", "UnknownModel", "No model named 'nope'"),
    ]:
        run = kernel.run(code)
        assert (run.error["ename"], len(run.error["traceback"])) == (ename, 1), code
        assert message in run.error["evalue"], (code, run.error["evalue"])
    assert names_loaded(kernel) == []
