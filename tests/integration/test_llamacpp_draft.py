"""Speculative decoding on the real llama.cpp with the real SmolLM2 GGUF: prompt lookup and a
GGUF draft model keep the greedy answer, count what they drafted, and show in provenance,
``%llm ps`` and a real kernel (where the interrupt button still works)."""

from __future__ import annotations

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.models.catalog import Catalog

from .kernel import interrupt_answer, llmux_kernel, streamed_answer

PARAGRAPH = (
    "The old lighthouse stood at the edge of the rocky cape, its white tower weathered by a "
    "century of storms. Every evening the keeper climbed the spiral staircase to light the "
    "great lamp. He lived alone with a grey cat and a shelf of books about distant islands."
)
COPY = (
    'Rewrite the following paragraph exactly, word for word, but replace the word "grey" with '
    f'"black". Output only the paragraph.\n\n{PARAGRAPH}'
)
N_CTX = 1024
LOGITS_OF_EVERY_POSITION = N_CTX * 49152 * 4  # what llama-cpp-python keeps once drafting


@pytest.fixture(scope="module")
def api(tmp_path_factory, smollm2_path):
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    llm.register("smol-draft", backend="llamacpp", path=str(smollm2_path))
    yield llm
    llm.unload(all=True)


@pytest.fixture(scope="module")
def plain(api):
    api.load("smollm2", n_ctx=N_CTX)
    return api.chat(COPY, temperature=0, max_tokens=120, new=True, thread="plain")


def test_prompt_lookup_keeps_the_greedy_answer_and_counts_what_it_drafted(api, plain):
    estimate = api.manager.get_loaded("smollm2").estimate.ram
    loaded = api.load("smollm2", n_ctx=N_CTX, draft="prompt-lookup", draft_tokens=8)
    assert loaded.backend.load_note == "draft: prompt-lookup, up to 8 tokens a step"
    assert loaded.estimate.ram == estimate + LOGITS_OF_EVERY_POSITION
    first = api.chat(COPY, temperature=0, max_tokens=120, new=True, thread="lookup")
    assert first.text == plain.text and first.text.startswith("The old lighthouse stood")
    assert first.usage.prompt_tokens == plain.usage.prompt_tokens
    assert first.usage.completion_tokens == plain.usage.completion_tokens
    stats = first.draft
    assert stats is not None and stats.name == "prompt-lookup"
    # The answer copies the prompt: most guesses hold, and they cover most of the answer.
    assert stats.accepted > 0.7 * stats.drafted
    assert stats.accepted > 0.5 * first.usage.completion_tokens
    assert first.provenance()["draft"] == stats.as_dict()
    second = api.chat(COPY, temperature=0, max_tokens=120, new=True, thread="lookup")
    assert second.text == plain.text
    assert loaded.backend.draft_totals() == first.draft + second.draft


def test_a_gguf_draft_model_with_the_same_vocabulary(api, plain):
    loaded = api.load("smollm2", n_ctx=N_CTX, draft="smol-draft", draft_tokens=4)
    assert loaded.options.draft.name == "smol-draft"
    assert loaded.backend.load_note == "draft: smol-draft, up to 4 tokens a step"
    drafted = api.chat(COPY, temperature=0, max_tokens=120, new=True, thread="model")
    assert drafted.text == plain.text
    # The draft is the model itself: its greedy guesses are the model's own choices.
    stats = drafted.draft
    assert stats.name == "smol-draft" and stats.accepted >= 0.9 * stats.drafted > 0
    free = api.chat("Write a haiku about the sea.", temperature=0, max_tokens=40, new=True)
    assert free.draft.accepted >= 0.9 * free.draft.drafted > 0


@pytest.mark.parametrize(
    ("draft", "settings", "message"),
    [
        ("whisper-tiny.en", {}, "a draft model must be a llamacpp chat model"),
        ("all-minilm", {}, "all-minilm' is transformers, embedding"),
        ("prompt-lookup", {"draft_tokens": 0}, "draft_tokens=0: give at least 1"),
    ],
)
def test_bad_drafts_are_refused_and_the_loaded_model_stays(api, draft, settings, message):
    loaded = api.load("smollm2", n_ctx=N_CTX)
    with pytest.raises(InvalidParameter, match=message):
        api.load("smollm2", n_ctx=N_CTX, draft=draft, **settings)
    assert api.manager.get_loaded("smollm2") is loaded and loaded.options.draft is None


def test_prompt_lookup_in_a_kernel(tmp_path):
    with llmux_kernel(tmp_path) as kernel:
        run = kernel.run(
            f"%llm load smollm2 --draft prompt-lookup --set draft_tokens=6 --set n_ctx={N_CTX}"
        )
        assert run.status == "ok", run.error
        assert "draft: prompt-lookup, up to 6 tokens a step" in run.stdout
        answer = streamed_answer(kernel.run(f"%%llm --temperature 0 --max-tokens 120\n{COPY}"))
        draft = answer["metadata"]["llmux"]["draft"]
        assert draft["name"] == "prompt-lookup" and draft["accepted"] > 0.7 * draft["drafted"]
        assert answer["data"]["text/plain"].startswith("The old lighthouse stood")
        table = kernel.run("%llm ps").displays[0]["content"]["data"]["text/plain"]
        assert f"prompt-lookup: {draft['accepted']} of {draft['drafted']} drafted" in table
        interrupted = interrupt_answer(
            kernel, "%%llm --new --max-tokens 400\nWrite a long essay about the sea."
        )
        assert interrupted.final["metadata"]["llmux"]["draft"]["name"] == "prompt-lookup"
        assert kernel.value("llm.ps()[0].busy") == 0
