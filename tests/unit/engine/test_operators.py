"""The table operators' own logic on a rule-following fake model: filter, classify, extract,
reduce (folding in a small window) and topk (with a judge), their results' alignment with the
input, the shared cache and interrupt, and bad input refused before anything loads."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from typing import Literal

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.map import MapUsage
from llmux_jupyter.engine.operators import ClassifyResult, FilterResult
from llmux_jupyter.engine.reduce import ReduceResult, pack
from llmux_jupyter.engine.topk import TopKResult
from llmux_jupyter.errors import InvalidParameter, UnsupportedTask
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import Task

from ..conftest import WordCounts, echo_spec
from ..rule_model import CONFIDENCE, RuleModel, rules_api

pd = pytest.importorskip("pandas")
pydantic = pytest.importorskip("pydantic")
pytest.importorskip("jsonschema")
NUMBERS = [7, 12, 3, 8, 10, 5, 22, 15]


class Extracted(pydantic.BaseModel):
    class Size(pydantic.BaseModel):
        words: int

    name: str
    size: Size


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@pytest.fixture
def llm(tmp_path, model_file, echo_backend, monkeypatch) -> Iterator[LLM]:
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    source = FileSource(str(model_file))
    with rules_api(
        tmp_path,
        model_file,
        ModelSpec("stopper", "rules", Task.CHAT, source, settings={"stop_at": "10"}),
        ModelSpec("narrow", "rules", Task.CHAT, source, settings={"window": 60}),
        echo_spec("echo", model_file),
    ) as api:
        yield api


def numbers() -> pd.DataFrame:
    index = pd.Index([f"n{i}" for i in range(len(NUMBERS))], name="id")
    return pd.DataFrame({"n": NUMBERS, "note": "x"}, index=index)


def test_filter_keeps_the_yes_rows_on_the_input_index_with_their_confidence(llm):
    df = numbers()
    result = llm.filter(df, "Is {n} even?", progress=False)
    assert isinstance(result, FilterResult) and result.errors == {}
    assert list(result.kept.index) == ["n1", "n3", "n4", "n6"]
    assert result.kept.equals(df[result.mask]) and result.mask.index.equals(df.index)
    assert result.values == [n % 2 == 0 for n in NUMBERS]
    assert result.confidence.tolist() == pytest.approx([CONFIDENCE] * len(NUMBERS))
    table = result.to_pandas()
    assert list(table.columns) == ["n", "note", "keep", "confidence", "error"]
    assert table["keep"].tolist() == result.values and table.index.equals(df.index)
    assert "filter kept 4 of 8 rows" in result.summary()
    prompt = RuleModel.calls[0]
    assert prompt.startswith("Is 7 even?") and prompt.endswith("Answer yes or no.")
    assert result.map.kind == "filter" and result.usage.completion_tokens == 3 * len(NUMBERS)


def test_a_list_filters_to_a_list_and_the_rerun_comes_from_the_cache(llm):
    items = [str(n) for n in NUMBERS]
    first = llm.filter(items, "Is {item} even?", progress=False)
    assert first.kept == ["12", "8", "10", "22"] and first.mask[:2] == [False, True]
    calls = len(RuleModel.calls)
    again = llm.filter(items, "Is {item} even?", progress=False)
    assert len(RuleModel.calls) == calls  # no backend call
    assert again.usage.cached == len(items) and again.kept == first.kept
    assert again.confidence == pytest.approx([CONFIDENCE] * len(items))  # kept in the cache


def test_an_interrupt_keeps_the_rows_finished_before_it(llm):
    items = [str(n) for n in NUMBERS]  # "10" is the fifth row
    result = llm.filter(items, "Is {item} even?", model="stopper", progress=False, cache=False)
    assert result.interrupted and result.values[:4] == [False, True, False, True]
    assert result.values[4:] == [None] * 4 and result.kept == ["12", "8"]
    assert "interrupted" in result.summary()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["happy", "sad"], ["happy", "sad", "sad"]),
        (Literal["happy", "sad"], ["happy", "sad", "sad"]),
        (Mood, [Mood.HAPPY, Mood.SAD, Mood.SAD]),
    ],
)
def test_classify_gives_one_label_per_row_from_a_list_a_literal_or_an_enum(llm, labels, expected):
    df = pd.DataFrame({"text": ["a happy day", "a sad song", "nothing"], "label": [1, 2, 3]})
    result = llm.classify(df, "Mood of: {text}", labels, progress=False)
    assert isinstance(result, ClassifyResult) and result.values == expected
    assert result.counts() == {"happy": 1, "sad": 2} and result.choices == ("happy", "sad")
    table = result.to_pandas()
    assert list(table.columns) == ["text", "label", "label_llm", "confidence", "error"]
    assert table["label_llm"].tolist() == expected  # the input's own column is kept
    assert RuleModel.calls[0].endswith("Answer with one of these labels: happy, sad.")
    assert "classify: happy 1, sad 2" in result.summary()


def test_extract_expands_the_schema_fields_into_columns(llm):
    result = llm.extract(["alpha beta", "gamma"], "{item}", Extracted, progress=False)
    assert [value.name for value in result.values] == ["alpha", "gamma"]
    table = result.to_pandas()
    assert list(table.columns) == ["item", "name", "size.words", "error"]
    assert table["size.words"].tolist() == [2, 1]


def test_a_reduce_that_fits_answers_in_one_prompt(llm):
    result = llm.reduce(numbers(), "How many notes are in {note}?", progress=False)
    assert isinstance(result, ReduceResult)
    assert result.answer == "8 items" and result.levels == {None: 1} and result.depth == 1
    prompt = RuleModel.calls[0]
    assert prompt.startswith("Rows:\n1. x\n2. x") and prompt.endswith("notes are in note?")
    assert "1 level of 1 prompts" in result.summary()


def test_a_reduce_beyond_the_window_folds_level_by_level_and_reruns_from_the_cache(llm):
    rows = [f"row {i} says something fairly long here" for i in range(20)]
    result = llm.reduce(rows, "Count {item}", model="narrow", max_tokens=5, progress=False)
    assert result.answer == "20 items" and result.depth >= 2, result.summary()
    assert len(result.maps) == result.depth and result.maps[1].kind == "reduce level 2"
    assert result.usage.rows == sum(m.usage.rows for m in result.maps) > result.depth
    assert all(len(p.split()) <= 60 - 5 for p in RuleModel.calls)  # each prompt fits
    calls = len(RuleModel.calls)
    again = llm.reduce(rows, "Count {item}", model="narrow", max_tokens=5, progress=False)
    assert len(RuleModel.calls) == calls and again.answer == "20 items"
    assert again.usage.cached == again.usage.rows


def test_reduce_by_a_column_answers_each_group_and_a_row_too_long_fails_its_group(llm):
    df = pd.DataFrame({"kind": ["a", "b", "a", "c"], "text": ["one", "two", "three", "word " * 80]})
    result = llm.reduce(df, "Sum up {text}", by="kind", model="narrow", progress=False)
    assert result.answers == {"a": "2 items", "b": "1 items", "c": None}
    assert "Row 3 alone needs" in result.errors["c"] and result.levels == {"a": 1, "b": 1}
    table = result.to_pandas()
    assert table.index.name == "kind" and table.loc["a", "rows"] == 2
    with pytest.raises(InvalidParameter, match=r"read \.answers"):
        _ = result.answer


def test_pack_keeps_order_and_never_exceeds_the_room():
    assert pack([3, 3, 3, 3], 7) == [range(0, 2), range(2, 4)]
    assert pack([5, 1, 1, 9, 1], 7) == [range(0, 3), range(3, 4), range(4, 5)]
    assert pack([1], 7) == [range(0, 1)]


def test_topk_ranks_rows_by_the_embedding_model_and_caches_the_scores(llm, monkeypatch):
    df = pd.DataFrame(
        {"text": ["the stock market", "a cat in the sun", "a cat", "bread"]},
        index=pd.Index([10, 20, 30, 40], name="id"),
    )
    result = llm.topk(df, "cat", 2, model="bag", progress=False)
    assert isinstance(result, TopKResult) and list(result.rows.index) == [30, 20]
    assert result.positions == [2, 1] and result.scores[0] > result.scores[1]
    table = result.to_pandas()
    assert list(table.columns) == ["text", "rank", "score"] and table["rank"].tolist() == [1, 2]
    embedded: list[Sequence[str]] = []
    original = WordCounts.embed

    def counted(self, texts):
        embedded.append(texts)
        return original(self, texts)

    monkeypatch.setattr(WordCounts, "embed", counted)
    again = llm.topk(df, "cat", 2, model="bag", progress=False)
    assert embedded == [] and again.positions == result.positions and again.usage.cached == 4


def test_a_judge_orders_the_candidates_by_the_pairs_they_win(llm):
    texts = ["cat", "cat cat cat sun", "cat dog", "market"]
    result = llm.topk(texts, "cat", 2, model="bag", judge="rules", candidates=3, progress=False)
    # the rule model prefers the longer passage: of the three best, the longest wins all pairs
    assert result.rows[0] == "cat cat cat sun" and result.wins[1] == 4
    assert len(RuleModel.calls) == 6 and result.judged is not None  # both orders of 3 pairs
    assert list(result.to_pandas().columns) == ["item", "rank", "score", "wins"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda api, df: api.classify(df, "{n}", None), "classify needs labels"),
        (lambda api, df: api.classify(df, "{n}", ["a", "b", "a"]), "repeat 'a'"),
        (lambda api, df: api.classify(df, "{n}", ["only"]), "at least two labels"),
        (lambda api, df: api.classify(df, "{n}", ["a", ""]), "non-empty string"),
        (lambda api, df: api.classify(df, "{n}", "a,b"), "list of strings"),
        (lambda api, df: api.filter(df.iloc[:0], "{n}"), "table is empty"),
        (lambda api, df: api.filter([], "{item}"), "table is empty"),
        (lambda api, df: api.filter(df, "Is it even?"), "names no column"),
        (lambda api, df: api.filter(df, "Is {m} even?"), "no column or variable is called 'm'"),
        (lambda api, df: api.extract(df, "{n}", None), "not a schema"),
        (lambda api, df: api.reduce(df, "Sum"), "names no column"),
        (lambda api, df: api.reduce(df, "{n}", by="nope"), "by='nope'"),
        (lambda api, df: api.topk(df, "q", 9, model="bag"), "k=9 but the table has 8 rows"),
        (lambda api, df: api.topk(df, "q", 0, model="bag"), "at least 1"),
        (lambda api, df: api.topk(df, "", 2, model="bag"), "query is empty"),
        (lambda api, df: api.topk(df, "q", 2, model="bag", document="row"), "names no column"),
        (lambda api, df: api.topk(df, "q", 3, model="bag", candidates=2), "at least k"),
        (lambda api, df: api.filter(df, "{n}", temprature=0), "Unknown option temprature"),
    ],
)
def test_bad_input_is_refused_before_any_model_loads(llm, call, message):
    with pytest.raises(InvalidParameter, match=message):
        call(llm, numbers())
    assert llm.ps() == [] and RuleModel.calls == []


def test_operators_need_a_model_that_decodes_under_a_schema(llm):
    with pytest.raises(UnsupportedTask, match="cannot decode under a schema"):
        llm.filter(numbers(), "{n}", model="echo")
    with pytest.raises(UnsupportedTask, match="chat model"):
        llm.topk(numbers(), "q", 2, model="bag", judge="bag")


def test_map_usages_add_up():
    total = MapUsage(3, done=2, cached=1, seconds=1.5) + MapUsage(2, done=2, completion_tokens=4)
    assert total == MapUsage(5, done=4, cached=1, completion_tokens=4, seconds=1.5)


def test_the_history_logs_each_map_with_the_operator_it_served(llm):
    items = [str(n) for n in NUMBERS]
    llm.filter(items, "Is {item} even?", progress=False)
    rows = [f"row {i} says something fairly long here" for i in range(20)]
    llm.reduce(rows, "Count {item}", model="narrow", max_tokens=5, progress=False, log=True)
    llm.classify(items, "{item}", ["a", "b"], progress=False, log=False)
    logged = [(e.kind, e.details["operator"]) for e in reversed(llm.history.search())]
    assert logged[:3] == [("map", "filter"), ("map", "reduce level 1"), ("map", "reduce level 2")]
    assert len(logged) == 4 and logged[-1] == ("map", "reduce level 3")  # no classify
