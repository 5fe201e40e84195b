"""``%llm history ...``, ``--no-log`` and ``%llm threads`` in a real IPython shell."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from IPython.core.error import StdinNotImplementedError, UsageError

from llmux_jupyter.api import LLM
from llmux_jupyter.engine.history.records import Origin
from llmux_jupyter.errors import HistoryError
from llmux_jupyter.frontends.history_view import cell_origin


def cell(shell, line, body):
    return shell.run_cell_magic("llm", line, body)


def history(shell, line=""):
    return shell.run_line_magic("llm", f"history {line}".strip())


@pytest.fixture
def logged(shell, fake_llm):
    """Three answers in two threads."""
    cell(shell, "--thread geo --system terse", "Paris is in France")
    cell(shell, "--thread geo", "Rome is in Italy")
    cell(shell, "--thread other", "nothing about places")
    return fake_llm


def test_history_searches_newest_first_as_a_table(shell, logged, capsys):
    history(shell)
    table = capsys.readouterr().out
    assert table.index("nothing about places") < table.index("Rome") < table.index("Paris")
    assert str(logged.history.path) in table
    history(shell, "france")
    found = capsys.readouterr().out
    assert "Paris is in France" in found and "Rome" not in found and "matching france" in found
    history(shell, "--thread geo -n 1")
    assert "Rome" in (last := capsys.readouterr().out) and "Paris" not in last
    history(shell, '"is in" -m echo')
    assert "Rome" in capsys.readouterr().out
    history(shell, "zebra")
    assert "(no match)" in capsys.readouterr().out
    history(shell, "search show")  # a word that is an action, searched for
    assert "(no match)" in capsys.readouterr().out


def test_show_prints_one_exchange_in_full(shell, logged, capsys):
    history(shell, "show 2")
    text = capsys.readouterr().out
    assert text.startswith("#2 ") and "thread: geo" in text and "model: echo (echo)" in text
    assert "[system] terse\n[user] Paris is in France\n[assistant] Paris is in France\n" in text
    assert "--- answer ---\nRome is in Italy" in text


def test_fork_then_continue(shell, logged, capsys):
    history(shell, "fork 1 --thread side")
    assert "Thread 'side' continues from #1 (1 turns)" in capsys.readouterr().out
    cell(shell, "--thread side", "and Spain")
    assert [m.content for m in logged.last.messages] == [
        "terse", "Paris is in France", "Paris is in France", "and Spain"
    ]  # fmt: skip


def test_export_writes_the_file(shell, logged, tmp_path, capsys):
    target = tmp_path / "geo.jsonl"
    history(shell, f"export geo '{target}'")
    assert f"Wrote 5 messages of thread 'geo' to {target}" in capsys.readouterr().out
    assert [json.loads(line)["role"] for line in target.read_text().splitlines()] == [
        "system", "user", "assistant", "user", "assistant"
    ]  # fmt: skip


def test_clear_asks_first_unless_yes(shell, logged, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda question: "n")
    history(shell, "clear --thread geo")
    assert "Nothing was deleted." in capsys.readouterr().out
    asked = []
    monkeypatch.setattr("builtins.input", lambda question: asked.append(question) or "y")
    history(shell, "clear --thread geo")
    assert asked == ["Delete 2 logged answers of thread 'geo'? [y/N] "]
    assert "Deleted 2 logged answers of thread 'geo'." in capsys.readouterr().out
    history(shell, "clear --all --yes")
    assert "Deleted 1 logged answers (all)." in capsys.readouterr().out
    history(shell, "clear --all --yes")
    assert "Nothing to clear." in capsys.readouterr().out


def test_clear_where_nobody_can_answer_needs_yes(shell, logged, monkeypatch):
    def no_stdin(question):
        raise StdinNotImplementedError("raw_input was called, but this frontend does not support")

    monkeypatch.setattr("builtins.input", no_stdin)
    with pytest.raises(UsageError, match="add --yes"):
        history(shell, "clear --all")
    assert len(logged.history.search()) == 3


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("history show", UsageError, "required: ID"),
        ("history show x", UsageError, "invalid int value: 'x'"),
        ("history show 99", HistoryError, "No exchange #99"),
        ("history fork 1", UsageError, "required: --thread"),
        ("history fork 1 --thread geo", Exception, "'geo' exists"),
        ("history export geo out.txt", Exception, "export to a .md"),
        ("history export nope out.md", HistoryError, "No logged thread named 'nope'"),
        ("history clear", UsageError, "--before DATE, or --thread T, or --all"),
        ("history clear --all --thread geo", UsageError, "--before DATE, or --thread T"),
        ("history clear --before yesterday --yes", Exception, "give a date such as"),
        ("history -n 0", UsageError, "show at least 1"),
        ("history --bogus", UsageError, "unrecognized arguments: --bogus"),
    ],
)
def test_bad_history_commands_are_one_clear_error_and_change_nothing(
    shell, logged, line, error, message
):
    before = logged.history.search()
    with pytest.raises(error, match=message):
        shell.run_line_magic("llm", line)
    assert logged.history.search() == before
    assert sorted(logged.threads.names()) == ["geo", "other"]


def test_no_log_keeps_a_cell_out(shell, fake_llm):
    cell(shell, "--no-log --thread quiet", "not logged")
    cell(shell, "--no-log --compare echo,small", "not logged either")
    shell.user_ns["items"] = ["a", "b"]
    cell(shell, "--no-log --map items", "{item}?")
    fake_llm.config.log = False
    cell(shell, "--thread quiet", "nor this")
    assert fake_llm.history.search() == []
    assert [t.user for t in fake_llm.threads.get("quiet").turns] == ["not logged", "nor this"]


def test_threads_lists_the_logged_ones_too(shell, logged, capsys):
    kernel = LLM(logged.manager.catalog)  # after a restart
    shell.register_magics(type(shell.magics_manager.registry["LLMuxMagics"])(shell, kernel))
    shell.run_line_magic("llm", "threads")
    listing = capsys.readouterr().out
    assert "geo" in listing and "other" in listing and "continues when used" in listing
    shell.run_line_magic("llm", "threads geo")
    assert "Rome is in Italy" in capsys.readouterr().out
    with pytest.raises(UsageError, match="No thread named 'nope'"):
        shell.run_line_magic("llm", "threads nope")


def test_help_shows_the_history_actions(shell, capsys):
    shell.run_line_magic("llm", "help")
    listing = capsys.readouterr().out
    assert "%llm history" in listing and "history show" not in listing
    shell.run_line_magic("llm", "help history")
    text = capsys.readouterr().out
    for action in ("%llm history search", "%llm history show", "%llm history clear", "--yes"):
        assert action in text
    shell.run_line_magic("llm", "help history fork")
    assert "the new thread's name" in capsys.readouterr().out


def test_the_cell_id_comes_from_the_request_metadata(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/nb.ipynb")
    request = {"header": {}, "metadata": {"cellId": "3f2a-cell"}}
    kernel = SimpleNamespace(get_parent=lambda: request)
    assert cell_origin(SimpleNamespace(kernel=kernel)) == Origin("/nb.ipynb", "3f2a-cell")
    assert cell_origin(SimpleNamespace(parent_header={})) == Origin("/nb.ipynb", "")
    assert cell_origin(SimpleNamespace()) == Origin("/nb.ipynb", "")
