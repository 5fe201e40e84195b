"""Speculative decoding's bookkeeping on llama.cpp: the adaptive guess length, the counts of
drafted and accepted tokens, and the settings, driven the way llama-cpp-python calls its
``draft_model`` (the real library runs in tests/integration/test_llamacpp_draft.py)."""

from types import SimpleNamespace

import numpy as np
import pytest

from llmux_jupyter.backends.llamacpp import LlamaCppBackend
from llmux_jupyter.backends.llamacpp_draft import (
    AdaptiveDraft,
    DraftModel,
    check_vocabulary,
    draft_memory,
    draft_model_info,
    draft_tokens,
)
from llmux_jupyter.errors import InvalidParameter
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import Draft, DraftMethod, ModelSpec
from llmux_jupyter.types.values import DraftStats, Task

PROMPT = list(range(100, 120))


class Guesses:
    """A proposer that returns the next scripted guess, cut to the size asked for."""

    def __init__(self, *guesses: list[int]) -> None:
        self.guesses = list(guesses)
        self.sizes: list[int] = []

    def __call__(self, input_ids: np.ndarray, count: int) -> np.ndarray:
        self.sizes.append(count)
        guess = self.guesses.pop(0) if self.guesses else []
        return np.array(guess, dtype=np.intc)[:count]


def ids(*parts: list[int]) -> np.ndarray:
    return np.array([token for part in parts for token in part], dtype=np.intc)


def test_rounds_count_when_checked_and_the_guess_length_adapts():
    proposer = Guesses([1, 2, 3, 4], [5, 6, 7, 8], [9], [10, 11])
    draft = AdaptiveDraft("prompt-lookup", proposer, most=4, n_ctx=2048)
    draft.begin()
    first = draft(ids(PROMPT, [0]))  # the prompt, then the model's first token
    assert first.tolist() == [1, 2, 3, 4] and draft.prompt_tokens == len(PROMPT)
    # The model kept 1, 2 and chose 42 where the draft said 3: two accepted, next guess 3 long.
    second = draft(ids(PROMPT, [0], [1, 2], [42]))
    assert second.tolist() == [5, 6, 7]
    # All three kept, plus the model's own next token: the next guess may be longer again.
    draft(ids(PROMPT, [0], [1, 2, 42], [5, 6, 7], [43]))
    draft(ids(PROMPT, [0], [1, 2, 42, 5, 6, 7, 43], [9], [44]))
    assert proposer.sizes == [4, 3, 4, 4]
    assert draft.finish() == DraftStats("prompt-lookup", drafted=8, accepted=6)
    # The last guess (10, 11) was still unchecked when the answer ended: not counted.


def test_a_rejected_first_guess_shrinks_to_one_token_and_nothing_found_counts_nothing():
    proposer = Guesses([1, 2, 3], [], [4])
    draft = AdaptiveDraft("x", proposer, most=8, n_ctx=2048)
    draft.begin()
    draft(ids(PROMPT, [0]))
    draft(ids(PROMPT, [0], [99]))  # nothing of the guess was kept
    draft(ids(PROMPT, [0, 99], [98]))  # the proposer found nothing to guess last time
    assert proposer.sizes == [8, 1, 1]
    assert draft.finish() == DraftStats("x", drafted=3, accepted=0)


def test_answers_are_counted_apart_and_added_up_in_the_totals():
    proposer = Guesses([1, 2], [], [1, 2], [])
    draft = AdaptiveDraft("x", proposer, most=2, n_ctx=2048)
    for _ in range(2):
        draft.begin()
        draft(ids(PROMPT, [0]))
        draft(ids(PROMPT, [0], [1, 2], [3]))
        assert draft.finish() == DraftStats("x", 2, 2)
    assert draft.totals == DraftStats("x", 4, 4) and draft.totals.acceptance == 1.0
    assert str(draft.totals) == "x: 4 of 4 drafted tokens accepted"


