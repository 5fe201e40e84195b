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
POLL_S = 0.05


class JobCancel(threading.Event):
    """What a running job hands its backend: set when the job stops itself (``stop``) or when
    the cancel it was given is set (the interrupt, or a bench's or comparison's cancel, shared
    by its jobs), so a job that stops itself never stops the others."""

    def __init__(self, given: threading.Event) -> None:
        super().__init__()
        self.given = given

    def is_set(self) -> bool:
        return super().is_set() or self.given.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_S if end is None else min(POLL_S, end - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)
        return True


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
        """Stop this job's backend between two pieces for ``reason`` (what was made is
        kept); a cancel shared with other jobs stays as it is."""
        self.stopped = reason
        self.cancel_event.set()

    def choose_model(self, manager: ModelManager, name: str | None) -> str:
        """The model to run: ``name`` (or the task's default), checked to do the job's task."""
        return task_model(manager, name, self.task)

    def _run(self) -> Iterator[Item]:
        self.cancel_event = JobCancel(self.cancel_event)  # what this run sets, it sets alone
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
