"""Continuous batching on a tiny random Llama: every row gets the tokens ``generate`` gives it
alone, though rows leave and join the running batch; the slots are refilled, never
overfilled; a cancel, a failure and unsupported models."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from llmux_jupyter.backends.constrained import (
    GrammarRows,
    TransformersJSON,
    hf_tokenizer,
    json_grammar,
)
from llmux_jupyter.backends.hf_batch import Row
from llmux_jupyter.backends.hf_continuous import continuous_answers, continuous_rows, supported

from ...tiny_models import train_tokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("llguidance")
LogitsProcessorList = transformers.LogitsProcessorList

LENGTHS = [5, 17, 3, 11, 8, 2, 14]
LIMITS = [3, 9, 1, 6, 12, 2, 5]


VOCAB, EOS = 64, 2
SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
    "required": ["ok", "n"],
    "additionalProperties": False,
}


def random_llama(vocab: int, eos: int) -> Any:
    """A random Llama whose answers depend on the whole prompt (untied embeddings, large
    weights), so a wrong position, mask or cache row changes them."""
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
        initializer_range=0.2, pad_token_id=0, bos_token_id=1, eos_token_id=eos,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tiny():
    return random_llama(VOCAB, EOS), train_tokenizer()


def rows(vocab: int = VOCAB) -> list[Row]:
    generator = torch.Generator().manual_seed(3)
    return [
        Row(key, torch.randint(5, vocab, (length,), generator=generator).tolist())
        for key, length in enumerate(LENGTHS)
    ]


def alone(model, row: Row, limit: int, **keywords) -> list[int]:
    """What greedy ``generate`` gives the row by itself (up to and with its end token)."""
    with torch.inference_mode():
        output = model.generate(
            torch.tensor([row.ids]), attention_mask=torch.ones(1, len(row.ids), dtype=torch.long),
            max_new_tokens=limit, do_sample=False, pad_token_id=0, **keywords,
        )  # fmt: skip
    return output[0, len(row.ids) :].tolist()


def batch_sizes(model) -> tuple[list[int], list[int]]:
    """Record the rows of every forward call: (prefills, decode steps)."""
    prefills: list[int] = []
    steps: list[int] = []

    def record(module, args, kwargs):
        ids = kwargs["input_ids"]
        (prefills if ids.shape[-1] > 1 else steps).append(ids.shape[0])

    return prefills, steps, model.register_forward_pre_hook(record, with_kwargs=True)


def test_each_row_gets_its_answer_alone_as_rows_leave_and_join(tiny):
    model, _ = tiny
    data = rows()
    prefills, steps, hook = batch_sizes(model)
    options = {"max_new_tokens": LIMITS, "ends": {EOS}, "pad_token_id": 0}
    try:
        answers = list(continuous_rows(model, data, size=3, cancel=threading.Event(), **options))
    finally:
        hook.remove()
    assert sorted(a.row.key for a in answers) == list(range(len(data)))
    for answer in answers:
        key = answer.row.key
        assert answer.tokens == alone(model, data[key], LIMITS[key]), key
    assert any(a.tokens[-1] == EOS for a in answers)  # some rows end before their limit
    assert len(prefills) > 2 and max(prefills + steps) <= 3  # refilled, never over 3 rows
    assert [a.row.key for a in answers] != sorted(a.row.key for a in answers)  # as they end


def test_under_a_schema_each_row_decodes_as_generate_does_under_the_same_mask():
    """... with the log-probability the batch processor counts for it."""
    tokenizer = train_tokenizer()
    eos = tokenizer.eos_token_id
    model = random_llama(len(tokenizer), eos)
    vocabulary = hf_tokenizer(tokenizer, len(tokenizer))
    grammar = json_grammar(SCHEMA, vocabulary)
    data = rows(len(tokenizer))
    limits = [40, 40, 6, 40, 40, 40, 40]  # row 2 is cut before its JSON closes
    options = {"max_new_tokens": limits, "ends": {eos}, "pad_token_id": 0}
    under = GrammarRows(vocabulary, grammar, size=3, logprobs=True)
    answers = list(
        continuous_rows(model, data, size=3, cancel=threading.Event(), grammar=under, **options)
    )
    assert sorted(a.row.key for a in answers) == list(range(len(data)))
    for answer in answers:
        key = answer.row.key
        counted = TransformersJSON(vocabulary, grammar, rows=1, logprobs=True)
        masks = LogitsProcessorList([counted])
        assert answer.tokens == alone(model, data[key], limits[key], logits_processor=masks)
        text = tokenizer.decode(answer.tokens, skip_special_tokens=True)
        if key == 2:
            assert answer.error is None and len(answer.tokens) == 6 and text.startswith("{")
        else:
            assert answer.tokens[-1] == eos and set(json.loads(text)) == {"ok", "n"}
            # the end token, forced once the JSON closes, adds nothing
            assert answer.logprob == pytest.approx(counted.logprobs[0], abs=1e-4)
            assert answer.logprob < 0


def test_a_row_whose_matcher_fails_fails_alone():
    tokenizer = train_tokenizer()
    model = random_llama(len(tokenizer), tokenizer.eos_token_id)
    vocabulary = hf_tokenizer(tokenizer, len(tokenizer))

    class SecondRowLost(GrammarRows):
        """The second row's matcher reports an error at its first token."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.made: list[Any] = []

        def matcher(self) -> Any:
            self.made.append(super().matcher())
            return self.made[-1]

        def consume(self, matcher: Any, token: int) -> str | None:
            return "lost track" if matcher is self.made[1] else super().consume(matcher, token)

    grammar = SecondRowLost(vocabulary, json_grammar(SCHEMA, vocabulary), size=3)
    options = {"max_new_tokens": [40] * len(LENGTHS), "pad_token_id": 0, "stops": ()}
    data = rows(len(tokenizer))
    run = continuous_answers(
        model, tokenizer, data, size=3, cancel=threading.Event(), grammar=grammar, **options
    )
    answers = {a.key: a for a in run}
    assert answers.pop(2).error == "lost track"  # the second shortest prompt
    assert all(a.error is None and json.loads(a.text)["n"] is not None for a in answers.values())


