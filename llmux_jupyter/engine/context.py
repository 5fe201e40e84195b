"""Fitting a thread into the model's context window: the system prompt kept, the newest turns
first, room left for the answer, a turn never split. Pure arithmetic over token counts."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ContextOverflow, InvalidParameter

POLICIES = ("truncate", "error")
# The share of the window kept for the answer when --max-tokens is not given.
DEFAULT_ANSWER_SHARE = 4


@dataclass(frozen=True)
class Costs:
    """Token counts of a prompt's parts: what is always sent (the template's frame, the system
    prompt and the new message) and each earlier turn, oldest first."""

    fixed: int
    turns: list[int]


@dataclass(frozen=True)
class Fit:
    """The turns that go into the prompt: the newest ``used`` ones of ``total``."""

    used: int
    total: int
    tokens: int  # of the prompt, as counted
    window: int | None

    @property
    def left_out(self) -> int:
        return self.total - self.used

    def note(self, thread: str) -> str:
        """One quiet line for the output when turns were left out, else ''."""
        if not self.left_out:
            return ""
        turns = "turn" if self.left_out == 1 else "turns"
        return (
            f"{self.left_out} earlier {turns} of thread {thread!r} left out to fit the "
            f"{self.window:,}-token context"
        )

    def as_dict(self) -> dict[str, int | None]:
        """For the provenance metadata."""
        return {"window": self.window, "prompt_tokens": self.tokens, "turns_used": self.used,
                "turns_left_out": self.left_out}  # fmt: skip


def check_policy(policy: str) -> str:
    """``policy`` if it is one of POLICIES, else InvalidParameter."""
    if policy not in POLICIES:
        raise InvalidParameter(f"--context {policy!r}: use {' or '.join(POLICIES)}.")
    return policy


def answer_room(window: int, max_tokens: int | None) -> int:
    """Tokens kept free for the answer: ``max_tokens``, else a quarter of the window."""
    return max_tokens if max_tokens is not None else window // DEFAULT_ANSWER_SHARE


def fit(costs: Costs, window: int | None, max_tokens: int | None, policy: str = "truncate") -> Fit:
    """As many of the newest turns as fit with room for the answer (``policy`` "error": all
    of them or ContextOverflow). A prompt that cannot fit even alone is ContextOverflow; one
    that fits alone but leaves less room than wanted goes with no turns (the answer stops when
    the window is full)."""
    fixed, total = costs.fixed, len(costs.turns)
    if window is None:
        return Fit(total, total, fixed + sum(costs.turns), None)
    if fixed >= window:
        raise ContextOverflow(
            f"The message is {fixed:,} tokens (with the system prompt) and the model's context "
            f"window is {window:,}: load the model with a larger window (--set n_ctx=8192), "
            "pick a model with a larger one, or shorten the input. Nothing was sent."
        )
    room = min(answer_room(window, max_tokens), window - fixed)
    budget = window - room
    used, tokens = 0, fixed
    for cost in reversed(costs.turns):
        if tokens + cost > budget:
            break
        used, tokens = used + 1, tokens + cost
    if used < total and policy == "error":
        raise ContextOverflow(
            f"The thread needs {fixed + sum(costs.turns) + room:,} tokens with room for the "
            f"answer, more than the {window:,}-token context window, and --context error "
            "forbids leaving turns out: start afresh with --new, use another --thread, or "
            "allow --context truncate."
        )
    return Fit(used, total, tokens, window)
