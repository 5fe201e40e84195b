"""One chat generation: streams deltas, times them, and records the turn in its thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .conversation import Thread, Threads, Turn
from .errors import InvalidParameter
from .manager import ModelManager
from .specs import GenerationParams, Task, Usage

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

    def provenance(self) -> dict[str, Any]:
        """What goes into the output's metadata."""
        return {
            "model": self.model,
            "backend": self.backend,
            "params": self.params,
            "usage": self.usage.as_dict(),
            "thread": self.thread,
            "interrupted": self.interrupted,
            "created": round(self.created, 3),
        }

    def __str__(self) -> str:
        return self.text


class ChatStream:
    """Iterate to receive text deltas; afterwards ``response`` holds the whole answer.

    ``cancel()`` (or breaking out of the loop, or KeyboardInterrupt) stops the backend
    between tokens; the partial answer is kept and recorded in the thread.
    """

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
    ) -> None:
        if not prompt.strip():
            raise InvalidParameter("The prompt is empty: write something for the model to answer.")
        self.model = model or manager.default_for(Task.CHAT)
        spec = manager.catalog.get(self.model)
        if spec.task is not Task.CHAT:
            raise InvalidParameter(
                f"{self.model!r} is a {spec.task.value} model, not a chat model: pick one with "
                "%llm use or -m (see %llm list)."
            )
        self._manager = manager
        self._threads = threads
        self.prompt = prompt
        self.thread_name = thread
        self.system = system
        self.new = new
        self.params = params or GenerationParams()
        self.cancel_event = threading.Event()
        self.response: ChatResponse | None = None
        self._on_response = on_response
        self._started = False

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("A ChatStream can be iterated only once.")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[str]:
        with self._manager.using(self.model) as loaded:
            thread = Thread(self.thread_name) if self.new else self._threads.get(self.thread_name)
            messages = thread.messages_for(self.prompt, self.system)
            pieces: list[str] = []
            usage = Usage()
            counts: dict[str, int] = {}
            interrupted = failed = False
            started = reported = time.perf_counter()
            deltas = loaded.backend.generate(messages, self.params, self.cancel_event)
            try:
                while True:
                    try:
                        delta = next(deltas)
                    except StopIteration as stop:
                        counts = stop.value or {}
                        break
                    now = time.perf_counter()
                    if usage.time_to_first_token_s is None:
                        usage.time_to_first_token_s = now - started
                    pieces.append(delta)
                    if now - reported >= PROGRESS_INTERVAL_S:
                        reported = now
                        self._report_progress(len(pieces), now - started, usage)
                    yield delta
            except (GeneratorExit, KeyboardInterrupt):
                interrupted = True
                raise
            except Exception:
                failed = True  # a backend failure records nothing: the thread stays as it was
                raise
            finally:
                deltas.close()
                usage.duration_s = time.perf_counter() - started
                usage.completion_tokens = counts.get("completion_tokens", len(pieces))
                usage.prompt_tokens = counts.get("prompt_tokens", 0)
                interrupted = interrupted or self.cancel_event.is_set()
                if not failed:
                    self._finish(thread, loaded.spec.backend, "".join(pieces), usage, interrupted)

    def _report_progress(self, tokens: int, elapsed: float, usage: Usage) -> None:
        """A "generating" event for live views (the sidebar), a few times a second."""
        first = usage.time_to_first_token_s or 0.0
        speed = (tokens - 1) / (elapsed - first) if tokens > 1 and elapsed > first else None
        self._manager.events.emit(
            "generating",
            self.model,
            tokens=tokens,
            tokens_per_second=speed,
            thread=self.thread_name,
        )

    def _finish(
        self, thread: Thread, backend: str, text: str, usage: Usage, interrupted: bool
    ) -> None:
        thread.record(Turn(self.prompt, text, self.model, interrupted), self.system)
        self._threads.put(thread)
        self.response = ChatResponse(
            text=text,
            model=self.model,
            backend=backend,
            params=self.params.as_dict(),
            usage=usage,
            thread=self.thread_name,
            interrupted=interrupted,
        )
        if self._on_response is not None:
            self._on_response(self.response)
