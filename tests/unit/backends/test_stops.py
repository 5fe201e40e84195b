"""Stop strings over streamed text: held back while ambiguous, cut before the stop."""

import pytest

from llmux_jupyter.backends.stops import StopTrimmer


def run(stops, pieces):
    trimmer = StopTrimmer(stops)
    shown = [trimmer.feed(piece) for piece in pieces]
    return shown, trimmer.flush(), trimmer.stopped


def test_without_stops_text_passes_through():
    assert run([], ["a", "b"]) == (["a", "b"], "", False)


def test_stop_inside_one_piece_cuts_before_it():
    assert run(["END"], ["one two END three", "four"]) == (["one two ", ""], "", True)


@pytest.mark.parametrize(
    "pieces",
    [["Hello\n", "World"], ["Hel", "lo", "\nWorld"], ["H", "e", "l", "l", "o", "\n"]],
)
def test_stop_split_across_pieces(pieces):
    shown, tail, stopped = run(["\n"], pieces)
    assert "".join(shown) + tail == "Hello" and stopped


def test_a_partial_match_is_held_back_then_released():
    shown, tail, stopped = run(["###"], ["a #", "# b", " c ##"])
    assert shown == ["a ", "## b", " c "]
    assert tail == "##" and not stopped


def test_earliest_of_several_stops_wins():
    shown, _, stopped = run(["world", "lo"], ["hello world"])
    assert shown == ["hel"] and stopped
