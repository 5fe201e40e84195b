"""A thread's prompt for one backend, fitted to its context window: token counts from the
model's tokenizer (each turn's counted once and kept on the turn), then ``context.fit``."""

from __future__ import annotations

from ..backends.base import Backend
from ..types.values import Message
from .context import Costs, Fit, fit
from .conversation import Thread, Turn, with_results


def turn_tokens(backend: Backend, model: str, turn: Turn) -> int:
    """The turn's tokens in a prompt of ``model``: its two texts and their chat markup."""
    if model not in turn.tokens:
        texts = backend.count_text(with_results(turn.user, turn.tool_calls))
        texts += backend.count_text(turn.assistant)
        turn.tokens[model] = texts + 2 * backend.message_markup
    return turn.tokens[model]


def fit_thread(
    backend: Backend,
    model: str,
    thread: Thread,
    prompt: str,
    system: str | None,
    max_tokens: int | None,
    policy: str,
) -> tuple[Fit, list[Message]]:
    """The fit and the messages to send: the system prompt, as many of the newest turns as
    leave room for the answer, and ``prompt`` (ContextOverflow when it cannot fit). A backend
    that does not know its window gets the whole thread."""
    window = backend.context_window()
    if window is None:
        costs = Costs(0, [0] * len(thread.turns))
    else:
        fixed = backend.count_tokens(thread.messages_for(prompt, system, newest=0))
        costs = Costs(fixed, [turn_tokens(backend, model, turn) for turn in thread.turns])
    found = fit(costs, window, max_tokens, policy)
    return found, thread.messages_for(prompt, system, newest=found.used)
