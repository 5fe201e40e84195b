"""One transcription or one synthesis: runs a model under the manager, times it, keeps the result.

Like ChatStream: iterate for segments (or audio chunks) as the model produces them; ``cancel()``,
breaking out of the loop or KeyboardInterrupt stop the backend between two pieces, keeping
what was made.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from .audio import (
    AudioInput,
    Segment,
    SpeechAudio,
    SpeechOptions,
    TranscribeOptions,
    Transcript,
    as_audio_input,
    join_chunks,
)
from .backends.base import Backend
from .errors import GenerationError, InvalidParameter, UnsupportedTask
from .manager import ModelManager
from .specs import Task

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


class ModelJob(ABC, Generic[Item]):
    """A job of one model whose pieces stream out; subclasses say what to run and keep."""

    task: Task

    def __init__(self, manager: ModelManager, model: str | None) -> None:
        self.model = task_model(manager, model, self.task)
        self._manager = manager
        self.cancel_event = threading.Event()
        self.provenance: dict[str, Any] = {}
        self._started = False

    def cancel(self) -> None:
        self.cancel_event.set()

    def __iter__(self) -> Iterator[Item]:
        if self._started:
            raise RuntimeError(f"A {type(self).__name__} can be iterated only once.")
        self._started = True
        return self._run()

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
                    yield item
            except (GeneratorExit, KeyboardInterrupt):
                interrupted = True
                raise
            except Exception:
                failed = True  # a failure keeps nothing
                raise
            finally:
                pieces.close()
                if not failed:
                    seconds = time.perf_counter() - started
                    interrupted = interrupted or self.cancel_event.is_set()
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
        """The backend's generator of pieces."""

    @abstractmethod
    def _finish(
        self, items: list[Item], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        """Keep the result (and add to ``provenance``)."""


class TranscriptionStream(ModelJob[Segment]):
    """Iterate for Segments; afterwards ``transcript`` holds the whole Transcript."""

    task = Task.TRANSCRIPTION

    def __init__(
        self,
        manager: ModelManager,
        audio: AudioInput,
        *,
        model: str | None = None,
        options: TranscribeOptions | None = None,
    ) -> None:
        super().__init__(manager, model)
        self.audio = as_audio_input(audio)
        self.options = options or TranscribeOptions()
        self.transcript: Transcript | None = None

    def _produce(self, backend: Backend) -> Iterator[Segment]:
        return backend.transcribe(self.audio, self.options, self.cancel_event)

    def _finish(
        self, items: list[Segment], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        duration = float(summary.get("duration") or (items[-1].end if items else 0.0))
        self.transcript = Transcript(
            text=" ".join(s.text.strip() for s in items if s.text.strip()),
            segments=items,
            language=summary.get("language") or self.options.language,
            duration=duration,
            model=self.model,
            interrupted=interrupted,
        )
        self.provenance.update(
            language=self.transcript.language,
            audio_seconds=round(duration, 3),
            segments=len(items),
            real_time_factor=round(seconds / duration, 4) if duration else None,
        )


class SpeechStream(ModelJob[SpeechAudio]):
    """Iterate for audio chunks (one per sentence); afterwards ``audio`` holds all of it."""

    task = Task.SPEECH

    def __init__(
        self,
        manager: ModelManager,
        text: str,
        *,
        model: str | None = None,
        options: SpeechOptions | None = None,
        save: str | Path | None = None,
    ) -> None:
        if not text.strip():
            raise InvalidParameter("The text is empty: give the words to speak.")
        super().__init__(manager, model)
        self.text = text
        self.options = options or SpeechOptions()
        self.save = Path(save).expanduser() if save is not None else None
        if self.save is not None and not self.save.parent.is_dir():
            raise InvalidParameter(
                f"Cannot save to {self.save}: the folder {self.save.parent} does not exist."
            )
        self.audio: SpeechAudio | None = None

    def _produce(self, backend: Backend) -> Iterator[SpeechAudio]:
        return backend.synthesize(self.text, self.options, self.cancel_event)

    def _finish(
        self, items: list[SpeechAudio], summary: dict[str, Any], seconds: float, interrupted: bool
    ) -> None:
        if not items and not interrupted:
            raise GenerationError(f"{self.model!r} made no sound for {self.text!r}.")
        self.audio = join_chunks(items)
        duration = self.audio.duration
        self.provenance.update(
            sample_rate=self.audio.sample_rate,
            audio_seconds=round(duration, 3),
            chunks=len(items),
            real_time_factor=round(seconds / duration, 4) if duration else None,
        )
        if self.save is not None and items:
            self.provenance["saved"] = str(self.audio.save(self.save))
