"""Fakes for unit tests of our own logic: a backend that echoes, and a reranker and an embedding
model that count words, registered for one test."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import ClassVar

import numpy as np
import psutil
import pytest

from llmux_jupyter.api import LLM
from llmux_jupyter.backends.base import Backend
from llmux_jupyter.backends.registry import registry
from llmux_jupyter.engine.ledger import HeldModel, default_directory
from llmux_jupyter.models.catalog import Catalog
from llmux_jupyter.models.files import write_atomically
from llmux_jupyter.models.sources import FileSource, RemoteSource
from llmux_jupyter.models.spec import ModelSpec
from llmux_jupyter.types.values import GenerationParams, Message, RequiredMemory, Task


class EchoBackend(Backend):
    """Answers with the words of the last user message; settings steer failures, pauses and
    silence (``silent``: no text at all)."""

    tasks = frozenset({Task.CHAT})
    loads = 0
    counted = 0  # texts tokenized

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory(ram=self.settings.get("ram", 1000))

    def context_window(self) -> int | None:
        return self.settings.get("window")

    def count_text(self, text: str) -> int:
        type(self).counted += 1
        return len(text.split())

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


class ServedEchoBackend(EchoBackend):
    """The echo backend as a server serves it: several requests at once (a pause after each
    word lets them overlap); ``most`` is how many ran at the same time."""

    concurrent_requests = "threads"
    running = most = 0
    lock = threading.Lock()

    def required_memory(self) -> RequiredMemory:
        return RequiredMemory()

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        cls = type(self)
        with cls.lock:
            cls.running += 1
            cls.most = max(cls.most, cls.running)
        words = super().generate(messages, params, cancel)
        try:
            while True:
                try:
                    word = next(words)
                except StopIteration as stop:
                    return stop.value
                time.sleep(0.02)
                yield word
        finally:
            with cls.lock:
                cls.running -= 1


def served_spec(name: str) -> ModelSpec:
    return ModelSpec(name, "served-echo", Task.CHAT, RemoteSource("http://127.0.0.1:9/v1", name))


@pytest.fixture
def served_backend() -> Iterator[type[ServedEchoBackend]]:
    registry.add("served-echo", ServedEchoBackend)
    ServedEchoBackend.running = ServedEchoBackend.most = 0
    yield ServedEchoBackend
    registry.remove("served-echo")


@pytest.fixture
def echo_backend() -> Iterator[type[EchoBackend]]:
    registry.add("echo", EchoBackend)
    EchoBackend.loads = EchoBackend.counted = 0
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
            echo_spec("small", model_file, window=60),
        ],
    )


@pytest.fixture
def fake_llm(catalog) -> LLM:
    return LLM(catalog)


WORDS = ["cat", "dog", "sleep", "sun", "stock", "market", "rain", "bread"]
DOCUMENTS = [
    "Stock markets fell sharply today.",
    "My cat likes to sleep in the sun.",
    "Bread rises in a warm oven.",
    "A dog barks at the rain.",
]


class OverlapScorer(Backend):
    """A rerank model: the number of the query's words in each document, a batch of two at a
    time; ``short`` drops the last score (a broken backend)."""

    tasks = frozenset({Task.RERANK})
    batches: ClassVar[list[int]] = []

    def load(self) -> None:
        pass

    def rerank(
        self, query: str, documents: Sequence[str], cancel: threading.Event
    ) -> Iterator[float]:
        words = set(query.lower().split())
        scores = [float(len(words & set(d.lower().strip(".").split()))) for d in documents]
        if self.settings.get("short"):
            scores = scores[:-1]
        for start in range(0, len(scores), 2):
            if cancel.is_set():
                return
            type(self).batches.append(start)
            yield from scores[start : start + 2]


class WordCounts(Backend):
    """An embedding model: how often each of WORDS occurs (not normalised)."""

    tasks = frozenset({Task.EMBEDDING})

    def load(self) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [[text.lower().count(word) * 3.0 for word in WORDS] for text in texts]
        return np.array(rows, dtype=np.float32) + 0.01


@pytest.fixture
def rerank_llm(tmp_path, model_file, echo_backend) -> Iterator[LLM]:
    """An API with the echo chat model, ``bag`` (WordCounts, the embedding default) and the
    registered rerank models ``scorer`` and ``short`` (OverlapScorer)."""
    registry.add("overlap", OverlapScorer)
    registry.add("counts", WordCounts)
    OverlapScorer.batches = []
    source = FileSource(str(model_file))
    catalog = Catalog(
        tmp_path / "models.json",
        builtins=[
            echo_spec("echo", model_file, builtin=True),
            ModelSpec("bag", "counts", Task.EMBEDDING, source, builtin=True),
        ],
    )
    catalog.register(ModelSpec("scorer", "overlap", Task.RERANK, source))
    catalog.register(ModelSpec("short", "overlap", Task.RERANK, source, settings={"short": True}))
    yield LLM(catalog)
    registry.remove("overlap")
    registry.remove("counts")


class ScriptedBackend(EchoBackend):
    """Answers with the next of ``replies`` (in pieces of 4 characters, cut at ``max_tokens``
    pieces), else echoes; honours schemas, recording each generation's (schema, messages)."""

    json_schemas = True
    replies: ClassVar[list[str]] = []
    calls: ClassVar[list[tuple[dict | None, list[Message]]]] = []

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        cls = type(self)
        cls.calls.append((params.json_schema, list(messages)))
        if not cls.replies:
            return (yield from super().generate(messages, params, cancel))
        reply = cls.replies.pop(0)
        pieces = [reply[i : i + 4] for i in range(0, len(reply), 4)]
        limited = params.max_tokens is not None and len(pieces) > params.max_tokens
        for piece in pieces[: params.max_tokens]:
            if cancel.is_set():
                break
            yield piece
        return {"stop_reason": "max_tokens" if limited else "stop"}


