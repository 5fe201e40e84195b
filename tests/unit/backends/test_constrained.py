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
    bounded_numbers,
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


def number_schema(**number) -> dict:
    return {
        "type": "object",
        "properties": {"x": number},
        "required": ["x"],
        "additionalProperties": False,
    }


def fits(ll_tokenizer, schema: dict, text: str) -> bool:
    """Whether the grammar of ``schema`` lets a decoder write ``text`` (byte by byte)."""
    import llguidance

    matcher = llguidance.LLMatcher(ll_tokenizer, json_grammar(schema, ll_tokenizer))
    for char in text:
        tokens = ll_tokenizer.tokenize_str(char)
        if matcher.try_consume_tokens(tokens) != len(tokens):
            return False
    return True


@pytest.mark.parametrize(
    ("number", "text", "allowed"),
    [
        ({"type": "integer"}, '{"x":' + "9" * 15 + "}", True),
        ({"type": "integer"}, '{"x":-' + "9" * 15 + "}", True),
        ({"type": "integer"}, '{"x":' + "1" * 16, False),  # the runaway: 10000000000000000...
        ({"type": "number"}, '{"x":3.14159265}', True),
        ({"type": "number"}, '{"x":0.333333333', False),
        ({"type": "number"}, '{"x":2.5' + "0" * 12, False),
        ({"type": "number"}, '{"x":' + "1" * 16, False),
        ({"type": ["number", "null"]}, '{"x":' + "1" * 16, False),
        ({"type": "integer", "maximum": 10**17}, '{"x":' + "1" * 17 + "}", True),  # as given
    ],
)
def test_numbers_under_a_schema_have_a_bounded_length(tokenizers, number, text, allowed):
    assert fits(tokenizers[1], number_schema(**number), text) is allowed


def test_bounding_numbers_leaves_the_rest_of_the_schema_alone():
    schema = {
        "type": "object",
        "properties": {"type": {"type": "string"}, "n": {"type": "number", "minimum": 0}},
    }
    bounded = bounded_numbers(schema)
    assert bounded["properties"]["type"] == {"type": "string"}
    assert bounded["properties"]["n"] == {
        "type": "number", "minimum": 0, "maximum": 10**15 - 1, "multipleOf": 1e-8
    }  # fmt: skip
    assert schema["properties"]["n"] == {"type": "number", "minimum": 0}  # not changed in place


def test_with_logprobs_each_row_sums_its_chosen_tokens_under_the_mask(tokenizers):
    tokenizer, ll_tokenizer = tokenizers
    grammar = json_grammar(SCHEMA, ll_tokenizer)
    processor = TransformersJSON(ll_tokenizer, grammar, rows=2, logprobs=True)
    reference = TransformersJSON(ll_tokenizer, grammar, rows=2)
    generator = torch.Generator().manual_seed(1)
    ids = torch.zeros((2, 2), dtype=torch.long)
    expected = [0.0, 0.0]
    for _ in range(12):
        scores = torch.randn((2, len(tokenizer) + 3), generator=generator)
        masked_scores = reference(ids, scores.clone())
        chosen = processor(ids, scores).argmax(-1, keepdim=True)
        stopped = [matcher.is_stopped() for matcher in reference._rows.matchers]
        step = masked_scores.log_softmax(-1).gather(-1, chosen)[:, 0].tolist()
        taken = zip(expected, step, stopped, strict=True)
        expected = [total if done else total + value for total, value, done in taken]
        ids = torch.cat([ids, chosen], dim=1)
    processor(ids, torch.zeros((2, len(tokenizer) + 3)))  # the last choices are counted
    assert processor.logprobs == pytest.approx(expected, abs=1e-5)
    assert all(value < 0 for value in expected)  # some step had a real choice


def test_the_llamacpp_processor_counts_the_answer_log_probability(tokenizers):
    tokenizer, ll_tokenizer = tokenizers
    processor = LlamaCppJSON(ll_tokenizer, json_grammar(SCHEMA, ll_tokenizer), logprobs=True)
    assert processor.logprob is None  # nothing decoded yet
    ids = [1, 2]
    rng = np.random.default_rng(0)
    expected = 0.0
    for _ in range(3):
        scores = processor(np.array(ids, dtype=np.intc), rng.normal(size=len(tokenizer) + 3))
        token = int(scores.argmax())
        allowed = scores[np.isfinite(scores)]
        expected += scores[token] - np.log(np.exp(allowed - allowed.max()).sum()) - allowed.max()
        ids.append(token)
    processor(np.array(ids, dtype=np.intc), np.zeros(len(tokenizer) + 3))
    assert processor.logprob == pytest.approx(expected, abs=1e-5)
    assert LlamaCppJSON(ll_tokenizer, json_grammar(SCHEMA, ll_tokenizer)).logprob is None