def test_a_cancel_stops_between_two_tokens(tiny):
    model, _ = tiny
    cancel = threading.Event()
    answers = []
    for answer in continuous_rows(
        model, rows(), size=2, max_new_tokens=LIMITS, ends=set(), pad_token_id=0,
        cancel=cancel,
    ):  # fmt: skip
        answers.append(answer)
        cancel.set()
    assert len(answers) == 1


def test_a_failure_fails_the_rows_not_answered_yet(tiny, monkeypatch):
    model, tokenizer = tiny
    data = rows()
    calls = {"n": 0}
    forward = model.forward

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("out of memory")
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", failing)
    options = {"max_new_tokens": LIMITS, "pad_token_id": 0, "stops": ()}
    answers = list(
        continuous_answers(model, tokenizer, data, size=2, cancel=threading.Event(), **options)
    )
    assert sorted(a.key for a in answers) == list(range(len(data)))
    failed = [a for a in answers if a.error is not None]
    assert failed and all("out of memory" in a.error for a in failed)
    assert len(failed) < len(data)  # the rows that ended before the failure keep their answers


def test_only_greedy_decoding_of_full_attention_models_is_supported(tiny, monkeypatch):
    model, _ = tiny
    assert supported(model, {"do_sample": False})
    assert not supported(model, {"do_sample": True, "temperature": 0.7})
    assert not supported(model, {"do_sample": False, "logits_processor": []})
    monkeypatch.setattr(model.generation_config, "repetition_penalty", 1.3)
    assert not supported(model, {"do_sample": False})
    sliding = transformers.MistralConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, sliding_window=8,
    )  # fmt: skip
    windowed = transformers.MistralForCausalLM(sliding)
    assert not supported(windowed, {"do_sample": False})
