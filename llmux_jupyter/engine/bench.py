"""A benchmark of chat models, run through the same ChatStream as every answer (so its numbers
are what users get): each model warm, at each concurrency level, guidellm's metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter, LLMuxError
from ..types.values import GenerationParams, Task
from .bench_metrics import LevelSummary, RequestRecord, Status, summarize
from .bench_prompts import BUILTIN_PROMPTS
from .chat import ChatStream
from .conversation import Threads
from .fanin import emitting, fan_in
from .jobs import Job, task_model
from .manager import ModelManager

DEFAULT_PROMPTS = 8
DEFAULT_MAX_TOKENS = 128
MAX_REQUESTS = 10_000
MAX_CONCURRENCY = 256
WARM_UP_PROMPT = "Say hello."
WARM_UP_TOKENS = 4


@dataclass(frozen=True)
class ModelLoad:
    """How long a benchmarked model took to load (timed apart from its requests)."""

    model: str
    backend: str
    device: str
    load_seconds: float
    loaded_by_bench: bool


@dataclass
class BenchReport:
    """What a benchmark measured: ``records`` (one row per request) and ``summary`` (one row per
    model and concurrency level) are pandas DataFrames when pandas is installed, else lists of
    dicts; ``requests``, ``levels`` and ``loads`` are the dataclasses behind them."""

    prompts: int
    max_tokens: int
    concurrency: tuple[int, ...]
    requests: list[RequestRecord] = field(default_factory=list)
    levels: list[LevelSummary] = field(default_factory=list)
    loads: list[ModelLoad] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def records(self) -> Any:
        return _table([r.as_row() for r in self.requests])

    @property
    def summary(self) -> Any:
        loads = {load.model: load.load_seconds for load in self.loads}
        return _table([{**s.as_row(), "load_seconds": loads.get(s.model)} for s in self.levels])


def _table(rows: list[dict[str, Any]]) -> Any:
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


@dataclass(frozen=True)
class _Plan:
    """One model's part: the levels it runs (the others are skipped, with a note)."""

    model: str
    levels: tuple[int, ...]


