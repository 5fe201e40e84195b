"""The repetition stop on a real model, checked the same way on every backend."""

from __future__ import annotations

from llmux_jupyter.api import LLM

LINE = "Hello from the notebook."


def check_repetition_stop(api: LLM, model: str) -> None:
    """SmolLM2 asked for ten identical lines is stopped at the fourth, and says so."""
    response = api.chat(
        f'Write a list of 10 lines, each one exactly: "{LINE}"',
        model=model,
        temperature=0,
        max_tokens=120,
        new=True,
    )
    assert response.stop_reason == "repetition" and not response.interrupted
    assert response.text.count(LINE) == 4
    assert f"kept repeating “{LINE}”" in response.stop_note
