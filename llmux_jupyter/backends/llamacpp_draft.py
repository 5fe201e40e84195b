"""Speculative decoding on llama.cpp. Before each step llama-cpp-python asks its ``draft_model``
for guessed tokens and checks them all in one batch, keeping those the model itself would
have chosen: greedy answers stay the same, and come faster when the guesses are right.

``AdaptiveDraft`` is that ``draft_model``. It asks a proposer — prompt lookup (llama-cpp-python's
``LlamaPromptLookupDecoding``) or a small GGUF model with the same vocabulary — for up to
``draft_tokens`` tokens; after a rejection the next guess is shorter, after full acceptance
longer. After two rounds in a row with nothing accepted it stops sending guesses (free-form
text, where they fail, then costs nothing to check) but keeps asking the proposer and
watching: once its guess would have been right twice in a row (the text started copying),
it drafts again. It counts drafted and accepted tokens: a round counts once the model has
checked it, which shows at the next call, so the last round of an answer (cut short when
the answer ended) is left out of the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameter
from ..models.gguf_info import GGUFInfo
from ..models.gguf_split import read_model_info
from ..models.spec import Draft, DraftMethod
from ..types.values import DraftStats, RequiredMemory, Task

if TYPE_CHECKING:
    import numpy as np

DEFAULT_DRAFT_TOKENS = 10
MAX_DRAFT_TOKENS = 64
LOOKUP_NGRAM = 2  # LlamaPromptLookupDecoding's default n-gram size
PAUSE_AFTER_MISSES = 2  # rounds in a row with nothing accepted: stop sending guesses
RESUME_AFTER_HITS = 2  # unsent guesses in a row whose first token came true: draft again
# Proposes up to ``count`` tokens to follow ``input_ids``.
Proposer = Callable[["np.ndarray", int], "np.ndarray"]


def draft_tokens(settings: Mapping[str, Any]) -> int:
    """The ``draft_tokens`` setting (checked by its declaration): the most tokens guessed per
    step (default 10)."""
    return int(settings.get("draft_tokens", DEFAULT_DRAFT_TOKENS))


def draft_model_info(draft: Draft, backend: str) -> GGUFInfo | None:
    """The draft model's GGUF header (None for a draft method); refuses a model that is not
    a GGUF chat model of ``backend``."""
    if draft.model is None:
        return None
    spec = draft.model
    if spec.backend != backend or spec.task is not Task.CHAT:
        raise InvalidParameter(
            f"--draft {spec.name}: a draft model must be a {backend} chat model (a small GGUF "
            f"with the same vocabulary); {spec.name!r} is {spec.backend}, {spec.task.value}."
        )
    return read_model_info(spec.source.resolve())


def draft_memory(
    draft_info: GGUFInfo | None, target: GGUFInfo, n_ctx: int, on_gpu: bool
) -> RequiredMemory:
    """What drafting adds: llama-cpp-python keeps the logits of every position once a draft is
    set (n_ctx x vocabulary floats in RAM), plus a draft model's weights and KV cache."""
    logits = n_ctx * target.vocabulary_size * 4
    if draft_info is None:
        return RequiredMemory(ram=logits)
    model = draft_info.tensor_bytes + draft_info.kv_cache_bytes(n_ctx)
    return RequiredMemory(ram=logits, vram=model) if on_gpu else RequiredMemory(ram=logits + model)


class PromptLookup:
    """Guesses by copying what followed the same tokens earlier in the context."""

    def __init__(self, most: int) -> None:
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

        self._lookup = LlamaPromptLookupDecoding(max_ngram_size=LOOKUP_NGRAM, num_pred_tokens=most)

    def __call__(self, input_ids: np.ndarray, count: int) -> np.ndarray:
        return self._lookup(input_ids)[:count]