def test_guesses_never_run_past_the_context():
    proposer = Guesses([1, 2, 3, 4])
    draft = AdaptiveDraft("x", proposer, most=4, n_ctx=len(PROMPT) + 3)
    draft.begin()
    assert draft(ids(PROMPT, [0])).tolist() == [1, 2]
    assert draft(ids(PROMPT, [0], [1, 2])).tolist() == []  # the context is full


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "at least 1"), (65, "at most 64"), ("ten", "a whole number"), (True, "a whole number")],
)
def test_bad_draft_tokens_are_refused(value, message):
    with pytest.raises(InvalidParameter, match=f"draft_tokens={value!r}: give {message}"):
        LlamaCppBackend.checked_settings({"draft_tokens": value})
    assert draft_tokens({}) == 10
    assert draft_tokens(LlamaCppBackend.checked_settings({"draft_tokens": "4"})) == 4


def test_a_draft_model_must_be_a_llamacpp_chat_model(tmp_path):
    whisper = ModelSpec("ears", "faster-whisper", Task.TRANSCRIPTION, FileSource(str(tmp_path)))
    with pytest.raises(InvalidParameter, match=r"must be a llamacpp chat model .* faster-whisper"):
        draft_model_info(Draft(model=whisper), "llamacpp")
    assert draft_model_info(Draft(method=DraftMethod.PROMPT_LOOKUP), "llamacpp") is None


def test_drafting_memory_counts_the_logits_of_every_position_and_the_draft_model():
    target = SimpleNamespace(vocabulary_size=1000)
    draft = SimpleNamespace(tensor_bytes=5000, kv_cache_bytes=lambda n_ctx: 2 * n_ctx)
    assert draft_memory(None, target, 512, on_gpu=False).ram == 512 * 1000 * 4
    on_cpu = draft_memory(draft, target, 512, on_gpu=False)
    on_gpu = draft_memory(draft, target, 512, on_gpu=True)
    assert on_cpu.ram == 512 * 4000 + 5000 + 1024 and on_cpu.vram == 0
    assert (on_gpu.ram, on_gpu.vram) == (512 * 4000, 5000 + 1024)


class FakeLlama:
    def __init__(self, vocabulary: list[bytes]) -> None:
        self.vocabulary = vocabulary

    def n_vocab(self) -> int:
        return len(self.vocabulary)

    def detokenize(self, tokens: list[int]) -> bytes:
        return b"".join(self.vocabulary[t] for t in tokens)


def test_a_draft_model_with_other_tokens_is_refused():
    ours = FakeLlama([b"a", b"b", b"c"])
    same = AdaptiveDraft("same", DraftModel(FakeLlama([b"a", b"b", b"c"])), 4, 64)
    check_vocabulary(ours, same)
    for vocabulary in ([b"a", b"b"], [b"a", b"c", b"b"]):
        other = AdaptiveDraft("other", DraftModel(FakeLlama(vocabulary)), 4, 64)
        with pytest.raises(InvalidParameter, match="its vocabulary differs from the model's"):
            check_vocabulary(ours, other)


def test_drafting_pauses_while_guesses_fail_and_resumes_when_the_text_copies():
    proposer = Guesses([1, 2], [3], [7], [8], [9], [51, 52, 53, 54, 55])
    draft = AdaptiveDraft("x", proposer, most=4, n_ctx=2048)
    draft.begin()
    draft(ids(PROMPT, [0]))  # guesses 1, 2
    draft(ids(PROMPT, [0], [60]))  # both wrong; guesses 3
    sent = draft(ids(PROMPT, [0, 60], [61]))  # wrong again: paused, 7 only watched
    assert sent.tolist() == [] and draft.paused
    assert draft(ids(PROMPT, [0, 60, 61], [62])).tolist() == []  # 7 was wrong; watches 8
    assert draft(ids(PROMPT, [0, 60, 61, 62], [8])).tolist() == []  # 8 came: one hit; 9
    resumed = draft(ids(PROMPT, [0, 60, 61, 62, 8], [9]))  # 9 came: two hits in a row
    assert not draft.paused and resumed.tolist() == [51, 52, 53, 54]
    assert draft.finish() == DraftStats("x", drafted=3, accepted=0)  # watched ones never count
