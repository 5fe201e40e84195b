"""Cross-encoder reranking with transformers: a sequence classifier with one output reads the
query and a document together and scores their relevance (the bge-reranker and ms-marco
MiniLM families). Scores are the sigmoid of that output, as sentence-transformers'
``CrossEncoder`` gives them: between 0 and 1, higher is more relevant."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ModelLoadError


def check_cross_encoder(model: Any, name: str) -> None:
    """Refuse a classifier that does not give one relevance score per pair."""
    labels = int(getattr(model.config, "num_labels", 0))
    if labels != 1:
        raise ModelLoadError(
            f"{name!r} classifies into {labels} labels; a cross-encoder reranker has one output "
            "(a relevance score). Register a reranker (e.g. a bge-reranker or ms-marco "
            "cross-encoder), or rerank with an embedding model."
        )


def cross_encoder_scores(
    model: Any,
    tokenizer: Any,
    query: str,
    documents: Sequence[str],
    *,
    batch_size: int,
    max_length: int,
    cancel: threading.Event,
) -> Iterator[float]:
    """One score per document, in order, ``batch_size`` pairs at a time; stops between two
    batches once ``cancel`` is set."""
    import torch

    with torch.inference_mode():
        for start in range(0, len(documents), batch_size):
            if cancel.is_set():
                return
            batch = list(documents[start : start + batch_size])
            encoded = tokenizer(
                [query] * len(batch),
                batch,
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(model.device)
            logits = model(**encoded).logits[:, 0]
            yield from torch.sigmoid(logits.float()).cpu().tolist()
