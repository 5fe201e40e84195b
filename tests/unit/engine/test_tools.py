"""Tools from functions (schema from hints and docstrings, refusals) and the tool loop over a
scripted backend: constrained steps, results back to the model, errors, limits, approval,
interrupts, threads and provenance."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from llmux_jupyter.backends.registry import registry
from llmux_jupyter.engine.tools import Tool, tools_of
from llmux_jupyter.errors import InvalidParameter, ToolDefinitionError, UnsupportedTask
from llmux_jupyter.types.tools import ToolCall

from ..conftest import ScriptedBackend

pytestmark = pytest.mark.unit


def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return a * b


def divide(a: float, b: float = 1.0) -> float:
    """Divide a by b."""
    return a / b


def no_hints(a, b):
    """Add."""
    return a + b


def no_docstring(a: int) -> int:
    return a


def test_the_schema_comes_from_hints_defaults_and_the_docstring():
    tool = Tool.of(multiply)
    assert tool.name == "multiply" and tool.description == "Multiply two integers."
    properties = tool.parameters["properties"]
    assert properties["a"] == {"type": "integer", "title": "A", "description": "The first factor."}
    assert tool.parameters["required"] == ["a", "b"]
    assert Tool.of(divide).parameters["properties"]["b"]["default"] == 1.0
    assert tool.openai()["function"]["parameters"] is tool.parameters


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (no_hints, "parameter 'a' has no type hint"),
        (no_docstring, "no_docstring has no docstring"),
        (42, "42 is an int, not a function"),
        (print, "print is a built-in, not a Python function"),
        (dict, "dict is a class, not a Python function"),
    ],
)
def test_functions_without_what_a_tool_needs_are_refused(function, message):
    with pytest.raises(ToolDefinitionError, match=message):
        Tool.of(function)


def test_tool_names_must_be_unique_and_present():
    with pytest.raises(ToolDefinitionError, match="same name"):
        tools_of([multiply, multiply])
    with pytest.raises(ToolDefinitionError, match="No tools"):
        tools_of([])


def test_arguments_are_validated_into_the_hinted_types():
    assert Tool.of(multiply).validate({"a": "17", "b": 23}) == {"a": 17, "b": 23}
    with pytest.raises(InvalidParameter, match="b: Field required"):
        Tool.of(multiply).validate({"a": 1})


def decision(name: str) -> str:
    return json.dumps({"next": name})


def test_a_forced_tool_is_called_and_its_result_goes_back_to_the_model(scripted_llm):
    ScriptedBackend.replies = ['{"a": 17, "b": 23}', decision("answer"), "It is 391."]
    stream = scripted_llm.chat(
        "What is 17 times 23?", tools=[multiply], tool_choice="multiply", stream=True
    )
    items = list(stream)
    (call,) = [item for item in items if isinstance(item, ToolCall)]
    assert (call.name, call.arguments, call.result, call.status) == (
        "multiply",
        {"a": 17, "b": 23},
        "391",
        "ok",
    )
    assert "".join(item for item in items if isinstance(item, str)) == "It is 391."
    schemas = [schema for schema, _ in ScriptedBackend.calls]
    assert schemas[0] == Tool.of(multiply).parameters  # forced: the arguments at once
    assert schemas[1]["properties"]["next"]["enum"] == ["multiply", "answer"]
    assert schemas[2] is None  # the answer is free text
    final_messages = ScriptedBackend.calls[2][1]
    assert "multiply" in final_messages[0].content  # the tools, described to the model
    assert final_messages[-1].content == (
        "What is 17 times 23?\n\nResults of the tools called for this:\n"
        "- multiply(a=17, b=23) returned 391"
    )
    response = stream.response
    assert response.provenance()["tool_calls"][0]["result"] == "391"


def test_the_thread_keeps_the_calls_for_the_next_turn(scripted_llm):
    ScriptedBackend.replies = ['{"a": 2, "b": 3}', decision("answer"), "Six."]
    scripted_llm.chat("2 times 3?", tools=[multiply], tool_choice="multiply", thread="t")
    turn = scripted_llm.threads.get("t").turns[-1]
    assert [c.signature() for c in turn.tool_calls] == ["multiply(a=2, b=3)"]
    roles = [(m.role, m.content) for m in scripted_llm.threads.get("t").messages_for("And?")]
    assert roles == [
        ("user", "2 times 3?\n\nResults of the tools called for this:\n"
                 "- multiply(a=2, b=3) returned 6"),
        ("assistant", "Six."),
        ("user", "And?"),
    ]  # fmt: skip


def test_a_raising_tool_is_reported_to_the_model_and_the_answer_follows(scripted_llm):
    ScriptedBackend.replies = [
        decision("divide"),
        '{"a": 1, "b": 0}',
        decision("answer"),
        "Cannot divide by zero.",
    ]
    response = scripted_llm.chat("1/0?", tools=[divide, multiply])
    (call,) = response.tool_calls
    assert call.status == "error" and call.result == "ZeroDivisionError: float division by zero"
    assert response.text == "Cannot divide by zero."


def test_arguments_that_do_not_validate_are_an_error_result(scripted_llm):
    ScriptedBackend.replies = ['{"a": "x"}', decision("answer"), "Sorry."]
    response = scripted_llm.chat("?", tools=[multiply], tool_choice="multiply")
    assert response.tool_calls[0].status == "error"
    assert response.tool_calls[0].result.startswith("invalid arguments: a: Input should be")


def test_arguments_cut_by_the_cap_are_an_error_result(scripted_llm):
    ScriptedBackend.replies = ['{"a": 17, "b": 23.0000000', decision("answer"), "Sorry."]
    response = scripted_llm.chat("?", tools=[multiply], tool_choice="multiply")
    (call,) = response.tool_calls
    assert call.status == "error" and call.result.startswith("the arguments are not a whole")


def test_the_limit_stops_the_calls_and_the_model_answers(scripted_llm):
    ScriptedBackend.replies = [
        decision("multiply"),
        '{"a": 1, "b": 1}',
        decision("multiply"),
        '{"a": 2, "b": 2}',
        "Done.",
    ]
    response = scripted_llm.chat("?", tools=[multiply], max_tool_calls=2)
    assert [c.result for c in response.tool_calls] == ["1", "4"]
    assert response.tool_limit_reached and response.text == "Done."


def test_a_repeated_call_is_not_run_again_and_the_model_answers(scripted_llm):
    ScriptedBackend.replies = [
        decision("multiply"),
        '{"a": 2, "b": 3}',
        decision("multiply"),
        '{"a": 2, "b": 3}',
        "6",
    ]
    response = scripted_llm.chat("?", tools=[multiply])
    assert len(response.tool_calls) == 1 and response.text == "6"


def test_arguments_the_function_lacks_are_refused_by_its_schema():
    assert Tool.of(multiply).parameters["additionalProperties"] is False
    with pytest.raises(InvalidParameter, match="c: Extra inputs are not permitted"):
        Tool.of(multiply).validate({"a": 1, "b": 2, "c": 3})


def test_required_may_not_answer_before_the_first_call(scripted_llm):
    ScriptedBackend.replies = [decision("multiply"), '{"a": 1, "b": 1}', decision("answer"), "1"]
    scripted_llm.chat("?", tools=[multiply], tool_choice="required")
    assert ScriptedBackend.calls[0][0]["properties"]["next"]["enum"] == ["multiply"]


def test_none_answers_without_calling(scripted_llm):
    ScriptedBackend.replies = ["No tools needed."]
    response = scripted_llm.chat("?", tools=[multiply], tool_choice="none")
    assert response.tool_calls == [] and response.text == "No tools needed."


def test_a_declined_call_is_reported_and_the_function_never_runs(scripted_llm):
    ran = []

    def record(a: int) -> int:
        """Record a."""
        ran.append(a)
        return a

    ScriptedBackend.replies = ['{"a": 5}', decision("answer"), "OK."]
    asked = []
    response = scripted_llm.chat(
        "?", tools=[record], tool_choice="record", approve=lambda c: asked.append(c) or False
    )
    assert ran == [] and asked[0].signature() == "record(a=5)"
    assert response.tool_calls[0].status == "declined"
    assert ScriptedBackend.calls[-1][1][-1].content.endswith(
        "- record(a=5) was not run: the user declined this call"
    )


def test_an_interrupt_inside_a_tool_stops_everything_and_keeps_the_call(scripted_llm):
    def slow(a: int) -> int:
        """Take long."""
        raise KeyboardInterrupt

    ScriptedBackend.replies = ['{"a": 1}', decision("answer"), "never"]
    response = scripted_llm.chat("?", tools=[slow], tool_choice="slow")
    assert response.interrupted and response.tool_calls[0].status == "interrupted"
    assert len(ScriptedBackend.calls) == 1  # no answer was generated after it


def test_unknown_choices_and_backends_without_tools_are_refused(scripted_llm):
    with pytest.raises(InvalidParameter, match="tool choice 'unknown'"):
        scripted_llm.chat("?", tools=[multiply], tool_choice="unknown")
    with pytest.raises(InvalidParameter, match="not both"):
        scripted_llm.chat("?", tools=[multiply], schema={"type": "object"})
    with pytest.raises(UnsupportedTask, match="cannot call tools"):
        scripted_llm.chat("?", model="echo", tools=[multiply])


class NativeBackend(ScriptedBackend):
    """A server's native tools: each round asks for ``rounds``' next calls, then answers."""

    native_tools = True
    rounds: ClassVar[list[list[dict]]] = []
    requests: ClassVar[list[tuple[list[dict], object]]] = []

    def generate_with_tools(self, messages, tools, tool_choice, params, cancel):
        type(self).requests.append(([dict(m) for m in messages], tool_choice))
        calls = type(self).rounds.pop(0) if type(self).rounds else []
        if not calls:
            yield "Done."
        return {"text": "" if calls else "Done.", "tool_calls": calls}


def test_native_tools_run_the_servers_calls_and_send_the_results_back(scripted_llm):
    registry.add("native", NativeBackend)
    try:
        scripted_llm.register("server", backend="native", path=__file__)
        NativeBackend.requests = []
        NativeBackend.rounds = [
            [{"id": "c1", "name": "multiply", "arguments": '{"a": 17, "b": 23}'},
             {"id": "c2", "name": "shell", "arguments": '{"cmd": "rm"}'}],
        ]  # fmt: skip
        response = scripted_llm.chat(
            "17*23?", model="server", tools=[multiply], tool_choice="multiply"
        )
    finally:
        registry.remove("native")
    assert [(c.name, c.status, c.result) for c in response.tool_calls] == [
        ("multiply", "ok", "391"),
        ("shell", "error", "no tool named 'shell'; offered: multiply"),
    ]
    (_, forced), (second, then) = NativeBackend.requests
    assert forced == {"type": "function", "function": {"name": "multiply"}} and then == "auto"
    assert second[-3]["tool_calls"][0]["function"]["name"] == "multiply"
    assert second[-2] == {"role": "tool", "tool_call_id": "c1", "content": "391"}
    assert second[-1]["content"].startswith("error: no tool named 'shell'")
    assert response.text == "Done."
