"""A chat answer streamed into the cell: live updates, tool calls shown as they run, the
interrupt button honoured, then the final display with its provenance and notes. Shared by
``%%llm`` and ``%llm fix``."""

from __future__ import annotations

import json

from ..engine.chat import ChatResponse, ChatStream
from ..errors import LLMuxError
from ..types.tools import ToolCall
from .empty_answer import empty_answer_note
from .interrupts import sigint_cancels
from .render import LiveOutput, live_output
from .tool_calls import show_call


def stream_answer(
    stream: ChatStream, fmt: str, max_updates: float
) -> tuple[LiveOutput, ChatResponse]:
    """Show the answer as it comes (the interrupt stops it between tokens, keeping the text);
    an error after some text shows that text, then is raised."""
    output = live_output(fmt, max_updates)
    with sigint_cancels(stream.cancel_event):
        try:
            for item in stream:
                if isinstance(item, ToolCall):
                    show_call(item)
                else:
                    output.append(item)
        except LLMuxError as error:  # keep what had come, say why it stopped
            if output.text:
                output.finish({"model": stream.model, "error": str(error)})
            raise
    assert stream.response is not None
    return output, stream.response


def finish_answer(
    output: LiveOutput,
    response: ChatResponse,
    *,
    max_tool_calls: int | None = None,
    note: str = "",
) -> None:
    """The final display: the answer (a schema's value as indented JSON), its provenance
    (with the prompt's inputs), and the notes (turns left out, a repetition stopped, an empty
    answer, ``note``)."""
    empty = not response.text.strip() and not response.interrupted
    notes = [
        response.context_note,
        response.stop_note,
        empty_answer_note(response) if empty else "",
        note,
    ]
    if response.tool_limit_reached:
        notes = [f"(answered without tools after {max_tool_calls} calls: --max-tool-calls)", note]
    if response.schema is not None:
        output.text = json.dumps(json.loads(response.text), indent=2, ensure_ascii=False)
    output.finish(response.provenance(), response.interrupted, ". ".join(filter(None, notes)))
