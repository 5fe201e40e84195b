"""The note a cell shows when the model answered nothing, per stop reason."""

import pytest

from llmux_jupyter.engine.chat import ChatResponse
from llmux_jupyter.frontends.empty_answer import empty_answer_note
from llmux_jupyter.types.values import Usage


def response(stop_reason, **params):
    usage = Usage(prompt_tokens=17, completion_tokens=0)
    return ChatResponse("", "m", "b", params, usage, "default", stop_reason=stop_reason)


@pytest.mark.parametrize(
    ("reason", "params", "says", "not_says"),
    [
        ("stop", {}, ["stop reason: stop;", "without a fitting chat template"], ["--stop"]),
        ("stop", {"stop": ["x"]}, ["a --stop string matched at once; or the model"], []),
        ("max_tokens", {"max_tokens": 1}, ["--max-tokens ran out"], ["chat template"]),
        ("context_full", {}, ["fills the context window", "--new"], ["--stop"]),
        (None, {}, ["stop reason: not reported;", "chat template", "--max-tokens", "--new"], []),
    ],
)
def test_the_note_names_the_usual_causes(reason, params, says, not_says):
    note = empty_answer_note(response(reason, **params))
    assert note.startswith("The model produced no text (")
    assert "0 tokens after a 17-token prompt" in note
    assert note.endswith("The thread did not keep this turn.")
    assert all(text in note for text in says), note
    assert not any(text in note for text in not_says), note
