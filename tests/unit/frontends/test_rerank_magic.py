"""``%llm rerank`` in a real IPython shell, on the word-counting rerank and embedding fakes."""

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.types.ranking import Reranking

from ..conftest import DOCUMENTS


@pytest.fixture
def shell(rerank_llm):
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, rerank_llm))
    shell.user_ns["docs"] = DOCUMENTS
    yield shell
    for name in ("docs", "ranked", "number"):
        shell.user_ns.pop(name, None)


def test_rerank_shows_a_table_and_stores_the_reranking(shell, capsys):
    shell.run_line_magic("llm", 'rerank "cat sleep sun" docs -m scorer --top-n 2 -o ranked')
    table = capsys.readouterr().out
    assert "cat sleep sun — scorer, cross-encoder" in table
    lines = table.splitlines()
    assert lines[1].split() == ["rank", "index", "score", "document"]
    assert lines[3].startswith("1     1      3.0000  My cat likes to sleep in the sun.")
    assert len(lines) == 5  # title, header, rule, two rows
    ranked = shell.user_ns["ranked"]
    assert isinstance(ranked, Reranking) and ranked.indices == [1, 0]


def test_an_unquoted_query_and_the_default_model(shell, capsys):
    shell.run_line_magic("llm", "rerank dog rain docs")
    out = capsys.readouterr().out
    assert "dog rain — scorer" in out and "A dog barks at the rain." in out


@pytest.mark.parametrize(
    ("line", "error", "message"),
    [
        ("rerank docs", UsageError, "required: DOCS_VAR"),
        ('rerank "cat" nothing', UsageError, "No variable 'nothing'"),
        ('rerank "cat" docs -o 1x', UsageError, "give a Python variable name"),
        ('rerank "cat" docs --top-n two', UsageError, "invalid int value: 'two'"),
        ('rerank "cat" docs --top-n 0', InvalidParameter, "top_n must be at least 1"),
        ('rerank "cat" number', InvalidParameter, "must be a list of strings, not a int"),
    ],
)
def test_bad_rerank_commands_change_nothing(shell, line, error, message):
    shell.user_ns["number"] = 7
    shell.user_ns["ranked"] = "keep"
    with pytest.raises(error, match=message):
        shell.run_line_magic("llm", line + " -o ranked" if "-o" not in line else line)
    assert shell.user_ns["ranked"] == "keep"
