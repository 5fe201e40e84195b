"""Code completion as you type: fill-in-the-middle (FIM) prompts for a code model, run one at a
time in a worker thread, where a newer request cancels the one before.

The front end sends the cell's text before and after the cursor and the sources of the cells
above it. The prompt is the model's own FIM layout, its markers found in its vocabulary
(``<|fim_prefix|>`` before ``<|fim_suffix|>`` after ``<|fim_middle|>`` for Qwen2.5-Coder).
The answer streams back cut at a sensible end (see ``BlockEnd``). A completion records
nothing: no thread, no history, no ``llm.last``; the model is held busy under the manager
while it runs, like any other job, so budgets, keep-alive and ``%llm ps`` count it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..backends.base import Backend, error_message
from ..errors import CompletionUnsupported, InvalidParameter, LLMuxError
from ..models.spec import LoadOptions
from ..types.values import GenerationParams, Task
from .jobs import task_model
from .manager import ModelManager

log = logging.getLogger(__name__)

DEFAULT_COMPLETION_TOKENS = 64
DEFAULT_COMPLETION_LINES = 12
MAX_TOKENS_LIMIT = 512
DEFAULT_WINDOW = 2048
CANCEL_WAIT_S = 30.0
# Shares of the model's window: the cells above at most a third, the text after the cursor
# at most an eighth; the cell before the cursor gets what remains.
CONTEXT_SHARE = 3
AFTER_SHARE = 8
CELL_SEPARATOR = "\n\n"
# The markers' spellings, in the prefix-suffix-middle order: Qwen2.5-Coder and CodeGemma,
# then StarCoder and its kin.
FIM_MARKERS = (
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
)
# Tokens that end a middle (llama.cpp also stops at the model's end-of-generation tokens;
# these cover a text rendering of them).
FIM_STOPS = (
    "<|endoftext|>",
    "<|file_sep|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_separator|>",
    "<file_sep>",
    "<fim_pad>",
)


@dataclass(frozen=True)
class FIMFormat:
    """A model's fill-in-the-middle markers and the tokens that end a middle."""

    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...] = ()

    def prompt(self, before: str, after: str) -> str:
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


def fim_format(model: str, vocabulary: frozenset[str]) -> FIMFormat:
    """The FIM format of a model whose vocabulary holds ``vocabulary`` of FIM_MARKERS and
    FIM_STOPS; CompletionUnsupported when it has no complete set of markers."""
    for markers in FIM_MARKERS:
        if vocabulary.issuperset(markers):
            return FIMFormat(*markers, stops=tuple(t for t in FIM_STOPS if t in vocabulary))
    raise CompletionUnsupported(
        f"{model!r} has no fill-in-the-middle tokens ({', '.join(FIM_MARKERS[0])}) in its "
        "vocabulary, so it cannot complete code: pick a code model trained for it, e.g. "
        "%llm complete --model qwen2.5-coder-0.5b."
    )


@dataclass(frozen=True)
class CompletionRequest:
    """What to complete: the cell's text around the cursor and the sources of the cells above
    it (oldest first)."""

    before: str
    after: str = ""
    context: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_COMPLETION_TOKENS
    max_lines: int = DEFAULT_COMPLETION_LINES

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise InvalidParameter(
                f"max_tokens must be between 1 and {MAX_TOKENS_LIMIT}, not {self.max_tokens}."
            )
        if self.max_lines < 1:
            raise InvalidParameter(f"max_lines must be at least 1, not {self.max_lines}.")


@dataclass(frozen=True)
class Completion:
    """A finished (or cancelled, or failed) completion.

    ``reason``: "stop" (the model ended), "end" (the line or block ended), "max_tokens",
    "cancelled" or "error" (``error`` says why)."""

    request_id: int
    text: str
    reason: str
    model: str | None = None
    tokens: int = 0  # generated, shown or not
    first_token_seconds: float | None = None  # from the request to the model's first token
    first_text_seconds: float | None = None  # ... to the first text shown
    seconds: float = 0.0
    error: str | None = None


