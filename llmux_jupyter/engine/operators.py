"""Operators over a table built on ``llm.map``: ``filter`` keeps the rows the model says yes
to, ``classify`` puts each row under one label, ``extract`` pulls typed fields out of each
row. Each is one map whose schema keeps the answer short and typed, so it has the map's
cache, progress bar, per-row errors, interrupt (finished rows kept) and usage; ``reduce`` and
``topk`` (modules of their own) run several maps, or a ranking, under the same job."""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..types.kinds import is_dataframe
from ..types.values import GenerationParams
from .choices import YES_NO, Choices, choices_of
from .manager import ModelManager
from .map import ANSWER, MapJob, MapResult, MapUsage, row_columns
from .map_table import ITEM, Table, as_table, require_column
from .schemas import Schema

Result = TypeVar("Result")
# A suffix for an answer column whose name the input table already uses.
CLASH_SUFFIX = "_llm"
FILTER_INSTRUCTION = "\n\nAnswer yes or no."
CLASSIFY_INSTRUCTION = "\n\nAnswer with one of these labels: {labels}."


@dataclass(frozen=True)
class MapOptions:
    """What an operator's maps run with (see ``MapJob``); operators decode greedily unless
    ``params`` say otherwise, so their answers are cached."""

    model: str | None = None
    system: str | None = None
    params: GenerationParams = field(default_factory=lambda: GenerationParams(temperature=0))
    variables: Mapping[str, Any] | None = None
    batch_size: int | None = None
    concurrency: int | None = None
    cache: bool = True
    on_finish: Callable[[MapJob], None] | None = None  # e.g. the history's log of each map

    def job(
        self,
        manager: ModelManager,
        template: str,
        data: Any,
        *,
        schema: Any = None,
        logprobs: bool = False,
        kind: str = "map",
    ) -> MapJob:
        return MapJob(
            manager,
            template,
            data,
            model=self.model,
            system=self.system,
            params=self.params,
            variables=self.variables,
            schema=schema,
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            cache=self.cache,
            on_finish=self.on_finish,
            logprobs=logprobs,
            kind=kind,
        )


class OperatorJob(ABC, Generic[Result]):
    """An operator's work, not yet run: ``run(progress)`` runs it and returns (and keeps on
    ``result``) its result, also after an interrupt, which keeps what finished and marks it
    interrupted; ``cancel()`` stops it between two tokens."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.result: Result | None = None

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self, progress: bool = True) -> Result:
        """Run to the end (a progress bar per map with ``progress``); the result."""
        self.result = self._run(progress)
        return self.result

    @abstractmethod
    def _run(self, progress: bool) -> Result:
        """The work; maps go through ``_map``."""

    def _map(self, job: MapJob, progress: bool) -> MapResult:
        """One of the operator's maps, stopped by the operator's cancel event."""
        job.cancel_event = self.cancel_event
        return job.run(progress)


@dataclass
class RowsResult:
    """A row operator's outcome: ``values[i]`` is row i's value (None if it failed or was not
    reached), ``map`` the MapResult underneath (answers, ``errors``, ``usage``) and ``data``
    the table given."""

    map: MapResult
    data: Any
    values: list[Any]

    @property
    def model(self) -> str:
        return self.map.model

    @property
    def errors(self) -> dict[Any, str]:
        return self.map.errors

    @property
    def usage(self) -> MapUsage:
        return self.map.usage

    @property
    def interrupted(self) -> bool:
        return self.map.interrupted

    @property
    def confidence(self) -> Any:
        """Per row, the probability the model gave its answer (from its log-probabilities,
        under the schema), aligned with the input (a Series on a DataFrame's index, else a
        list); None where it failed or the backend gives no log-probabilities."""
        return self._aligned([_probability(logprob) for logprob in self.map.logprobs])

    def to_pandas(self) -> Any:
        """The input table with the operator's columns added (a name the table already uses
        gets the suffix ``_llm``), and ``error``; on the input's index."""
        frame = input_frame(self.data, self.map)
        added = self._columns()
        added["error"] = [self.map.row_error(i) for i in range(len(self.values))]
        for name, column in added.items():
            frame[name + CLASH_SUFFIX if name in frame.columns else name] = column
        return frame

    def _columns(self) -> dict[str, list[Any]]:
        """The columns the operator adds, by name."""
        return {ANSWER: self.values}

    def _aligned(self, values: list[Any]) -> Any:
        """``values`` as a Series on a DataFrame input's index, else as they are."""
        if not is_dataframe(self.data):
            return values
        import pandas

        return pandas.Series(values, index=self.data.index, dtype=object)

    def summary(self) -> str:
        return self.map.summary()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"


