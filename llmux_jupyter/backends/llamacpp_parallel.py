"""Several rows of a map decoding at once on llama.cpp (parallel sequences).

llama-cpp-python's ``Llama`` decodes one sequence. For a map, a second llama.cpp context on
the loaded weights holds several sequences, each in a KV stream of its own (``kv_unified``
off): a row's attention then sums over its own cells in the order it would alone, so greedy
answers are token-identical to one row at a time (a unified cache interleaves the rows'
cells, rounds differently, and changed 10 of 32 SmolLM2 answers). Each step decodes one
``llama_batch`` holding the next token of every answering row and the prompts of rows that
start (continuous batching: a finished row's sequence takes the next row at once). Each row
samples from its own logits (``llama_sampler_sample`` with the row's index in the batch, not
-1) through the sampler chain llama-cpp-python builds for a chat completion, under its own
llguidance matcher when there is a schema. The prompt prefix all rows share (system prompt,
template) is evaluated once and copied into every sequence.

Why llama-cpp-python's own low-level API and not xllamacpp (llama.cpp's server embedded in
Python): measured on SmolLM2, 32 rows x 16 tokens, the same CPU time at 1, 4 and 8 sequences
(bench/README.md); it needs no second llama.cpp build and no second copy of the weights, keeps
our llguidance schemas (the same compact JSON as one row at a time) and gives the same tokens.
"""

from __future__ import annotations

import heapq
import inspect
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import GenerationError
from ..types.batch import BatchAnswer
from ..types.values import GenerationParams

# One token of a batch: (sequence, position, token, whether its logits are wanted).
Entry = tuple[int, int, int, bool]
# llama.cpp gives each sequence a window of a multiple of this many tokens.
WINDOW_STEP = 256
# Sampling settings a chat completion takes from its own defaults (we set only temperature
# and top_p), by the names of ``Llama._init_sampler``.
CHAIN_DEFAULTS = (
    "top_k", "min_p", "typical_p", "repeat_penalty", "frequency_penalty", "presence_penalty",
    "tfs_z", "mirostat_mode", "mirostat_tau", "mirostat_eta",
)  # fmt: skip


@dataclass(frozen=True)
class SequenceRow:
    """One request ready to decode: its prompt's tokens, how many tokens it may add, and its
    stop strings (the first of them found in the text ends it, as in llama-cpp-python)."""

    key: int
    prompt: list[int]
    max_new: int
    stops: tuple[str, ...] = ()


@dataclass
class RowSampling:
    """How a row picks its tokens: a llama.cpp sampler chain, and a logits processor (the
    schema's mask: called with the row's tokens so far and its logits) or None."""

    sampler: Any
    constraint: Callable[[list[int], Any], Any] | None = None

    @property
    def logprob(self) -> float | None:
        """The answer's log-probability under the schema, when its constraint counts it."""
        return getattr(self.constraint, "logprob", None)


@dataclass
class _Running:
    """A row in one of the context's sequences."""

    row: SequenceRow
    sampling: RowSampling
    ids: list[int]  # prompt and answer tokens (the newest one at position len - 1)
    text: bytes = b""  # the answer so far, when it has stop strings to look for

    @property
    def answer(self) -> list[int]:
        return self.ids[len(self.row.prompt) :]


