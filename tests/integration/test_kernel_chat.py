"""%%llm in a real kernel on the real SmolLM2 GGUF (llama.cpp): streaming, -o, reuse, interrupt."""

from __future__ import annotations

from .kernel import interrupt_answer, streamed_answer

PROMPT = "%%llm --temperature 0 --seed 7 --max-tokens 60 {options}\nWrite a haiku about GPUs."


def test_answer_streams_as_several_display_updates_before_the_cell_ends(kernel):
    final = streamed_answer(kernel.run(PROMPT.format(options="--thread stream")))
    provenance = final["metadata"]["llmux"]
    assert provenance["model"] == "smollm2" and provenance["backend"] == "llamacpp"
    assert provenance["params"] == {"temperature": 0.0, "max_tokens": 60, "seed": 7}
    usage = provenance["usage"]
    assert 0 < usage["completion_tokens"] <= 60 and usage["prompt_tokens"] > 5
    assert usage["tokens_per_second"] > 0 and usage["time_to_first_token_s"] > 0
    assert len(final["data"]["text/markdown"].split()) >= 5


def test_output_variable_and_model_reuse(kernel):
    kernel.run("%llm load smollm2")
    loaded_at = kernel.value("[(m.name, m.loaded_at) for m in llm.ps()]")
    run = kernel.run(PROMPT.format(options="-o answer --new --thread reuse"))
    assert run.status == "ok", run.error
    answer = kernel.value("answer")
    assert isinstance(answer, str) and len(answer) > 10
    final = run.displays[-1]["content"]["data"]["text/plain"]
    assert answer == final
    assert kernel.value("[(m.name, m.loaded_at) for m in llm.ps()]") == loaded_at


def test_same_seed_same_answer(kernel):
    first = kernel.run(PROMPT.format(options="-o a1 --new --thread s1"))
    second = kernel.run(PROMPT.format(options="-o a2 --new --thread s2"))
    assert first.status == second.status == "ok"
    assert kernel.value("a1 == a2 and len(a1) > 0") is True


def test_threads_remember_earlier_cells(kernel):
    kernel.run("%%llm --thread memory --new --temperature 0 --max-tokens 20\nMy name is Ada.")
    kernel.run("%%llm --thread memory --temperature 0 --max-tokens 20\nWhat is my name?")
    turns = kernel.value(
        "[(t.user, len(t.assistant) > 0) for t in llm.threads.get('memory').turns]"
    )
    assert turns == [("My name is Ada.", True), ("What is my name?", True)]


def test_interrupt_stops_keeps_partial_and_model(kernel):
    kernel.run("%llm load smollm2")
    answer = interrupt_answer(
        kernel,
        "%%llm --thread long --new --max-tokens 1500 --temperature 0.8 -o partial\n"
        "Write a very long story about a lighthouse keeper, in many chapters.",
    )
    assert answer.final["metadata"]["llmux"]["usage"]["completion_tokens"] < 1500
    # The four promises: partial answer kept, model loaded, thread records it, next cell works.
    assert kernel.value("[m.name for m in llm.ps()]") == ["smollm2"]
    turn = kernel.value(
        "(lambda t: (t.interrupted, t.assistant == partial))(llm.threads.get('long').turns[-1])"
    )
    assert turn == (True, True)
    assert kernel.value("len(partial)") >= len(answer.seen)
    after = kernel.run(PROMPT.format(options="--thread after"))
    assert after.status == "ok", after.error
    assert kernel.value("llm.ps()[0].busy") == 0
