import pytest

from llmux_jupyter.engine.context import Costs, answer_room, check_policy, fit
from llmux_jupyter.errors import ContextOverflow, InvalidParameter


def test_everything_fits_when_the_window_is_large():
    found = fit(Costs(50, [100, 100, 100]), window=2048, max_tokens=200)
    assert (found.used, found.left_out, found.tokens) == (3, 0, 350)
    assert found.note("default") == ""


def test_newest_turns_are_kept_and_the_answer_has_room():
    # 1000 - 200 for the answer = 800: 50 fixed + the two newest turns (300 + 400)
    found = fit(Costs(50, [100, 300, 400]), window=1000, max_tokens=200)
    assert (found.used, found.left_out, found.tokens) == (2, 1, 750)
    assert found.note("t") == "1 earlier turn of thread 't' left out to fit the 1,000-token context"


def test_a_turn_is_never_split_even_if_an_older_smaller_one_would_fit():
    # the newest turn fits; the next (600) does not, so the oldest (10) is not taken either
    found = fit(Costs(50, [10, 600, 100]), window=1000, max_tokens=300)
    assert found.used == 1
    assert found.tokens == 150


def test_without_max_tokens_a_quarter_of_the_window_stays_free():
    assert answer_room(2048, None) == 512
    assert answer_room(2048, 100) == 100
    found = fit(Costs(36, [500, 500, 500, 500]), window=2048, max_tokens=None)
    assert found.used == 3  # 36 + 1500 <= 2048 - 512 < 36 + 2000


def test_the_system_prompt_and_message_always_go():
    found = fit(Costs(900, [50, 50]), window=1000, max_tokens=500)
    assert found.used == 0  # no room for any turn; the answer gets what is left (100)
    assert found.tokens == 900


def test_a_message_longer_than_the_window_is_context_overflow_with_the_numbers():
    with pytest.raises(ContextOverflow, match=r"6,500 tokens .* window is 2,048.*n_ctx=8192"):
        fit(Costs(6500, []), window=2048, max_tokens=None)


def test_policy_error_refuses_instead_of_leaving_turns_out():
    assert fit(Costs(50, [100]), window=1000, max_tokens=100, policy="error").used == 1
    with pytest.raises(ContextOverflow, match="--context error"):
        fit(Costs(50, [400, 400]), window=1000, max_tokens=300, policy="error")


def test_an_unknown_window_sends_the_whole_thread():
    found = fit(Costs(0, [0, 0]), window=None, max_tokens=None)
    assert (found.used, found.left_out, found.window) == (2, 0, None)


def test_policies_are_checked():
    assert check_policy("error") == "error"
    with pytest.raises(InvalidParameter, match="truncate or error"):
        check_policy("drop")