@dataclass(repr=False)
class FilterResult(RowsResult):
    """``values[i]``: whether row i holds (None: failed or not reached). ``kept``: the rows
    that hold (a DataFrame on the input's index, or a list), ``mask``: True for them."""

    @property
    def mask(self) -> Any:
        """True for the rows kept (a boolean Series on a DataFrame's index, else a list)."""
        flags = [value is True for value in self.values]
        if not is_dataframe(self.data):
            return flags
        import pandas

        return pandas.Series(flags, index=self.data.index, dtype=bool)

    @property
    def kept(self) -> Any:
        positions = [i for i, value in enumerate(self.values) if value is True]
        if is_dataframe(self.data):
            return self.data.iloc[positions]
        return [self.data[i] for i in positions]

    def _columns(self) -> dict[str, list[Any]]:
        return {"keep": self.values, "confidence": list(self.confidence)}

    def summary(self) -> str:
        kept = sum(value is True for value in self.values)
        return f"filter kept {kept} of {len(self.values)} rows. {self.map.summary()}"


@dataclass(repr=False)
class ClassifyResult(RowsResult):
    """``values[i]``: row i's label (an Enum member for Enum labels); ``choices`` the labels."""

    choices: tuple[str, ...] = ()

    def _columns(self) -> dict[str, list[Any]]:
        return {"label": self.values, "confidence": list(self.confidence)}

    def counts(self) -> dict[str, int]:
        """How many rows got each label, in the labels' order."""
        answered = [label for label in self.map.values if label is not None]
        return {label: answered.count(label) for label in self.choices}

    def summary(self) -> str:
        counted = ", ".join(f"{label} {count}" for label, count in self.counts().items())
        return f"classify: {counted}. {self.map.summary()}"


@dataclass(repr=False)
class ExtractResult(RowsResult):
    """``values[i]``: row i's instance of the schema; ``to_pandas()`` expands its fields into
    columns (nested ones as ``outer.inner``)."""

    def _columns(self) -> dict[str, list[Any]]:
        import pandas

        records = [row_columns(value, self.map.fields) for value in self.values]
        expanded = pandas.json_normalize(records) if any(records) else pandas.DataFrame()
        return {str(name): expanded[name].tolist() for name in expanded.columns}


class RowOperator(OperatorJob[Result]):
    """One map over the table, its answers turned into the operator's values."""

    def __init__(self, map_job: MapJob, data: Any) -> None:
        super().__init__()
        self.map_job = map_job
        self.data = data

    def _run(self, progress: bool) -> Result:
        found = self._map(self.map_job, progress)
        return self._result(found, [None if v is None else self._value(v) for v in found.values])

    def _value(self, answer: Any) -> Any:
        return answer

    @abstractmethod
    def _result(self, found: MapResult, values: list[Any]) -> Result:
        """The operator's result of the map's."""


class FilterJob(RowOperator[FilterResult]):
    """The rows for which the model answers yes to ``template`` (a question or a statement
    about the row), decoded under a yes/no schema."""

    def __init__(
        self, manager: ModelManager, data: Any, template: str, options: MapOptions
    ) -> None:
        require_column(template, as_table(data), options.variables)
        prompt = template + FILTER_INSTRUCTION
        job = options.job(
            manager, prompt, data, schema=YES_NO.json_schema, logprobs=True, kind="filter"
        )
        super().__init__(job, data)

    def _value(self, answer: Any) -> Any:
        return YES_NO.value(answer)

    def _result(self, found: MapResult, values: list[Any]) -> FilterResult:
        return FilterResult(found, self.data, values)


class ClassifyJob(RowOperator[ClassifyResult]):
    """One of ``labels`` per row, decoded under an enum schema."""

    def __init__(
        self, manager: ModelManager, data: Any, template: str, labels: Any, options: MapOptions
    ) -> None:
        self.choices: Choices = choices_of(labels)
        require_column(template, as_table(data), options.variables)
        named = ", ".join(self.choices.labels).replace("{", "{{").replace("}", "}}")
        prompt = template + CLASSIFY_INSTRUCTION.format(labels=named)
        job = options.job(
            manager,
            prompt,
            data,
            schema=self.choices.json_schema,
            logprobs=True,
            kind="classify",
        )
        super().__init__(job, data)

    def _value(self, answer: Any) -> Any:
        return self.choices.value(answer)

    def _result(self, found: MapResult, values: list[Any]) -> ClassifyResult:
        return ClassifyResult(found, self.data, values, self.choices.labels)


class ExtractJob(RowOperator[ExtractResult]):
    """The map with a schema: each row's typed fields."""

    def __init__(
        self, manager: ModelManager, data: Any, template: str, schema: Any, options: MapOptions
    ) -> None:
        require_column(template, as_table(data), options.variables)
        job = options.job(manager, template, data, schema=Schema.of(schema), kind="extract")
        super().__init__(job, data)

    def _result(self, found: MapResult, values: list[Any]) -> ExtractResult:
        return ExtractResult(found, self.data, values)


def input_frame(data: Any, found: MapResult) -> Any:
    """The input table as a new DataFrame on its index (a list of strings as ``item``)."""
    import pandas

    if is_dataframe(data):
        return data.copy()
    table: Table = as_table(data)
    index = pandas.Index(found.labels, name=found.index_name)
    columns = list(table.columns) if table.columns != (ITEM,) else [ITEM]
    return pandas.DataFrame(table.rows, index=index, columns=columns)


def _probability(logprob: float | None) -> float | None:
    return None if logprob is None else math.exp(logprob)
