"""The tool loop: the model calls the user's functions, sees their results, then answers.

A backend with native tools (``Backend.native_tools``: the server's ``tools``) decides and
writes the calls itself. A model whose chat template knows tools (``template_tools``) writes
them in the template's own syntax (``tool_syntax``) when the choice is auto: its answer
streams once it is plainly not a call. Otherwise each round is constrained: a "call a tool
or answer" step (JSON under an enum of the tool names), then the arguments under the tool's
schema. A call has its own token budget (``tool_tokens``), apart from the answer's
``max_tokens``. Calls run in the caller's thread; their ToolCall records are yielded between
the text deltas of the final answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import Any

from ..backends.base import Backend
from ..backends.image_parts import openai_message
from ..errors import InvalidParameter, UnsupportedTask
from ..types.tools import ToolCall, shortened
from ..types.values import GenerationParams, Message
from .chat import ChatResponse, ChatStream
from .conversation import Turn, with_results
from .tool_syntax import may_be_call, written_calls
from .tools import Tool

CHOICES = ("auto", "required", "none")
DEFAULT_MAX_CALLS = 5
DECISION_TOKENS = 24
TOOL_TOKENS = 256
MODEL_RESULT_CHARS = 2000
ANSWER = "answer"

Approve = Callable[[ToolCall], bool]
Runner = Callable[[Callable[[], Any]], Any]


def check_choice(choice: str, tools: list[Tool]) -> str:
    """auto, required, none or a tool's name."""
    names = [tool.name for tool in tools]
    if choice not in CHOICES and choice not in names:
        raise InvalidParameter(
            f"tool choice {choice!r}: use auto, required, none or a tool's name "
            f"({', '.join(names)})."
        )
    return choice


