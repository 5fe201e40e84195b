"""One chat generation: streams deltas, times them, and records the turn in its thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..backends.base import Backend, error_message
from ..errors import ImagesNotSupported, InvalidParameter, UnsupportedTask
from ..types.images import Image, SentImage
from ..types.tools import ToolCall
from ..types.values import DraftStats, GenerationParams, Message, Task, Usage
from .context import Fit, check_policy
from .conversation import Thread, Threads, Turn, kept_in_thread
from .jobs import ModelJob
from .manager import ModelManager
from .repetition import DEFAULT_REPEATS, RepetitionGuard
from .schemas import Schema
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
    # Why the model stopped, when the backend says: stop, max_tokens, context_full, interrupted;
    # or repetition (we stopped an answer that kept repeating itself).
    stop_reason: str | None = None
    repeated: str | None = None  # what kept coming, when stop_reason is repetition
    context: Fit | None = None  # how the thread was fitted to the model's context window
    # The validated instance of the schema asked for (``llm.chat(..., schema=X)``).
    value: Any = None
    schema: str | None = None  # the schema's name
    tool_calls: list[ToolCall] = field(default_factory=list)  # in the order they ran
    tool_limit_reached: bool = False  # the last answer came without tools: the cap was hit
    images: list[SentImage] = field(default_factory=list)  # sent with the prompt, in order
    # The exchange as the history logs it: the prompt, the system prompt in effect, the
    # messages sent (the thread fitted to the window), the thread's conversation id, and why
    # it failed (the backend raised, or the answer did not validate against the schema).
    prompt: str = ""
    system: str | None = None
    messages: list[Message] = field(default_factory=list)
    conversation: str = ""
    error: str | None = None
    # What the front end put into the prompt: {"variables": [...], "cells": [...]}, each with
    # its token count (set by the front end that built the prompt).
    inputs: dict[str, Any] | None = None

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
        if self.stop_reason is not None:
            found["stop_reason"] = self.stop_reason
        if self.schema is not None:
            found["schema"] = self.schema
        if self.tool_calls:
            found["tool_calls"] = [call.as_dict() for call in self.tool_calls]
        if self.images:
            found["images"] = [image.as_dict() for image in self.images]
        if self.inputs:
            found["inputs"] = self.inputs
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

    @property
    def stop_note(self) -> str:
        """A quiet line when we stopped the answer for repeating itself, else ''."""
        if self.stop_reason != "repetition" or self.repeated is None:
            return ""
        return (
            f"⏹ repetition: the answer was stopped as it kept repeating “{self.repeated[:80]}”; "
            "ask again with a higher --temperature, or allow it with "
            "%config LLMux.repeat_limit = 0"
        )

    def __str__(self) -> str:
        return self.text


class ChatStream(ModelJob[Any]):
    """Iterate to receive text deltas; afterwards ``response`` holds the whole answer.

    ``cancel()`` (or breaking out of the loop, or KeyboardInterrupt) stops the backend
    between tokens; the partial answer is kept and recorded in the thread. ``images`` go
    with the prompt (before its text, or where ``image_offsets`` say); a model known to take
    only text refuses them before it loads (ImagesNotSupported). ``on_response`` gets the
    response once the answer ends, however it ends: also after a failure (with ``error`` set)
    once the prompt was sent.
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
        schema: Schema | None = None,
        images: Sequence[Image] = (),
        image_offsets: Sequence[int] = (),
        repeat_limit: int = DEFAULT_REPEATS,
    ) -> None:
        if not prompt.strip():
            raise InvalidParameter("The prompt is empty: write something for the model to answer.")
        super().__init__(manager, model)
        self._threads = threads
        self.prompt = prompt
        self.message = Message("user", prompt, tuple(images), tuple(image_offsets))
        if self.message.images:
            self._check_images(manager.takes_images(self.model))
        self.thread_name = thread
        self.system = system
        self.new = new
        self.params = params or GenerationParams()
        self.schema = schema
        if schema is not None:
            self.params = replace(self.params, json_schema=schema.json_schema)
        self.response: ChatResponse | None = None
        self._on_response = on_response
        self._thread: Thread | None = None
        self.context_policy = check_policy(context)
        self._fit: Fit | None = None
        self._sent: list[Message] = []
        self._usage = Usage()
        self._reported = 0.0
        self._repetition = RepetitionGuard(repeat_limit)

    def _check_images(self, takes_images: bool | None) -> None:
        """ImagesNotSupported when the model is known to take only text."""
        if takes_images is not False:
            return
        able = self._manager.image_models()
        todo = (
            f"ask one that does with -m NAME: {', '.join(able)}."
            if able
            else "no registered model does: register a transformers vision model, a GGUF with "
            "--mmproj FILE, or a server's vision model (README: Images in prompts)."
        )
        names = ", ".join(image.name for image in self.message.images)
        raise ImagesNotSupported(
            f"{self.model!r} takes only text, and the prompt has images ({names}): {todo} "
            "Nothing was sent."
        )

    def _produce(self, backend: Backend) -> Iterator[str]:
        if self.message.images:
            self._check_images(backend.takes_images_now())
        if self.schema is not None and not backend.json_schemas:
            raise UnsupportedTask(
                f"{self.model!r} ({backend.name} backend) cannot decode under a schema: use a "
                "llamacpp, transformers or openai model."
            )
        return backend.generate(self._messages(backend), self.params, self.cancel_event)

    def _messages(self, backend: Backend) -> list[Message]:
        """The thread's messages and the prompt, fitted to the backend's context window (the
        thread is fetched here)."""
        self._thread = Thread(self.thread_name) if self.new else self._threads.get(self.thread_name)
        self._backend = backend
        self._fit, self._sent = fit_thread(
            backend,
            self.model,
            self._thread,
            self.message,
            self.system,
            self.params.max_tokens,
            self.context_policy,
        )
        return self._sent

    def _run(self) -> Iterator[Any]:
        try:
            yield from super()._run()
        except Exception as error:
            if self._sent:  # the prompt went to the model: an exchange that failed
                self._failed(error)
            raise
        finally:
            if self.response is not None and self._on_response is not None:
                self._on_response(self.response)

    def _failed(self, error: Exception) -> None:
        """Mark the response as failed (the backend kept nothing: an empty one)."""
        if self.response is None:
            self.response = self._response("", {}, interrupted=False)
            self._complete(self.response, {})
        self.response.error = error_message(error)

    def _turn(self, text: str, interrupted: bool) -> Turn:
        """The turn the thread records for this answer."""
        message = self.message
        return Turn(
            self.prompt, text, self.model, interrupted,
            images=message.images, image_offsets=message.image_offsets,
        )  # fmt: skip

    def _complete(self, response: ChatResponse, summary: dict[str, Any]) -> None:
        """Add to the response what a subclass knows (before anyone sees it)."""

    def _on_item(self, item: Any, count: int, elapsed: float) -> None:
        if isinstance(item, str) and self._repetition.feed(item):
            self.stop("repetition")
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
        if kept_in_thread(text, interrupted):
            turn = self._turn(text, interrupted)
            if self._fit is not None and self._fit.window is not None:
                before = len(self._thread.turns)
                self._thread.last_prompt = range(before - self._fit.used, before)
                turn_tokens(self._backend, self.model, turn)  # counted while the model is here
            self._thread.record(turn, self.system)
            self._threads.put(self._thread)
        self.response = self._response(text, summary, interrupted)
        self._complete(self.response, summary)
        if self.schema is not None and not interrupted:
            self.response.schema = self.schema.name
            cut = _was_cut(self.response, self.params.max_tokens)
            self.response.value = self.schema.parse(text, cut)

    def _response(self, text: str, summary: dict[str, Any], interrupted: bool) -> ChatResponse:
        assert self._thread is not None  # set by _produce, which ran first
        return ChatResponse(
            text=text,
            model=self.model,
            backend=self._backend.spec.backend,
            params=self.params.as_dict(),
            usage=self._usage,
            thread=self.thread_name,
            interrupted=interrupted,
            draft=summary.get("draft"),
            stop_reason=self.stopped or summary.get("stop_reason"),
            repeated=self._repetition.repeated,
            context=self._fit,
            images=self._sent_images(),
            prompt=self.prompt,
            system=self._thread.system_prompt(self.system),
            messages=self._sent,
            conversation=self._thread.id,
        )

    def _sent_images(self) -> list[SentImage]:
        """What the prompt's images were as sent: sizes, bytes and token costs."""
        if not self.message.images:
            return []
        limit = self._backend.image_limit()
        sent = []
        for image in self.message.images:
            fitted = image.fitted(limit)
            tokens = self._backend.count_image(fitted)
            sent.append(SentImage(image.name, image.original, fitted.size, len(fitted.data),
                                  fitted.mime, tokens))  # fmt: skip
        return sent


def _was_cut(response: ChatResponse, max_tokens: int | None) -> bool:
    """Whether the token cap (or the context) ended the answer; counted when the backend
    gives no stop reason."""
    if response.stop_reason is not None:
        return response.stop_reason in ("max_tokens", "context_full")
    return max_tokens is not None and response.usage.completion_tokens >= max_tokens
