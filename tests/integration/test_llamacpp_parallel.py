"""Maps on llama.cpp with parallel sequences, on the real SmolLM2: the same answers as one row
at a time (greedy, under a schema, sampled with a seed), prompts evaluated in several batches,
a row too long for the context failing alone, and a cancel keeping the finished rows with the
model loaded, idle and still answering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.models.catalog import Catalog

from .test_map_real import REVIEWS, TEMPLATE, Sentiment, count_calls

ITEMS = [
    "the sky", "grass", "snow", "a lemon", "coal", "the sea", "a tomato", "a very old and "
    "dusty library book that has been left out in the sun for many summers", "milk", "a crow",
    "an emerald", "rust",
]  # fmt: skip
COLOUR = "Answer in one short sentence: what colour is {item}?"


@pytest.fixture(scope="module")
def api(tmp_path_factory, smollm2_path) -> Iterator[LLM]:
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    # A small context read 8 prompt tokens at a time: every prompt takes several batches.
    llm.register("small-batches", backend="llamacpp", path=str(smollm2_path), n_ctx=512, n_batch=8)
    llm.load("smollm2")
    yield llm
    llm.unload(all=True)


def answers(api: LLM, template: str, items: list, batch_size: int, **options) -> list:
    options = {"model": "smollm2", "temperature": 0, "max_tokens": 16, **options}
    result = api.map(template, items, batch_size=batch_size, cache=False, progress=False,
                     **options)  # fmt: skip
    assert result.usage.done + result.usage.failed == len(items)
    return result.values


def test_greedy_rows_in_parallel_are_the_answers_of_one_row_at_a_time(api, monkeypatch):
    backend = api.manager.get_loaded("smollm2").backend
    calls = count_calls(backend, "generate", monkeypatch)
    alone = answers(api, COLOUR, ITEMS, 1)
    assert len(calls) == len(ITEMS) and all(alone)
    for batch_size in (5, None):  # three waves of five rows; the default, eight at once
        assert answers(api, COLOUR, ITEMS, batch_size) == alone
    assert len(calls) == len(ITEMS)  # the parallel maps never went through generate
    stopped = answers(api, COLOUR, ITEMS[:4], 2, stop=["."])
    assert stopped == answers(api, COLOUR, ITEMS[:4], 1, stop=["."])
    assert all("." not in text for text in stopped)


def test_rows_under_a_schema_are_valid_and_the_same_as_one_at_a_time(api):
    reviews = [{"review": review} for review in REVIEWS[:6]]
    options = {"schema": Sentiment, "max_tokens": 48}
    parallel = answers(api, TEMPLATE, reviews, 3, **options)
    assert all(isinstance(value, Sentiment) for value in parallel)
    assert parallel == answers(api, TEMPLATE, reviews, 1, **options)


def test_sampled_rows_with_a_seed_are_the_same_as_one_at_a_time(api):
    options = {"temperature": 0.9, "seed": 3, "max_tokens": 12}
    parallel = answers(api, COLOUR, ITEMS[:4], 2, **options)
    assert parallel == answers(api, COLOUR, ITEMS[:4], 1, **options)
    assert parallel != answers(api, COLOUR, ITEMS[:4], 2, max_tokens=12)  # sampled, not greedy


def test_prompts_over_several_batches_and_a_row_too_long_for_the_context(api):
    items = [*ITEMS[:5], "lighthouse keeper " * 300]  # about 600 tokens: beyond n_ctx 512
    options = {"model": "small-batches", "max_tokens": 12}
    result = api.map(COLOUR, items, batch_size=3, cache=False, progress=False, temperature=0,
                     **options)  # fmt: skip
    assert list(result.errors) == [5] and "exceed context window of 512" in result.errors[5]
    assert "--set n_ctx=" in result.errors[5] and result.values[5] is None
    assert result.values[:5] == answers(api, COLOUR, items[:5], 1, **options)
    api.unload("small-batches")


def test_a_cancel_keeps_the_finished_rows_and_the_model_answers_on(api):
    job = api.map(COLOUR, ITEMS, model="smollm2", temperature=0, max_tokens=16, cache=False,
                  progress=False, batch_size=4, stream=True)  # fmt: skip
    finished = []
    for row in job:
        finished.append(row.position)
        if len(finished) == 5:
            job.cancel()
    result = job.result
    assert result.interrupted and result.usage.done == len(finished) < len(ITEMS)
    assert [i for i, value in enumerate(result.values) if value is not None] == sorted(finished)
    assert [m.busy for m in api.ps() if m.name == "smollm2"] == [0]  # loaded and idle
    again = api.chat(COLOUR.format(item="snow"), model="smollm2", new=True, temperature=0,
                     max_tokens=16)  # fmt: skip
    assert again.text.strip() == result.values[2] or result.values[2] is None
