"""One job of one model (a chat answer, a transcription, a synthesis) whose pieces stream out.

The job holds the model busy under the manager while it runs and times it. ``cancel()``,
breaking out of the loop or KeyboardInterrupt stop the backend between two pieces and keep
what was made; a backend failure keeps nothing.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from ..backends.base import Backend
from ..errors import UnsupportedTask
from ..types.values import Task
from .manager import ModelManager

Item = TypeVar("Item")


def task_model(manager: ModelManager, name: str | None, task: Task) -> str:
    """``name`` (or the task's default) after checking that it does ``task``."""
    model = name or manager.default_for(task)
    spec = manager.catalog.get(model)
    if spec.task is not task:
        raise UnsupportedTask(
            f"{model!r} is a {spec.task.value} model, not a {task.value} model: pick one with "
            f"-m or %llm use (see %llm list --task {task.value})."
        )
    return model


class Job(ABC, Generic[Item]):
    """Work whose results are iterated once, as they come; ``cancel()`` stops it and keeps
    what was made."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self._started = False

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self) -> Iterator[Item]:
        if self._started:
            raise RuntimeError(f"A {type(self).__name__} can be iterated only once.")
        self._started = True
        return self._run()

    @abstractmethod
    def _run(self) -> Iterator[Item]:
        """The work, yielding its results."""


class ModelJob(Job[Item]):
    """Iterate (once) for the pieces; subclasses say what to run, watch and keep."""

    task: Task

    def __init__(self, manager: ModelManager, model: str | None) -> None:
        super().__init__()
        self.model = self.choose_model(manager, model)
        self._manager = manager
        self.provenance: dict[str, Any] = {}
        # Why the job stopped the backend itself (e.g. "repetition"): not an interrupt.
        self.stopped: str | None = None

    def stop(self, reason: str) -> None:
        """Stop the backend between two pieces for ``reason``; what was made is kept."""
        self.stopped = reason
        self.cancel_event.set()

    def choose_model(self, manager: ModelManager, name: str | None) -> str:
        """The model to run: ``name`` (or the task's default), checked to do the job's task."""
        return task_model(manager, name, self.task)

    def _run(self) -> Iterator[Item]:
        with self._manager.using(self.model) as loaded:
            items: list[Item] = []
            summary: dict[str, Any] = {}
            failed = interrupted = False
            started = time.perf_counter()
            pieces = self._produce(loaded.backend)
            try:
                while True:
                    try:
                        item = next(pieces)
                    except StopIteration as stop:
                        summary = stop.value or {}
                        break
                    items.append(item)
                    self._on_item(item, len(items), time.perf_counter() - started)
                    yield item
            except (GeneratorExit, KeyboardInterrupt):
                interrupted = True
                raise
            except Exception:
                failed = True
                raise
            finally:
                pieces.close()
                if not failed:
                    seconds = time.perf_counter() - started
                    interrupted = interrupted or self.cancel_event.is_set()
                    interrupted = interrupted and self.stopped is None
                    self.provenance = {
                        "model": self.model,
                        "backend": loaded.spec.backend,
                        "device": loaded.device,
                        "seconds": round(seconds, 4),
                        "interrupted": interrupted,
                        "created": round(time.time(), 3),
                    }
                    self._finish(items, summary, seconds, interrupted)

    @abstractmethod
    def _produce(self, backend: Backend) -> Iterator[Item]:
        """The backend's generator of pieces (its return value is the summary)."""

    def _on_item(self, item: Item, count: int, elapsed: float) -> None:
        """Called as the ``count``-th piece arrives, ``elapsed`` seconds after the start."""

    @abstractmethod
    def _finish(
        self, items: list[Item], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        """Keep the result (and add to ``provenance``)."""
