"""``llm.map`` on the real SmolLM2 through llama.cpp (parallel sequences) and transformers
(batched), on a real ``llama_cpp.server`` on loopback (concurrent, one row failing), and in a
real kernel (an interrupt half-way): typed rows, alignment with a DataFrame's index, the disk
cache."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.models.cache import cache_root
from llmux_jupyter.models.catalog import Catalog

from .kernel import Kernel, interrupt_at_rows
from .llama_server import ALIAS, LlamaServer

pd = pytest.importorskip("pandas")
pydantic = pytest.importorskip("pydantic")

REVIEWS = [
    "I loved this film, it was wonderful.", "Terrible service, I want my money back.",
    "The food was cold and bland.", "Best purchase I have made all year!",
    "It broke after two days.", "Friendly staff and a lovely room.",
    "The plot was boring and far too long.", "Great value, works perfectly.",
    "I will never come back here.", "An absolute delight from start to finish.",
    "The battery dies within an hour.", "Fast delivery and well packed.",
    "Rude waiter and a dirty table.", "My kids adore this game.",
    "The screen cracked on day one.", "Beautiful views and a calm beach.",
    "Customer support never answered.", "Tasty, fresh and cheap.",
    "The app crashes constantly.", "A wonderful, moving performance.",
]  # fmt: skip
TEMPLATE = "What is the sentiment of this review? Review: {review}"


class Sentiment(pydantic.BaseModel):
    label: Literal["positive", "negative", "neutral"]
    confidence: float


def reviews() -> pd.DataFrame:
    index = pd.Index([f"T-{n}" for n in range(101, 121)], name="ticket")
    return pd.DataFrame({"review": REVIEWS, "stars": range(20)}, index=index)


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[LLM]:
    shutil.rmtree(cache_root() / "map", ignore_errors=True)  # a cache of our own answers only
    llm = LLM(Catalog(tmp_path_factory.mktemp("cfg") / "models.json"))
    llm.load("smollm2")
    llm.load("smollm2-hf")
    yield llm
    llm.unload(all=True)


def count_calls(backend, method: str, monkeypatch) -> list[object]:
    """Record each call of ``backend.method`` (its first argument)."""
    calls: list[object] = []
    original = getattr(backend, method)

    def counted(*args, **kwargs):
        calls.append(args[0] if args else kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, method, counted)
    return calls


def check_typed(result, df) -> None:
    assert result.errors == {}, result.errors
    assert len(result.values) == 20 and all(isinstance(v, Sentiment) for v in result.values)
    joined = df.join(result.to_pandas())
    assert list(joined.columns) == ["review", "stars", "label", "confidence", "error"]
    assert list(joined.index) == list(df.index) and joined.index.name == "ticket"
    assert joined.loc["T-105", "label"] == result.values[4].label
    assert joined["label"].isin(["positive", "negative", "neutral"]).all()


def test_twenty_typed_rows_on_llamacpp_then_a_rerun_hits_the_cache(api, monkeypatch):
    df = reviews()
    backend = api.manager.get_loaded("smollm2").backend
    calls = count_calls(backend, "generate_batch", monkeypatch)  # the rows it was given
    options = {"model": "smollm2", "schema": Sentiment, "temperature": 0, "max_tokens": 48}
    first = api.map(TEMPLATE, df, progress=False, **options)
    check_typed(first, df)
    assert [len(rows) for rows in calls] == [20] and first.usage.completion_tokens > 20
    again = api.map(TEMPLATE, df, progress=False, **options)
    assert len(calls) == 1  # no backend call
    assert again.usage.cached == 20 and again.values == first.values
    changed = api.map(TEMPLATE, df.head(3), progress=False, **{**options, "max_tokens": 40})
    assert [len(rows) for rows in calls] == [20, 3] and changed.usage.cached == 0


@contextmanager
def rows_per_forward(model) -> Iterator[list[int]]:
    """The rows of each forward pass of ``model`` inside the block."""
    rows: list[int] = []

    def record(module, args, kwargs) -> None:
        rows.append(kwargs["input_ids"].shape[0])

    hook = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield rows
    finally:
        hook.remove()


def test_twenty_typed_rows_on_transformers_by_continuous_batching(api, monkeypatch):
    df = reviews()
    model = api.manager.get_loaded("smollm2-hf").backend._model
    calls = count_calls(model, "generate", monkeypatch)
    with rows_per_forward(model) as in_flight:
        result = api.map(
            TEMPLATE, df, model="smollm2-hf", schema=Sentiment, temperature=0, max_tokens=48,
            batch_size=8, cache=False, progress=False,
        )  # fmt: skip
    check_typed(result, df)
    assert calls == [] and max(in_flight) == 8  # our loop, never more than 8 rows at once


def test_a_sampled_typed_map_runs_one_generate_per_batch(api, monkeypatch):
    model = api.manager.get_loaded("smollm2-hf").backend._model
    calls = count_calls(model, "generate", monkeypatch)
    df = reviews().head(5)
    result = api.map(
        TEMPLATE, df, model="smollm2-hf", schema=Sentiment, temperature=0.7, seed=1,
        max_tokens=48, batch_size=2, cache=False, progress=False,
    )  # fmt: skip
    assert [call["input_ids"].shape[0] for call in calls] == [2, 2, 1]
    typed = [v for v in result.values if v is not None]  # a sampled number may run past 48
    assert typed and all(isinstance(v, Sentiment) for v in typed), result.errors


def test_a_greedy_map_on_transformers_batches_continuously_as_each_row_alone(api, monkeypatch):
    model = api.manager.get_loaded("smollm2-hf").backend._model
    calls = count_calls(model, "generate", monkeypatch)
    items = ["the sky", "grass", "snow", "a lemon", "coal", "the sea", "a tomato"]
    template = "Answer in one short sentence: what colour is {item}?"
    result = api.map(template, items, model="smollm2-hf", temperature=0, max_tokens=24,
                     batch_size=3, cache=False, progress=False)  # fmt: skip
    assert calls == []  # our continuous-batching loop, not one generate per batch
    assert result.errors == {} and all(isinstance(v, str) and v for v in result.values)
    assert result.usage.tokens_per_second > 0
    for i in (0, 3, 6):
        single = api.chat(template.format(item=items[i]), model="smollm2-hf", new=True,
                          temperature=0, max_tokens=24)  # fmt: skip
        assert result.values[i] == single.text.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory, smollm2_path) -> Iterator[LlamaServer]:
    """A server that queues concurrent requests instead of interrupting them."""
    folder = tmp_path_factory.mktemp("map-server")
    server = LlamaServer(smollm2_path, folder / "server.log", interrupt_requests=False)
    yield server
    server.stop()


def test_remote_rows_run_concurrently_and_a_failing_row_stays_in_errors(api, server):
    api.register(
        "served", backend="openai", base_url=server.url, model=ALIAS, max_retries=0, timeout=120
    )
    rows = [f"Say the number {n} in words." for n in range(8)]
    rows[5] = "Repeat this: " + "lighthouse keeper " * 1500  # beyond the server's context
    result = api.map("{item}", rows, model="served", concurrency=4, temperature=0,
                     max_tokens=12, cache=False, progress=False)  # fmt: skip
    assert list(result.errors) == [5] and "without finishing it" in result.errors[5]
    assert all(result.values[i] for i in range(8) if i != 5) and result.values[5] is None
    assert result.usage.failed == 1 and "1 failed" in result.summary()


@pytest.fixture(scope="module")
def map_kernel(kernel: Kernel) -> Iterator[Kernel]:
    run = kernel.run(
        "import pandas as pd\n%llm load smollm2\n"
        f"df = pd.DataFrame({{'review': {REVIEWS!r}}}, index=range(101, 121))"
    )
    assert run.status == "ok", run.error
    yield kernel
    assert kernel.run("%llm unload --all").status == "ok"


@pytest.mark.parametrize(
    ("model", "options"),
    [("smollm2", ""), ("smollm2-hf", " --batch-size 4")],  # parallel sequences; continuous batching
)
def test_an_interrupt_half_way_keeps_the_finished_rows(map_kernel, model, options):
    run = map_kernel.run(
        f"%%llm --map df -o result -m {model} --temperature 0 --max-tokens 24 --no-cache{options}\n"
        "Summarise in five words: {review}",
        on_message=interrupt_at_rows(map_kernel, 10),
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    done, total, flag = map_kernel.value(
        "(sum(v is not None for v in result.values), len(result.values), result.interrupted)"
    )
    assert 10 <= done < total == 20 and flag is True
    assert "interrupted" in run.shown_text and f"{done} of 20 rows" in run.shown_text
    state = f"[m.busy for m in llm.ps() if m.name == {model!r}]"
    assert map_kernel.value(state) == [0]  # still loaded, and idle
    assert map_kernel.value("list(result.to_pandas().index[:2])") == [101, 102]
