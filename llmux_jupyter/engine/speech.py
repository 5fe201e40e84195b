"""One transcription or one synthesis: iterate for segments (or audio chunks) as the model
produces them; afterwards the job holds the whole result (see ``jobs.ModelJob``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..errors import GenerationError, InvalidParameter
from ..types.audio import (
    AudioInput,
    Segment,
    SpeechAudio,
    SpeechOptions,
    TranscribeOptions,
    Transcript,
    as_audio_input,
    join_chunks,
)
from ..types.values import Task
from .jobs import ModelJob
from .manager import ModelManager


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