class CompletionListener(Protocol):
    """Where a request's pieces go (from the worker thread)."""

    def delta(self, request_id: int, text: str) -> None: ...
    def finished(self, completion: Completion) -> None: ...


class BlockEnd:
    """How much of a streamed completion to show.

    When text follows the cursor on its line: up to the end of that line, less what repeats
    the text that follows. Else up to the end of the block (before a line indented less than
    the cursor's line, or, at the top level, before a blank line that follows code), at most
    ``max_lines`` lines. On a line of only indentation, the prompt leaves that indentation out
    (models continue a line break better than trailing spaces) and ``eat`` that much of the
    answer's own indentation is dropped. Trailing whitespace is held back until text follows
    it, so what is shown only grows."""

    def __init__(self, before: str, after: str, max_lines: int) -> None:
        line_before = before.rpartition("\n")[2]
        self.rest_of_line = after.partition("\n")[0].strip()
        self.indent = _indent(line_before)
        self.eat = blank_indent(before)
        self.code_before = bool(line_before.strip())
        self.max_lines = max_lines
        self.text = ""
        self.shown = 0
        self.done = False

    def feed(self, delta: str) -> str:
        """Take the next piece of the answer; return the text newly shown."""
        if self.done:
            return ""
        self.text += delta
        if self.eat:
            first_line = self.text.partition("\n")[0]
            if not first_line.strip() and "\n" not in self.text:
                return ""  # its indentation is not known yet
            self.text = self.text[min(self.eat, _indent(first_line)) :]
            self.eat = 0
        end, self.done = self._end()
        end = max(self.shown, len(self.text[:end].rstrip()))
        new, self.shown = self.text[self.shown : end], end
        return new

    @property
    def result(self) -> str:
        return self.text[: self.shown]

    def _end(self) -> tuple[int, bool]:
        """Where the shown text may end, and whether the completion is over there."""
        if self.rest_of_line:
            line, newline, _ = self.text.partition("\n")
            return len(line) - _overlap(line.rstrip(), self.rest_of_line), bool(newline)
        lines = self.text.split("\n")
        position = len(lines[0])
        code = self.code_before or bool(lines[0].strip())
        for number, line in enumerate(lines[1:], start=1):
            if number >= self.max_lines:
                return position, True
            if line.strip():
                if _indent(line) < self.indent:
                    return position, True
                code = True
            elif self.indent == 0 and code and number < len(lines) - 1:
                return position, True  # a blank line after top-level code
            position += 1 + len(line)
        return len(self.text), False


def _overlap(text: str, following: str) -> int:
    """Length of the longest end of ``text`` that starts ``following``."""
    return next((n for n in range(min(len(text), len(following)), 0, -1)
                 if following.startswith(text[-n:])), 0)  # fmt: skip


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def blank_indent(before: str) -> int:
    """The length of the cursor's line when it holds only indentation, else 0."""
    line = before.rpartition("\n")[2]
    return 0 if line.strip() else len(line)


