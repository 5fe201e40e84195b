import pytest

from llmux_jupyter.errors import InvalidParameter, UnknownModel


def test_streaming_answer_is_recorded_in_the_thread(fake_llm):
    stream = fake_llm.chat("one two three", stream=True)
    assert list(stream) == ["one", " two", " three"]
    response = stream.response
    assert response.text == "one two three"
    assert response.usage.completion_tokens == 3
    assert response.usage.time_to_first_token_s is not None
    turns = fake_llm.threads.get("default").turns
    assert [(t.user, t.assistant, t.interrupted) for t in turns] == [
        ("one two three", "one two three", False)
    ]


def test_threads_carry_history_and_new_starts_afresh(fake_llm):
    fake_llm.chat("first", thread="t", system="be brief")
    fake_llm.chat("second", thread="t")
    thread = fake_llm.threads.get("t")
    messages = thread.messages_for("third")
    assert [m.role for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    fake_llm.chat("fresh", thread="t", new=True)
    assert [t.user for t in fake_llm.threads.get("t").turns] == ["fresh"]


def test_cancel_keeps_the_partial_turn(fake_llm):
    stream = fake_llm.chat("a b c d e", stream=True)
    received = []
    for delta in stream:
        received.append(delta)
        if len(received) == 2:
            stream.cancel()
    assert "".join(received) == "a b"
    assert stream.response.interrupted
    turn = fake_llm.threads.get().turns[-1]
    assert (turn.assistant, turn.interrupted) == ("a b", True)
    assert fake_llm.manager.get_loaded("echo").busy == 0


def test_closing_the_iterator_records_the_partial_turn(fake_llm):
    deltas = iter(fake_llm.chat("a b c", stream=True))
    assert next(deltas) == "a"
    deltas.close()
    turn = fake_llm.threads.get().turns[-1]
    assert (turn.assistant, turn.interrupted) == ("a", True)


def test_backend_failure_records_nothing(fake_llm):
    fake_llm.chat("keep me", thread="t")
    with pytest.raises(RuntimeError, match="injected generation failure"):
        fake_llm.chat("a b c d", model="flaky", thread="t")
    assert [t.user for t in fake_llm.threads.get("t").turns] == ["keep me"]
    assert fake_llm.manager.get_loaded("flaky").busy == 0


def test_bad_requests_change_nothing(fake_llm):
    fake_llm.chat("hello")
    with pytest.raises(InvalidParameter, match="prompt is empty"):
        fake_llm.chat("   ")
    with pytest.raises(UnknownModel):
        fake_llm.chat("hi", model="nope")
    with pytest.raises(InvalidParameter, match="temperature"):
        fake_llm.chat("hi", temperature=5)
    assert len(fake_llm.threads.get().turns) == 1


def test_provenance_names_model_params_and_usage(fake_llm):
    response = fake_llm.chat("x y", max_tokens=1, seed=3)
    meta = response.provenance()
    assert meta["model"] == "echo" and meta["backend"] == "echo"
    assert meta["params"] == {"max_tokens": 1, "seed": 3}
    assert meta["usage"]["completion_tokens"] == 1
    assert str(response) == "x"


def test_stop_reason_is_kept_and_an_empty_answer_is_not_recorded(fake_llm, model_file):
    assert fake_llm.chat("a b c", max_tokens=2).stop_reason == "max_tokens"
    assert fake_llm.chat("a b c").stop_reason == "stop"
    fake_llm.register("quiet", backend="echo", path=str(model_file), silent=True)
    empty = fake_llm.chat("say nothing", model="quiet", thread="q")
    assert (empty.text, empty.stop_reason, empty.interrupted) == ("", "stop", False)
    assert fake_llm.threads.get("q").turns == []
