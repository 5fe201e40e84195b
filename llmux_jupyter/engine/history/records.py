"""What the history log holds: one Exchange per answer (or per map), where it was asked, and
the logged threads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ...types.tools import ToolCall
from ..conversation import Turn, kept_in_thread

# What an exchange was: an answer in a thread, one model's answer of a comparison, a map.
KINDS = ("chat", "compare", "map")
# How it ended.
STATUSES = ("ok", "interrupted", "context_full", "error")


@dataclass(frozen=True)
class Origin:
    """Where an answer was asked: the notebook's path and the cell's id, when the front end
    says ('' otherwise)."""

    notebook: str = ""
    cell: str = ""


@dataclass
class Exchange:
    """One logged answer: what was asked of which model, where, with what, and what came back.

    ``messages`` are those sent (the thread fitted to the window, then the prompt);
    ``tool_calls`` are ToolCall dicts; ``value`` is the schema's validated value as JSON data;
    ``details`` holds the rest (the context fit, a map's table shape and cache hits...).
    """

    kind: str
    prompt: str
    answer: str
    model: str
    backend: str
    created: float = field(default_factory=time.time)
    notebook: str = ""
    cell: str = ""
    thread: str = ""
    conversation: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    status: str = "ok"
    stop_reason: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    duration_s: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    schema: str | None = None
    value: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # given by the store

    @property
    def in_thread(self) -> bool:
        """Whether the answer became a turn of its thread (as the kernel recorded it)."""
        return self.kind == "chat" and kept_in_thread(self.answer, self.status == "interrupted")

    def turn(self) -> Turn:
        """The thread's turn this exchange was."""
        calls = [ToolCall(**call) for call in self.tool_calls]
        return Turn(self.prompt, self.answer, self.model, self.status == "interrupted",
                    tool_calls=calls)  # fmt: skip


@dataclass(frozen=True)
class LoggedThread:
    """A thread as the log knows it: its latest conversation, turns and last use."""

    name: str
    conversation: str
    turns: int
    system: str | None
    notebook: str
    updated: float
