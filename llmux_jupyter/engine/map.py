"""``llm.map``: one prompt template over every row of a table, at the backend's best throughput
(transformers batches, a server's concurrency, llama.cpp one row after another reusing the
shared prompt prefix), with answers cached on disk and per-row failures kept apart."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import error_message
from ..errors import InvalidParameter, SchemaError, UnsupportedTask
from ..types.batch import BatchAnswer, BatchRequest
from ..types.values import GenerationParams, Message, Task
from .jobs import Job, task_model
from .manager import ModelManager
from .map_cache import AnswerCache, answer_key, deterministic, model_identity
from .map_table import as_table, render_prompts
from .schemas import Schema

PROGRESS_INTERVAL_S = 0.25
ANSWER = "answer"


@dataclass
class MapUsage:
    """What a map cost: rows answered (``done``), failed and served from the cache, tokens,
    the wall time of the whole map and the part of it spent loading the model (the rates
    leave that out)."""

    rows: int
    done: int = 0
    failed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    def __add__(self, other: MapUsage) -> MapUsage:
        """Two maps' usage together (an operator that runs several, e.g. reduce's levels)."""
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return MapUsage(*(mine + theirs for mine, theirs in pairs))

    @property
    def rows_per_second(self) -> float | None:
        working = self.seconds - self.load_seconds
        return self.done / working if working > 0 else None

    @property
    def tokens_per_second(self) -> float | None:
        """Answer tokens generated (not read from the cache) per second of work."""
        working = self.seconds - self.load_seconds
        return self.completion_tokens / working if working > 0 else None


@dataclass
class MapResult:
    """The answers, aligned with the input: ``values[i]`` is row i's answer (text, or the
    schema's instance; None if it failed or was not reached), ``errors`` maps a row's label
    (the DataFrame's index, else its position; its position too when the index repeats a
    label) to why it failed (e.g. a SchemaError's message); ``fields`` are the table's answer
    columns; ``logprobs[i]`` is row i's answer log-probability when the map asked for them
    (None where the backend gave none); ``kind`` names the operator the map served."""

    model: str
    labels: list[Any]
    values: list[Any]
    errors: dict[Any, str]
    usage: MapUsage
    interrupted: bool = False
    index_name: Any = None
    fields: tuple[str, ...] = (ANSWER,)
    logprobs: list[float | None] = field(default_factory=list)
    kind: str = "map"

    def error_key(self, position: int) -> Any:
        """Row ``position`` 's key in ``errors``: its label, or its position when labels repeat."""
        labels = self.labels
        return labels[position] if len(set(labels)) == len(labels) else position

    def row_error(self, position: int) -> str | None:
        """The error of the row at ``position``, or None if it has an answer."""
        return self.errors.get(self.error_key(position))

    def to_pandas(self) -> Any:
        """A DataFrame on the input's index (ready for ``df.join``): one column ``answer`` or
        one per schema field, and ``error``."""
        import pandas

        rows = [row_columns(value, self.fields) for value in self.values]
        index = pandas.Index(self.labels, name=self.index_name)
        frame = pandas.DataFrame(rows, index=index, columns=list(self.fields))
        frame["error"] = [self.row_error(i) for i in range(len(self.labels))]
        return frame

    def summary(self) -> str:
        """One line: rows done, failed and cached, time and rates."""
        usage = self.usage
        rates = []
        if usage.rows_per_second is not None:
            rates.append(f"{usage.rows_per_second:.2f} rows/s")
        if usage.completion_tokens and usage.tokens_per_second is not None:
            rates.append(f"{usage.tokens_per_second:.1f} tokens/s")  # none when all were cached
        speed = f" ({', '.join(rates)})" if rates else ""
        loading = f", {usage.load_seconds:.1f} s of it loading" if usage.load_seconds >= 0.1 else ""
        parts = [
            f"{self.model}: {usage.done} of {usage.rows} rows in {usage.seconds:.2f} s"
            f"{loading}{speed}"
        ]
        return "; ".join(parts + outcome(usage.cached, usage.failed, self.interrupted))

    def __repr__(self) -> str:
        return f"<MapResult {self.summary()}>"


def outcome(cached: int, failed: int, interrupted: bool, what: str = "") -> list[str]:
    """The parts of a summary after its first: what came from the cache (``what`` names
    it), failed, or was interrupted."""
    parts = [f"{cached} {what + ' ' if what else ''}from the cache"] if cached else []
    if failed:
        parts.append(f"{failed} failed (see .errors)")
    return [*parts, "interrupted"] if interrupted else parts


def row_columns(value: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """A row's value as its columns: the answer, or the schema instance's fields."""
    if fields == (ANSWER,):
        return {ANSWER: value}
    if value is None:
        return {}
    if hasattr(value, "model_dump"):  # a pydantic model
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(value)


@dataclass(frozen=True)
class MapRow:
    """One row's outcome, as the map yields them (in the order they finish)."""

    position: int
    label: Any
    value: Any = None
    error: str | None = None
    cached: bool = False
    completion_tokens: int = 0


@dataclass
class _Plan:
    """The rows' requests and cache keys (None: not cached)."""

    requests: list[BatchRequest]
    keys: list[str | None] = field(default_factory=list)


class MapJob(Job[MapRow]):
    """Iterate (once) for each row as it finishes; ``result`` holds the MapResult afterwards,
    also after an interrupt (finished rows kept) or a failure (``error`` says which).
    ``run()`` does both with a progress bar. ``on_finish`` gets the job once it ends.

    Every prompt is rendered (and the model checked) when the job is made, so bad input fails
    before anything runs. Cached answers come first; the model is loaded only for the rest,
    and held busy (never evicted) while it answers them.
    """

    def __init__(
        self,
        manager: ModelManager,
        template: str,
        data: Any,
        *,
        model: str | None = None,
        system: str | None = None,
        params: GenerationParams | None = None,
        variables: Mapping[str, Any] | None = None,
        schema: Any = None,
        batch_size: int | None = None,
        concurrency: int | None = None,
        cache: bool = True,
        on_finish: Callable[[MapJob], None] | None = None,
        logprobs: bool = False,
        kind: str = "map",
    ) -> None:
        super().__init__()
        self._manager = manager
        self.model = task_model(manager, model, Task.CHAT)
        self.schema = None if schema is None else Schema.of(schema)
        self.backend = manager.catalog.get(self.model).backend
        backend = manager.backends.get(self.backend)
        if self.schema is not None and not backend.json_schemas:
            raise UnsupportedTask(
                f"{self.model!r} ({backend.name} backend) cannot decode under a schema: use a "
                "llamacpp, transformers or openai model."
            )
        self.params = params or GenerationParams()
        if self.schema is not None:
            self.params = dataclasses.replace(
                self.params,
                json_schema=self.schema.json_schema,
                logprobs=logprobs and backend.answer_logprobs,
            )
        self.batch_size = _positive("batch_size", batch_size)
        self.concurrency = _positive("concurrency", concurrency)
        table = as_table(data)
        self.prompts = render_prompts(template, table, variables)
        self.template = template
        self.columns = table.columns
        self.system = system
        self.error: str | None = None
        self._on_finish = on_finish
        self._cache = AnswerCache() if cache and deterministic(self.params) else None
        self.result = MapResult(
            self.model,
            table.labels,
            [None] * len(table.rows),
            {},
            MapUsage(len(table.rows)),
            index_name=table.index_name,
            fields=_fields(self.schema),
            logprobs=[None] * len(table.rows),
            kind=kind,
        )
        self._reported = 0.0

    def _plan(self) -> _Plan:
        messages = [Message("system", self.system)] if self.system else []
        requests = [
            BatchRequest(i, [*messages, Message("user", prompt)], self.params)
            for i, prompt in enumerate(self.prompts)
        ]
        if self._cache is None:
            return _Plan(requests, [None] * len(requests))
        identity = model_identity(self._manager.catalog.get(self.model))
        logprobs = {"logprobs": True} if self.params.logprobs else {}  # older keys unchanged
        keys: list[str | None] = [
            answer_key(
                identity,
                {
                    "messages": [m.as_dict() for m in r.messages],
                    "params": self.params.as_dict(),
                    "schema": self.params.json_schema,
                    **logprobs,
                },
            )
            for r in requests
        ]
        return _Plan(requests, keys)

    def _run(self) -> Iterator[MapRow]:
        started = time.perf_counter()
        try:
            plan = self._plan()
            stored = self._cache.get(k for k in plan.keys if k) if self._cache else {}
            pending = []
            for request, key in zip(plan.requests, plan.keys, strict=True):
                hit = stored.get(key) if key else None
                if hit is None:
                    pending.append(request)
                else:
                    yield self._record(dataclasses.replace(hit, key=request.key), cached=True)
            if pending and not self.cancel_event.is_set():
                yield from self._generate(pending, plan.keys, started)
        except (GeneratorExit, KeyboardInterrupt):
            self.cancel_event.set()
            raise
        except Exception as error:
            self.error = error_message(error)
            raise
        finally:
            usage = self.result.usage
            usage.seconds = time.perf_counter() - started
            self.result.interrupted = self.cancel_event.is_set() and (
                usage.done + usage.failed < usage.rows
            )
            if self._on_finish is not None:
                self._on_finish(self)

    def _generate(
        self, requests: list[BatchRequest], keys: list[str | None], started: float
    ) -> Iterator[MapRow]:
        usage = self.result.usage
        entered = time.perf_counter()
        with self._manager.using(self.model) as loaded:
            usage.load_seconds = time.perf_counter() - entered
            answers = loaded.backend.generate_batch(
                requests,
                self.cancel_event,
                batch_size=self.batch_size,
                concurrency=self.concurrency,
                free_memory=self._free_memory(loaded.device),
            )
            try:
                for answer in answers:
                    row = self._record(answer, cached=False)
                    key = keys[answer.key]
                    if self._cache is not None and key is not None and row.error is None:
                        self._cache.put(key, answer)
                    usage.seconds = time.perf_counter() - started  # the rates so far
                    self._report_progress()
                    yield row
            finally:
                answers.close()

    def _record(self, answer: BatchAnswer, cached: bool) -> MapRow:
        result, usage = self.result, self.result.usage
        label = result.labels[answer.key]
        if answer.error is not None:
            result.errors[result.error_key(answer.key)] = answer.error
            usage.failed += 1
            return MapRow(answer.key, label, error=answer.error)
        try:
            value = self._value(answer)
        except SchemaError as error:
            result.errors[result.error_key(answer.key)] = str(error)
            usage.failed += 1
            return MapRow(answer.key, label, error=str(error))
        result.values[answer.key] = value
        result.logprobs[answer.key] = answer.logprob
        usage.done += 1
        if cached:
            usage.cached += 1
        else:
            usage.prompt_tokens += answer.prompt_tokens
            usage.completion_tokens += answer.completion_tokens
        return MapRow(answer.key, label, value, None, cached, answer.completion_tokens)

    def _value(self, answer: BatchAnswer) -> Any:
        """The row's answer: its text, or the schema's validated instance."""
        if self.schema is None:
            return answer.text.strip()
        cap = self.params.max_tokens
        return self.schema.parse(
            answer.text, cut=cap is not None and answer.completion_tokens >= cap
        )

    def _free_memory(self, device: str) -> int | None:
        """Bytes of the device's budget that no model holds (None: no budget, e.g. remote)."""
        budget = self._manager.budgets.get(device)
        if budget is None:
            return None
        return max(0, budget.budget - self._manager.used().get(device, 0))

    def _report_progress(self) -> None:
        """A "generating" event for live views (``%llm ps``, the sidebar), a few times a second."""
        usage = self.result.usage
        if usage.seconds - self._reported < PROGRESS_INTERVAL_S:
            return
        self._reported = usage.seconds
        self._manager.events.emit(
            "generating",
            self.model,
            tokens=usage.completion_tokens,
            tokens_per_second=usage.tokens_per_second,
            thread="map",
        )

    def run(self, progress: bool = True) -> MapResult:
        """Iterate to the end with a progress bar (tqdm: a widget in Jupyter, text in a
        terminal) showing rows done, rows/s, tokens/s and the time left; returns ``result``.
        A KeyboardInterrupt ends the map and returns the rows finished so far."""
        title = f"{self.result.kind} {self.model}"
        bar = progress_bar(title, len(self.prompts)) if progress else None
        try:
            for _ in self:
                if bar is not None:
                    tokens = self.result.usage.tokens_per_second
                    bar.set_postfix_str(f"{tokens or 0:.1f} tokens/s", refresh=False)
                    bar.update()
        except KeyboardInterrupt:
            pass  # the rows finished so far are the result, marked interrupted
        finally:
            if bar is not None:
                bar.close()
        return self.result


def _fields(schema: Schema | None) -> tuple[str, ...]:
    """The columns of the answers: the schema's properties (an object's), else ``answer``."""
    properties = schema.json_schema.get("properties") if schema is not None else None
    return tuple(properties) if isinstance(properties, dict) and properties else (ANSWER,)


def progress_bar(title: str, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=title, unit="row")


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidParameter(f"{name} must be a whole number of at least 1, not {value!r}.")
    return value
