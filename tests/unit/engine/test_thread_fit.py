"""Threads fitted to the window inside ChatStream, on the echo backend (a word is a token,
each message adds 5 tokens of markup, the "small" model's window is 60)."""

import pytest

from llmux_jupyter.errors import ContextOverflow

TEN_WORDS = "one two three four five six seven eight nine ten"


def test_turns_that_do_not_fit_are_left_out_noted_and_kept(fake_llm):
    for _ in range(3):  # each turn: 10 + 10 words + 2 x 5 markup = 30 tokens
        response = fake_llm.chat(TEN_WORDS, model="small", max_tokens=10)
    # 60 - 10 for the answer: the new message (15) + one turn (30) fit, not two
    assert response.context.used == 1
    assert response.context.left_out == 1
    assert response.context_note == (
        "1 earlier turn of thread 'default' left out to fit the 60-token context"
    )
    assert response.provenance()["context"] == {
        "window": 60, "prompt_tokens": 45, "turns_used": 1, "turns_left_out": 1
    }  # fmt: skip
    thread = fake_llm.threads.get("default")
    assert len(thread.turns) == 3  # the thread keeps every turn
    assert thread.last_prompt == range(1, 2)


def test_each_turn_is_counted_once(fake_llm, echo_backend):
    for _ in range(4):
        fake_llm.chat(TEN_WORDS, model="small", max_tokens=10, thread="t")
    # per cell: the new message's text; per turn: its two texts, once (right after it)
    assert echo_backend.counted == 4 + 4 * 2 + 5  # + 5 measuring the markup, once per load
    assert all(turn.tokens == {"small": 30} for turn in fake_llm.threads.get("t").turns)


def test_policy_error_refuses_and_records_nothing(fake_llm):
    fake_llm.chat(TEN_WORDS, model="small", max_tokens=10)
    fake_llm.chat(TEN_WORDS, model="small", max_tokens=10)
    with pytest.raises(ContextOverflow, match="--context error"):
        fake_llm.chat(TEN_WORDS, model="small", max_tokens=10, context="error")
    assert len(fake_llm.threads.get("default").turns) == 2
    fake_llm.config.context_policy = "error"
    with pytest.raises(ContextOverflow):
        fake_llm.chat(TEN_WORDS, model="small", max_tokens=10)


def test_a_message_longer_than_the_window_is_refused_and_the_model_stays(fake_llm):
    with pytest.raises(ContextOverflow, match="window is 60"):
        fake_llm.chat("word " * 100, model="small")
    assert fake_llm.manager.is_loaded("small")
    assert fake_llm.threads.get("default").turns == []
    assert fake_llm.chat("still here", model="small").text == "still here"


def test_a_backend_without_a_window_gets_the_whole_thread(fake_llm, echo_backend):
    for _ in range(3):
        response = fake_llm.chat(TEN_WORDS)
    assert (response.context.used, response.context.window) == (2, None)
    assert response.context_note == ""
    assert "context" not in response.provenance()  # nothing was counted
    assert echo_backend.counted == 0
