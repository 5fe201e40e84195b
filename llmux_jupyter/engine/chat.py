"""One chat generation: streams deltas, times them, and records the turn in its thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend
from ..errors import InvalidParameter
from ..types.values import DraftStats, GenerationParams, Task, Usage
from .context import Fit, check_policy
from .conversation import Thread, Threads, Turn
from .jobs import ModelJob
from .manager import ModelManager
from .thread_fit import fit_thread, turn_tokens

PROGRESS_INTERVAL_S = 0.25


@dataclass
class ChatResponse:
    """A finished (or interrupted) answer and its provenance."""

    text: str
    model: str
    backend: str
    params: dict[str, Any]
    usage: Usage
    thread: str
    interrupted: bool = False
    created: float = field(default_factory=time.time)
    draft: DraftStats | None = None  # speculative decoding's counts, when the backend drafted
    # Why the model stopped, when the backend says: stop, max_tokens, context_full, interrupted.
    stop_reason: str | None = None
    context: Fit | None = None  # how the thread was fitted to the model's context window

    def provenance(self) -> dict[str, Any]:
        """What goes into the output's metadata."""
        found = {
            "model": self.model,
            "backend": self.backend,
            "params": self.params,
            "usage": self.usage.as_dict(),
            "thread": self.thread,
            "interrupted": self.interrupted,
            "created": round(self.created, 3),
        }
        if self.draft is not None:
            found["draft"] = self.draft.as_dict()
        if self.context is not None and self.context.window is not None:
            found["context"] = self.context.as_dict()
        return found

    @property
    def context_note(self) -> str:
        """A quiet line when turns were left out or the window filled up, else ''."""
        notes = [self.context.note(self.thread) if self.context is not None else ""]
        if self.stop_reason == "context_full" and self.text.strip():
            window = self.context.window if self.context is not None else None
            size = f" ({window:,} tokens)" if window else ""
            notes.append(
                f"⏹ context full: the answer stopped at the end of the context window{size}; "
                "continue with --new or load with a larger --set n_ctx"
            )
        return ". ".join(filter(None, notes))

    def __str__(self) -> str:
        return self.text


class ChatStream(ModelJob[str]):
    """Iterate to receive text deltas; afterwards ``response`` holds the whole answer.

    ``cancel()`` (or breaking out of the loop, or KeyboardInterrupt) stops the backend
    between tokens; the partial answer is kept and recorded in the thread.
    """

    task = Task.CHAT

    def __init__(
        self,
        manager: ModelManager,
        threads: Threads,
        prompt: str,
        *,
        model: str | None = None,
        thread: str = "default",
        system: str | None = None,
        new: bool = False,
        params: GenerationParams | None = None,
        on_response: Callable[[ChatResponse], None] | None = None,
        context: str = "truncate",
    ) -> None:
        if not prompt.strip():
            raise InvalidParameter("The prompt is empty: write something for the model to answer.")
        super().__init__(manager, model)
        self._threads = threads
        self.prompt = prompt
        self.thread_name = thread
        self.system = system
        self.new = new
        self.params = params or GenerationParams()
        self.response: ChatResponse | None = None
        self._on_response = on_response
        self._thread: Thread | None = None
        self.context_policy = check_policy(context)
        self._fit: Fit | None = None
        self._usage = Usage()
        self._reported = 0.0

    def _produce(self, backend: Backend) -> Iterator[str]:
        self._thread = Thread(self.thread_name) if self.new else self._threads.get(self.thread_name)
        self._backend = backend
        self._fit, messages = fit_thread(
            backend,
            self.model,
            self._thread,
            self.prompt,
            self.system,
            self.params.max_tokens,
            self.context_policy,
        )
        return backend.generate(messages, self.params, self.cancel_event)

    def _on_item(self, count: int, elapsed: float) -> None:
        if count == 1:
            self._usage.time_to_first_token_s = elapsed
        if elapsed - self._reported >= PROGRESS_INTERVAL_S:
            self._reported = elapsed
            self._report_progress(count, elapsed)

    def _report_progress(self, tokens: int, elapsed: float) -> None:
        """A "generating" event for live views (the sidebar), a few times a second."""
        first = self._usage.time_to_first_token_s or 0.0
        speed = (tokens - 1) / (elapsed - first) if tokens > 1 and elapsed > first else None
        self._manager.events.emit(
            "generating",
            self.model,
            tokens=tokens,
            tokens_per_second=speed,
            thread=self.thread_name,
        )

    def _finish(
        self, items: list[str], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        usage = self._usage
        usage.duration_s = seconds
        usage.completion_tokens = summary.get("completion_tokens", len(items))
        usage.prompt_tokens = summary.get("prompt_tokens", 0)
        text = "".join(items)
        assert self._thread is not None  # set by _produce, which ran first
        if text.strip() or interrupted:  # an empty answer would only mislead the next turn
            turn = Turn(self.prompt, text, self.model, interrupted)
            if self._fit is not None and self._fit.window is not None:
                before = len(self._thread.turns)
                self._thread.last_prompt = range(before - self._fit.used, before)
                turn_tokens(self._backend, self.model, turn)  # counted while the model is here
            self._thread.record(turn, self.system)
            self._threads.put(self._thread)
        self.response = ChatResponse(
            text=text,
            model=self.model,
            backend=self.provenance["backend"],
            params=self.params.as_dict(),
            usage=usage,
            thread=self.thread_name,
            interrupted=interrupted,
            draft=summary.get("draft"),
            stop_reason=summary.get("stop_reason"),
            context=self._fit,
        )
        if self._on_response is not None:
            self._on_response(self.response)
