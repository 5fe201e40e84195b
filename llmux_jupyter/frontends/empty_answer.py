"""What a cell says when the model answered nothing: never a blank output."""

from __future__ import annotations

from ..engine.chat import ChatResponse

_CHAT_LAYOUT = (
    "the model ended at once, as one without a fitting chat template often does (see the "
    "chat column of %llm list; fix it with --set chat_format=NAME, --set template=FILE or "
    "--set completion=true)"
)
_CAUSES = {
    "stop": [_CHAT_LAYOUT],
    "max_tokens": ["--max-tokens ran out before any text came (markup the model writes first "
                   "may use tokens); raise it"],
    "context_full": ["the conversation fills the context window: start afresh with --new, or "
                     "load with a larger --set n_ctx=..."],
}  # fmt: skip
_STOP_STRING = "a --stop string matched at once"


def empty_answer_note(response: ChatResponse) -> str:
    """Say that no text came, how the model stopped, its token counts and the usual causes."""
    usage, reason = response.usage, response.stop_reason
    causes = list(_CAUSES.get(reason or "", [c for cs in _CAUSES.values() for c in cs]))
    if response.params.get("stop") and reason in ("stop", None):
        causes.insert(0, _STOP_STRING)
    return (
        f"The model produced no text (stop reason: {reason or 'not reported'}; "
        f"{usage.completion_tokens} tokens after a {usage.prompt_tokens}-token prompt). "
        f"Usual causes: {'; or '.join(causes)}. The thread did not keep this turn."
    )
