"""Constrained decoding with llguidance: a JSON schema becomes a token mask applied to each
step's logits, for llama-cpp-python (a logits processor over numpy) and transformers (a
``LogitsProcessor`` over a batch, one matcher per row). One JSON-schema dialect for both.

llguidance is imported when a schema is used (the ``tools`` extra), never at ``%load_ext``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import BackendNotInstalled, GenerationError, InvalidParameter

EXTRA_HINT = "pip install 'llmux-jupyter[tools]'"
# Numbers under a schema: at most 15 integer digits (exact in a float) and 8 decimals. A small
# model otherwise writes digits until its token cap ({"x": 1000000000...), and the answer is cut.
INTEGER_DIGITS = 15
DECIMALS = 8


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError:
        raise BackendNotInstalled(f"Constrained decoding needs llguidance: {EXTRA_HINT}") from None
    return llguidance


def json_grammar(schema: dict[str, Any], tokenizer: Any) -> str:
    """The llguidance grammar of a JSON schema (compact JSON, numbers of a sane length: see
    ``bounded_numbers``), checked against the tokenizer."""
    llguidance = _llguidance()
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            bounded_numbers(schema), defaults={"whitespace_flexible": False}
        )
    except ValueError as error:
        raise InvalidParameter(f"Not a JSON schema llguidance can read: {error}.") from None
    problem = llguidance.LLMatcher.validate_grammar(grammar, tokenizer)
    if problem:
        raise InvalidParameter(
            f"This JSON schema cannot be decoded under ({problem.splitlines()[0]}): simplify it "
            "(llguidance supports most of JSON Schema, see its docs)."
        )
    return grammar


def bounded_numbers(schema: Any) -> Any:
    """``schema`` with every integer and number given the digits a decoder may write: bounds
    of 15 digits where it sets none, and for numbers at most 8 decimals (``multipleOf``), so
    the grammar ends every number (llguidance's unbounded ``[0-9]*`` otherwise lets a small
    model go on). Only the decoding changes; answers are validated against the schema as
    given."""
    if isinstance(schema, list):
        return [bounded_numbers(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    bounded = {key: bounded_numbers(value) for key, value in schema.items()}
    named = schema.get("type")  # a property may be called "type": its schema is a dict
    types = {t for t in (named if isinstance(named, list) else [named]) if isinstance(t, str)}
    if types & {"integer", "number"}:
        largest = 10**INTEGER_DIGITS - 1
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is None and (high is None or high >= -largest):
            bounded["minimum"] = -largest
        if high is None and (low is None or low <= largest):
            bounded["maximum"] = largest
        if "number" in types and "multipleOf" not in schema:
            bounded["multipleOf"] = 10.0**-DECIMALS
    return bounded


class RowMatchers:
    """One llguidance matcher per batch row; ``step`` feeds each row its newest token and
    fills the rows' bitmask of allowed next tokens. With ``logprobs``, ``logprobs[i]`` sums
    the log-probability of each token row ``i`` took among those its mask allowed (given by
    ``record`` after each mask; a forced token adds 0)."""

    def __init__(
        self, tokenizer: Any, grammar: str, rows: int, prompt_length: int, logprobs: bool = False
    ) -> None:
        llguidance = _llguidance()
        self.matchers = [llguidance.LLMatcher(tokenizer, grammar) for _ in range(rows)]
        self.seen = prompt_length
        self.vocab_size = tokenizer.vocab_size
        self.logprobs: list[float] | None = [0.0] * rows if logprobs else None
        self._step_logprobs: Any = None  # rows x vocabulary, of the last masked step

    def consume(self, sequences: Sequence[Sequence[int]]) -> None:
        """Feed each row the tokens it got since the last step (none on the first)."""
        for row, (matcher, tokens) in enumerate(zip(self.matchers, sequences, strict=True)):
            new = [int(token) for token in tokens[self.seen :]]
            if new and not matcher.is_stopped():  # a finished row gets padding: ignore it
                if self.logprobs is not None and self._step_logprobs is not None:
                    self.logprobs[row] += float(self._step_logprobs[row][new[0]])
                matcher.consume_tokens(new)
            problem = lost_track(matcher)
            if problem:
                raise GenerationError(problem)
        self.seen = len(sequences[0])

    def fill(self, bitmask: Any, fill_row: Any) -> None:
        for row, matcher in enumerate(self.matchers):
            fill_row(matcher, bitmask, row)

    def record(self, step_logprobs: Any) -> None:
        """The masked step's log-probabilities (rows x vocabulary), when they are counted."""
        if self.logprobs is not None:
            self._step_logprobs = step_logprobs


