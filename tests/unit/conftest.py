"""Fakes for unit tests of our own logic: a backend that echoes, registered for one test."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.base import Backend
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.sources import FileSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import GenerationParams, Message, RequiredMemory, Task


class EchoBackend(Backend):
    """Answers with the words of the last user message; settings steer failures, pauses and
    silence (``silent``: no text at all)."""

    tasks = frozenset({Task.CHAT})
    loads = 0

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory(ram=self.settings.get("ram", 1000))

    def load(self) -> None:
        if self.settings.get("fail_load"):
            raise RuntimeError("injected load failure")
        type(self).loads += 1
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        words = [] if self.settings.get("silent") else messages[-1].content.split()
        limited = params.max_tokens is not None and len(words) > params.max_tokens
        words = words[: params.max_tokens] if limited else words
        gate: threading.Event | None = self.settings.get("gate")
        for index, word in enumerate(words):
            if cancel.is_set():
                break
            if self.settings.get("fail_after") == index:
                raise RuntimeError("injected generation failure")
            if gate is not None and index == 1:
                gate.wait(5)
            yield word if index == 0 else " " + word
        return {
            "prompt_tokens": sum(len(m.content.split()) for m in messages),
            "completion_tokens": len(words),
            "stop_reason": "max_tokens" if limited else "stop",
        }


@pytest.fixture
def echo_backend() -> Iterator[type[EchoBackend]]:
    registry.add("echo", EchoBackend)
    EchoBackend.loads = 0
    yield EchoBackend
    registry.remove("echo")


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "echo.bin"
    path.write_bytes(b"x" * 1000)
    return path


def echo_spec(name: str, path, builtin: bool = False, **settings) -> ModelSpec:
    return ModelSpec(
        name, "echo", Task.CHAT, FileSource(str(path)), settings=settings, builtin=builtin
    )


@pytest.fixture
def catalog(tmp_path, model_file, echo_backend) -> Catalog:
    return Catalog(
        tmp_path / "models.json",
        builtins=[
            echo_spec("echo", model_file, builtin=True),
            echo_spec("broken", model_file, fail_load=True),
            echo_spec("flaky", model_file, fail_after=2),
        ],
    )


@pytest.fixture
def fake_llm(catalog) -> LLM:
    return LLM(catalog)