class Bench(Job[RequestRecord]):
    """Iterate (once) for each request's record as it finishes; afterwards ``report`` holds
    everything, also after an interrupt or a failure.

    Models run one after another. Each is loaded first (timed apart), held busy for its whole
    run (never evicted under it) and warmed up with one short request; then each concurrency
    level sends the prompts (greedy, fresh threads that are not kept) from that many threads
    at once (level 1 from the caller's thread, as ``%%llm``). Concurrency above 1 runs only
    where the backend serves requests concurrently, otherwise a note says why. ``cancel()``
    (the kernel's interrupt) stops every request between two tokens. A model that fails (it
    cannot load, a request fails) ends its run; the others still run, and the first failure
    is raised at the end.
    """

    def __init__(
        self,
        manager: ModelManager,
        models: Sequence[str],
        *,
        prompts: int | Sequence[str] = DEFAULT_PROMPTS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        concurrency: Sequence[int] = (1,),
    ) -> None:
        super().__init__()
        self._manager = manager
        self.prompts, self.requests_per_level = _prompt_set(prompts)
        self.params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
        levels = _levels(concurrency)
        if not models:
            raise InvalidParameter("Name at least one model to benchmark.")
        if len(set(models)) != len(models):
            raise InvalidParameter("Name each model once.")
        self.report = BenchReport(self.requests_per_level, max_tokens, levels)
        self._plans = [self._plan(name, levels) for name in models]
        self.planned = sum(len(p.levels) for p in self._plans) * self.requests_per_level
        self._failure: LLMuxError | None = None  # the first model's failure, raised at the end
        self._request_failure: LLMuxError | None = None  # a failed request of the running model

    def _plan(self, name: str, levels: tuple[int, ...]) -> _Plan:
        """Checks the model (known, chat, backend installed) before anything runs."""
        model = task_model(self._manager, name, Task.CHAT)
        backend = self._manager.backends.get(self._manager.catalog.get(model).backend)
        if backend.concurrent_requests is not None:
            return _Plan(model, levels)
        skipped = [c for c in levels if c > 1]
        if skipped:
            shown = ", ".join(map(str, skipped))
            self.report.notes.append(
                f"{model}: concurrency {shown} skipped: {backend.one_at_a_time}."
            )
        return _Plan(model, tuple(c for c in levels if c == 1))

    def _run(self) -> Iterator[RequestRecord]:
        crashed = False
        try:
            for plan in self._plans:
                if self.cancel_event.is_set():
                    break
                self._request_failure = None
                try:
                    yield from self._run_model(plan)
                except LLMuxError as error:
                    self.report.notes.append(f"{plan.model}: stopped: {error}")
                    self._failure = self._failure or error
        except Exception:  # not ours: no interrupt to report, the error says what happened
            crashed = True
            raise
        finally:
            stopped = self.cancel_event.is_set() and not crashed
            self.report.interrupted = stopped and self._failure is None
        if self._failure is not None:
            raise self._failure

    def _run_model(self, plan: _Plan) -> Iterator[RequestRecord]:
        was_loaded = self._manager.is_loaded(plan.model)
        with self._manager.using(plan.model) as loaded:
            self.report.loads.append(
                ModelLoad(
                    plan.model,
                    loaded.spec.backend,
                    loaded.device,
                    loaded.load_seconds,
                    loaded_by_bench=not was_loaded,
                )
            )
            warm_up = GenerationParams(temperature=0.0, max_tokens=WARM_UP_TOKENS)
            for _ in self._stream(plan.model, WARM_UP_PROMPT, warm_up):
                pass
            for concurrency in plan.levels:
                if self.cancel_event.is_set():
                    return
                records = []
                for record in self._run_level(plan.model, loaded.spec.backend, concurrency):
                    records.append(record)
                    self.report.requests.append(record)
                    yield record
                if records:
                    self.report.levels.append(summarize(records))
                if self._request_failure is not None:
                    raise self._request_failure

    def _run_level(self, model: str, backend: str, concurrency: int) -> Iterator[RequestRecord]:
        """The level's requests from ``concurrency`` threads, each taking the next prompt; at
        concurrency 1 in the caller's thread, where ``%%llm`` computes its answers."""
        numbers = iter(range(self.requests_per_level))
        lock = threading.Lock()
        started = time.perf_counter()

        def requests() -> Iterator[RequestRecord]:
            while not (self.cancel_event.is_set() or self._request_failure is not None):
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return
                yield self._request(model, backend, concurrency, number, started)

        if concurrency == 1:
            yield from fan_in([], self.cancel_event, inline=requests())
        else:
            workers = [emitting(requests()) for _ in range(concurrency)]
            yield from fan_in(workers, self.cancel_event)

    def _request(
        self, model: str, backend: str, concurrency: int, number: int, level_start: float
    ) -> RequestRecord:
        """One timed request: sent, first and last pieces of text, complete."""
        prompt = self.prompts[number % len(self.prompts)]
        stream = self._stream(model, prompt, self.params)
        first = last = None
        status: Status = "successful"
        error = ""
        sent = time.perf_counter()
        try:
            for _ in stream:
                last = time.perf_counter()
                if first is None:
                    first = last
        except LLMuxError as failure:  # the model's run ends after this level
            status, error = "errored", str(failure)
            self._request_failure = self._request_failure or failure
        ended = time.perf_counter()
        response = stream.response
        if response is not None and response.interrupted:
            status = "incomplete"
        usage = response.usage if response is not None else None
        return RequestRecord(
            model=model,
            backend=backend,
            concurrency=concurrency,
            request=number,
            prompt=prompt,
            status=status,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            request_start=sent - level_start,
            first_token=None if first is None else first - level_start,
            last_token=None if last is None else last - level_start,
            request_end=ended - level_start,
            error=error,
        )

    def _stream(self, model: str, prompt: str, params: GenerationParams) -> ChatStream:
        """A chat request in a fresh thread that is not kept; the bench's cancel stops it. No
        repetition stop: every request runs as the raw library would, to compare speeds."""
        stream = ChatStream(
            self._manager,
            Threads(),
            prompt,
            model=model,
            thread="bench",
            new=True,
            params=params,
            repeat_limit=0,
        )
        stream.cancel_event = self.cancel_event
        return stream


def _prompt_set(prompts: int | Sequence[str]) -> tuple[tuple[str, ...], int]:
    """The prompts to cycle through, and how many requests each level sends."""
    if isinstance(prompts, bool):
        raise InvalidParameter("prompts: give a number of built-in prompts or a list of prompts.")
    if isinstance(prompts, int):
        if not 1 <= prompts <= MAX_REQUESTS:
            raise InvalidParameter(f"prompts must be between 1 and {MAX_REQUESTS}, not {prompts}.")
        return BUILTIN_PROMPTS, prompts
    if isinstance(prompts, str):
        raise InvalidParameter("prompts: give a list of prompts (a single string is one prompt).")
    given = tuple(prompts)
    if not given or not all(isinstance(p, str) and p.strip() for p in given):
        raise InvalidParameter("prompts: give a non-empty list of non-empty strings.")
    if len(given) > MAX_REQUESTS:
        raise InvalidParameter(f"prompts: at most {MAX_REQUESTS} prompts, not {len(given)}.")
    return given, len(given)


def _levels(concurrency: Sequence[int]) -> tuple[int, ...]:
    """The concurrency levels, in the order given, each once."""
    levels = tuple(dict.fromkeys(concurrency))
    if not levels or not all(
        isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= MAX_CONCURRENCY for c in levels
    ):
        raise InvalidParameter(
            f"concurrency: give whole numbers between 1 and {MAX_CONCURRENCY}, e.g. 1,4,8."
        )
    return levels