def window_for(rows: Sequence[SequenceRow]) -> int:
    """Tokens each sequence needs: the longest prompt with its answer, rounded up."""
    longest = max(len(row.prompt) + row.max_new for row in rows)
    return -(-longest // WINDOW_STEP) * WINDOW_STEP


def fit_sequences(
    wanted: int, rows: int, per_sequence: int, free_memory: int | None, most: int
) -> int:
    """Sequences to run at once: ``wanted``, but no more than the rows, than ``most`` and than
    the KV caches of ``per_sequence`` bytes that fit ``free_memory`` (None: no limit)."""
    fitting = wanted if free_memory is None else free_memory // max(1, per_sequence)
    return max(1, min(wanted, rows, most, fitting))


def max_sequences() -> int:
    """The most sequences a llama.cpp context holds."""
    import llama_cpp

    return int(llama_cpp.llama_max_parallel_sequences())


def shared_prefix(rows: Sequence[SequenceRow]) -> int:
    """Tokens every prompt starts with, leaving at least one token of each prompt to
    evaluate (its logits give the first answer token)."""
    first = rows[0].prompt
    length = min(len(row.prompt) for row in rows) - 1
    for row in rows[1:]:
        length = next(
            (i for i in range(length) if row.prompt[i] != first[i]),
            length,
        )
    return max(0, length)


class ParallelSequences:
    """A llama.cpp context on ``llm``'s weights (and threads) with ``sequences`` sequences of
    ``window`` tokens each. ``answers`` decodes rows through it; ``close`` frees it."""

    def __init__(self, llm: Any, sequences: int, window: int) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_seq_max = sequences
        params.kv_unified = False
        params.n_ctx = sequences * window
        self._llama_cpp = llama_cpp
        self._llm = llm
        self.sequences = sequences
        self._n_batch = int(params.n_batch)
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        self._context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=self._n_batch, embd=0, n_seq_max=1, verbose=False
        )

    def close(self) -> None:
        self._batch.close()
        self._context.close()

    def answers(
        self,
        rows: Sequence[SequenceRow],
        start: Callable[[SequenceRow], RowSampling],
        cancel: threading.Event,
    ) -> Iterator[BatchAnswer]:
        """Each row's answer as it finishes, ``start(row)`` making its sampling as it
        begins; stops between two steps once ``cancel`` is set (the rows still decoding are
        not answered). A row whose schema lost track fails alone."""
        if not rows:
            return
        prefix = self._share_prefix(rows)
        waiting = deque(rows)
        free = list(range(self.sequences))  # a heap: the lowest free sequence first
        running: dict[int, _Running] = {}
        while (waiting or running) and not cancel.is_set():
            if free and waiting:
                batches = self._begin(waiting, free, running, start, prefix)
            else:
                batches = self._evaluate([
                    (sequence, len(current.ids) - 1, current.ids[-1], True)
                    for sequence, current in sorted(running.items())
                ])  # fmt: skip
            for sampled in batches:
                if cancel.is_set():  # e.g. between the prompts of starting rows
                    break
                for sequence, index in sampled.items():
                    answer = self._take(running[sequence], index)
                    if answer is not None:
                        del running[sequence]
                        heapq.heappush(free, sequence)
                        yield answer

    def _share_prefix(self, rows: Sequence[SequenceRow]) -> int:
        """Evaluate the prefix all prompts share into sequence 0 and copy it to the others;
        its length."""
        prefix = shared_prefix(rows)
        tokens = rows[0].prompt[:prefix]
        for _ in self._evaluate([(0, i, token, False) for i, token in enumerate(tokens)]):
            pass
        if prefix:
            for sequence in range(1, self.sequences):
                self._context.kv_cache_seq_cp(0, sequence, -1, -1)  # whole: across streams
        return prefix

    def _begin(
        self,
        waiting: deque[SequenceRow],
        free: list[int],
        running: dict[int, _Running],
        start: Callable[[SequenceRow], RowSampling],
        prefix: int,
    ) -> Iterator[dict[int, int]]:
        """Start waiting rows in the free sequences (which hold the prefix) and evaluate the
        rest of each prompt in batches of its own (as ``_evaluate``). Alone, because llama.cpp
        splits a batch of several KV streams into parts of equal length per stream: a prompt
        beside other rows' tokens would be cut into pieces as short as one token, which round
        differently (a row's greedy answer changed) and compute slower."""
        while free and waiting:
            sequence, row = heapq.heappop(free), waiting.popleft()
            self._context.kv_cache_seq_rm(sequence, prefix, -1)
            running[sequence] = _Running(row, start(row), list(row.prompt))
            last = len(row.prompt) - 1
            yield from self._evaluate([
                (sequence, position, row.prompt[position], position == last)
                for position in range(prefix, len(row.prompt))
            ])  # fmt: skip

    def _evaluate(self, entries: list[Entry]) -> Iterator[dict[int, int]]:
        """Decode the entries, a batch at a time; after each batch, the batch index of each
        sequence's entry that asked for logits (to be sampled before the next batch).

        Entries go in the order of their sequences: llama.cpp splits a batch of several KV
        streams into runs of consecutive sequence ids, and out of order the same tokens took
        35 % more time in smaller computations (hence the lowest free sequence for a new row).
        """
        for begin in range(0, len(entries), self._n_batch):
            chunk = entries[begin : begin + self._n_batch]
            self._fill(chunk)
            self._decode()
            yield {sequence: i for i, (sequence, _, _, logits) in enumerate(chunk) if logits}

    def _decode(self) -> None:
        try:
            self._context.decode(self._batch)
        except RuntimeError as error:  # llama_decode refused the batch (out of KV cells)
            raise GenerationError(
                f"llama.cpp failed while answering ({error}); try again."
            ) from None

    def _fill(self, entries: Sequence[Entry]) -> None:
        """Put (sequence, position, token, wants logits) entries into the batch."""
        batch = self._batch.batch
        for i, (sequence, position, token, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = sequence
            batch.logits[i] = logits
        batch.n_tokens = len(entries)

    def _take(self, current: _Running, index: int) -> BatchAnswer | None:
        """Sample the row's next token from its logits at batch ``index``; the row's answer
        once it has finished (or failed: its schema lost track), else None."""
        llama_cpp = self._llama_cpp
        constraint = current.sampling.constraint
        if constraint is not None:
            import numpy as np

            logits = llama_cpp.llama_get_logits_ith(self._context.ctx, index)
            try:
                constraint(current.ids, np.ctypeslib.as_array(logits, shape=(self._n_vocab,)))
            except GenerationError as error:
                return BatchAnswer(current.row.key, error=str(error))
        token = current.sampling.sampler.sample(self._context, index)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return self._answer(current)
        current.ids.append(token)
        row = current.row
        if row.stops:
            current.text += self._llm.detokenize([token])
            if any(stop.encode() in current.text for stop in row.stops):
                return self._answer(current)
        return self._answer(current) if len(current.answer) >= row.max_new else None

    def _answer(self, current: _Running) -> BatchAnswer:
        """The row's text (cut before its first stop string found, as llama-cpp-python does)."""
        row = current.row
        raw = self._llm.detokenize(current.answer, prev_tokens=row.prompt)
        found = [stop for stop in (s.encode() for s in row.stops) if stop in raw]
        if found:
            raw = raw[: raw.index(found[0])]
        text = raw.decode("utf-8", errors="ignore")
        return BatchAnswer(
            row.key, text, len(row.prompt), len(current.answer), logprob=current.sampling.logprob
        )


def chat_sampler(llm: Any, params: GenerationParams) -> Any:
    """The sampler chain llama-cpp-python builds for a chat completion with ``params``
    (its own defaults, read from ``create_chat_completion``, for what is not set), seeded
    with the row's seed (a random one when none is set)."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(llm.create_chat_completion).parameters.items()
    }
    chosen = {
        "temp": defaults["temperature"] if params.temperature is None else params.temperature,
        "top_p": defaults["top_p"] if params.top_p is None else params.top_p,
        **{name: defaults[name] for name in CHAIN_DEFAULTS},
    }
    kept = llm._seed
    llm.set_seed(random.randrange(2**32) if params.seed is None else params.seed)
    try:
        return llm._init_sampler(**chosen)
    finally:
        llm.set_seed(kept)
