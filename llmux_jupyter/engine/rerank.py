"""One reranking: score documents against a query and order them, best first.

A rerank model scores each (query, document) pair itself (a cross-encoder, or a server's rerank
endpoint). Any embedding model reranks too, as a bi-encoder: the cosine between the query's
embedding and each document's. Iterating the job yields the scores in the documents' order as
they come (batch by batch, so the interrupt button stops between two batches); afterwards
``reranking`` holds the ordered result (None if interrupted).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..backends.base import Backend
from ..errors import GenerationError, InvalidParameter, ModelNotLoaded, UnsupportedTask
from ..types.ranking import RankedDocument, Reranking
from ..types.values import Task
from .jobs import ModelJob
from .manager import ModelManager

BI_ENCODER = "bi-encoder (cosine of embeddings)"
EMBEDDING_BATCH = 32


class RerankJob(ModelJob[float]):
    """Iterate for the scores (in the documents' order); afterwards ``reranking`` holds the
    documents best first (the ``top_n`` best when given)."""

    task = Task.RERANK

    def __init__(
        self,
        manager: ModelManager,
        query: str,
        documents: Sequence[str],
        *,
        model: str | None = None,
        top_n: int | None = None,
    ) -> None:
        self.query = checked_query(query)
        self.documents = _checked_documents(documents)
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int)):
            raise InvalidParameter(f"top_n must be a whole number, not {top_n!r}.")
        if top_n is not None and top_n < 1:
            raise InvalidParameter(f"top_n must be at least 1, not {top_n}.")
        super().__init__(manager, model)
        self.top_n = top_n
        self.bi_encoder = manager.catalog.get(self.model).task is Task.EMBEDDING
        self.reranking: Reranking | None = None

    def choose_model(self, manager: ModelManager, name: str | None) -> str:
        return ranking_model(manager, name)

    def _produce(self, backend: Backend) -> Iterator[float]:
        if self.bi_encoder:
            return cosine_scores(backend, self.query, self.documents, self.cancel_event)
        return backend.rerank(self.query, self.documents, self.cancel_event)

    def _finish(
        self, items: list[float], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        method = BI_ENCODER if self.bi_encoder else summary.get("method", "cross-encoder")
        self.provenance.update(method=method, documents=len(self.documents), top_n=self.top_n)
        if interrupted:
            return
        if len(items) != len(self.documents):
            raise GenerationError(
                f"{self.model!r} gave {len(items)} scores for {len(self.documents)} documents."
            )
        pairs = enumerate(zip(items, self.documents, strict=True))
        ranked = sorted(
            (RankedDocument(index, float(score), text) for index, (score, text) in pairs),
            key=lambda result: -result.score,
        )
        self.reranking = Reranking(self.query, tuple(ranked[: self.top_n]), self.model, method)


def ranking_model(manager: ModelManager, name: str | None) -> str:
    """A rerank model, or an embedding model used as a bi-encoder; by default the rerank
    default, else the embedding default."""
    if name is None:
        try:
            name = manager.default_for(Task.RERANK)
        except ModelNotLoaded:
            name = manager.default_for(Task.EMBEDDING)
    task = manager.catalog.get(name).task
    if task not in (Task.RERANK, Task.EMBEDDING):
        raise UnsupportedTask(
            f"{name!r} is a {task.value} model: rerank with a rerank model or an embedding "
            "model (see %llm list --task rerank, --task embedding)."
        )
    return name


def cosine_scores(
    backend: Backend, query: str, documents: Sequence[str], cancel: threading.Event
) -> Iterator[float]:
    """The cosine between the query's embedding and each document's, batch by batch."""
    import numpy as np

    target = _unit(backend.embed([query]))[0]
    for start in range(0, len(documents), EMBEDDING_BATCH):
        if cancel.is_set():
            return
        vectors = _unit(backend.embed(list(documents[start : start + EMBEDDING_BATCH])))
        yield from np.asarray(vectors @ target, dtype=float).tolist()


def _unit(vectors: Any) -> Any:
    import numpy as np

    rows = np.asarray(vectors, dtype=np.float32)
    return rows / np.clip(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12, None)


def checked_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InvalidParameter("The query is empty: give the text to rank the documents by.")
    return query


def _checked_documents(documents: Any) -> list[str]:
    if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Iterable):
        kind = type(documents).__name__
        raise InvalidParameter(f"documents must be a list of strings, not a {kind}.")
    texts = list(documents)
    if not texts:
        raise InvalidParameter("There are no documents to rerank.")
    wrong = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if wrong is not None:
        raise InvalidParameter(
            f"documents[{wrong}] is a {type(texts[wrong]).__name__}: every document must be a "
            "string."
        )
    return texts
