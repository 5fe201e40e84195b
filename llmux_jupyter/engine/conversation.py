"""Named threads of messages, so ``%%llm`` remembers earlier cells."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types.tools import ToolCall
from ..types.values import Message

DEFAULT_THREAD = "default"


@dataclass
class Turn:
    """One exchange; ``interrupted`` marks a reply cut short by the user."""

    user: str
    assistant: str
    model: str
    interrupted: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)  # made before the answer


@dataclass
class Thread:
    """A conversation: an optional system prompt and the turns so far."""

    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def messages_for(self, user_text: str, system: str | None = None) -> list[Message]:
        """The messages to send for a new user turn (a given system prompt wins)."""
        messages: list[Message] = []
        system_prompt = system if system is not None else self.system
        if system_prompt:
            messages.append(Message("system", system_prompt))
        for turn in self.turns:
            messages.append(Message("user", with_results(turn.user, turn.tool_calls)))
            messages.append(Message("assistant", turn.assistant))
        messages.append(Message("user", user_text))
        return messages

    def record(self, turn: Turn, system: str | None = None) -> None:
        if system is not None:
            self.system = system
        self.turns.append(turn)


def with_results(user_text: str, calls: list[ToolCall]) -> str:
    """The user's message with the results of the calls made for it, as plain text any chat
    template takes (the model reads them as part of the question)."""
    if not calls:
        return user_text
    lines = [f"- {call.signature()} {RESULT_WORDS[call.status]} {call.result}" for call in calls]
    return "\n".join([user_text, "", "Results of the tools called for this:", *lines])


# How a result reads to the model, by the call's status.
RESULT_WORDS = {
    "ok": "returned",
    "error": "failed:",
    "declined": "was not run:",
    "interrupted": "was interrupted:",
}


class Threads:
    """All threads of this kernel by name."""

    def __init__(self) -> None:
        self._threads: dict[str, Thread] = {}

    def get(self, name: str = DEFAULT_THREAD) -> Thread:
        if name not in self._threads:
            self._threads[name] = Thread(name)
        return self._threads[name]

    def put(self, thread: Thread) -> None:
        self._threads[thread.name] = thread

    def names(self) -> list[str]:
        return sorted(self._threads)

    def __contains__(self, name: object) -> bool:
        return name in self._threads
