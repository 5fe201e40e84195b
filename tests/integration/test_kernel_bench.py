"""``%llm bench`` and ``%%llm --compare`` in a real kernel on SmolLM2 through llama.cpp,
transformers and a llama.cpp server on loopback: metrics, plot, records, concurrency, live
columns, budgets, interrupts and bad input."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from .kernel import Kernel, Message, sent_at
from .llama_server import ALIAS, LlamaServer

STATE = (
    "(sorted((m.name, m.loaded_at, m.busy) for m in llm.ps()),"
    " llm.threads.names(), sorted(m.name for m in llm.models()))"
)
RECORDS_OK = (
    "all(r.status == 'successful' and r.output_tokens > 0 and r.inter_token_latency_ms > 0"
    " and 0 < r.time_to_first_token_ms <= r.request_latency * 1000"
    " and r.time_to_first_token_ms <= r.time_per_output_token_ms * r.output_tokens"
    " for r in {var}.requests)"
)
SUMMARY_OK = (
    "all(s.output_tokens_per_second > 0 and s.requests_per_second > 0"
    " and s.time_to_first_token_ms.p50 <= s.request_latency.p50 * 1000"
    " and s.inter_token_latency_ms.mean > 0 and s.time_per_output_token_ms.p99 > 0"
    " for s in {var}.levels)"
)
COLUMN = re.compile(r"── (\S+) · [^\n]*──(?:\n(?!\n── )(.*?))?(?=\n\n── |\Z)", re.DOTALL)


@pytest.fixture(scope="module")
def bench_kernel(kernel: Kernel) -> Iterator[Kernel]:
    """The session kernel with SmolLM2 on llama.cpp and on transformers loaded (and nothing
    loaded afterwards, for the next module)."""
    run = kernel.run("%llm load smollm2\n%llm load smollm2-hf")
    assert run.status == "ok", run.error
    yield kernel
    assert kernel.run("%llm unload --all").status == "ok"


def column_texts(display: Message) -> dict[str, str]:
    return dict(COLUMN.findall(display["content"]["data"]["text/plain"]))


def streamed_columns(run, models: list[str]) -> Message:
    """Check that a compare cell streamed (one display, then in-place updates sent before the
    cell ended, every column only growing) and return its final display's content."""
    assert run.status == "ok", run.error
    displays = run.displays
    assert displays[0]["msg_type"] == "display_data"
    updates = [m for m in displays if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 3, [m["content"]["data"]["text/plain"] for m in displays]
    assert sent_at(displays[0]) < sent_at(updates[-2]) < sent_at(run.reply)
    texts = [column_texts(m) for m in displays]
    assert all(list(t) == models for t in texts)
    for earlier, later in itertools.pairwise(texts):
        assert all(later[m].startswith(earlier[m]) for m in models)
    final = displays[-1]["content"]
    assert final["data"]["text/html"].count('class="llmux-compare-column"') == len(models)
    assert "var(--jp-" in final["data"]["text/html"]
    return final


def test_bench_measures_both_backends_with_a_plot_and_records(bench_kernel):
    before = bench_kernel.value(STATE)
    run = bench_kernel.run("%llm bench smollm2 smollm2-hf --prompts 4 --max-tokens 16 -o b1")
    assert run.status == "ok", run.error
    kinds = [set(m["content"]["data"]) for m in run.displays]
    assert any("application/vnd.jupyter.widget-view+json" in k for k in kinds)  # progress bar
    assert any("image/png" in k for k in kinds)
    table = next(m["content"]["data"] for m in run.displays if "<table" in str(m["content"]))
    for text in ("smollm2-hf", "TTFT ms", "ITL ms", "TPOT ms", "output tokens/s", "var(--jp-"):
        assert text in table["text/html"]
    assert bench_kernel.value("(len(b1.records), sorted(set(b1.records['model'])))") == (
        8,
        ["smollm2", "smollm2-hf"],
    )
    assert bench_kernel.value("sorted(b1.records.groupby('model').size().tolist())") == [4, 4]
    assert bench_kernel.value(RECORDS_OK.format(var="b1")) is True
    assert bench_kernel.value(SUMMARY_OK.format(var="b1")) is True
    assert bench_kernel.value("[(s.model, s.concurrency, s.successful) for s in b1.levels]") == [
        ("smollm2", 1, 4),
        ("smollm2-hf", 1, 4),
    ]
    assert bench_kernel.value("[(x.model, x.loaded_by_bench) for x in b1.loads]") == [
        ("smollm2", False),
        ("smollm2-hf", False),
    ]
    assert bench_kernel.value(STATE)[1:] == before[1:]  # threads and models untouched
    assert all(busy == 0 for _, _, busy in bench_kernel.value(STATE)[0])


@pytest.fixture(scope="module")
def served(tmp_path_factory, smollm2_path, bench_kernel) -> Iterator[LlamaServer]:
    """A loopback llama.cpp server that queues concurrent requests, registered as ``served``."""
    server = LlamaServer(
        smollm2_path, tmp_path_factory.mktemp("served") / "log", interrupt_requests=False
    )
    run = bench_kernel.run(
        f"%llm register served --backend openai --base-url {server.url} --model {ALIAS}"
    )
    assert run.status == "ok", run.error
    yield server
    bench_kernel.run("%llm unregister served")
    server.stop()


def test_bench_concurrency_against_a_loopback_server(bench_kernel, served):
    run = bench_kernel.run(
        "%llm bench served smollm2 --concurrency 1,4 --prompts 4 --max-tokens 16 -o b2"
    )
    assert run.status == "ok", run.error
    notes = run.displays[-1]["content"]["data"]["text/plain"]
    assert "smollm2: concurrency 4 skipped: llama-cpp-python runs one generation at a time" in notes
    levels = bench_kernel.value("[(s.model, s.concurrency, s.successful) for s in b2.levels]")
    assert levels == [("served", 1, 4), ("served", 4, 4), ("smollm2", 1, 4)]
    assert bench_kernel.value(RECORDS_OK.format(var="b2")) is True
    assert bench_kernel.value(SUMMARY_OK.format(var="b2")) is True
    overlap = (
        "max(r.request_start for r in b2.requests if r.concurrency == 4)"
        " < min(r.request_end for r in b2.requests if r.concurrency == 4)"
    )
    assert bench_kernel.value(overlap) is True  # the four were in flight at the same time
    assert bench_kernel.value("b2.summary['concurrency'].tolist()") == [1, 4, 1]


def test_compare_streams_two_columns(bench_kernel):
    before = bench_kernel.value(STATE)
    run = bench_kernel.run(
        "%%llm --compare smollm2,smollm2-hf --temperature 0 --max-tokens 40 -o answers\n"
        "Write a haiku about GPUs."
    )
    final = streamed_columns(run, ["smollm2", "smollm2-hf"])
    texts = column_texts(run.displays[-1])
    assert all(len(text.split()) >= 5 for text in texts.values())
    assert bench_kernel.value("answers") == texts
    assert any(t["smollm2"] and not t["smollm2-hf"] for t in map(column_texts, run.displays))
    provenance = final["metadata"]["llmux"]["compare"]
    assert [(p["model"], p["backend"]) for p in provenance.values()] == [
        ("smollm2", "llamacpp"),
        ("smollm2-hf", "transformers"),
    ]
    for answer in provenance.values():
        assert answer["params"] == {"temperature": 0.0, "max_tokens": 40}
        usage = answer["usage"]
        assert usage["time_to_first_token_s"] > 0 and usage["tokens_per_second"] > 0
        assert usage["prompt_tokens"] > 5 and 0 < usage["completion_tokens"] <= 40
    assert "TTFT" in final["data"]["text/plain"] and "tokens/s" in final["data"]["text/plain"]
    assert bench_kernel.value(STATE) == before  # fresh threads, models kept, none busy


def test_compare_served_and_local_together(bench_kernel, served):
    run = bench_kernel.run(
        "%%llm --compare served,smollm2 --temperature 0 --max-tokens 24 -o mixed\n"
        "Name three colours."
    )
    streamed_columns(run, ["served", "smollm2"])
    assert all(bench_kernel.value("list(mixed.values())"))


def test_compare_interrupt_keeps_what_each_column_has(bench_kernel):
    seen: list[Message] = []

    def interrupt_after_updates(message: Message) -> None:
        if message["msg_type"] == "update_display_data":
            seen.append(message)
            if len(seen) == 3:
                bench_kernel.interrupt()

    run = bench_kernel.run(
        "%%llm --compare smollm2,smollm2-hf --max-tokens 1500 --temperature 0.8 -o partial\n"
        "Write a very long story about a lighthouse keeper, in many chapters.",
        on_message=interrupt_after_updates,
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    shown = column_texts(seen[2])["smollm2"]
    final = run.displays[-1]["content"]
    texts = column_texts(run.displays[-1])
    assert texts["smollm2"].startswith(shown) and shown
    assert "interrupted" in final["data"]["text/plain"]
    assert "not run" in final["data"]["text/plain"]  # smollm2-hf's turn never came
    assert final["metadata"]["llmux"]["compare"]["smollm2"]["interrupted"] is True
    assert bench_kernel.value("partial") == texts
    assert all(busy == 0 for _, _, busy in bench_kernel.value(STATE)[0])
    after = bench_kernel.run("%%llm --compare smollm2,smollm2-hf --max-tokens 4\nHi")
    assert after.status == "ok", after.error


def test_bench_interrupt_shows_and_keeps_what_finished(bench_kernel):
    interrupted = []

    def interrupt_after_a_request(message: Message) -> None:
        progress = message["content"].get("data", {}).get("state", {}).get("value")
        done = message["msg_type"] == "comm_msg" and isinstance(progress, float) and progress >= 1
        if done and not interrupted:  # the progress bar's count: one request has finished
            interrupted.append(progress)
            bench_kernel.interrupt()

    run = bench_kernel.run(
        "%llm bench smollm2 --prompts 16 --max-tokens 64 -o b3",
        on_message=interrupt_after_a_request,
    )
    assert run.status == "error" and run.error["ename"] == "KeyboardInterrupt", run.error
    assert any("<table" in str(m["content"]) for m in run.displays)
    assert bench_kernel.value("(b3.interrupted, 1 <= len(b3.requests) < 16)") == (True, True)
    assert "smollm2" in bench_kernel.value("[m.name for m in llm.ps()]")
    assert bench_kernel.value("llm.manager.get_loaded('smollm2').busy") == 0


@pytest.fixture
def copies(bench_kernel, smollm2_path) -> Iterator[Kernel]:
    """Two names for the SmolLM2 file and a CPU budget that holds one of them."""
    setup = "\n".join(
        f"%llm register {name} --backend llamacpp --path {smollm2_path} --set n_ctx=512"
        for name in ("copy-a", "copy-b")
    )
    assert bench_kernel.run(setup).status == "ok"
    size = bench_kernel.value("llm.load('copy-a').estimate.ram")
    run = bench_kernel.run(
        "%llm unload --all\n"
        f"%config LLMux.memory_budget = 'cpu={int(size * 1.5)}'\n"
        "seen = []\nstop_seeing = llm.manager.events.subscribe(seen.append)"
    )
    assert run.status == "ok", run.error
    yield bench_kernel
    cleanup = bench_kernel.run(
        "stop_seeing()\n%config LLMux.memory_budget = ''\n%llm unload --all\n"
        "%llm unregister copy-a\n%llm unregister copy-b\n%llm load smollm2\n%llm load smollm2-hf"
    )
    assert cleanup.status == "ok", cleanup.error


def test_compare_with_a_budget_for_one_runs_them_in_turn(copies):
    run = copies.run("%%llm --compare copy-a,copy-b --max-tokens 12 -o turns\nSay hello.")
    streamed_columns(run, ["copy-a", "copy-b"])
    assert all(copies.value("list(turns.values())"))
    evicted = copies.value("[(e.model, e.detail['reason']) for e in seen if e.kind == 'evicted']")
    assert [model for model, _ in evicted] == ["copy-a"]
    assert "copy-b needs" in evicted[0][1]
    assert copies.value("[m.name for m in llm.ps()]") == ["copy-b"]
