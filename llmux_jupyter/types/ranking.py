"""Reranking results: documents ordered by relevance to a query, with scores and positions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RankedDocument:
    """One document: its position in the list given (``index``), its relevance score (higher
    is more relevant; comparable within one reranking) and its text."""

    index: int
    score: float
    document: str


@dataclass(frozen=True)
class Reranking:
    """Documents best first (the ``top_n`` best when asked). Iterate it, index it, or take
    ``documents`` (the texts in order) and ``indices`` (their original positions)."""

    query: str
    results: tuple[RankedDocument, ...]
    model: str
    method: str  # cross-encoder, bi-encoder (cosine of embeddings), or the server's rerank

    @property
    def documents(self) -> list[str]:
        return [result.document for result in self.results]

    @property
    def indices(self) -> list[int]:
        return [result.index for result in self.results]

    def __iter__(self) -> Iterator[RankedDocument]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, position: int) -> RankedDocument:
        return self.results[position]