@pytest.fixture
def scripted_llm(tmp_path, model_file, echo_backend) -> Iterator[LLM]:
    """An API whose default chat model ``scripted`` answers ScriptedBackend.replies."""
    registry.add("scripted", ScriptedBackend)
    ScriptedBackend.replies, ScriptedBackend.calls = [], []
    spec = ModelSpec("scripted", "scripted", Task.CHAT, FileSource(str(model_file)), builtin=True)
    catalog = Catalog(
        tmp_path / "scripted.json", builtins=[spec, echo_spec("echo", model_file, builtin=True)]
    )
    api = LLM(catalog)
    api.use("scripted")
    yield api
    registry.remove("scripted")


class OtherKernel:
    """A live process standing for another kernel on this machine; ``hold`` writes its entry
    in the memory ledger at ``directory`` as its HostLedger would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        self.pid = self.process.pid

    def hold(
        self, *models: HeldModel, notebook: str | None = "analysis.ipynb", started: float = 0
    ) -> Path:
        entry = {
            "version": 1,
            "pid": self.pid,
            "started": started or psutil.Process(self.pid).create_time(),
            "notebook": notebook,
            "updated": time.time(),
            "models": [asdict(model) for model in models],
        }
        path = self.directory / f"{self.pid}.json"
        write_atomically(path, json.dumps(entry))
        return path

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def other_kernel() -> Iterator[OtherKernel]:
    """Another kernel in this test's memory ledger (``$LLMUX_RUNTIME_DIR``), holding nothing
    until the test says ``other_kernel.hold(HeldModel(...))``."""
    kernel = OtherKernel(default_directory())
    yield kernel
    kernel.stop()


def held(name: str, ram: int, device: str = "cpu") -> HeldModel:
    """A model another kernel holds: ``ram`` bytes estimated and measured."""
    return HeldModel(name, "echo", device, RequiredMemory(ram=ram), RequiredMemory(ram=ram))


WAIT_S = 10


def hold_completions(llm: LLM) -> threading.Event:
    """Complete with ``coder``, each completion held after its first piece until the returned
    gate is set."""
    llm.set_completion_model("coder")
    FIMBackend.gate = threading.Event()
    return FIMBackend.gate


class FIMBackend(Backend):
    """A code model: answers ``answers`` in pieces (or ``pass`` lines forever), records every
    prompt; ``gate`` (an Event) holds the second piece until set."""

    tasks = frozenset({Task.CHAT})
    raw_completion = True
    answers: ClassVar[list[str]] = []
    prompts: ClassVar[list[str]] = []
    gate: ClassVar[threading.Event | None] = None
    started = threading.Event()

    def load(self) -> None:
        pass

    def context_window(self) -> int:
        return 400

    def count_text(self, text: str) -> int:
        return len(text.split())

    def vocabulary_tokens(self, texts):
        return frozenset(texts) if self.settings.get("fim", True) else frozenset()

    def complete(
        self, prompt: str, params: GenerationParams, cancel: threading.Event
    ) -> Iterator[str]:
        cls = type(self)
        cls.prompts.append(prompt)
        cls.started.set()
        answer = cls.answers.pop(0) if cls.answers else "pass\n" * 1000
        for index in range(0, min(len(answer), 4 * (params.max_tokens or 1000)), 4):
            if cancel.is_set():
                return {}
            if index == 4 and cls.gate is not None:
                cls.gate.wait(WAIT_S)
            yield answer[index : index + 4]
        return {}


@pytest.fixture
def coder(tmp_path, model_file, echo_backend) -> Iterator[LLM]:
    """An API with ``coder`` (FIMBackend), ``plain`` (FIMBackend without FIM tokens), ``echo``."""
    registry.add("fim", FIMBackend)
    FIMBackend.answers, FIMBackend.prompts, FIMBackend.gate = [], [], None
    FIMBackend.started = threading.Event()
    source = FileSource(str(model_file))
    catalog = Catalog(
        tmp_path / "models.json",
        builtins=[
            ModelSpec("coder", "fim", Task.CHAT, source, builtin=True),
            ModelSpec("plain", "fim", Task.CHAT, source, settings={"fim": False}),
            echo_spec("echo", model_file),
        ],
    )
    yield LLM(catalog)
    registry.remove("fim")
