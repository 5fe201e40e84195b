"""The repetition stop: what counts as an answer repeating itself, and what does not."""

from __future__ import annotations

import pytest

from llmux_jupyter.engine.repetition import RepetitionGuard

pytestmark = pytest.mark.unit


def first_trip(text: str, repeats: int = 4) -> tuple[int | None, str | None]:
    """Where (in characters fed one by one) the guard trips, and what it saw repeating."""
    guard = RepetitionGuard(repeats)
    for index, char in enumerate(text):
        if guard.feed(char):
            return index, guard.repeated
    return None, None


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ("Let me see. " + "The answer is 37. " * 7, "The answer is 37."),
        ("Intro\n" + "- the same bullet\n\n" * 5, "- the same bullet"),
        ("Ping pong one. Ping pong two. " * 5, "Ping pong one. Ping pong two."),
    ],
)
def test_a_line_or_sentence_coming_again_and_again_trips_it(text, repeated):
    index, seen = first_trip(text)
    assert seen == repeated
    assert index is not None and index < len(text) - 1  # before the end: it stops the loop


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 37. " * 3,  # three times is not yet a loop
        "}\n" * 10 + "---\n" * 10,  # short pieces repeat in sound code and tables
        "1. The first item.\n2. The second item.\n3. The third item.\n",
        "The answer is 37. " * 9,
    ],
)
def test_sound_answers_and_a_switched_off_guard_never_trip(text):
    repeats = 0 if text.count("37") == 9 else 4
    assert first_trip(text, repeats) == (None, None)
