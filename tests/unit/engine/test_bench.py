"""The benchmark's own logic on the echo backends: plans, levels, concurrency, loads, budgets,
interrupts and failures."""

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.bench_prompts import BUILTIN_PROMPTS
from llmux_jupyter.engine.budgets import DeviceBudget
from llmux_jupyter.errors import InvalidParameter, ModelBusy, ModelLoadError, UnknownModel
from llmux_jupyter.models.catalog import Catalog

from ..conftest import echo_spec, served_spec


@pytest.fixture
def llm(tmp_path, model_file, echo_backend, served_backend):
    specs = [echo_spec(name, model_file) for name in ("a", "b")]
    specs += [echo_spec("broken", model_file, fail_load=True), served_spec("served")]
    return LLM(Catalog(tmp_path / "models.json", builtins=specs))


def test_every_request_is_recorded_and_summarised_per_model(llm):
    report = llm.bench(["a", "b"], prompts=3, max_tokens=5)
    assert [(r.model, r.request, r.status) for r in report.requests] == [
        (m, n, "successful") for m in ("a", "b") for n in range(3)
    ]
    assert [r.prompt for r in report.requests[:3]] == list(BUILTIN_PROMPTS[:3])
    assert all(0 < r.output_tokens <= 5 for r in report.requests)
    assert all(
        r.request_start < r.first_token <= r.last_token <= r.request_end for r in report.requests
    )
    assert [(s.model, s.concurrency, s.successful) for s in report.levels] == [
        ("a", 1, 3),
        ("b", 1, 3),
    ]
    assert sum(s.output_tokens for s in report.levels) == sum(
        r.output_tokens for r in report.requests
    )
    assert [(load.model, load.loaded_by_bench) for load in report.loads] == [
        ("a", True),
        ("b", True),
    ]
    assert llm.threads.names() == []  # the bench's threads are not kept


def test_records_and_summary_are_dataframes(llm):
    report = llm.bench("a", prompts=2, max_tokens=4)
    assert list(report.records["request"]) == [0, 1]
    assert "inter_token_latency_ms" in report.records.columns
    summary = report.summary
    assert len(summary) == 1 and summary["load_seconds"][0] >= 0
    assert "time_to_first_token_ms_p99" in summary.columns


def test_your_prompts_are_cycled_and_a_loaded_model_is_reported_as_such(llm):
    llm.load("a")
    report = llm.bench("a", prompts=["one two", "three"], max_tokens=8)
    assert [r.prompt for r in report.requests] == ["one two", "three"]
    assert report.loads[0].loaded_by_bench is False


def test_concurrency_runs_only_where_the_backend_serves_requests_at_once(llm, served_backend):
    bench = llm.bench(["a", "served"], prompts=4, max_tokens=6, concurrency=[1, 4], stream=True)
    assert bench.planned == 4 + 8  # a: level 1 only; served: levels 1 and 4
    records = list(bench)
    assert {(r.model, r.concurrency) for r in records} == {("a", 1), ("served", 1), ("served", 4)}
    assert (
        "a: concurrency 4 skipped: this backend serves one request at a time"
        in (bench.report.notes[0])
    )
    assert served_backend.most == 4
    at_once = [r for r in records if r.concurrency == 4]
    assert max(r.request_start for r in at_once) < min(r.request_end for r in at_once)


def test_the_model_is_held_busy_while_it_is_measured(llm):
    bench = llm.bench("a", prompts=3, max_tokens=3, stream=True)
    for _ in bench:
        assert llm.manager.get_loaded("a").busy >= 1
        with pytest.raises(ModelBusy):
            llm.unload("a")
    assert llm.manager.get_loaded("a").busy == 0


def test_a_budget_for_one_model_runs_them_in_turn(llm):
    llm.manager.budgets = {"cpu": DeviceBudget("cpu", 1500, 4000)}
    events = []
    llm.manager.events.subscribe(events.append)
    report = llm.bench(["a", "b"], prompts=2, max_tokens=3)
    assert [s.model for s in report.levels] == ["a", "b"]
    assert [e.model for e in events if e.kind == "evicted"] == ["a"]


def test_cancel_keeps_what_finished_and_runs_nothing_more(llm):
    bench = llm.bench(["a", "b"], prompts=5, max_tokens=3, stream=True)
    busy = []

    def cancel_as_the_second_request_starts(event):
        busy.extend([event.model] if event.kind == "busy" else [])
        if len(busy) == 4:  # the bench's hold, the warm-up, request 0, request 1
            bench.cancel()

    llm.manager.events.subscribe(cancel_as_the_second_request_starts)
    records = list(bench)
    assert [(r.request, r.status) for r in records] == [(0, "successful"), (1, "incomplete")]
    report = bench.report
    assert report.interrupted and report.requests == records
    assert [load.model for load in report.loads] == ["a"]
    assert [(s.successful, s.incomplete) for s in report.levels] == [(1, 1)]


def test_a_failing_model_is_noted_the_others_run_and_its_error_is_raised(llm):
    bench = llm.bench(["broken", "a"], prompts=2, max_tokens=3, stream=True)
    with pytest.raises(ModelLoadError, match="injected load failure"):
        for _ in bench:
            pass
    assert [s.model for s in bench.report.levels] == ["a"]
    assert bench.report.notes[0].startswith("broken: stopped: Could not load")
    assert not bench.report.interrupted


@pytest.mark.parametrize(
    ("models", "options", "error", "message"),
    [
        (["a", "nope"], {}, UnknownModel, "No model named 'nope'"),
        ([], {}, InvalidParameter, "at least one model"),
        (["a", "a"], {}, InvalidParameter, "each model once"),
        (["a"], {"prompts": 0}, InvalidParameter, "prompts must be between"),
        (["a"], {"prompts": "one prompt"}, InvalidParameter, "a list of prompts"),
        (["a"], {"prompts": ["ok", " "]}, InvalidParameter, "non-empty strings"),
        (["a"], {"concurrency": [0]}, InvalidParameter, "whole numbers between 1"),
        (["a"], {"max_tokens": 0}, InvalidParameter, "max_tokens must be between"),
    ],
)
def test_bad_input_fails_before_anything_runs(llm, models, options, error, message):
    with pytest.raises(error, match=message):
        llm.bench(models, **options)
    assert llm.ps() == []