def fit_prompt(
    fim: FIMFormat, request: CompletionRequest, count: Callable[[str], int], budget: int
) -> str:
    """The FIM prompt within ``budget`` tokens: the cells above keep their newest lines up to a
    third of it, the text after the cursor its first lines up to an eighth, the cell before the
    cursor its last lines in what remains. The cells above are cut the same way however the
    current cell grows, so successive prompts share their prefix (the backend's KV cache)."""
    context = "".join(source.rstrip() + CELL_SEPARATOR for source in request.context)
    context = _keep_tokens(context, budget // CONTEXT_SHARE, count, keep_end=True)
    after = _keep_tokens(request.after, budget // AFTER_SHARE, count, keep_end=False)
    rest = budget - count(fim.prompt("", "")) - _count(context, count) - _count(after, count)
    before = _keep_tokens(request.before, max(rest, 0), count, keep_end=True)
    return fim.prompt(context + before, after)


def _count(text: str, count: Callable[[str], int]) -> int:
    return count(text) if text else 0


def _keep_tokens(text: str, tokens: int, count: Callable[[str], int], *, keep_end: bool) -> str:
    """``text`` cut to at most ``tokens`` tokens, keeping its end (or its start), at a line
    boundary where one is near."""
    total = _count(text, count)
    while total > tokens:
        keep = min(len(text) - 1, int(len(text) * tokens / total * 0.95))
        if keep_end:
            text = text[len(text) - keep :] if keep > 0 else ""
            newline = text.find("\n")
            if 0 <= newline < len(text) // 2:
                text = text[newline + 1 :]
        else:
            text = text[: max(keep, 0)]
            newline = text.rfind("\n")
            if newline > len(text) // 2:
                text = text[: newline + 1]
        total = _count(text, count)
    return text


class _Collected:
    """A listener that keeps the completion, for callers that wait for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.completion: Completion | None = None

    def delta(self, request_id: int, text: str) -> None:
        pass  # the completion's text has it all

    def finished(self, completion: Completion) -> None:
        self.completion = completion
        self.done.set()


@dataclass
class _Job:
    request_id: int
    request: CompletionRequest
    listener: CompletionListener
    submitted: float = field(default_factory=time.perf_counter)
    cancel: threading.Event = field(default_factory=threading.Event)

    def cancelled(self, model: str | None = None) -> Completion:
        return Completion(self.request_id, "", "cancelled", model)


class Completer:
    """The kernel's completion service: one worker thread, at most one request running and one
    waiting (a newer request replaces the waiting one and cancels the running one). ``model``
    None: completion is off."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager
        self.model: str | None = None
        self._formats: dict[str, FIMFormat] = {}
        self._lock = threading.Condition()
        self._pending: _Job | None = None
        self._running: _Job | None = None
        self._worker: threading.Thread | None = None

    def use(self, name: str | None) -> None:
        """Complete with ``name`` from now on (None: off), after checking it can."""
        if name is not None:
            self.check_model(name)
        self.model = name

    def check_model(self, name: str) -> FIMFormat:
        """``name``'s FIM format; UnknownModel, UnsupportedTask or CompletionUnsupported if
        it cannot complete code. Reads the model's vocabulary, loads nothing."""
        name = task_model(self.manager, name, Task.CHAT)
        if name not in self._formats:
            backend = self._backend_of(name)
            if not backend.raw_completion:
                raise CompletionUnsupported(
                    f"{name!r} runs on the {backend.name} backend, which cannot continue a raw "
                    "prompt as code completion needs: pick a llamacpp code model, e.g. "
                    "%llm complete --model qwen2.5-coder-0.5b."
                )
            wanted = {text for markers in FIM_MARKERS for text in markers} | set(FIM_STOPS)
            self._formats[name] = fim_format(name, backend.vocabulary_tokens(wanted))
        return self._formats[name]

    def _backend_of(self, name: str) -> Backend:
        """The loaded model's backend, or an unloaded one made to read the model's files."""
        if self.manager.is_loaded(name):
            return self.manager.get_loaded(name).backend
        spec = self.manager.catalog.get(name)
        return self.manager.backends.get(spec.backend)(spec, LoadOptions())

    def submit(
        self, request_id: int, request: CompletionRequest, listener: CompletionListener
    ) -> None:
        """Queue ``request``, answered through ``listener`` from the worker thread; the running
        and the waiting request, if any, end as cancelled."""
        job = _Job(request_id, request, listener)
        with self._lock:
            dropped = self._cancel_locked(None)
            self._pending = job
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="llmux-complete", daemon=True
                )
                self._worker.start()
            self._lock.notify_all()
        if dropped is not None:
            dropped.listener.finished(dropped.cancelled())

    def cancel(self, request_id: int | None = None, wait: float | None = None) -> bool:
        """Cancel the running and waiting requests (only ``request_id``, if given); with
        ``wait``, wait up to that many seconds until none runs. Returns whether none runs."""
        with self._lock:
            dropped = self._cancel_locked(request_id)
        if dropped is not None:
            dropped.listener.finished(dropped.cancelled())
        with self._lock:
            if wait is not None:
                self._lock.wait_for(lambda: self._running is None, wait)
            return self._running is None

    def complete(self, request: CompletionRequest, request_id: int = 0) -> Completion:
        """``request``'s completion, waited for (it cancels any other); an interrupt cancels it."""
        collected = _Collected()
        self.submit(request_id, request, collected)
        try:
            collected.done.wait()
        except KeyboardInterrupt:
            self.cancel(request_id, wait=CANCEL_WAIT_S)
            raise
        assert collected.completion is not None
        return collected.completion

    def _cancel_locked(self, request_id: int | None) -> _Job | None:
        """Cancel the running job and drop the waiting one (if ``request_id`` is None or theirs);
        returns the dropped job, to be told outside the lock."""
        running, pending = self._running, self._pending
        if running is not None and request_id in (None, running.request_id):
            running.cancel.set()
        if pending is not None and request_id in (None, pending.request_id):
            pending.cancel.set()
            self._pending = None
            return pending
        return None

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is not None)
                job, self._pending = self._pending, None
                assert job is not None
                self._running = job
            try:
                completion = self._run(job)
            except LLMuxError as error:
                completion = Completion(job.request_id, "", "error", self.model, error=str(error))
            except Exception as error:  # the worker outlives any one request
                log.exception("llmux completion failed")
                completion = Completion(
                    job.request_id, "", "error", self.model, error=error_message(error)
                )
            with self._lock:
                self._running = None
                self._lock.notify_all()
            job.listener.finished(completion)

    def _run(self, job: _Job) -> Completion:
        model = self.model
        if model is None:
            raise CompletionUnsupported(
                "Code completion is off: turn it on with %llm complete --model NAME."
            )
        fim = self.check_model(model)
        if job.cancel.is_set():
            return job.cancelled(model)
        with self.manager.using(model) as loaded:
            if job.cancel.is_set():
                return job.cancelled(model)
            return self._generate(job, loaded.backend, fim, model)

    def prompt(self, request: CompletionRequest) -> str:
        """The FIM prompt the completion model, loaded, gets for ``request``."""
        if self.model is None:
            raise CompletionUnsupported("Code completion is off: no completion model is set.")
        backend = self.manager.get_loaded(self.model).backend
        return self._prompt(request, backend, self.check_model(self.model))

    def _prompt(self, request: CompletionRequest, backend: Backend, fim: FIMFormat) -> str:
        """Without the cursor line's indentation when it holds nothing else (see BlockEnd)."""
        before = request.before[: len(request.before) - blank_indent(request.before)]
        budget = (backend.context_window() or DEFAULT_WINDOW) - request.max_tokens - 1
        return fit_prompt(fim, replace(request, before=before), backend.count_text, budget)

    def _generate(self, job: _Job, backend: Backend, fim: FIMFormat, model: str) -> Completion:
        request = job.request
        shape = BlockEnd(request.before, request.after, request.max_lines)
        prompt = self._prompt(request, backend, fim)
        params = GenerationParams(temperature=0.0, max_tokens=request.max_tokens, stop=fim.stops)
        tokens, first_token, first_text = 0, None, None
        pieces = backend.complete(prompt, params, job.cancel)
        try:
            for delta in pieces:
                tokens += 1
                first_token = first_token or time.perf_counter() - job.submitted
                shown = shape.feed(delta)
                if shown:
                    first_text = first_text or time.perf_counter() - job.submitted
                    job.listener.delta(job.request_id, shown)
                if shape.done:
                    break
        finally:
            pieces.close()
        if job.cancel.is_set():
            reason = "cancelled"
        elif shape.done:
            reason = "end"
        else:
            reason = "max_tokens" if tokens >= request.max_tokens else "stop"
        return Completion(
            job.request_id,
            shape.result,
            reason,
            model,
            tokens=tokens,
            first_token_seconds=first_token,
            first_text_seconds=first_text,
            seconds=time.perf_counter() - job.submitted,
        )
