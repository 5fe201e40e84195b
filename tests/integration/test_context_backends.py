"""Threads that outgrow the window on the other chat backends, through the Python API: the real
SmolLM2 on transformers (a small n_ctx) and on llama-cpp-python's own server on loopback
(the remote backend estimates its counts; a context_window setting of 512, below the
server's 2048, keeps the scenario short)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import ContextOverflow, RemoteServerError
from llmux_jupyter.models.catalog import Catalog

from .llama_server import LlamaServer

STORY = "Write a very long story about {}, in many chapters."
TOPICS = ["lighthouses", "volcanoes", "trains", "bees", "glaciers", "castles", "comets"]
DOCUMENT = "Summarize: " + " ".join(["word"] * 5000)


def long_thread(api: LLM, model: str, cells: int, max_tokens: int) -> list:
    return [
        api.chat(
            STORY.format(TOPICS[n % 7]),
            model=model,
            thread="long",
            max_tokens=max_tokens,
            temperature=0.7,
            seed=n,
        )
        for n in range(cells)
    ]


def check_refusals(api: LLM, model: str, max_tokens: int) -> None:
    """--context error and a document longer than the window: ContextOverflow, nothing lost."""
    turns = len(api.threads.get("long").turns)
    loaded = [(m.name, m.loaded_at) for m in api.ps()]
    with pytest.raises(ContextOverflow, match="--context error"):
        api.chat(
            "One more chapter.", model=model, thread="long", max_tokens=max_tokens, context="error"
        )
    with pytest.raises(ContextOverflow, match=r"tokens .* context window is"):
        api.chat(DOCUMENT, model=model, thread="doc")
    assert len(api.threads.get("long").turns) == turns
    assert api.threads.get("doc").turns == []
    assert [(m.name, m.loaded_at) for m in api.ps()] == loaded
    assert api.chat("Say hello.", model=model, thread="long", max_tokens=10).text.strip()


@pytest.fixture(scope="module")
def hf(tmp_path_factory) -> Iterator[LLM]:
    api = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    api.load("smollm2-hf", n_ctx=320)
    yield api
    api.unload(all=True)


def test_transformers_thread_fits_a_small_window(hf):
    answers = long_thread(hf, "smollm2-hf", cells=7, max_tokens=32)
    assert all(a.text.strip() for a in answers)
    assert answers[0].context.left_out == 0 and answers[-1].context.left_out > 0
    for answer in answers:
        assert answer.context.window == 320
        # our count is the model's or a little more (turns are counted one by one, and their
        # markup rounded up): never too few
        over = answer.context.tokens - answer.usage.prompt_tokens
        assert 0 <= over <= answer.context.used + 2
        assert answer.context.tokens + 32 <= 320
    assert "left out to fit the 320-token context" in answers[-1].context_note
    check_refusals(hf, "smollm2-hf", 32)


def test_transformers_answer_reaching_the_window_stops_as_context_full(hf):
    hf.load("smollm2-hf", n_ctx=160)
    answer = hf.chat(STORY.format("a lighthouse keeper"), model="smollm2-hf", thread="full")
    assert answer.stop_reason == "context_full"
    assert answer.usage.prompt_tokens + answer.usage.completion_tokens == 160
    assert "context full" in answer.context_note
    assert hf.threads.get("full").turns[-1].assistant == answer.text != ""


@pytest.fixture(scope="module")
def remote(tmp_path_factory, smollm2_path) -> Iterator[LLM]:
    folder = tmp_path_factory.mktemp("context-server")
    server = LlamaServer(smollm2_path, folder / "server.log", interrupt_requests=False)
    api = LLM(Catalog(folder / "models.json"))
    api.register(
        "remote", backend="openai", base_url=server.url, model="smollm2", context_window=512
    )
    api.register("remote-unsized", backend="openai", base_url=server.url, model="smollm2")
    yield api
    api.unload(all=True)
    server.stop()


def test_remote_thread_fits_with_estimated_counts(remote):
    answers = long_thread(remote, "remote", cells=6, max_tokens=60)
    assert all(a.text.strip() for a in answers)
    assert answers[0].context.left_out == 0 and answers[-1].context.left_out > 0
    for answer in answers:  # the estimate errs on the safe side of the server's own count
        assert answer.usage.prompt_tokens <= answer.context.tokens
        assert answer.context.tokens + 60 <= 512
    check_refusals(remote, "remote", 60)


def test_a_server_that_drops_an_overlong_prompt_is_a_typed_error(remote):
    # llama-cpp-python's server answers 200 and then ends the stream at once when the prompt
    # exceeds its window (the HTTP 400 of vLLM and others is ContextOverflow, see unit tests)
    with pytest.raises(RemoteServerError, match=r"without finishing it.*context_window="):
        remote.chat(DOCUMENT, model="remote-unsized", thread="unsized")
    assert remote.threads.get("unsized").turns == []
    assert remote.chat("Say hello.", model="remote-unsized", max_tokens=10).text.strip()
