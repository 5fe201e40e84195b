"""The compare columns (live display and terminal) and ``%%llm --compare`` on echo backends."""

import io

import pytest
from IPython.core.error import UsageError

from llmux_jupyter.engine.compare import CompareEvent
from llmux_jupyter.errors import ModelLoadError, UnknownModel
from llmux_jupyter.frontends.compare import JupyterCompareOutput, TerminalCompareOutput


def recorder():
    calls = []
    return calls, lambda bundle, metadata, update: calls.append((bundle, metadata, update))


def test_columns_update_one_display_in_place_and_escape_the_text():
    calls, publish = recorder()
    output = JupyterCompareOutput(["a", "b"], "markdown", 1000, publish)
    output.apply(CompareEvent("a", "started"))
    output.apply(CompareEvent("a", "delta", text="<b>bold?</b>"))
    output.apply(CompareEvent("b", "skipped"))
    output.finish({"compare": {}})
    first, last = calls[0], calls[-1]
    assert first[2] is False and all(update for _, _, update in calls[1:])
    html = last[0]["text/html"]
    assert html.count('class="llmux-compare-column"') == 2
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "<b>bold" not in html
    assert "var(--jp-border-color2)" in html and "#" not in html.split("<div", 2)[1]
    assert "── b · not run (interrupted before its turn) ──" in last[0]["text/plain"]
    assert last[1] == {"llmux": {"compare": {}}}
    assert output.texts() == {"a": "<b>bold?</b>", "b": ""}


def test_code_format_uses_the_code_font():
    calls, publish = recorder()
    output = JupyterCompareOutput(["a", "b"], "code", 15, publish)
    output.finish({})
    assert "font-family:var(--jp-code-font-family)" in calls[-1][0]["text/html"]


def test_terminal_prints_each_answer_when_it_is_over():
    stream = io.StringIO()
    output = TerminalCompareOutput(["a", "b"], stream)
    output.apply(CompareEvent("b", "started"))
    output.apply(CompareEvent("b", "delta", text="late"))
    assert stream.getvalue() == ""
    output.apply(CompareEvent("b", "failed", error=ModelLoadError("no room")))
    assert stream.getvalue() == "── b · failed ──\nlate\n[error: no room]\n\n"


def test_compare_cell_stores_each_answer_and_keeps_no_thread(shell, fake_llm, capsys):
    shell.user_ns["topic"] = "GPUs"
    shell.run_cell_magic("llm", "--compare echo,flaky --max-tokens 2 -o answers", "talk {topic} x")
    assert shell.user_ns["answers"] == {"echo": "talk GPUs", "flaky": "talk GPUs"}
    out = capsys.readouterr().out
    assert "── echo · TTFT" in out and "2 output tokens ──\ntalk GPUs" in out
    assert fake_llm.threads.names() == []


def test_a_failing_column_is_raised_after_the_others(shell, fake_llm, capsys):
    with pytest.raises(ModelLoadError, match="injected load failure"):
        shell.run_cell_magic("llm", "--compare broken,echo -o answers", "still answered")
    assert shell.user_ns["answers"] == {"broken": "", "echo": "still answered"}
    assert "[error: Could not load 'broken'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("--compare echo,nope", UnknownModel, "No model named 'nope'"),
        ("--compare echo,flaky -m echo", UsageError, "drop -m"),
        ("--compare echo,flaky --thread t", UsageError, "fresh threads"),
        ("--compare ,echo", UsageError, "separated by commas"),
    ],
)
def test_bad_compare_cells_change_nothing(shell, fake_llm, line, error, message):
    with pytest.raises(error, match=message):
        shell.run_cell_magic("llm", line, "hi")
    assert fake_llm.ps() == [] and "answers" not in shell.user_ns
