"""``llm.topk``: the k rows most relevant to a query.

Every row is scored against the query by a rerank model (a cross-encoder, or a server's
rerank) or an embedding model (the cosine of their embeddings); scores are cached beside the
map's answers, so a rerun scores nothing again, and an interrupt keeps the rows scored so far.
With a ``judge`` (a chat model), the best ``candidates`` rows are then ordered by the
judge's verdicts on every ordered pair ("which of A and B is more relevant?", both orders, so
neither position is favoured), decoded under an A/B schema in one map: the rows that win
most pairs come first, the reranker's score breaking ties.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter
from ..types.batch import BatchAnswer
from ..types.kinds import is_dataframe
from ..types.values import Task
from .choices import Choices
from .jobs import task_model
from .manager import ModelManager
from .map import MapResult, MapUsage, outcome, progress_bar
from .map_cache import AnswerCache, answer_key, model_identity
from .map_table import (
    ITEM,
    as_table,
    check_rows,
    render_prompts,
    require_column,
    row_text,
)
from .operators import MapOptions, OperatorJob
from .rerank import BI_ENCODER, RerankJob, checked_query, ranking_model

PAIR = Choices(("A", "B"), str, title="A or B")
PAIR_PROMPT = (
    "Query: {query}\n\nPassage A:\n{first}\n\nPassage B:\n{second}\n\n"
    "Which passage is more relevant to the query? Answer A or B."
)


@dataclass
class TopKResult:
    """The ``k`` best rows for ``query``: ``positions`` (in the input, best first), ``rows``
    (those rows: a DataFrame on the input's index, or a list) and their ``scores`` (the
    ranking model's); ``all_scores`` holds every row's score (None: not scored, after an
    interrupt); ``wins`` each judged row's pairs won; ``usage`` the scoring and the judge's
    map together."""

    query: str
    k: int
    model: str
    method: str
    data: Any
    all_scores: list[float | None]
    positions: list[int]
    usage: MapUsage
    judge: str | None = None
    wins: dict[int, int] = field(default_factory=dict)
    judged: MapResult | None = None
    interrupted: bool = False

    @property
    def scores(self) -> list[float]:
        return [self.all_scores[i] or 0.0 for i in self.positions]

    @property
    def rows(self) -> Any:
        if is_dataframe(self.data):
            return self.data.iloc[self.positions]
        return [self.data[i] for i in self.positions]

    def to_pandas(self) -> Any:
        """The k rows, best first, on the input's index, with ``rank`` and ``score`` (and
        ``wins`` when judged)."""
        import pandas

        frame = (
            self.rows.copy()
            if is_dataframe(self.data)
            else pandas.DataFrame(as_table(self.data).rows).iloc[self.positions]
        )
        frame["rank"] = range(1, len(self.positions) + 1)
        frame["score"] = self.scores
        if self.judge is not None:
            frame["wins"] = [self.wins.get(i, 0) for i in self.positions]
        return frame

    def summary(self) -> str:
        scored = sum(score is not None for score in self.all_scores)
        judged = f", judged by {self.judge}" if self.judge else ""
        parts = [
            f"top {len(self.positions)} of {len(self.all_scores)} rows by {self.model} "
            f"({self.method}{judged}) in {self.usage.seconds:.2f} s"
        ]
        parts += outcome(self.usage.cached, 0, False, what="scores")
        if self.interrupted:
            parts.append(f"interrupted: {scored} rows scored")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<TopKResult {self.summary()}>"


class TopKJob(OperatorJob[TopKResult]):
    """Score every row against the query, cached; then, with a judge, order the best
    candidates by pairwise verdicts."""

    def __init__(
        self,
        manager: ModelManager,
        data: Any,
        query: str,
        k: int,
        *,
        model: str | None,
        document: str | None,
        judge: str | None,
        candidates: int | None,
        options: MapOptions,
    ) -> None:
        super().__init__()
        self.query = checked_query(query)
        table = as_table(data)
        check_rows(table)
        self.k = _count("k", k, len(table.rows))
        self.candidates = _count(
            "candidates", candidates or min(2 * k, len(table.rows)), len(table.rows)
        )
        if self.candidates < self.k:
            raise InvalidParameter(f"candidates ({self.candidates}) must be at least k ({k}).")
        if document is None:
            self.documents = [row_text(row, table.columns) for row in table.rows]
        else:
            require_column(document, table, options.variables)
            self.documents = render_prompts(document, table, options.variables)
        self.model = ranking_model(manager, model)
        self.judge = None if judge is None else task_model(manager, judge, Task.CHAT)
        self.data = data
        self._manager = manager
        self._options = options
        self._cache = AnswerCache() if options.cache else None

    def _run(self, progress: bool) -> TopKResult:
        started = time.perf_counter()
        usage = MapUsage(len(self.documents))
        scores, method = self._scores(usage, progress)
        usage.seconds = time.perf_counter() - started
        scored = sorted(
            (i for i, score in enumerate(scores) if score is not None),
            key=lambda i: -(scores[i] or 0.0),
        )
        result = TopKResult(
            self.query, self.k, self.model, method, self.data, scores, scored[: self.k], usage,
            judge=self.judge, interrupted=len(scored) < len(scores),
        )  # fmt: skip
        if self.judge is not None and not result.interrupted:
            self._judge(result, scored[: self.candidates], progress)
        return result

    def _scores(self, usage: MapUsage, progress: bool) -> tuple[list[float | None], str]:
        """Every row's score (None where an interrupt came first), and the method."""
        spec = self._manager.catalog.get(self.model)
        method = BI_ENCODER if spec.task is Task.EMBEDDING else "reranker"
        identity = model_identity(spec)
        keys = [
            answer_key(identity, {"rerank": self.query, "document": document})
            for document in self.documents
        ]
        stored = self._cache.get(keys) if self._cache is not None else {}
        scores: list[float | None] = [
            float(stored[key].text) if key in stored else None for key in keys
        ]
        usage.cached = usage.done = len(self.documents) - scores.count(None)
        missing = [i for i, score in enumerate(scores) if score is None]
        if not missing or self.cancel_event.is_set():
            return scores, method
        job = RerankJob(
            self._manager, self.query, [self.documents[i] for i in missing], model=self.model
        )
        job.cancel_event = self.cancel_event
        bar = progress_bar(f"topk {self.model}", len(missing)) if progress else None
        try:
            for position, score in zip(missing, job, strict=False):
                scores[position] = score
                usage.done += 1
                if self._cache is not None:
                    self._cache.put(keys[position], BatchAnswer(0, repr(float(score))))
                if bar is not None:
                    bar.update()
        except KeyboardInterrupt:
            pass  # the rows scored so far are kept (and cached)
        finally:
            if bar is not None:
                bar.close()
        return scores, job.provenance.get("method", method)

    def _judge(self, result: TopKResult, candidates: list[int], progress: bool) -> None:
        """Order ``candidates`` by the pairs each wins (both orders of every pair)."""
        pairs = list(itertools.permutations(candidates, 2))
        if not pairs:
            return
        prompts = [
            PAIR_PROMPT.format(query=self.query, first=self.documents[a], second=self.documents[b])
            for a, b in pairs
        ]
        options = dataclasses.replace(self._options, model=self.judge)
        job = options.job(
            self._manager, f"{{{ITEM}}}", prompts, schema=PAIR.json_schema, kind="topk judge"
        )
        found = self._map(job, progress)
        wins = dict.fromkeys(candidates, 0)
        for (a, b), verdict in zip(pairs, found.values, strict=True):
            if verdict is not None:
                wins[a if verdict == "A" else b] += 1
        scores = result.all_scores
        ordered = sorted(candidates, key=lambda i: (-wins[i], -(scores[i] or 0.0)))
        result.positions = ordered[: self.k]
        result.wins, result.judged = wins, found
        result.usage = result.usage + found.usage
        result.interrupted = found.interrupted


def _count(name: str, value: Any, rows: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(f"{name} must be a whole number of at least 1, not {value!r}.")
    if value > rows:
        raise InvalidParameter(
            f"{name}={value} but the table has {rows} rows: ask for at most {rows}."
        )
    return value
