"""Long sessions in a real kernel on the real SmolLM2 (llama.cpp; registered with a 768-token
window, so a thread outgrows it in a few cells): a thread that outgrows the window keeps
answering with the oldest turns left out (and says so), --context error refuses, a message
longer than the window is ContextOverflow, an answer that reaches the end of the window stops
marked "context full"; typed settings refuse bad values before loading."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .kernel import Kernel, llmux_kernel

TOPICS = ["lighthouses", "volcanoes", "trains", "bees", "glaciers", "castles", "comets"]
CELL = (
    "%%llm -m small-window --max-tokens 80 --temperature 0.7 --seed {seed} {options}\n"
    "Write a very long story about {topic}, in many chapters."
)
STATE = "(sorted((m.name, m.loaded_at) for m in llm.ps()), keep)"
DOCUMENT = " ".join(["word"] * 5000)


def cell(number: int, options: str = "") -> str:
    return CELL.format(seed=number, options=options, topic=TOPICS[number % len(TOPICS)])


def answer(run) -> dict:
    """The final display of a %%llm cell that answered: its text and provenance."""
    assert run.status == "ok", run.error
    return run.displays[-1]["content"]


@pytest.fixture(scope="module")
def session(tmp_path_factory, smollm2_path) -> Iterator[Kernel]:
    setup = (
        "keep = 'precious'\n"
        f"%llm register tiny-window --backend llamacpp --path {smollm2_path} --set n_ctx=256\n"
        f"%llm register small-window --backend llamacpp --path {smollm2_path} --set n_ctx=768\n"
        "%llm load smollm2\n"
    )
    with llmux_kernel(tmp_path_factory.mktemp("context-config"), setup) as kernel:
        yield kernel


@pytest.fixture(scope="module")
def long_thread(session) -> list[dict]:
    """11 cells of up to 80 tokens in the default thread; their final displays."""
    return [answer(session.run(cell(number))) for number in range(11)]


def test_every_cell_answers_and_late_ones_note_the_turns_left_out(session, long_thread):
    contexts = [final["metadata"]["llmux"]["context"] for final in long_thread]
    assert all(final["data"]["text/plain"].strip() for final in long_thread)
    assert all(c["window"] == 768 for c in contexts)
    left_out = [c["turns_left_out"] for c in contexts]
    usage = [final["metadata"]["llmux"]["usage"] for final in long_thread]
    assert left_out[0] == 0 and left_out[-1] > 0, (contexts, usage)
    for final, context in zip(long_thread, contexts, strict=True):
        noted = "left out to fit the 768-token context" in final["data"]["text/plain"]
        assert noted == (context["turns_left_out"] > 0)
        assert context["prompt_tokens"] + 80 <= 768  # room for the answer
        # our count of the prompt is llama.cpp's own, within a token per turn's edge (a turn
        # is counted on its own, so a merge across its edge can differ; llama.cpp's n_tokens
        # lacks the last sampled token)
        counted = final["metadata"]["llmux"]["usage"]["prompt_tokens"]
        assert abs(counted - context["prompt_tokens"]) <= context["turns_used"] + 2
    last = long_thread[-1]["data"]["text/plain"]
    turns = contexts[-1]["turns_left_out"]
    assert f"{turns} earlier turns of thread 'default' left out" in last
    assert session.value("len(llm.threads.get('default').turns)") == 11  # the thread keeps all


def test_threads_shows_tokens_and_what_the_last_answer_used(session, long_thread):
    run = session.run("%llm threads default")
    assert run.status == "ok", run.error
    table = run.displays[-1]["content"]["data"]["text/plain"]
    assert "tokens" in table and "left out" in table and "in prompt" in table
    assert "answer" in table
    tokens = session.value(
        "[t.tokens.get('small-window') for t in llm.threads.get('default').turns]"
    )
    assert all(isinstance(count, int) and count > 10 for count in tokens)


def test_context_error_refuses_then_the_next_cell_works(session, long_thread):
    before = session.value(STATE)
    run = session.run(cell(20, "--context error"))
    assert run.status == "error" and run.error["ename"] == "ContextOverflow", run.error
    assert "--context error" in run.error["evalue"]
    assert len(run.error["traceback"]) == 1
    assert session.value(STATE) == before
    assert session.value("len(llm.threads.get('default').turns)") == 11
    assert answer(session.run(cell(21)))["data"]["text/plain"].strip()


def test_a_document_longer_than_the_window_is_context_overflow_with_the_numbers(session):
    session.run(f"document = {DOCUMENT!r}")
    before = session.value(STATE)
    run = session.run("%%llm --thread doc\nSummarize: {document!s}")  # !s: all of it, not described
    assert run.status == "error" and run.error["ename"] == "ContextOverflow", run.error
    message = run.error["evalue"]
    assert "context window is 2,048" in message and "n_ctx=8192" in message
    assert "5,0" in message  # the message's own token count: 5,000 words and the template
    assert session.value(STATE) == before
    assert session.value("llm.threads.get('doc').turns") == []
    assert answer(session.run("%%llm --thread doc --max-tokens 20\nSay hello."))


def test_an_answer_reaching_the_end_of_the_window_stops_marked(session):
    final = answer(
        session.run(
            "%%llm -m tiny-window --thread full --temperature 0.7 --seed 1 -o story\n"
            "Write a very long story about a lighthouse keeper, in many chapters."
        )
    )
    provenance = final["metadata"]["llmux"]
    assert provenance["context"]["window"] == 256
    text = final["data"]["text/plain"]
    assert "context full" in text and session.value("len(story) > 20")
    turns = session.value(
        "[(t.user[:5], len(t.assistant) > 20) for t in llm.threads.get('full').turns]"
    )
    assert turns == [("Write", True)]  # the partial answer is kept
    session.run("%llm unload tiny-window")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("%llm load smollm2 --set n_ctx=abc", "n_ctx='abc': give a whole number"),
        ("llm.load('smollm2', n_ctx=100)", "n_ctx=100: give at least 256"),
    ],
)
def test_bad_settings_are_refused_before_loading(session, code, message):
    before = session.value(STATE)
    run = session.run(code)
    assert run.status == "error" and run.error["ename"] == "InvalidParameter", run.error
    assert message in run.error["evalue"]
    assert session.value(STATE) == before


def test_settings_are_converted(session):
    run = session.run("%llm load tiny-window --set flash_attn=no --set n_batch=128")
    assert run.status == "ok", run.error
    settings = session.value("llm.manager.get_loaded('tiny-window').backend.settings")
    assert settings == {"n_ctx": 256, "flash_attn": False, "n_batch": 128}
    session.run("%llm unload tiny-window")