class LlamaCppJSON:
    """A llama-cpp-python logits processor: only tokens that keep the answer valid JSON of
    the schema keep their logits (``scores`` is the whole vocabulary, in token order). With
    ``logprobs``, ``logprob`` is the answer's log-probability under the mask so far."""

    def __init__(self, tokenizer: Any, grammar: str, logprobs: bool = False) -> None:
        import llguidance.numpy as lg_numpy

        self._numpy = lg_numpy
        self._tokenizer = tokenizer
        self._grammar = grammar
        self._logprobs = logprobs
        self._rows: RowMatchers | None = None
        self._bitmask = lg_numpy.allocate_token_bitmask(1, tokenizer.vocab_size)

    @property
    def logprob(self) -> float | None:
        rows = self._rows
        return rows.logprobs[0] if rows is not None and rows.logprobs is not None else None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._rows is None:
            self._rows = RowMatchers(
                self._tokenizer, self._grammar, 1, len(input_ids), self._logprobs
            )
        self._rows.consume([input_ids])
        self._rows.fill(self._bitmask, self._numpy.fill_next_token_bitmask)
        import numpy as np

        # The mask's bits as booleans (a third of llguidance.numpy's applier's time).
        allowed = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little").view(bool)
        vocab = min(len(scores), len(allowed))
        scores[:vocab][~allowed[:vocab]] = -np.inf
        scores[vocab:] = -np.inf
        if self._logprobs:
            top = scores.max()
            self._rows.record([scores - (top + np.log(np.exp(scores - top).sum()))])
        return scores


def llamacpp_tokenizer(llm: Any) -> Any:
    """llguidance's tokenizer of a loaded ``llama_cpp.Llama`` (about a second: cache it)."""
    _llguidance()
    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():  # it asks llama_token_get_attr (deprecated) per token
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(llm._model.vocab)


def hf_tokenizer(tokenizer: Any, vocab_size: int) -> Any:
    """llguidance's tokenizer of a transformers tokenizer, sized to the model's logits."""
    _llguidance()
    from llguidance.hf import from_tokenizer

    return from_tokenizer(tokenizer, n_vocab=vocab_size)


class TransformersJSON:
    """A transformers ``LogitsProcessor`` for a batch: row ``i`` decodes under its own
    matcher; the prompt (with padding) is what ``input_ids`` holds at the first step. With
    ``logprobs``, ``logprobs`` holds each row's answer log-probability under its mask."""

    def __init__(self, tokenizer: Any, grammar: str, rows: int, logprobs: bool = False) -> None:
        import llguidance.torch as lg_torch

        self._torch = lg_torch
        self._tokenizer = tokenizer
        self._grammar = grammar
        self._count = rows
        self._logprobs = logprobs
        self._rows: RowMatchers | None = None
        self._bitmask = lg_torch.allocate_token_bitmask(rows, tokenizer.vocab_size)

    @property
    def logprobs(self) -> list[float] | None:
        return None if self._rows is None else self._rows.logprobs

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._rows is None:
            self._rows = RowMatchers(
                self._tokenizer, self._grammar, self._count, input_ids.shape[1], self._logprobs
            )
        self._rows.consume(input_ids.tolist())
        self._rows.fill(self._bitmask, self._torch.fill_next_token_bitmask)
        scores = masked(scores, self._bitmask.to(scores.device))
        if self._logprobs:
            self._rows.record(scores.float().log_softmax(-1).cpu())
        return scores


class GrammarRows:
    """Constrained decoding for rows that join and leave a running batch (continuous
    batching): a matcher per row, the step's masks for the rows it holds, in their order.
    ``logprobs``: the rows' answer log-probabilities under their masks are wanted."""

    def __init__(self, tokenizer: Any, grammar: str, size: int, logprobs: bool = False) -> None:
        import llguidance.torch as lg_torch

        self.logprobs = logprobs
        self._llguidance = _llguidance()
        self._fill = lg_torch.fill_next_token_bitmask
        self._tokenizer = tokenizer
        self._grammar = grammar
        self._bitmask = lg_torch.allocate_token_bitmask(size, tokenizer.vocab_size)

    def matcher(self) -> Any:
        """A new row's matcher, at the start of the answer."""
        return self._llguidance.LLMatcher(self._tokenizer, self._grammar)

    def mask(self, matchers: Sequence[Any], scores: Any) -> Any:
        """``scores`` (one row per matcher) with the tokens each row may not take at -inf."""
        for row, matcher in enumerate(matchers):
            self._fill(matcher, self._bitmask, row)
        return masked(scores, self._bitmask[: len(matchers)].to(scores.device))

    @staticmethod
    def consume(matcher: Any, token: int) -> str | None:
        """Feed the row its new token; why it went wrong, if it did."""
        if not matcher.is_stopped():
            matcher.consume_tokens([token])
        return lost_track(matcher)


def lost_track(matcher: Any) -> str | None:
    """Why ``matcher`` failed, said for the user; None while it is fine."""
    if matcher.is_error():
        return f"Constrained decoding lost track of the schema ({matcher.get_error()})."
    return None


def masked(scores: Any, bitmask: Any) -> Any:
    """``scores`` with every token whose bit is 0 at -inf (tokens past the mask too).

    Our own few tensor operations: llguidance.torch's applier is ``torch.compile``d, which
    compiles C++ on the first call (seconds) on a CPU.
    """
    import torch

    bits = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    allowed = ((bitmask.unsqueeze(-1) >> bits) & 1).bool().flatten(1)
    vocab = scores.shape[-1]
    if allowed.shape[-1] < vocab:
        allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[-1]))
    return scores.masked_fill(~allowed[:, :vocab], float("-inf"))
