"""Bringing your own model in a real kernel: quoted paths and values, a base model without a
chat template (Gemma-3-270M), an empty answer, llama.cpp's log kept out of the cells, and an
unreachable model hub."""

from __future__ import annotations

import logging
import time

import pytest

from ..gguf_files import CHATML_ONE_LINE
from .kernel import llmux_kernel

QUESTION = "What is the capital of France? Answer in one word."
COLLECT_NATIVE_LOG = (
    "import logging\n"
    "native = []\n"
    "class Collect(logging.Handler):\n"
    "    def emit(self, record): native.append((record.levelname, record.getMessage()))\n"
    "logging.getLogger('llmux_jupyter.native').addHandler(Collect())\n"
    "logging.getLogger('llmux_jupyter.native').setLevel(logging.DEBUG)\n"
)


@pytest.mark.parametrize(
    "quoted",
    ['"{folder}/smol bare.gguf"', "'{folder}/smol bare.gguf'", "{escaped}/smol\\ bare.gguf"],
    ids=["double", "single", "backslash"],
)
def test_register_a_path_with_spaces_and_a_template_with_spaces(kernel, bare_gguf, quoted):
    folder = bare_gguf.parent
    path = quoted.format(folder=folder, escaped=str(folder).replace(" ", "\\ "))
    run = kernel.run(
        f"%llm register spaced --force --backend llamacpp --path {path} "
        f'--set "template={CHATML_ONE_LINE}" --set n_ctx=1024'
    )
    assert run.status == "ok", run.error
    assert kernel.value("str(llm.manager.catalog.get('spaced').source.resolve())") == str(bare_gguf)
    settings = kernel.value("llm.manager.catalog.get('spaced').settings")
    assert settings == {"template": CHATML_ONE_LINE, "n_ctx": 1024}
    run = kernel.run(
        "%%llm -m spaced --new --thread spaced --temperature 0 --max-tokens 16 "
        "--system 'You are a geography teacher.' --stop \"is not\"\n" + QUESTION
    )
    assert run.status == "ok", run.error
    answer = run.displays[-1]["content"]
    assert "paris" in answer["data"]["text/markdown"].lower()
    assert answer["metadata"]["llmux"]["params"]["stop"] == ["is not"]
    assert kernel.value("llm.threads.get('spaced').system") == "You are a geography teacher."
    kernel.run("%llm unload spaced")


def test_an_empty_answer_says_why_and_is_not_kept(kernel):
    turns = "len(llm.threads.get('empty').turns)"
    before = kernel.value(turns)
    cell = f"%%llm --thread empty --temperature 0 --stop Paris --stop The -o said\n{QUESTION}"
    run = kernel.run(cell)
    assert run.status == "ok", run.error
    shown = run.displays[-1]["content"]["data"]["text/markdown"]
    assert shown.startswith("*The model produced no text (")
    assert "stop reason: stop;" in shown and "a --stop string matched at once" in shown
    assert kernel.value("said") == "" and kernel.value(turns) == before


@pytest.fixture(scope="module")
def gemma_kernel(tmp_path_factory, gemma_path):
    with llmux_kernel(tmp_path_factory.mktemp("gemma-kernel"), COLLECT_NATIVE_LOG) as kernel:
        run = kernel.run(
            f"%llm register gemma --backend llamacpp --path {gemma_path}\n"
            f"%llm register gemma-llama2 --backend llamacpp --path {gemma_path} "
            "--set chat_format=llama-2\n"
        )
        assert run.status == "ok", run.error
        yield kernel


def test_a_base_model_names_the_fixes_then_chats_with_its_format(gemma_kernel):
    refused = gemma_kernel.run(f"%%llm -m gemma\n{QUESTION}")
    assert refused.error["ename"] == "ModelLoadError", refused.error
    assert "--set chat_format=NAME (chatml, gemma" in refused.error["evalue"]
    assert len(refused.error["traceback"]) == 1
    loaded = gemma_kernel.run("%llm load gemma --set chat_format=gemma")
    assert loaded.status == "ok", loaded.error
    assert loaded.stdout.startswith("gemma loaded on cpu") and not loaded.stderr
    answer = gemma_kernel.run(f"%%llm -m gemma --max-tokens 12 --temperature 0\n{QUESTION}")
    assert answer.status == "ok", answer.error
    assert answer.displays[-1]["content"]["metadata"]["llmux"]["usage"]["completion_tokens"] > 0
    listing = gemma_kernel.run("%llm list")
    table = listing.displays[0]["content"]["data"]["text/plain"]
    assert "NONE: needs --set template=, chat_format= or completion=true" in table
    assert "template in the model" in table  # smollm2's


def test_llama_cpp_log_goes_to_logging_not_to_the_cell(gemma_kernel):
    # The cells above showed no llama.cpp line (every Kernel.run checks); logging has them.
    logged = gemma_kernel.value("native")
    assert any(m.startswith("llama_model_loader: loaded meta data") for _, m in logged)
    assert any(m.startswith("llama_kv_cache_iswa: using full-size SWA cache") for _, m in logged)
    assert {level for level, _ in logged} >= {"DEBUG", "INFO", "WARNING"}


def test_verbose_shows_llama_cpp_output(gemma_kernel):
    load = "%llm load gemma --set chat_format=gemma --set verbose=true"
    run = gemma_kernel.run(load, native_log=True)
    assert run.status == "ok", run.error
    assert "llama_kv_cache_iswa: using full-size SWA cache" in run.stderr
    assert run.native_log_lines()  # what every other cell is checked against
    gemma_kernel.run("%llm unload gemma")


def test_an_explicit_format_that_does_not_fit_gives_a_note_not_a_blank_cell(gemma_kernel):
    run = gemma_kernel.run(f"%%llm -m gemma-llama2 --thread l2\n{QUESTION}")
    assert run.status == "ok", run.error
    final = run.displays[-1]["content"]
    note = final["data"]["text/markdown"]
    assert note.startswith("*The model produced no text (stop reason: stop; 0 tokens after a ")
    assert "without a fitting chat template" in note and "--set chat_format=NAME" in note
    assert final["metadata"]["llmux"]["usage"]["completion_tokens"] == 0
    assert gemma_kernel.value("len(llm.threads.get('l2').turns)") == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HF_ENDPOINT": "https://hub.invalid"}, "Could not get hf:org/absent/m.gguf from the "),
        ({"HF_HUB_OFFLINE": "1"}, "is not in the Hugging Face cache and HF_HUB_OFFLINE is set"),
    ],
    ids=["unreachable", "offline"],
)
def test_an_uncached_hub_model_fails_fast_with_one_message(tmp_path, env, message):
    environment = {**env, "HF_HOME": str(tmp_path / "hf")}
    with llmux_kernel(tmp_path / "config", env=environment) as kernel:
        kernel.run("%llm register absent --backend llamacpp --hf org/absent --file m.gguf")
        started = time.perf_counter()
        run = kernel.run(f"%%llm -m absent\n{QUESTION}")
        seconds = time.perf_counter() - started
        assert run.error["ename"] == "SourceNotFound" and message in run.error["evalue"]
        assert len(run.error["traceback"]) == 1 and "Retry" not in run.shown_text
        assert seconds < 5, f"took {seconds:.1f} s"  # huggingface_hub alone retried for ~23 s
        logging.getLogger(__name__).info("uncached hub model failed in %.2f s", seconds)
