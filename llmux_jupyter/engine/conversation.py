"""Named threads of messages, so ``%%llm`` remembers earlier cells."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..types.images import Image
from ..types.tools import ToolCall
from ..types.values import Message

DEFAULT_THREAD = "default"


@dataclass
class Turn:
    """One exchange; ``interrupted`` marks a reply cut short by the user. ``tokens``: its
    token count by model name, counted once (a long thread is not re-tokenized every cell)."""

    user: str
    assistant: str
    model: str
    interrupted: bool = False
    tokens: dict[str, int] = field(default_factory=dict)
    tool_calls: list[ToolCall] = field(default_factory=list)  # made before the answer
    images: tuple[Image, ...] = ()  # sent with ``user``, where ``image_offsets`` say
    image_offsets: tuple[int, ...] = ()

    def user_message(self) -> Message:
        """The user's message of this turn: its text (with the tools' results) and images."""
        return Message(
            "user", with_results(self.user, self.tool_calls), self.images, self.image_offsets
        )


def new_conversation_id() -> str:
    """A fresh id for a thread's conversation in the history log."""
    return uuid.uuid4().hex


def kept_in_thread(answer: str, interrupted: bool) -> bool:
    """Whether an answer becomes a turn of its thread (an empty one would only mislead the
    next turn)."""
    return bool(answer.strip()) or interrupted


@dataclass
class Thread:
    """A conversation: an optional system prompt and the turns so far. ``id`` names this
    conversation in the history log (``--new`` starts another under the same name)."""

    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    # The turns (by index) the prompt of the last answer held; that answer is the last turn.
    last_prompt: range = range(0)
    id: str = field(default_factory=new_conversation_id)

    def system_prompt(self, system: str | None = None) -> str | None:
        """The system prompt a new turn goes with (a given one wins)."""
        return system if system is not None else self.system

    def messages_for(
        self, user: str | Message, system: str | None = None, newest: int | None = None
    ) -> list[Message]:
        """The messages to send for a new user turn: the system prompt, the ``newest`` turns
        (default all) and ``user`` (its text, or the message with its images)."""
        messages: list[Message] = []
        system_prompt = self.system_prompt(system)
        if system_prompt:
            messages.append(Message("system", system_prompt))
        newest = len(self.turns) if newest is None else newest
        for turn in self.turns[len(self.turns) - newest :]:
            messages.append(turn.user_message())
            messages.append(Message("assistant", turn.assistant))
        messages.append(user if isinstance(user, Message) else Message("user", user))
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
    """All threads of this kernel by name. A thread not yet used in this kernel comes from
    ``load`` (the history log) when it knows one of that name, else starts empty."""

    def __init__(self, load: Callable[[str], Thread | None] | None = None) -> None:
        self._threads: dict[str, Thread] = {}
        self._load = load

    def get(self, name: str = DEFAULT_THREAD) -> Thread:
        if name not in self._threads:
            loaded = self._load(name) if self._load is not None else None
            self._threads[name] = loaded or Thread(name)
        return self._threads[name]

    def put(self, thread: Thread) -> None:
        self._threads[thread.name] = thread

    def names(self) -> list[str]:
        return sorted(self._threads)

    def __contains__(self, name: object) -> bool:
        return name in self._threads