class ToolChatStream(ChatStream):
    """A chat answer that may call ``tools`` first: iterate for text deltas and ToolCall
    records; ``response.tool_calls`` lists every call afterwards.

    ``approve`` (given a call before it runs) may decline it; ``run`` runs a call (the front
    end lets the interrupt raise inside it). At most ``max_calls`` calls, then the model
    answers without tools. ``tool_tokens``: the most tokens one call may take.
    """

    def __init__(
        self,
        *args: Any,
        tools: list[Tool],
        choice: str = "auto",
        max_calls: int = DEFAULT_MAX_CALLS,
        approve: Approve | None = None,
        run: Runner | None = None,
        tool_tokens: int = TOOL_TOKENS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.schema is not None:
            raise InvalidParameter("Ask for tools or for a schema, not both in one answer.")
        if ANSWER in (tool.name for tool in tools):
            raise InvalidParameter(f"A tool may not be named {ANSWER!r}: rename the function.")
        if max_calls < 0:
            raise InvalidParameter(f"max tool calls must be 0 or more, not {max_calls}.")
        if tool_tokens < 1:
            raise InvalidParameter(f"tool tokens must be 1 or more, not {tool_tokens}.")
        self.tool_tokens = tool_tokens
        self.tools = {tool.name: tool for tool in tools}
        self.choice = check_choice(choice, tools)
        self.max_calls = max_calls
        self.calls: list[ToolCall] = []
        self.limit_reached = False
        self._approve = approve
        self._run_call: Runner = run or (lambda call: call())

    # -- the loop --------------------------------------------------------------
    def _produce(self, backend: Backend) -> Iterator[Any]:
        if not backend.native_tools and not backend.json_schemas:
            raise UnsupportedTask(
                f"{self.model!r} ({backend.name} backend) cannot call tools: use a llamacpp, "
                "transformers or openai model."
            )
        messages = self._messages(backend)
        if backend.native_tools:
            return self._native(backend, messages)
        if self.choice == "auto" and backend.template_tools():
            return self._template(backend, messages)
        return self._constrained(backend, messages)

    def _may_call(self) -> bool:
        if self.choice == "none" or self.cancel_event.is_set():
            return False
        self.limit_reached = len(self.calls) >= self.max_calls
        return not self.limit_reached

    def _constrained(self, backend: Backend, messages: list[Message]) -> Iterator[Any]:
        template = backend.template_tools()
        if template:  # the chat template describes the tools itself
            self.params = replace(self.params, tools=tuple(t.openai() for t in self.tools.values()))
        else:
            messages = with_tools_prompt(messages, list(self.tools.values()))
        forced = self.choice if self.choice not in CHOICES else None
        counts = {"prompt_tokens": 0, "completion_tokens": 0}
        while self._may_call():
            may_answer = self.choice != "required" or bool(self.calls)
            name = forced or self._decide(backend, messages, may_answer, counts)
            if name == ANSWER or self.cancel_event.is_set():
                break
            tool = self.tools[name]
            arguments = self._generate(backend, messages, tool.parameters, self.tool_tokens, counts)
            if self.cancel_event.is_set():
                break
            parsed = _loads(arguments)
            if parsed is not None and self._repeated(name, parsed):
                break  # its result is already in the conversation: answer with it
            call = self._unfinished(name, arguments) if parsed is None else self._call(tool, parsed)
            yield call
            messages[-1] = replace(messages[-1], content=with_results(self.prompt, self.calls))
            forced = None
            if template and not self.cancel_event.is_set():  # the first call was forced:
                answer = yield from self._template(backend, messages)  # it goes on by itself
                return _added(counts, answer or {})
        if self.cancel_event.is_set():
            return counts
        answer = yield from backend.generate(messages, _untooled(self.params), self.cancel_event)
        return _added(counts, answer or {})

    def _repeated(self, name: str, arguments: dict[str, Any] | None) -> bool:
        return any(c.name == name and c.arguments == arguments for c in self.calls)

    def _template(self, backend: Backend, messages: list[Message]) -> Iterator[Any]:
        """Rounds in which the model writes its calls in its template's syntax, or answers."""
        offered = tuple(tool.openai() for tool in self.tools.values())
        cap = self.params.max_tokens
        budget = None if cap is None else max(cap, self.tool_tokens)
        counts = {"prompt_tokens": 0, "completion_tokens": 0}
        while self._may_call():
            params = replace(self.params, tools=offered, max_tokens=budget)
            requests, summary = yield from self._written(backend, messages, params)
            _added(counts, summary)
            if requests is None:  # the answer, streamed as it came
                return {**summary, **counts}
            fresh = [r for r in requests if not self._repeated(r["name"], _loads(r["arguments"]))]
            if not fresh:
                break  # their results are already in the conversation: answer with them
            for request in fresh:
                yield self._requested(request)
                if self.cancel_event.is_set():
                    return counts
            messages[-1] = Message("user", with_results(self.prompt, self.calls))
        if self.cancel_event.is_set():
            return counts
        answer = yield from backend.generate(messages, _untooled(self.params), self.cancel_event)
        return _added(counts, answer or {})

    def _written(
        self, backend: Backend, messages: list[Message], params: GenerationParams
    ) -> Generator[str, None, tuple[list[dict[str, str]] | None, dict[str, Any]]]:
        """One free generation: the calls it wrote (nothing shown), or None once it streamed
        as the answer. The text is held back while it may still become a call; an answer is
        cut at the answer's own ``max_tokens`` (the generation may run to the tool budget)."""
        generation = _Returned(backend.generate(messages, params, self.cancel_event))
        held: list[str] | None = []
        shown, cap = 0, self.params.max_tokens
        for piece in generation:
            if held is not None:
                held.append(piece)
                if may_be_call(text := "".join(held)):
                    continue
                shown, piece, held = len(held) - 1, text, None
            shown += 1
            yield piece
            if cap is not None and shown >= cap and not self.cancel_event.is_set():
                self.stop("max_tokens")
        summary = generation.value or {}
        if held is None:
            return None, summary
        text = "".join(held)
        requests = written_calls(text, self.tools)
        if requests is None and text:
            yield text  # an answer that looked like a call at first (e.g. JSON)
        return requests, summary

    def _decide(
        self, backend: Backend, messages: list[Message], may_answer: bool, counts: dict
    ) -> str:
        options = [*self.tools, *([ANSWER] if may_answer else [])]
        schema = {
            "type": "object",
            "properties": {"next": {"enum": options}},
            "required": ["next"],
            "additionalProperties": False,
        }
        text = self._generate(backend, messages, schema, DECISION_TOKENS, counts)
        chosen = (_loads(text) or {}).get("next")
        return chosen if chosen in options else ANSWER

    def _generate(
        self,
        backend: Backend,
        messages: list[Message],
        schema: dict[str, Any],
        max_tokens: int,
        counts: dict[str, int],
    ) -> str:
        """One constrained generation, whole (it is not shown: its call is)."""
        params = replace(self.params, max_tokens=max_tokens, stop=(), json_schema=schema)
        generation = _Returned(backend.generate(messages, params, self.cancel_event))
        text = "".join(generation)
        _added(counts, generation.value or {})
        return text

    def _native(self, backend: Backend, messages: list[Message]) -> Iterator[Any]:
        limit = backend.image_limit()
        wire: list[dict[str, Any]] = [openai_message(m, limit) for m in messages]
        offered = [tool.openai() for tool in self.tools.values()]
        counts = {"prompt_tokens": 0, "completion_tokens": 0}
        choice: Any = self.choice
        if self.choice not in CHOICES:
            choice = {"type": "function", "function": {"name": self.choice}}
        while True:
            if not self._may_call():
                choice = "none"
            summary = yield from backend.generate_with_tools(
                wire, offered, choice, self.params, self.cancel_event
            )
            summary = summary or {}
            requested = summary.pop("tool_calls", [])
            _added(counts, summary)
            if not requested or choice == "none" or self.cancel_event.is_set():
                return counts
            wire.append({"role": "assistant", "content": summary.get("text", ""),
                         "tool_calls": [_wire_call(r) for r in requested]})  # fmt: skip
            for request in requested:
                call = self._requested(request)
                yield call
                wire.append({"role": "tool", "tool_call_id": request["id"],
                             "content": _for_model(call)})  # fmt: skip
                if self.cancel_event.is_set():
                    return counts
            choice = "auto"

    def _unfinished(self, name: str, arguments: str) -> ToolCall:
        """Arguments that are not a whole JSON object (a cap cut them, e.g. a number whose
        digits went on, or a server sent them broken): an error result."""
        text = shortened(arguments, 60)
        call = ToolCall(name, {}, f"the arguments are not a whole JSON object: {text}")
        call.status = "error"
        self.calls.append(call)
        return call

    def _requested(self, request: dict[str, Any]) -> ToolCall:
        """A call the server asked for: unknown tools and bad JSON are errors for the model."""
        name, arguments = request["name"], _loads(request["arguments"])
        if arguments is None:
            return self._unfinished(name, request["arguments"])
        if name not in self.tools:
            offered = ", ".join(self.tools)
            call = ToolCall(name, arguments, f"no tool named {name!r}; offered: {offered}")
            call.status = "error"
            self.calls.append(call)
            return call
        return self._call(self.tools[name], arguments)

    # -- one call --------------------------------------------------------------
    def _call(self, tool: Tool, arguments: dict[str, Any]) -> ToolCall:
        """Validate, ask, run: the call's record (a failure is a result, not an error)."""
        call = ToolCall(tool.name, arguments)
        self.calls.append(call)
        try:
            values = tool.validate(arguments)
        except InvalidParameter as error:
            call.result, call.status = f"invalid arguments: {error}", "error"
            return call
        if self._approve is not None and not self._approve(call):
            call.result, call.status = "the user declined this call", "declined"
            return call
        started = time.perf_counter()
        try:
            value = self._run_call(lambda: tool.function(**values))
            call.result = shortened(repr(value), MODEL_RESULT_CHARS)
        except KeyboardInterrupt:
            call.result, call.status = "interrupted by the user", "interrupted"
            self.cancel_event.set()
        except Exception as error:  # the tool's failure goes back to the model
            call.result, call.status = f"{type(error).__name__}: {error}", "error"
        call.seconds = time.perf_counter() - started
        return call

    # -- results ---------------------------------------------------------------
    def _turn(self, text: str, interrupted: bool) -> Turn:
        turn = super()._turn(text, interrupted)
        turn.tool_calls = list(self.calls)
        return turn

    def _complete(self, response: ChatResponse, summary: dict[str, Any]) -> None:
        response.tool_calls = list(self.calls)
        response.tool_limit_reached = self.limit_reached

    def _finish(
        self, items: list[Any], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        text = [item for item in items if isinstance(item, str)]
        super()._finish(text, summary, seconds, interrupted)


class _Returned:
    """Iterate a generator's pieces; what it returns (the backend's summary) lands on
    ``value``."""

    def __init__(self, generator: Generator[str, None, Any]) -> None:
        self._generator = generator
        self.value: Any = None

    def __iter__(self) -> Iterator[str]:
        self.value = yield from self._generator


def ask_on_stdin(call: ToolCall) -> bool:
    """Ask the user (input()) whether to run a call; only y or yes runs it."""
    answer = input(f"Run {call.signature()}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def with_tools_prompt(messages: list[Message], tools: list[Tool]) -> list[Message]:
    """The messages with the tools described in the system prompt (added or extended)."""
    lines = ["You can call these tools (the arguments are JSON):"]
    for tool in tools:
        properties = json.dumps(tool.parameters.get("properties", {}))
        lines.append(f"- {tool.name}: {tool.description} Arguments: {properties}")
    lines.append("Call a tool when it helps; after its result, answer the user.")
    described = "\n".join(lines)
    if messages and messages[0].role == "system":
        return [Message("system", f"{messages[0].content}\n\n{described}"), *messages[1:]]
    return [Message("system", described), *messages]


def _untooled(params: GenerationParams) -> GenerationParams:
    """The final answer's parameters: no tools in the template (their results are in the
    question), so the model answers instead of writing another call."""
    return replace(params, tools=())


def _loads(text: str) -> dict[str, Any] | None:
    """A JSON object, or None for anything else (a cut or stopped generation)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _added(counts: dict[str, int], summary: dict[str, Any]) -> dict[str, Any]:
    for key in ("prompt_tokens", "completion_tokens"):
        counts[key] = counts.get(key, 0) + int(summary.get(key, 0) or 0)
    return {**summary, **counts}


def _wire_call(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": request["id"],
        "type": "function",
        "function": {"name": request["name"], "arguments": request["arguments"]},
    }


def _for_model(call: ToolCall) -> str:
    return call.result if call.status == "ok" else f"{call.status}: {call.result}"
