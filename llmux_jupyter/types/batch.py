"""Many independent chat requests handed to a backend at once (``Backend.generate_batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .values import GenerationParams, Message


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch; ``key`` comes back with its answer."""

    key: int
    messages: Sequence[Message]
    params: GenerationParams


@dataclass(frozen=True)
class BatchAnswer:
    """The whole answer to one request, or why it failed (``error``: a message saying what to
    do). Answers cut short by a cancel are not reported. ``logprob``: the answer's
    log-probability, when the request asked for it (``GenerationParams.logprobs``) and the
    backend measured it."""

    key: int
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    logprob: float | None = None
