"""Tool calls in a chat template's own syntax (Qwen's), and the tool loop reading them: the
calls run, an answer streams, and a call has its own token budget apart from --max-tokens."""

from __future__ import annotations

import json

import pytest

from llmux_jupyter.engine.tool_syntax import may_be_call, written_calls

from ..conftest import ScriptedBackend
from .test_tools import multiply

pytestmark = pytest.mark.unit
CALL = {"name": "multiply", "arguments": {"a": 17, "b": 23}}
AS_TEXT = json.dumps(CALL)


@pytest.mark.parametrize(
    "text",
    [
        f"<tool_call>\n{AS_TEXT}\n</tool_call>",
        AS_TEXT,
        f"```json\n{AS_TEXT}\n```",
        f"  {json.dumps([CALL])}\n",
        json.dumps({"name": "multiply", "arguments": json.dumps(CALL["arguments"])}),
    ],
)
def test_a_call_reads_in_each_syntax(text):
    assert written_calls(text, ["multiply"]) == [
        {"name": "multiply", "arguments": json.dumps(CALL["arguments"])}
    ]


def test_several_tagged_calls_and_a_cut_one_read_too():
    two = f"<tool_call>{AS_TEXT}</tool_call>\n<tool_call>{AS_TEXT}</tool_call>"
    assert len(written_calls(two, ["multiply"])) == 2
    cut = '<tool_call>{"name": "multiply", "arguments": {"a": 1700000'
    assert written_calls(cut, ["multiply"]) == [{"name": "multiply", "arguments": '{"a": 1700000'}]


@pytest.mark.parametrize(
    "text", ["17 times 23 is 391.", '{"answer": 391}', "```python\nprint(17 * 23)\n```", ""]
)
def test_an_answer_is_not_a_call(text):
    assert written_calls(text, ["multiply"]) is None


@pytest.mark.parametrize(
    ("start", "held"), [("", True), ("  <tool", True), ("``", True), ("{", True), ("The", False)]
)
def test_text_is_held_back_only_while_it_may_become_a_call(start, held):
    assert may_be_call(start) is held


class TemplateTools(ScriptedBackend):
    """A scripted model whose chat template knows tools (as Qwen2.5's does)."""

    def template_tools(self) -> bool:
        return True


@pytest.fixture
def template_llm(scripted_llm, monkeypatch):
    monkeypatch.setattr(ScriptedBackend, "template_tools", TemplateTools.template_tools)
    return scripted_llm


def test_a_call_in_the_template_syntax_runs_and_the_answer_streams(template_llm):
    ScriptedBackend.replies = [f"<tool_call>\n{AS_TEXT}\n</tool_call>", "It is 391."]
    stream = template_llm.chat("17 times 23?", tools=[multiply], stream=True)
    items = list(stream)
    assert [type(item).__name__ for item in items][:1] == ["ToolCall"]
    assert "".join(i for i in items if isinstance(i, str)) == "It is 391."
    (call,) = stream.response.tool_calls
    assert (call.arguments, call.result) == ({"a": 17, "b": 23}, "391")
    schemas = [schema for schema, _ in ScriptedBackend.calls]
    assert schemas == [None, None]  # free text in the template's syntax, no grammar
    assert "returned 391" in ScriptedBackend.calls[1][1][-1].content


def test_a_plain_answer_streams_and_stops_at_its_own_cap(template_llm):
    ScriptedBackend.replies = ["The answer is simply three hundred and ninety-one."]
    response = template_llm.chat("17 times 23?", tools=[multiply], max_tokens=3)
    assert response.text == "The answer is si"[:12] and response.stop_reason == "max_tokens"
    assert not response.interrupted and response.tool_calls == []


def test_a_call_is_not_cut_by_the_answers_max_tokens(template_llm):
    """The call runs to its own budget (tool_tokens), not to --max-tokens 3."""
    ScriptedBackend.replies = [AS_TEXT, "391."]
    response = template_llm.chat("17 times 23?", tools=[multiply], max_tokens=3)
    assert [c.status for c in response.tool_calls] == ["ok"]
    ScriptedBackend.replies = [AS_TEXT, "391."]
    response = template_llm.chat("17 times 23?", tools=[multiply], max_tokens=3, tool_tokens=6)
    assert response.tool_calls[0].status == "error"  # cut by its own budget, said so
    assert "not a whole JSON object" in response.tool_calls[0].result


def test_after_a_forced_call_the_model_goes_on_in_its_own_syntax(template_llm):
    ScriptedBackend.replies = ['{"a": 17, "b": 23}', "It is 391."]
    response = template_llm.chat("17 times 23?", tools=[multiply], tool_choice="multiply")
    assert [c.result for c in response.tool_calls] == ["391"] and response.text == "It is 391."
    first, then = (schema for schema, _ in ScriptedBackend.calls)
    assert first["properties"].keys() == {"a", "b"} and then is None  # no "call or answer" step
