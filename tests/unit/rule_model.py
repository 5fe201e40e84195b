"""A fake chat model that follows rules a test can check, for the table operators' tests."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import GenerationParams, Message, Task

from .conftest import EchoBackend, WordCounts

CONFIDENCE = 0.8
PARTS = re.compile(r"^\d+\. (\d+) items$", re.MULTILINE)


class RuleModel(EchoBackend):
    """Follows rules a test can check: under an enum schema it answers "yes" when the prompt's
    first number is even, else the first label named in the prompt's first line, else the
    longer passage ("A" or "B"); under an object schema it fills the fields from the prompt's
    words; without one it counts what it was given ("N items": numbered rows, or the sum of
    partial answers). Every schema answer has probability CONFIDENCE. ``stop_at``: the
    request containing it sets ``cancel``, as an interrupt would."""

    json_schemas = answer_logprobs = True
    calls: ClassVar[list[str]] = []

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        prompt = messages[-1].content
        type(self).calls.append(prompt)
        if self.settings.get("stop_at") and self.settings["stop_at"] in prompt:
            cancel.set()
        schema = params.json_schema
        if schema is None:
            text = f"{_count(prompt)} items"
        elif "enum" in schema:
            text = json.dumps(_label(prompt, schema["enum"]))
        else:
            words = prompt.split()
            text = json.dumps({"name": words[0], "size": {"words": len(words)}})
        yield text
        summary = {"prompt_tokens": len(prompt.split()), "completion_tokens": 3}
        if params.logprobs:
            summary["logprob"] = math.log(CONFIDENCE)
        return summary


def _label(prompt: str, labels: list[str]) -> str:
    if labels == ["yes", "no"]:
        return "yes" if int(re.findall(r"\d+", prompt)[0]) % 2 == 0 else "no"
    if labels == ["A", "B"]:
        first, second = prompt.split("Passage B:")
        return "A" if len(first.split("Passage A:")[1]) > len(second.split("Which")[0]) else "B"
    line = prompt.splitlines()[0]
    return next((label for label in labels if label in line), labels[-1])


def _count(prompt: str) -> int:
    parts = PARTS.findall(prompt)
    return sum(map(int, parts)) if parts else len(re.findall(r"^\d+\. ", prompt, re.MULTILINE))


@contextmanager
def rules_api(folder: Path, model_file: Path, *specs: ModelSpec) -> Iterator[LLM]:
    """An API whose default chat model is ``rules`` (a RuleModel) with ``bag`` (WordCounts)
    as the embedding model and ``specs`` besides; the cache in ``folder``."""
    registry.add("rules", RuleModel)
    registry.add("counts", WordCounts)
    RuleModel.calls = []
    source = FileSource(str(model_file))
    builtins = [
        ModelSpec("rules", "rules", Task.CHAT, source, builtin=True),
        ModelSpec("bag", "counts", Task.EMBEDDING, source, builtin=True),
        *specs,
    ]
    api = LLM(Catalog(folder / "models.json", builtins=builtins))
    api.use("rules")
    try:
        yield api
    finally:
        registry.remove("rules")
        registry.remove("counts")
