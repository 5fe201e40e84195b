"""A thread's prompt for one backend, fitted to its context window: token counts from the
model's tokenizer (each turn's counted once and kept on the turn; images at the model's own
cost when it knows it), then ``context.fit``."""

from __future__ import annotations

from ..backends.base import Backend
from ..types.values import Message
from .context import Costs, Fit, fit
from .conversation import Thread, Turn


def turn_tokens(backend: Backend, model: str, turn: Turn) -> int:
    """The turn's tokens in a prompt of ``model``: its two messages and their chat markup."""
    if model not in turn.tokens:
        texts = message_tokens(backend, turn.user_message())
        texts += backend.count_text(turn.assistant)
        turn.tokens[model] = texts + 2 * backend.message_markup
    return turn.tokens[model]


def message_tokens(backend: Backend, message: Message) -> int:
    """Tokens of one message's text and images as ``backend`` gets it (markup aside)."""
    if message.images and backend.takes_images_now() is False:
        message = message.without_images(note=True)
    return backend.count_text(message.content) + image_tokens(backend, message)


def image_tokens(backend: Backend, message: Message) -> int:
    """Tokens the message's images cost, each fitted to the model's size."""
    limit = backend.image_limit()
    return sum(backend.count_image(image.fitted(limit)) for image in message.images)


def fit_thread(
    backend: Backend,
    model: str,
    thread: Thread,
    prompt: Message,
    system: str | None,
    max_tokens: int | None,
    policy: str,
) -> tuple[Fit, list[Message]]:
    """The fit and the messages to send: the system prompt, as many of the newest turns as
    leave room for the answer, and ``prompt`` (ContextOverflow when it cannot fit). A backend
    that does not know its window gets the whole thread; one that takes only text gets the
    images of earlier turns said in words."""
    window = backend.context_window()
    if window is None:
        costs = Costs(0, [0] * len(thread.turns))
    else:
        frame = thread.messages_for(prompt.without_images(), system, newest=0)
        fixed = backend.count_tokens(frame) + image_tokens(backend, prompt)
        costs = Costs(fixed, [turn_tokens(backend, model, turn) for turn in thread.turns])
    found = fit(costs, window, max_tokens, policy)
    messages = thread.messages_for(prompt, system, newest=found.used)
    if backend.takes_images_now() is False:
        messages = [message.without_images(note=True) for message in messages]
    return found, messages
