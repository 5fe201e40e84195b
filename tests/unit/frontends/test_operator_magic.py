"""``%%llm --filter / --classify / --extract / --reduce / --topk TABLE`` in a terminal IPython on
the rule-following fake model: -o gets the result, the summary and rows show, and wrong syntax
or bad input is a UsageError that changes nothing."""

from __future__ import annotations

import enum
from collections.abc import Iterator

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.engine.operators import ClassifyResult, ExtractResult, FilterResult
from llmux_jupyter.engine.reduce import ReduceResult
from llmux_jupyter.engine.topk import TopKResult
from llmux_jupyter.frontends.magics import LLMuxMagics

from ..rule_model import RuleModel, rules_api

pd = pytest.importorskip("pandas")
pydantic = pytest.importorskip("pydantic")


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class Named(pydantic.BaseModel):
    class Size(pydantic.BaseModel):
        words: int

    name: str
    size: Size


@pytest.fixture
def shell(tmp_path, model_file, monkeypatch) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("LLMUX_CACHE_DIR", str(tmp_path / "cache"))
    with rules_api(tmp_path, model_file) as api:
        shell = InteractiveShell.instance()
        before = set(shell.user_ns)
        shell.register_magics(LLMuxMagics(shell, api))
        shell.user_ns["df"] = pd.DataFrame(
            {"n": [7, 12, 3, 8], "text": ["a happy day", "a sad song", "happy", "rain"]},
            index=pd.Index(["w", "x", "y", "z"], name="id"),
        )
        shell.user_ns.update(Mood=Mood, Named=Named, api=api)
        yield shell
        for name in set(shell.user_ns) - before:
            del shell.user_ns[name]


def test_filter_stores_the_result_and_shows_the_kept_rows(shell, capsys):
    shell.run_cell_magic("llm", "--filter df -o even", "Is {n} even?")
    result = shell.user_ns["even"]
    assert isinstance(result, FilterResult) and list(result.kept.index) == ["x", "z"]
    shown = capsys.readouterr()
    assert "filter kept 2 of 4 rows" in shown.out and "80%" in shown.out
    assert "n: 12; text: a sad song" in shown.out and "filter rules" in shown.err  # the bar
    shell.run_cell_magic("llm", "--filter df --no-log", "Is {n} odd?")
    logged = shell.user_ns["api"].history.search()
    assert [(e.prompt, e.details["operator"]) for e in logged] == [
        ("Is {n} even?\n\nAnswer yes or no.", "filter")
    ]


def test_classify_takes_labels_from_the_line_or_a_variable(shell, capsys):
    shell.run_cell_magic("llm", "--classify df --labels happy,sad -o moods", "{text}")
    assert shell.user_ns["moods"].values == ["happy", "sad", "happy", "sad"]
    assert "classify: happy 2, sad 2" in capsys.readouterr().out
    shell.run_cell_magic("llm", "--classify df --labels Mood -o moods", "{text}")
    result = shell.user_ns["moods"]
    assert isinstance(result, ClassifyResult) and result.values[0] is Mood.HAPPY


def test_extract_reduce_and_topk_cells(shell, capsys):
    shell.run_cell_magic("llm", "--extract df --schema Named -o fields", "{text}")
    assert isinstance(shell.user_ns["fields"], ExtractResult)
    assert shell.user_ns["fields"].to_pandas().loc["x", "size.words"] == 3
    shell.run_cell_magic("llm", "--reduce df --by n -o summary", "Sum up {text}")
    summary = shell.user_ns["summary"]
    assert isinstance(summary, ReduceResult) and summary.answers[12] == "1 items"
    shell.run_cell_magic("llm", "--reduce df", "Sum up {text}")
    assert "4 items" in capsys.readouterr().out
    shell.run_cell_magic("llm", "--topk df --k 2 -m bag -o best", "rain")
    best = shell.user_ns["best"]
    assert isinstance(best, TopKResult) and list(best.rows.index) == ["z", "w"]
    assert "top 2 of 4 rows by bag" in capsys.readouterr().out
    shell.run_cell_magic("llm", "--topk df -m bag -o every", "rain")  # k: 5, or all 4 rows
    assert len(shell.user_ns["every"].positions) == 4


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("--filter df --classify df", "{n}", "Choose one of --filter, --classify"),
        ("--filter df --labels a,b", "{n}", "--labels go with --classify TABLE"),
        ("--map df --by n", "{n}", "--by go with --reduce TABLE"),
        ("--k 3", "q", "--k go with --topk TABLE"),
        ("--classify df", "{n}", "--classify needs --labels"),
        ("--classify df --labels a,,b", "{n}", "separated by commas"),
        ("--classify df --labels a,b,a", "{n}", "repeat 'a'"),
        ("--extract df", "{n}", "--extract needs --schema"),
        ("--filter df --schema Named", "{n}", "--schema cannot go with it"),
        ("--filter df --thread t", "{n}", "--thread cannot go with it"),
        ("--filter nothing", "{n}", "no variable 'nothing'"),
        ("--filter df", "Is it even?", "names no column"),
        ("--topk df --k 9 -m bag", "q", "k=9 but the table has 4 rows"),
        ("--reduce df --by nope", "{n}", "by='nope'"),
        ("--topk Mood -m bag", "q", "takes a pandas DataFrame"),
    ],
)
def test_wrong_syntax_and_bad_input_are_usage_errors_that_change_nothing(
    shell, line, cell, message
):
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("llm", f"{line} -o out", cell)
    assert "out" not in shell.user_ns and shell.user_ns["api"].ps() == []
    assert RuleModel.calls == []
