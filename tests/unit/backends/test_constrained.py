"""Constrained decoding's masks with llguidance on a tiny trained tokenizer: a batch decodes
row by row, each under its own matcher; llama.cpp's processor masks the whole vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmux_jupyter.backends.constrained import (
    LlamaCppJSON,
    TransformersJSON,
    hf_tokenizer,
    json_grammar,
    masked,
)
from llmux_jupyter.errors import InvalidParameter

from ...tiny_models import train_tokenizer

pytestmark = pytest.mark.unit
SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tokenizers():
    tokenizer = train_tokenizer()
    return tokenizer, hf_tokenizer(tokenizer, len(tokenizer) + 3)  # logits wider than vocab


def greedy(processor, tokenizer, rows: int, steps: int, prompt: int = 2) -> list[str]:
    """Decode ``rows`` sequences from random logits, keeping only what the mask allows."""
    generator = torch.Generator().manual_seed(0)
    width = len(tokenizer) + 3
    ids = torch.zeros((rows, prompt), dtype=torch.long)
    for _ in range(steps):
        scores = processor(ids, torch.randn((rows, width), generator=generator))
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
    return [tokenizer.decode(row[prompt:], skip_special_tokens=True) for row in ids.tolist()]


def test_each_row_of_a_batch_decodes_valid_json_of_the_schema(tokenizers):
    tokenizer, ll_tokenizer = tokenizers
    processor = TransformersJSON(ll_tokenizer, json_grammar(SCHEMA, ll_tokenizer), rows=3)
    texts = greedy(processor, tokenizer, rows=3, steps=20)
    assert [type(json.loads(text)["ok"]) for text in texts] == [bool] * 3, texts
    assert processor._rows is not None and len(processor._rows.matchers) == 3


def test_the_mask_blocks_tokens_past_the_vocabulary(tokenizers):
    _, ll_tokenizer = tokenizers
    bitmask = torch.full((1, (ll_tokenizer.vocab_size + 31) // 32), -1, dtype=torch.int32)
    scores = masked(torch.zeros((1, bitmask.shape[1] * 32 + 5)), bitmask)
    assert torch.isinf(scores[0, -5:]).all() and not torch.isinf(scores[0, :-5]).any()


def test_llamacpp_processor_masks_numpy_scores_in_place(tokenizers):
    tokenizer, ll_tokenizer = tokenizers
    processor = LlamaCppJSON(ll_tokenizer, json_grammar(SCHEMA, ll_tokenizer))
    scores = np.zeros(len(tokenizer) + 3, dtype=np.float32)
    allowed = np.flatnonzero(np.isfinite(processor(np.array([1, 2], dtype=np.intc), scores)))
    assert allowed.size and all(tokenizer.decode([int(t)]).startswith("{") for t in allowed)
    assert np.isinf(scores[-3:]).all()


def test_a_schema_llguidance_cannot_compile_is_refused(tokenizers):
    _, ll_tokenizer = tokenizers
    with pytest.raises(InvalidParameter, match="cannot be decoded under"):
        json_grammar({"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}, ll_tokenizer)
