"""The arithmetic of parallel sequences on llama.cpp: the prefix all prompts share, each
sequence's window, and how many sequences fit (the decoding itself runs on the real model in
tests/integration/test_llamacpp_parallel.py)."""

from __future__ import annotations

from llmux_jupyter.backends.llamacpp_parallel import (
    SequenceRow,
    fit_sequences,
    shared_prefix,
    window_for,
)


def rows(*prompts: list[int], max_new: int = 16) -> list[SequenceRow]:
    return [SequenceRow(key, prompt, max_new) for key, prompt in enumerate(prompts)]


def test_the_shared_prefix_stops_at_the_first_difference():
    assert shared_prefix(rows([1, 2, 3, 4, 5], [1, 2, 3, 9, 9], [1, 2, 3, 4])) == 3
    assert shared_prefix(rows([7, 1], [8, 1])) == 0


def test_the_shared_prefix_leaves_every_prompt_a_token_to_evaluate():
    assert shared_prefix(rows([1, 2, 3], [1, 2, 3])) == 2  # its logits give the first answer token
    assert shared_prefix(rows([1, 2, 3], [1, 2, 3, 4])) == 2
    assert shared_prefix(rows([5])) == 0


def test_each_sequence_holds_the_longest_prompt_and_its_answer_in_whole_steps():
    assert window_for(rows([1] * 40, [1] * 10, max_new=16)) == 256
    assert window_for(rows([1] * 250, max_new=16)) == 512
    assert window_for(rows([1] * 100, max_new=156)) == 256


def test_as_many_sequences_as_wanted_rows_and_memory_allow():
    assert fit_sequences(8, rows=32, per_sequence=100, free_memory=None, most=256) == 8
    assert fit_sequences(8, rows=3, per_sequence=100, free_memory=None, most=256) == 3
    assert fit_sequences(8, rows=32, per_sequence=100, free_memory=350, most=256) == 3
    assert fit_sequences(64, rows=100, per_sequence=1, free_memory=None, most=32) == 32
    assert fit_sequences(8, rows=32, per_sequence=100, free_memory=50, most=256) == 1
