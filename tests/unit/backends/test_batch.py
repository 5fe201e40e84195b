"""``Backend.generate_batch``: the default (one at a time, or threads for a server) on the echo
backends, and transformers' batched generation on a tiny random Llama."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.hf_batch import (
    MAX_BATCH_SIZE,
    Row,
    batches,
    fit_batch_size,
    row_bytes,
)
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.spec import LoadOptions
from llmux_jupyter.types.batch import BatchRequest
from llmux_jupyter.types.values import GenerationParams, Message

from ...tiny_models import build_tiny_llama, train_tokenizer
from ..conftest import EchoBackend, ServedEchoBackend, echo_spec, served_spec


def requests(*prompts: str, **params) -> list[BatchRequest]:
    return [
        BatchRequest(i, [Message("user", p)], GenerationParams(**params))
        for i, p in enumerate(prompts)
    ]


def test_by_default_requests_run_one_after_another_and_a_failure_stays_in_its_row(model_file):
    backend = EchoBackend(echo_spec("e", model_file, fail_after=1), LoadOptions())
    answers = list(backend.generate_batch(requests("a", "b c", "d"), threading.Event()))
    assert [(a.key, a.text, a.error) for a in answers] == [
        (0, "a", None),
        (1, "", "RuntimeError: injected generation failure"),
        (2, "d", None),
    ]
    assert answers[0].completion_tokens == 1 and answers[0].prompt_tokens == 1


def test_a_cancel_stops_before_the_next_request(model_file):
    backend = EchoBackend(echo_spec("e", model_file), LoadOptions())
    cancel = threading.Event()
    stream = backend.generate_batch(requests("a", "b", "c"), cancel)
    assert next(stream).text == "a"
    cancel.set()
    assert list(stream) == []


def test_a_server_backend_answers_concurrently_up_to_the_limit(served_backend):
    backend = ServedEchoBackend(served_spec("s"), LoadOptions())
    prompts = [f"request {i} has five words" for i in range(10)]
    answers = list(backend.generate_batch(requests(*prompts), threading.Event(), concurrency=3))
    assert sorted(a.text for a in answers) == sorted(prompts)
    assert served_backend.most == 3


def test_closing_a_concurrent_batch_early_stops_the_requests_still_running(served_backend):
    backend = ServedEchoBackend(served_spec("s"), LoadOptions())
    cancel = threading.Event()
    prompts = [" ".join(["word"] * 40)] * 6
    stream = backend.generate_batch(requests(*prompts), cancel, concurrency=2)
    next(stream)
    stream.close()
    assert cancel.is_set() and served_backend.running == 0


def test_batches_group_prompts_of_similar_length():
    rows = [Row(i, [0] * n) for i, n in enumerate([5, 1, 9, 3, 7])]
    assert [[r.key for r in b] for b in batches(rows, 2)] == [[1, 3], [0, 4], [2]]


def test_the_batch_size_fits_the_free_memory():
    config = SimpleNamespace(
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=64,
        vocab_size=100,
    )  # fmt: skip
    per_row = row_bytes(config, 4, tokens=10)
    assert per_row == 2 * 2 * 2 * 16 * 4 * 10 + 2 * 4 * 100
    assert fit_batch_size(100, per_row, free_memory=per_row * 5 + 1) == 5
    assert fit_batch_size(100, per_row, free_memory=0) == 1
    assert fit_batch_size(3, per_row, free_memory=None) == 3
    assert fit_batch_size(1000, per_row, free_memory=None) == MAX_BATCH_SIZE


torch = pytest.importorskip("torch")
PROMPTS = ["Hello world", "a much longer prompt with many more words in it than the first", "hi"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-batch")
    llm = LLM(Catalog(root / "models.json"))
    path = build_tiny_llama(root / "tiny", train_tokenizer(), seed=0)
    llm.register("tiny", backend="transformers", path=str(path))
    llm.register("short", backend="transformers", path=str(path), n_ctx=24)
    yield llm
    llm.unload(all=True)


def test_a_batch_gives_each_row_the_answer_it_gets_alone(tiny):
    backend = tiny.load("tiny").backend
    params = GenerationParams(temperature=0, max_tokens=12)
    answers = {
        a.key: a
        for a in backend.generate_batch(
            [BatchRequest(i, [Message("user", p)], params) for i, p in enumerate(PROMPTS)],
            threading.Event(),
            batch_size=3,
        )
    }
    for key, prompt in enumerate(PROMPTS):
        alone = tiny.chat(prompt, model="tiny", new=True, temperature=0, max_tokens=12)
        assert answers[key].text == alone.text
        assert answers[key].completion_tokens == alone.usage.completion_tokens
        assert answers[key].prompt_tokens == alone.usage.prompt_tokens


def test_a_typed_batch_decodes_each_row_under_the_schema_without_generate(tiny, monkeypatch):
    pytest.importorskip("llguidance")
    backend = tiny.load("tiny").backend
    monkeypatch.setattr(backend._model, "generate", None)  # continuous batching only
    schema = {
        "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
        "additionalProperties": False,
    }  # fmt: skip
    params = GenerationParams(temperature=0, max_tokens=40, json_schema=schema)
    batch = [BatchRequest(i, [Message("user", p)], params) for i, p in enumerate(PROMPTS)]
    answers = list(backend.generate_batch(batch, threading.Event(), batch_size=2))
    assert sorted(a.key for a in answers) == [0, 1, 2]
    assert all(isinstance(json.loads(a.text)["ok"], bool) for a in answers), answers


def test_a_row_longer_than_the_context_fails_alone_and_a_cancel_stops_the_batch(tiny):
    backend = tiny.load("short").backend
    params = GenerationParams(temperature=0, max_tokens=4)
    batch = [BatchRequest(i, [Message("user", p)], params) for i, p in enumerate(PROMPTS)]
    answers = {a.key: a for a in backend.generate_batch(batch, threading.Event())}
    assert "context window is 24" in answers[1].error
    assert answers[0].error is None and answers[2].error is None
    cancel = threading.Event()
    cancel.set()
    assert [a for a in backend.generate_batch(batch, cancel) if a.error is None] == []


def test_map_on_transformers_batches_rows(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path))
    result = tiny.map("{item}", PROMPTS * 3, model="tiny", max_tokens=6, temperature=0,
                      batch_size=4, progress=False)  # fmt: skip
    assert result.errors == {} and all(isinstance(v, str) for v in result.values)
    assert result.values[:3] == result.values[3:6] == result.values[6:]
