"""Speech results and audio plumbing: transcripts, synthesized audio, WAV bytes, audio inputs.

numpy is imported only where samples are touched, so ``%load_ext`` stays fast.
"""

from __future__ import annotations

import base64
import html
import io
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import InvalidAudio, InvalidParameter

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Segment:
    """One stretch of transcribed speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str

    def __str__(self) -> str:
        return f"[{_clock(self.start)} → {_clock(self.end)}] {self.text.strip()}"


@dataclass
class Transcript:
    """What a speech-to-text model heard; ``str(transcript)`` is the text."""

    text: str
    segments: list[Segment]
    language: str | None
    duration: float
    model: str = ""
    interrupted: bool = False

    def __str__(self) -> str:
        return self.text


class SpeechAudio(NamedTuple):
    """Mono audio as ``(sample_rate, samples)``: float32 samples in [-1, 1].

    A tuple, so ``rate, samples = audio`` works and any (rate, array) pair is accepted back;
    in a notebook it shows as an audio player.
    """

    sample_rate: int
    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    def to_wav(self) -> bytes:
        return wav_bytes(self.samples, self.sample_rate)

    def save(self, path: str | Path) -> Path:
        """Write a 16-bit PCM WAV file."""
        target = Path(path).expanduser()
        try:
            target.write_bytes(self.to_wav())
        except OSError as error:
            raise InvalidAudio(f"Cannot write {target} ({error}): pick a writable path.") from None
        return target

    def _repr_html_(self) -> str:
        return audio_html(self.to_wav())


def wav_bytes(samples: Any, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV of float samples in [-1, 1] (values outside are clipped)."""
    import numpy as np

    data = np.asarray(samples, dtype=np.float32).reshape(-1)
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(int(sample_rate))
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_wav(data: bytes) -> SpeechAudio:
    """Decode 8/16/32-bit PCM WAV bytes into mono float samples."""
    import numpy as np

    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate, width, channels = (
                reader.getframerate(),
                reader.getsampwidth(),
                reader.getnchannels(),
            )
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise InvalidAudio(f"The audio is not a PCM WAV file ({error}).") from None
    kinds = {1: ("u1", 128.0, 128.0), 2: ("<i2", 0.0, 32768.0), 4: ("<i4", 0.0, 2.0**31)}
    if width not in kinds:
        raise InvalidAudio(f"WAV with {8 * width}-bit samples is not supported (use 8, 16 or 32).")
    kind, offset, scale = kinds[width]
    samples = (np.frombuffer(frames, dtype=kind).astype(np.float32) - offset) / scale
    return SpeechAudio(rate, samples.reshape(-1, channels).mean(axis=1))


def audio_html(wav: bytes, autoplay: bool = False, caption: str = "") -> str:
    """An ``<audio>`` player with the WAV embedded, so a saved notebook replays it."""
    encoded = base64.b64encode(wav).decode("ascii")
    play = " autoplay" if autoplay else ""
    note = f'<div style="font-size: 0.85em; opacity: 0.75">{html.escape(caption)}</div>'
    return f'<audio controls{play} src="data:audio/wav;base64,{encoded}"></audio>' + (
        note if caption else ""
    )


def join_chunks(chunks: list[SpeechAudio]) -> SpeechAudio:
    """One SpeechAudio of consecutive chunks of the same rate (empty chunks allowed)."""
    import numpy as np

    if not chunks:
        return SpeechAudio(0, np.zeros(0, dtype=np.float32))
    rate = chunks[0].sample_rate
    return SpeechAudio(rate, np.concatenate([np.asarray(c.samples) for c in chunks]))


AudioInput = Any  # a path, WAV/MP3/... bytes, a 16 kHz float array, or (sample_rate, array)


def as_audio_input(value: AudioInput) -> Path | bytes | SpeechAudio:
    """Check a transcription input: an existing file, encoded bytes, or samples with a rate.

    A bare array is taken as 16 kHz mono (Whisper's rate); stereo arrays are averaged.
    """
    if isinstance(value, (str, Path)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise InvalidAudio(f"No audio file at {path}: check the path.")
        return path
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise InvalidAudio("The audio bytes are empty.")
        return bytes(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
        return SpeechAudio(value[0], _mono(value[1]))
    if hasattr(value, "__array__") or isinstance(value, list):
        return SpeechAudio(16000, _mono(value))
    raise InvalidAudio(
        f"Cannot transcribe a {type(value).__name__}: give a file path, audio file bytes, "
        "a 16 kHz float array or a (sample_rate, array) pair."
    )


def _mono(samples: Any) -> np.ndarray:
    import numpy as np

    try:
        data = np.asarray(samples, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InvalidAudio(f"The audio samples are not numbers ({error}).") from None
    if data.ndim == 2:  # (channels, frames) or (frames, channels): average the channels
        data = data.mean(axis=0 if data.shape[0] < data.shape[1] else 1)
    if data.ndim != 1 or data.size == 0:
        raise InvalidAudio(f"Expected a 1-D (mono) array of samples, got shape {data.shape}.")
    return data


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:05.2f}"


@dataclass(frozen=True)
class TranscribeOptions:
    """Per-call transcription options; ``extra`` holds backend keywords (e.g. beam_size=1)."""

    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeechOptions:
    """Per-call synthesis options: a reference clip to clone (``voice``) and backend keywords
    in ``extra`` (e.g. exaggeration=0.7 for Chatterbox, length_scale=1.2 for Piper)."""

    voice: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def call_keywords(
    settings: dict[str, Any], extra: dict[str, Any], allowed: tuple[str, ...], backend: str
) -> dict[str, Any]:
    """The backend keywords of one call: allowed load-time settings, overridden by ``extra``."""
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        raise InvalidParameter(
            f"The {backend} backend has no option {', '.join(unknown)}; "
            f"it takes {', '.join(allowed)}."
        )
    return {**{k: settings[k] for k in allowed if k in settings}, **extra}
