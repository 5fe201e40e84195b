"""Batched generation on transformers (for ``llm.map``): prompts of similar length together,
left-padded, one ``model.generate`` per batch, the batch sized to the memory it may use and
stopped between two tokens by a cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .hf_streaming import StopOnEvents, seeded
from .stops import StopTrimmer

MAX_BATCH_SIZE = 32
LOGITS_COPIES = 2  # the raw scores and the processed ones, float32, per row and step


@dataclass(frozen=True)
class Row:
    """One prompt's tokens, and the request it answers."""

    key: int
    ids: list[int]


def batches(rows: Sequence[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` shortest prompt first, ``size`` at a time (little padding in each batch)."""
    ordered = sorted(rows, key=lambda row: len(row.ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def row_bytes(config: Any, dtype_bytes: int, tokens: int) -> int:
    """Memory one row of a batch needs: its KV cache for ``tokens`` positions and the
    vocabulary's logits."""
    layers = int(getattr(config, "num_hidden_layers", 1))
    heads = int(getattr(config, "num_attention_heads", 1))
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    kv = 2 * layers * kv_heads * head_dim * dtype_bytes * tokens
    return kv + LOGITS_COPIES * 4 * int(config.vocab_size)


def fit_batch_size(rows: int, per_row: int, free_memory: int | None) -> int:
    """As many rows as fit ``free_memory`` (all when unknown), at most MAX_BATCH_SIZE."""
    fitting = MAX_BATCH_SIZE if free_memory is None else free_memory // max(1, per_row)
    return max(1, min(MAX_BATCH_SIZE, rows, fitting))


def generate_rows(
    model: Any,
    tokenizer: Any,
    batch: Sequence[Row],
    keywords: dict[str, Any],
    cancel: threading.Event,
    stops: Sequence[str] = (),
    seed: int | None = None,
) -> list[tuple[str, int]] | None:
    """Each row's answer text and new-token count, in the batch's order; None when ``cancel``
    stopped the batch before its end."""
    import torch

    padded = tokenizer.pad(
        {"input_ids": [row.ids for row in batch]},
        padding=True,
        padding_side="left",
        return_tensors="pt",
    ).to(model.device)
    width = padded["input_ids"].shape[-1]
    with torch.inference_mode(), seeded(torch, seed, str(model.device)):
        output = model.generate(**padded, **keywords, stopping_criteria=[StopOnEvents(cancel)])
    if cancel.is_set():
        return None
    ends = end_tokens(model, keywords.get("pad_token_id"))
    answers = []
    for generated in output[:, width:].tolist():
        count = next((i + 1 for i, token in enumerate(generated) if token in ends), len(generated))
        answers.append((answer_text(tokenizer, generated[:count], stops), count))
    return answers


def answer_text(tokenizer: Any, tokens: list[int], stops: Sequence[str]) -> str:
    """A row's new tokens as text, cut before the first stop string."""
    trimmer = StopTrimmer(stops)
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return trimmer.feed(text) + trimmer.flush()


def end_tokens(model: Any, pad: int | None) -> set[int]:
    """The tokens after which a row of the batch has finished: end of sequence, padding."""
    eos = model.generation_config.eos_token_id
    ends = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ends | ({pad} if pad is not None else set())
