"""One prompt to several chat models, answered side by side."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidParameter, LLMuxError
from ..models.sources import RemoteSource
from ..types.values import GenerationParams
from .chat import ChatResponse, ChatStream
from .conversation import Threads
from .fanin import emitting, fan_in
from .jobs import Job
from .manager import ModelManager

EventKind = Literal["started", "delta", "done", "failed", "skipped"]


@dataclass(frozen=True)
class CompareEvent:
    """Something that happened to one model's answer: it started, a piece of text came, it
    finished (``response``, possibly interrupted), it failed (``error``), or it was skipped
    because the user interrupted before its turn."""

    model: str
    kind: EventKind
    text: str = ""
    response: ChatResponse | None = None
    error: LLMuxError | None = None


class Comparison(Job[CompareEvent]):
    """Iterate (once) for the events of every answer as they happen; afterwards ``responses``
    and ``errors`` hold each model's outcome.

    Each model answers in a fresh thread of its own (not kept). Models on a server answer all
    at once; local models one after another, each loaded when its turn comes and held busy
    while it answers, so a budget that cannot hold them all evicts the previous one (least
    recently used first) instead of refusing. ``cancel()`` stops every answer between two
    tokens and keeps what each has. A model that fails does not stop the others.
    ``on_response`` gets each model's response as it ends.
    """

    def __init__(
        self,
        manager: ModelManager,
        prompt: str,
        models: Sequence[str],
        *,
        system: str | None = None,
        params: GenerationParams | None = None,
        on_response: Callable[[ChatResponse], None] | None = None,
    ) -> None:
        if len(models) < 2:
            raise InvalidParameter("Compare at least two models, e.g. --compare smollm2,other.")
        if len(set(models)) != len(models):
            raise InvalidParameter("Name each model to compare once.")
        super().__init__()
        # Every model is checked (known, chat) here, before anything runs.
        self._streams = {
            name: ChatStream(
                manager,
                Threads(),
                prompt,
                model=name,
                thread="compare",
                system=system,
                new=True,
                params=params,
                on_response=on_response,
            )
            for name in models
        }
        for stream in self._streams.values():
            stream.cancel_event = self.cancel_event
        self.models = list(models)
        self.remote = [n for n in models if isinstance(manager.catalog.get(n).source, RemoteSource)]
        self.responses: dict[str, ChatResponse] = {}
        self.errors: dict[str, LLMuxError] = {}

    def _run(self) -> Iterator[CompareEvent]:
        in_turn = self._in_turn([name for name in self.models if name not in self.remote])
        tasks = [emitting(self._answer(name)) for name in self.remote]
        if tasks:  # the local ones in a thread too: served columns stream while they load
            tasks.append(emitting(in_turn))
            in_turn = iter(())
        # else the local answers are computed in the caller's thread, as %%llm computes them
        for event in fan_in(tasks, self.cancel_event, inline=in_turn):
            if event.response is not None:
                self.responses[event.model] = event.response
            if event.error is not None:
                self.errors[event.model] = event.error
            yield event

    def _in_turn(self, names: list[str]) -> Iterator[CompareEvent]:
        for name in names:
            if self.cancel_event.is_set():
                yield CompareEvent(name, "skipped")
            else:
                yield from self._answer(name)

    def _answer(self, name: str) -> Iterator[CompareEvent]:
        stream = self._streams[name]
        yield CompareEvent(name, "started")
        try:
            for delta in stream:
                yield CompareEvent(name, "delta", text=delta)
        except LLMuxError as error:
            yield CompareEvent(name, "failed", error=error)
            return
        yield CompareEvent(name, "done", response=stream.response)
