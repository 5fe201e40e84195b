"""``llm.map``'s own logic on the echo backends: tables, templates, alignment, per-row failures,
the disk cache, concurrency, interrupts, progress and bad input."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator, Sequence

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.engine.map import MapResult, MapUsage
from llmux_jupyter.engine.schemas import Schema
from llmux_jupyter.errors import InvalidParameter, UnsupportedTask
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import GenerationParams, Message, Task

from ..conftest import EchoBackend, ScriptedBackend, echo_spec, served_spec

pd = pytest.importorskip("pandas")
pydantic = pytest.importorskip("pydantic")
TEXTS = ["good film", "bad plot", "fine acting", "dull ending", "great score"]


class CountingEcho(EchoBackend):
    """The echo model, counting its requests; ``stop_at`` (a word) sets ``cancel`` on the
    request that contains it, as an interrupt would."""

    calls = 0

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        type(self).calls += 1
        stop_at = self.settings.get("stop_at")
        if stop_at and stop_at in messages[-1].content:
            cancel.set()
        return (yield from super().generate(messages, params, cancel))


@pytest.fixture
def llm(tmp_path, model_file, echo_backend, served_backend, monkeypatch) -> Iterator[LLM]:
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    registry.add("counting", CountingEcho)
    CountingEcho.calls = 0
    specs = [
        ModelSpec("count", "counting", Task.CHAT, echo_spec("x", model_file).source),
        ModelSpec(
            "stopper",
            "counting",
            Task.CHAT,
            echo_spec("x", model_file).source,
            settings={"stop_at": "dull"},
        ),
        echo_spec("flaky", model_file, fail_after=1),
        served_spec("served"),
        ModelSpec("ears", "echo", Task.TRANSCRIPTION, echo_spec("x", model_file).source),
    ]
    yield LLM(Catalog(tmp_path / "models.json", builtins=specs))
    registry.remove("counting")


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"text": TEXTS, "n": range(5)}, index=pd.Index([10, 20, 30, 40, 50], name="id")
    )


def test_dataframe_rows_fill_the_template_and_join_back_on_the_index(llm):
    df = frame()
    result = llm.map("Review: {text} #{n}", df, model="count", progress=False)
    assert isinstance(result, MapResult)
    assert result.values == [f"Review: {t} #{n}" for n, t in enumerate(TEXTS)]
    assert result.errors == {} and not result.interrupted
    assert result.labels == [10, 20, 30, 40, 50]
    joined = df.join(result.to_pandas())
    assert list(joined.columns) == ["text", "n", "answer", "error"]
    assert joined.loc[30, "answer"] == "Review: fine acting #2"
    assert joined.index.name == "id" and joined["error"].isna().all()
    usage = result.usage
    assert (usage.rows, usage.done, usage.failed, usage.cached) == (5, 5, 0, 0)
    assert usage.completion_tokens == 5 * 4 and usage.rows_per_second > 0
    assert "5 of 5 rows" in result.summary()
    assert llm.threads.names() == []  # rows are independent requests, not a thread


def test_lists_of_strings_and_of_dicts_and_notebook_variables(llm):
    strings = llm.map("Say {item}", ["a", "b"], model="count", progress=False)
    assert strings.values == ["Say a", "Say b"] and strings.labels == [0, 1]
    dicts = llm.map(
        "{city} in {country}",
        [{"city": "Paris"}, {"city": "Rome"}],
        model="count",
        variables={"country": "Europe", "city": "shadowed"},
        progress=False,
    )
    assert dicts.values == ["Paris in Europe", "Rome in Europe"]  # columns come first
    system = llm.map("{item}", ["x y"], model="count", system="be brief", progress=False)
    assert system.values == ["x y"]


def test_a_failing_row_lands_in_errors_and_the_others_complete(llm):
    result = llm.map("{item}", ["one", "two words", "three"], model="flaky", progress=False)
    assert result.values == ["one", None, "three"]
    assert result.errors == {1: "RuntimeError: injected generation failure"}
    assert result.usage.failed == 1 and "1 failed" in result.summary()
    table = result.to_pandas()
    assert table.loc[1, "error"].startswith("RuntimeError") and pd.isna(table.loc[0, "error"])


def test_an_index_that_repeats_labels_keys_errors_by_position(llm):
    df = pd.DataFrame({"text": ["one", "two words", "three"]}, index=[7, 7, 8])
    result = llm.map("{text}", df, model="flaky", progress=False)
    assert result.errors == {1: "RuntimeError: injected generation failure"}
    table = result.to_pandas()
    assert list(table.index) == [7, 7, 8]
    assert table["error"].isna().tolist() == [True, False, True]
    assert table["answer"].tolist()[::2] == ["one", "three"]


def test_a_greedy_rerun_is_served_from_the_cache_and_a_changed_parameter_is_not(llm):
    first = llm.map("{text}", frame(), model="count", temperature=0, progress=False)
    assert CountingEcho.calls == 5 and first.usage.cached == 0
    again = llm.map("{text}", frame(), model="count", temperature=0, progress=False)
    assert CountingEcho.calls == 5  # no backend call
    assert again.values == first.values and again.usage.cached == 5
    assert "5 from the cache" in again.summary()
    llm.map("{text}", frame(), model="count", temperature=0, max_tokens=1, progress=False)
    assert CountingEcho.calls == 10
    entries = [e for e in llm.du().entries if e.cache == "map results"]
    assert len(entries) == 1 and entries[0].size > 0 and entries[0].shared


def test_only_deterministic_requests_are_cached_and_cache_false_skips_it(llm):
    llm.map("{item}", ["a"], model="count", progress=False)  # may sample: never cached
    llm.map("{item}", ["a"], model="count", progress=False)
    assert CountingEcho.calls == 2
    llm.map("{item}", ["a"], model="count", seed=3, progress=False)
    llm.map("{item}", ["a"], model="count", seed=3, progress=False)
    assert CountingEcho.calls == 3
    llm.map("{item}", ["a"], model="count", seed=3, cache=False, progress=False)
    assert CountingEcho.calls == 4


def test_a_cached_map_does_not_load_the_model(llm):
    llm.map("{item}", ["a", "b"], model="count", temperature=0, progress=False)
    llm.unload("count")
    again = llm.map("{item}", ["a", "b"], model="count", temperature=0, progress=False)
    assert again.usage.cached == 2 and not llm.manager.is_loaded("count")


def test_a_served_model_answers_rows_concurrently(llm, served_backend):
    rows = [f"row {i} of many words" for i in range(12)]
    result = llm.map("{item}", rows, model="served", concurrency=4, progress=False)
    assert result.values == rows
    assert 1 < served_backend.most <= 4


def test_the_model_is_busy_while_it_maps_and_progress_is_published(llm):
    events = []
    llm.manager.events.subscribe(events.append)
    job = llm.map("{item}", ["a b", "c d"], model="count", stream=True)
    rows = []
    for row in job:
        rows.append(row)
        assert llm.manager.get_loaded("count").busy == 1
    assert [r.value for r in rows] == ["a b", "c d"]
    assert llm.manager.get_loaded("count").busy == 0
    kinds = [e.kind for e in events if e.model == "count"]
    assert "busy" in kinds and kinds[-1] == "idle"


def test_cancel_keeps_the_finished_rows_and_marks_the_result_interrupted(llm):
    result = llm.map("{text}", frame(), model="stopper", progress=False)
    assert result.interrupted
    assert result.values == ["good film", "bad plot", "fine acting", None, None]
    assert result.errors == {} and "3 of 5 rows" in result.summary()
    assert llm.manager.is_loaded("stopper")  # the model stays loaded


def test_keyboard_interrupt_in_run_returns_the_rows_so_far(llm, monkeypatch):
    job = llm.map("{item}", ["a", "b", "c"], model="count", stream=True)
    original = job._record

    def interrupt_on_second(answer, cached):
        if answer.key == 1:
            raise KeyboardInterrupt
        return original(answer, cached)

    monkeypatch.setattr(job, "_record", interrupt_on_second)
    result = job.run(progress=False)
    assert result.interrupted and result.values == ["a", None, None]


def test_a_progress_bar_counts_rows(llm, capsys):
    llm.map("{item}", ["a", "b", "c"], model="count", progress=True)
    shown = capsys.readouterr().err
    assert "map count" in shown and "3/3" in shown
    rates = [float(rate) for rate in re.findall(r"([\d.]+) tokens/s", shown)]
    assert rates and rates[-1] > 0  # measured as the rows come, not only at the end


def test_the_rates_leave_the_model_load_out():
    usage = MapUsage(rows=4, done=4, completion_tokens=100, seconds=12.0, load_seconds=10.0)
    assert usage.tokens_per_second == 50 and usage.rows_per_second == 2
    result = MapResult("m", [0, 1, 2, 3], ["a"] * 4, {}, usage)
    assert "4 of 4 rows in 12.00 s, 10.0 s of it loading (2.00 rows/s, 50.0 tokens/s)" in str(
        result
    )
    rerun = MapResult("m", [0, 1, 2, 3], [], {}, MapUsage(rows=4, done=4, cached=4, seconds=0.5))
    assert "(8.00 rows/s); 4 from the cache" in rerun.summary()


@pytest.mark.parametrize(
    ("template", "data", "message"),
    [
        ("{txt}", frame(), "{txt} in the template: no column or variable is called 'txt'"),
        ("{text}", pd.DataFrame({"text": []}), "The table is empty"),
        ("{item}", [], "The table is empty"),
        ("{item}", {"a": 1}, "not dict"),
        ("{item}", "just text", "not str"),
        ("{item}", 42, "not int"),
        ("{item}", ["a", {"b": 1}], "mixing dict, str"),
        ("{}", ["a"], "needs a column name"),
        ("{item", ["a"], "braces do not pair up"),
        ("   ", ["a"], "template is empty"),
        ("{item.upper.nope}", ["a"], "Cannot fill the template for row 0"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(llm, template, data, message):
    with pytest.raises(InvalidParameter, match=message.replace("{", r"\{").replace("(", r"\(")):
        llm.map(template, data, model="count", progress=False)
    assert llm.ps() == [] and CountingEcho.calls == 0


def test_bad_sizes_and_models_are_refused(llm):
    with pytest.raises(InvalidParameter, match="batch_size must be a whole number"):
        llm.map("{item}", ["a"], model="count", batch_size=0)
    with pytest.raises(InvalidParameter, match="concurrency must be"):
        llm.map("{item}", ["a"], model="count", concurrency=True)
    with pytest.raises(UnsupportedTask, match="not a chat model"):
        llm.map("{item}", ["a"], model="ears")
    with pytest.raises(InvalidParameter, match="temperature"):
        llm.map("{item}", ["a"], model="count", temperature=5)


class Rating(pydantic.BaseModel):
    label: str
    confidence: float


@dataclasses.dataclass
class Score:
    stars: int


def test_a_schema_types_every_row_and_a_row_that_does_not_fit_is_an_error(scripted_llm):
    ScriptedBackend.replies = [
        '{"label": "good", "confidence": 0.9}',
        '{"label": "bad"}',
        '{"label": "meh", "confidence": 0.5}',
    ]
    df = pd.DataFrame({"text": ["a", "b", "c"]}, index=["x", "y", "z"])
    result = scripted_llm.map("Rate {text}", df, schema=Rating, cache=False, progress=False)
    assert result.values[0] == Rating(label="good", confidence=0.9) and result.values[1] is None
    assert list(result.errors) == ["y"] and "does not fit Rating" in result.errors["y"]
    assert all(schema == Schema.of(Rating).json_schema for schema, _ in ScriptedBackend.calls)
    table = result.to_pandas()
    assert list(table.columns) == ["label", "confidence", "error"]
    assert table.loc["z", "confidence"] == 0.5 and pd.isna(table.loc["y", "label"])


def test_a_cached_schema_answer_is_validated_again_and_a_dataclass_gives_its_fields(
    scripted_llm, tmp_path, monkeypatch
):
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    ScriptedBackend.replies = ['{"stars": 4}']
    first = scripted_llm.map("{item}", ["x"], schema=Score, temperature=0, progress=False)
    again = scripted_llm.map("{item}", ["x"], schema=Score, temperature=0, progress=False)
    assert first.values == again.values == [Score(4)] and again.usage.cached == 1
    assert len(ScriptedBackend.calls) == 1
    assert again.to_pandas()["stars"].tolist() == [4]
    other = scripted_llm.map("{item}", ["x"], schema=Rating, temperature=0, progress=False)
    assert other.usage.cached == 0  # another schema is another request


def test_a_backend_without_schemas_is_refused_before_anything_runs(llm):
    with pytest.raises(UnsupportedTask, match="cannot decode under a schema"):
        llm.map("{item}", ["a"], model="count", schema=Rating)
    assert llm.ps() == []