class DraftModel:
    """Greedy guesses of a second, smaller ``llama_cpp.Llama`` with the same vocabulary; its
    KV cache keeps the prefix the calls share, so each call evaluates only what is new."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama

    def __call__(self, input_ids: np.ndarray, count: int) -> np.ndarray:
        import numpy as np

        tokens: list[int] = []
        for token in self.llama.generate(input_ids.tolist(), temp=0.0):
            tokens.append(token)
            if len(tokens) >= count:
                break
        return np.array(tokens, dtype=np.intc)

    def close(self) -> None:
        self.llama.close()


class AdaptiveDraft:
    """The ``draft_model`` given to ``llama_cpp.Llama``: adaptive guess length, counted tokens.

    Call ``begin()`` before each answer and ``finish()`` after it (for that answer's counts);
    ``totals`` adds up every answer since the load.
    """

    def __init__(self, name: str, propose: Proposer, most: int, n_ctx: int) -> None:
        self.name = name
        self.propose = propose
        self.most = most
        self.n_ctx = n_ctx
        self.totals = DraftStats(name)
        self.begin()

    def begin(self) -> None:
        self._answer = DraftStats(self.name)
        self._size = self.most
        self._pending: tuple[int, np.ndarray] | None = None
        self._misses = 0
        self.paused = False
        self._watched: tuple[int, np.ndarray] | None = None  # the last guess not sent
        self._hits = 0
        # The first call sees the prompt and the first answer token: the prompt's true
        # length (the context's end also holds guesses not yet checked).
        self.prompt_tokens: int | None = None

    def finish(self) -> DraftStats:
        answer, self._answer = self._answer, DraftStats(self.name)
        self.totals += answer
        self._pending = None
        return answer

    def __call__(self, input_ids: np.ndarray, /, **kwargs: Any) -> np.ndarray:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids) - 1
        self._settle(input_ids)
        if self.paused and self._still_paused(input_ids):
            self._pending = None
            return input_ids[:0]
        size = max(0, min(self._size, self.n_ctx - len(input_ids)))
        guess = self.propose(input_ids, size)[:size] if size else input_ids[:0]
        self._pending = (len(input_ids), guess)
        return guess

    def _still_paused(self, input_ids: np.ndarray) -> bool:
        """While paused: would the last unsent guess have been right? Resume after
        ``RESUME_AFTER_HITS`` such guesses in a row; else watch the next one."""
        if self._watched is not None:
            start, guess = self._watched
            came = input_ids[start : start + 1].tolist()
            self._hits = self._hits + 1 if len(guess) and guess[:1].tolist() == came else 0
        if self._hits >= RESUME_AFTER_HITS:
            self.paused, self._misses, self._size, self._watched = False, 0, self.most, None
            return False
        self._watched = (len(input_ids), self.propose(input_ids, 1)[:1])
        return True

    def _settle(self, input_ids: np.ndarray) -> None:
        """Count the previous round: its guesses that now stand in the context."""
        if self._pending is None or not len(self._pending[1]):
            return
        start, guess = self._pending
        accepted = 0
        for expected, found in zip(guess.tolist(), input_ids[start:].tolist(), strict=False):
            if expected != found:
                break
            accepted += 1
        self._answer += DraftStats(self.name, len(guess), accepted)
        self._misses = 0 if accepted else self._misses + 1
        if self._misses >= PAUSE_AFTER_MISSES:
            self.paused, self._hits, self._watched = True, 0, None
        if accepted == len(guess):
            self._size = min(self.most, self._size + 2)
        else:
            self._size = accepted + 1


def open_draft(
    draft: Draft, path: Path | None, most: int, keywords: dict[str, Any]
) -> AdaptiveDraft:
    """The ``draft_model`` for ``draft``; a draft model loads from ``path`` with the target's
    context size, threads and GPU placement (``keywords`` of the target's ``Llama``)."""
    if draft.method is DraftMethod.PROMPT_LOOKUP:
        proposer: Proposer = PromptLookup(most)
    else:
        import llama_cpp

        shared = ("n_ctx", "n_gpu_layers", "main_gpu", "n_threads", "n_threads_batch", "verbose")
        llama = llama_cpp.Llama(
            model_path=str(path), **{k: keywords[k] for k in shared if k in keywords}
        )
        proposer = DraftModel(llama)
    return AdaptiveDraft(draft.name, proposer, most, int(keywords["n_ctx"]))


def check_vocabulary(target: Any, draft: AdaptiveDraft) -> None:
    """Refuse a draft model whose tokens differ from the target's (its guesses would be
    other tokens' numbers)."""
    proposer = draft.propose
    if not isinstance(proposer, DraftModel):
        return
    theirs, ours = proposer.llama, target
    same = theirs.n_vocab() == ours.n_vocab() and all(
        theirs.detokenize([token]) == ours.detokenize([token]) for token in range(ours.n_vocab())
    )
    if not same:
        raise InvalidParameter(
            f"--draft {draft.name}: its vocabulary differs from the model's ({theirs.n_vocab()} "
            f"vs {ours.n_vocab()} tokens), and speculative decoding needs the same one. Pick a "
            "smaller model of the same family, or --draft prompt-lookup."
        )
