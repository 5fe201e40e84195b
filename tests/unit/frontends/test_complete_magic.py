"""``%llm complete`` and ``%config LLMux.completion_model`` in a terminal IPython."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.errors import CompletionUnsupported
from llmux_jupyter.frontends.magics import LLMuxMagics


@pytest.fixture
def coder_shell(coder) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, coder))
    shell.configurables.append(coder.config)
    yield shell
    shell.configurables.remove(coder.config)


def test_complete_shows_sets_and_turns_off(coder_shell, coder, capsys):
    coder_shell.run_line_magic("llm", "complete")
    assert "Code completion is off: %llm complete --model NAME" in capsys.readouterr().out
    coder_shell.run_line_magic("llm", "complete --model coder")
    out = capsys.readouterr().out
    assert "Code completion with coder (idle; fill-in-the-middle as <|fim_prefix|>" in out
    assert coder.manager.is_loaded("coder") and coder.config.completion_model == "coder"
    coder_shell.run_line_magic("llm", "complete off")
    assert "off" in capsys.readouterr().out and coder.completer.model is None


def test_bad_input_is_one_clear_error_and_changes_nothing(coder_shell, coder, caplog):
    coder_shell.run_line_magic("llm", "complete --model coder")
    with pytest.raises(UsageError, match="not both"):
        coder_shell.run_line_magic("llm", "complete off --model coder")
    with pytest.raises(UsageError):
        coder_shell.run_line_magic("llm", "complete on")
    with pytest.raises(CompletionUnsupported, match="'plain' has no fill-in-the-middle"):
        coder_shell.run_line_magic("llm", "complete --model plain")
    coder_shell.run_line_magic("config", "LLMux.completion_model = 'plain'")  # IPython logs it
    assert "'plain' has no fill-in-the-middle tokens" in caplog.text
    assert coder.config.completion_model == "coder" and coder.completer.model == "coder"
