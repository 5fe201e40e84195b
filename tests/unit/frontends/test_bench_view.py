"""``%llm bench`` in a terminal IPython on the echo backend: the table, the notes, the plot, -o,
--prompts-from, and bad input."""

import pytest
from IPython.core.error import UsageError

from llmux_jupyter.errors import InvalidParameter, UnknownModel
from llmux_jupyter.frontends.bench_plot import bench_plot
from llmux_jupyter.frontends.bench_view import bench_table


def test_bench_prints_the_table_and_notes_and_stores_the_report(shell, capsys):
    shell.run_line_magic("llm", "bench echo --prompts 2 --max-tokens 3 --concurrency 1,4 -o result")
    captured = capsys.readouterr()
    assert "2/2" in captured.err  # the progress bar, in stderr
    out = captured.out
    assert out.startswith("Benchmark: 2 requests per level, at most 3 tokens each, greedy")
    assert "TTFT ms" in out and "ITL ms" in out and "TPOT ms" in out
    assert "echo: concurrency 4 skipped: this backend serves one request at a time." in out
    assert "<plot: output tokens/s and TTFT p50 of echo>" in out
    assert "Metrics as guidellm defines them" in out
    report = shell.user_ns["result"]
    assert len(report.records) == 2 and list(report.summary["concurrency"]) == [1]


def test_prompts_from_a_variable_cycled_to_the_count(shell, fake_llm):
    shell.user_ns["mine"] = ["alpha beta", "gamma"]
    shell.run_line_magic("llm", "bench echo --prompts-from mine --prompts 3 -o result")
    assert [r.prompt for r in shell.user_ns["result"].requests] == [
        "alpha beta",
        "gamma",
        "alpha beta",
    ]
    shell.run_line_magic("llm", "bench echo --prompts-from mine -o result")
    assert len(shell.user_ns["result"].requests) == 2


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("bench", UsageError, "required: MODEL"),
        ("bench echo --concurrency 1,x", UsageError, "whole numbers of at least 1"),
        ("bench echo --prompts-from missing", UsageError, "No variable 'missing'"),
        ("bench echo --prompts 0", InvalidParameter, "prompts must be between"),
        ("bench echo nope", UnknownModel, "No model named 'nope'"),
        ("bench echo -o 2x", UsageError, "give a Python variable name"),
    ],
)
def test_bad_bench_commands_run_nothing(shell, fake_llm, line, error, message, capsys):
    with pytest.raises(error, match=message):
        shell.run_line_magic("llm", line)
    assert fake_llm.ps() == [] and capsys.readouterr().out == ""


def test_table_cells_and_plot(fake_llm):
    report = fake_llm.bench(["echo", "flaky"], prompts=3, max_tokens=2)
    table = bench_table(report)
    assert [row[:4] for row in table.rows] == [
        ["echo", "echo", "1", "3"],
        ["flaky", "echo", "1", "3"],
    ]
    assert all(cell.count(" / ") == 3 for row in table.rows for cell in row[6:10])
    plot = bench_plot(report)
    assert plot._repr_png_().startswith(b"\x89PNG")
    report.levels.clear()
    assert bench_plot(report) is None
