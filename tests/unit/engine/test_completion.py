"""Code completion's own logic: FIM formats, the end of a block, fitting the prompt, and the
worker that runs one request at a time (on a scripted backend)."""

from __future__ import annotations

import threading

import pytest

from llmux_jupyter.engine.completion import (
    BlockEnd,
    Completion,
    CompletionRequest,
    FIMFormat,
    fim_format,
    fit_prompt,
)
from llmux_jupyter.errors import CompletionUnsupported, InvalidParameter

from ..conftest import WAIT_S, FIMBackend, hold_completions

QWEN = FIMFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", ("<|endoftext|>",))


def shown(before: str, after: str, pieces: list[str], max_lines: int = 12) -> tuple[str, bool]:
    """What BlockEnd shows of an answer streamed in ``pieces``, and whether it ended it."""
    shape = BlockEnd(before, after, max_lines)
    streamed = ""
    for piece in pieces:
        new = shape.feed(piece)
        assert shape.result == streamed + new  # what is shown only grows
        streamed += new
    return shape.result, shape.done


def test_fim_formats_come_from_the_vocabulary():
    qwen = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>", "<x>"}
    assert fim_format("qwen", frozenset(qwen)) == QWEN
    assert QWEN.prompt("a", "b") == "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
    starcoder = fim_format("sc", frozenset({"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}))
    assert starcoder.prompt("a", "b") == "<fim_prefix>a<fim_suffix>b<fim_middle>"
    with pytest.raises(CompletionUnsupported, match="'smol' has no fill-in-the-middle tokens"):
        fim_format("smol", frozenset({"<|endoftext|>", "<|fim_prefix|>"}))


def test_a_block_ends_where_its_indentation_does():
    before = "def fibonacci(n):\n    "
    answer = ["    if n < 2", ":\n        return n\n", "\n    return fib", "(n - 1)\n\n\nprint(1)"]
    text, done = shown(before, "", answer)
    assert text == "if n < 2:\n        return n\n\n    return fib(n - 1)" and done


def test_a_top_level_block_ends_at_a_blank_line_and_lines_are_capped():
    assert shown("def f(x):", "", ["\n    return x\n", "\nprint(f(1))"]) == (
        "\n    return x",
        True,
    )
    assert shown("x = 1\n", "", ["y = 2\nz = 3\nw = 4\n"], max_lines=2) == ("y = 2\nz = 3", True)
    assert shown("x = 1\n", "", ["y = 2\nz"]) == ("y = 2\nz", False)  # still going


def test_text_after_the_cursor_keeps_the_answer_on_its_line_without_repeating_it():
    assert shown("print(", ")\nx = 1", ["len(x", "s))", "\nmore"]) == ("len(xs)", True)
    assert shown("f(a, ", ")", ["b) + 1"]) == ("b) + 1", False)  # not the end: shown whole


def test_trailing_whitespace_waits_for_text():
    shape = BlockEnd("x = 1\n", "", 12)
    assert shape.feed("y = 2  ") == "y = 2"
    assert shape.feed("\n  ") == ""
    assert shape.feed("z") == "  \n  z"  # the held text comes with what follows it
    assert shape.result == "y = 2  \n  z"


def count_words(text: str) -> int:
    return len(text.split())


def test_the_prompt_fits_its_budget_and_keeps_what_is_nearest_the_cursor():
    context = tuple(f"cell_{n} = {n}" for n in range(300))  # 900 words
    request = CompletionRequest("a b c\n" * 50 + "tail", "after\n" * 200, context)
    prompt = fit_prompt(QWEN, request, count_words, 300)
    assert count_words(prompt) <= 300
    middle = prompt.index("<|fim_suffix|>")
    assert prompt[:middle].endswith("a b c\ntail") and "cell_299 = 299" in prompt
    assert "cell_0 = 0" not in prompt and prompt.count("after") <= 300 // 8
    small = fit_prompt(QWEN, CompletionRequest("x = ", "", ("import os",)), count_words, 300)
    assert small == "<|fim_prefix|>import os\n\nx = <|fim_suffix|><|fim_middle|>"


def test_the_cells_above_are_cut_the_same_as_the_cell_grows():
    """Successive keystrokes share the prompt's start (llama.cpp reuses its KV cache)."""
    context = tuple(f"cell_{n} = {n}" for n in range(300))
    one = fit_prompt(QWEN, CompletionRequest("def f", "", context), count_words, 400)
    two = fit_prompt(QWEN, CompletionRequest("def f(x", "", context), count_words, 400)
    assert two.startswith(one.partition("def f")[0] + "def f")


def test_requests_are_checked():
    with pytest.raises(InvalidParameter, match="max_tokens"):
        CompletionRequest("x", max_tokens=0)
    with pytest.raises(InvalidParameter, match="max_lines"):
        CompletionRequest("x", max_lines=0)


class Recorder:
    """A listener: what each request got."""

    def __init__(self) -> None:
        self.deltas: dict[int, str] = {}
        self.ends: dict[int, Completion] = {}
        self.done = threading.Condition()

    def delta(self, request_id: int, text: str) -> None:
        self.deltas[request_id] = self.deltas.get(request_id, "") + text

    def finished(self, completion: Completion) -> None:
        with self.done:
            self.ends[completion.request_id] = completion
            self.done.notify_all()

    def wait(self, request_id: int) -> Completion:
        with self.done:
            assert self.done.wait_for(lambda: request_id in self.ends, WAIT_S)
        return self.ends[request_id]


def test_a_completion_streams_and_records_nothing(coder):
    FIMBackend.answers = ["return a + b\n\nprint(1)"]
    coder.set_completion_model("coder")
    threads = coder.threads.names()
    completion = coder.complete("def add(a, b):\n    ", context=["import os"])
    assert completion.text == "return a + b" and completion.reason == "end"
    assert FIMBackend.prompts == [
        "<|fim_prefix|>import os\n\ndef add(a, b):\n<|fim_suffix|><|fim_middle|>"
    ]
    request = CompletionRequest("def add(a, b):\n    ", context=("import os",))
    assert coder.completer.prompt(request) == FIMBackend.prompts[0]
    assert coder.last is None and coder.threads.names() == threads
    model = coder.manager.get_loaded("coder")
    assert model.state == "idle" and model.last_used > model.loaded_at  # it counted as a use


def running(coder, request_id: int) -> tuple[threading.Event, Recorder]:
    """``coder`` completing ``request_id``, held after its first piece: the gate, the answers."""
    gate, recorder = hold_completions(coder), Recorder()
    coder.completer.submit(request_id, CompletionRequest("x = 1\n"), recorder)
    assert FIMBackend.started.wait(WAIT_S)
    return gate, recorder


def test_a_newer_request_cancels_the_running_one(coder):
    gate, recorder = running(coder, 1)
    FIMBackend.answers = ["y = 2\n"]
    coder.completer.submit(2, CompletionRequest("x = 1\ny"), recorder)
    coder.completer.submit(3, CompletionRequest("x = 1\ny ="), recorder)  # 2 never runs
    gate.set()
    assert recorder.wait(1).reason == "cancelled" and recorder.wait(2).reason == "cancelled"
    assert recorder.wait(3).text.startswith("y = 2")
    assert len(FIMBackend.prompts) == 2  # request 2 was dropped before it ran
    assert coder.completer.cancel(wait=WAIT_S) and coder.manager.get_loaded("coder").busy == 0


def test_cancel_waits_until_the_model_is_free(coder):
    gate, recorder = running(coder, 7)
    assert not coder.completer.cancel(8, wait=0.05)  # another id: nothing cancelled
    threading.Timer(0.2, gate.set).start()
    assert coder.completer.cancel(wait=WAIT_S)
    assert recorder.wait(7).reason == "cancelled"


def test_models_that_cannot_complete_are_refused_and_nothing_changes(coder):
    coder.set_completion_model("coder")
    with pytest.raises(CompletionUnsupported, match="no fill-in-the-middle tokens"):
        coder.set_completion_model("plain")
    with pytest.raises(CompletionUnsupported, match="echo backend, which cannot continue"):
        coder.config.completion_model = "echo"
    assert coder.config.completion_model == "coder" and coder.completer.model == "coder"
    assert not coder.manager.is_loaded("plain")


def test_completion_is_off_until_a_model_is_set(coder):
    assert coder.complete("x = ").reason == "error"
    coder.config.completion_model = "coder"
    FIMBackend.answers = ["1\n"]
    assert coder.complete("x = ").text == "1"
    coder.set_completion_model(None)
    assert coder.config.completion_model == "" and coder.completer.model is None
