"""One prompt to several models: local ones in turn, served ones at once, budgets, interrupts,
failures."""

import threading

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.budgets import DeviceBudget
from llmux_jupyter.errors import InvalidParameter, ModelLoadError, UnknownModel
from llmux_jupyter.models.catalog import Catalog

from ..conftest import echo_spec, served_spec

PROMPT = "one two three four five"


@pytest.fixture
def llm(tmp_path, model_file, echo_backend, served_backend):
    specs = [echo_spec(name, model_file) for name in ("a", "b")]
    gate = threading.Event()
    specs += [
        echo_spec("broken", model_file, fail_load=True),
        echo_spec("slow", model_file, gate=gate),
    ]
    specs += [served_spec("s1"), served_spec("s2")]
    catalog = Catalog(tmp_path / "models.json", builtins=specs)
    catalog.gate = gate
    return LLM(catalog)


def test_local_models_answer_one_after_another(llm):
    comparison = llm.compare(PROMPT, ["a", "b"], max_tokens=3, stream=True)
    events = [(e.model, e.kind) for e in comparison]
    assert events == [
        ("a", "started"), ("a", "delta"), ("a", "delta"), ("a", "delta"), ("a", "done"),
        ("b", "started"), ("b", "delta"), ("b", "delta"), ("b", "delta"), ("b", "done"),
    ]  # fmt: skip
    assert {name: r.text for name, r in comparison.responses.items()} == {
        "a": "one two three",
        "b": "one two three",
    }
    assert llm.threads.names() == []  # fresh threads, not kept


def test_served_models_answer_at_once(llm, served_backend):
    answers = llm.compare(PROMPT, ["s1", "s2", "a"], temperature=0)
    assert sorted(answers) == ["a", "s1", "s2"]
    assert all(r.text == PROMPT and r.params == {"temperature": 0.0} for r in answers.values())
    assert served_backend.most == 2


def test_a_budget_for_one_model_loads_them_in_turn(llm):
    llm.manager.budgets = {"cpu": DeviceBudget("cpu", 1500, 4000)}
    events = []
    llm.manager.events.subscribe(events.append)
    answers = llm.compare(PROMPT, ["a", "b"])
    assert [r.text for r in answers.values()] == [PROMPT, PROMPT]
    assert [e.model for e in events if e.kind == "evicted"] == ["a"]


def test_cancel_keeps_what_each_has_and_skips_the_rest(llm):
    comparison = llm.compare(PROMPT, ["slow", "b"], stream=True)
    kinds = []
    for event in comparison:
        kinds.append((event.model, event.kind))
        if event.kind == "delta":
            comparison.cancel()
            llm.manager.catalog.gate.set()  # "slow" waits after its first word
    assert [k for k in kinds if k[1] != "delta"] == [
        ("slow", "started"),
        ("slow", "done"),
        ("b", "skipped"),
    ]
    answer = comparison.responses["slow"]
    assert answer.interrupted and answer.text in ("one", "one two")


def test_a_failing_model_does_not_stop_the_others(llm):
    with pytest.raises(ModelLoadError, match="injected load failure"):
        llm.compare(PROMPT, ["broken", "a"])
    comparison = llm.compare(PROMPT, ["broken", "a"], stream=True)
    kinds = [(e.model, e.kind) for e in comparison if e.kind != "delta"]
    assert kinds == [("broken", "started"), ("broken", "failed"), ("a", "started"), ("a", "done")]
    assert list(comparison.errors) == ["broken"] and list(comparison.responses) == ["a"]


@pytest.mark.parametrize(
    ("models", "error", "message"),
    [
        (["a", "nope"], UnknownModel, "No model named 'nope'"),
        (["a"], InvalidParameter, "at least two models"),
        (["a", "a"], InvalidParameter, "each model to compare once"),
    ],
)
def test_bad_input_fails_before_anything_runs(llm, models, error, message):
    with pytest.raises(error, match=message):
        llm.compare(PROMPT, models)
    assert llm.ps() == []


def test_an_answer_stopped_for_repeating_itself_stops_no_other(scripted_llm):
    """Each answer's repetition stop is its own: the comparison's shared cancel stays unset."""
    from ..conftest import ScriptedBackend

    ScriptedBackend.replies = ["The answer is 37. " * 10]
    answers = scripted_llm.compare("one two three four", ["scripted", "echo"])
    assert answers["scripted"].stop_reason == "repetition"
    assert not answers["scripted"].interrupted
    assert answers["echo"].text == "one two three four" and not answers["echo"].interrupted
