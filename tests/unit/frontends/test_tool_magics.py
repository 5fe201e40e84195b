"""``%%llm --tools`` and ``--schema`` in a terminal IPython over the scripted backend: the call
blocks, the typed value in -o, and bad input as UsageError."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pydantic
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmux_jupyter.frontends.magics import LLMuxMagics
from llmux_jupyter.frontends.tool_calls import call_line
from llmux_jupyter.types.tools import ToolCall

from ..conftest import ScriptedBackend

pytestmark = pytest.mark.unit


class Person(pydantic.BaseModel):
    name: str
    age: int


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def no_hints(a):
    """Echo."""
    return a


@pytest.fixture
def tool_shell(scripted_llm) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.register_magics(LLMuxMagics(shell, scripted_llm))
    names = {"multiply": multiply, "both": [multiply], "no_hints": no_hints, "Person": Person,
             "limit_value": 42, "mixed": [multiply, "text"]}  # fmt: skip
    shell.user_ns.update(names)
    yield shell
    for name in [*names, "p"]:
        shell.user_ns.pop(name, None)


def test_a_call_shows_as_a_line_then_the_answer(tool_shell, capsys):
    ScriptedBackend.replies = ['{"a": 17, "b": 23}', '{"next": "answer"}', "391."]
    tool_shell.run_cell_magic("llm", "--tools both --tool-choice multiply", "17*23?")
    out = capsys.readouterr().out
    assert out.startswith("🔧 multiply(a=17, b=23) → 391  (") and out.endswith("391.\n")


def test_a_schema_answer_is_pretty_json_and_the_instance_goes_to_o(tool_shell, capsys):
    ScriptedBackend.replies = ['{"name":"Ada","age":36}']
    tool_shell.run_cell_magic("llm", "--schema Person -o p", "Ada, 36")
    assert tool_shell.user_ns["p"] == Person(name="Ada", age=36)
    assert json.loads(capsys.readouterr().out) == {"name": "Ada", "age": 36}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--tools not_a_name", "--tools not_a_name: no function of that name"),
        ("--tools 42", "--tools 42: no function of that name"),
        ("--tools limit_value", "^limit_value is an int, not a function"),
        ("--tools mixed", r"^mixed\[1\] is a str, not a function"),
        ("--tools multiply,", "name the models separated by commas"),
        ("--tools no_hints", "no_hints's parameter 'a' has no type hint"),
        ("--tools multiply --tool-choice unknown", "tool choice 'unknown'"),
        ("--tools multiply --max-tool-calls -1", "give 0 or more"),
        ("--approve", "--approve needs --tools"),
        ("--tool-tokens 9", "--tool-tokens needs --tools"),
        ("--tools multiply --tool-tokens 0", "--tool-tokens 0: give 1 or more"),
        ("--schema NotAType", "--schema NotAType: no notebook variable"),
        ("--compare scripted,echo --schema Person", "drop --tools and --schema"),
    ],
)
def test_bad_tool_and_schema_options_are_usage_errors(tool_shell, line, message):
    with pytest.raises(UsageError, match=message):
        tool_shell.run_cell_magic("llm", line, "hi")
    assert ScriptedBackend.calls == []


def test_each_status_reads_as_a_compact_line():
    call = ToolCall("f", {"x": "a" * 300}, "ValueError: boom", 0.5, "error")
    line = call_line(call)
    assert line.startswith("🔧 f(x='aaa") and "… ✗ ValueError: boom  (0.50 s)" in line
    declined = call_line(ToolCall("f", {}, "the user declined this call", status="declined"))
    assert declined == "🔧 f() ⊘ declined: the user declined this call"


def test_an_answer_repeating_itself_is_stopped_and_the_note_says_so(
    tool_shell, scripted_llm, capsys
):
    ScriptedBackend.replies = ["The answer is 37. " * 12]
    tool_shell.run_cell_magic("llm", "", "17 + 20?")
    out = capsys.readouterr().out
    assert out.count("The answer is 37.") == 4 + 1  # the answer's four, and the note's
    assert "⏹ repetition: the answer was stopped as it kept repeating" in out
    response = scripted_llm.last
    assert (response.stop_reason, response.interrupted) == ("repetition", False)
    assert response.provenance()["stop_reason"] == "repetition"
