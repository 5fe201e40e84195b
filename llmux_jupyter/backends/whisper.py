"""faster-whisper (CTranslate2 Whisper): speech to text, segment by segment."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidAudio, InvalidParameter, ModelLoadError
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import Device, detect_devices, resolve_device
from ..types.audio import Segment, SpeechAudio, TranscribeOptions, call_keywords, wav_bytes
from ..types.values import Task
from .base import Backend
from .registry import register_backend
from .settings import Setting

SAMPLE_RATE = 16000
COMPUTE_TYPES = ("auto", "default", "int8", "int8_float16", "int8_float32", "int8_bfloat16")
COMPUTE_TYPES += ("int16", "float16", "bfloat16", "float32")
TRANSCRIBE_KEYWORDS = (
    "beam_size",
    "best_of",
    "temperature",
    "initial_prompt",
    "vad_filter",
    "word_timestamps",
    "condition_on_previous_text",
    "no_speech_threshold",
    "hotwords",
)


def whisper_placement(device: str, compute_type: str, devices: list[Device]) -> tuple[str, str]:
    """(device id, compute type) for CTranslate2: ``auto`` is CUDA float16 when the host has
    a CUDA GPU, else CPU int8. CTranslate2 has no Apple GPU backend, so auto skips MPS."""
    if compute_type not in COMPUTE_TYPES:
        raise InvalidParameter(
            f"compute_type {compute_type!r} is not one of {', '.join(COMPUTE_TYPES)}."
        )
    chosen = resolve_device(device, devices)
    if chosen == "mps":
        if device.strip().lower() != "auto":
            raise InvalidParameter("faster-whisper cannot use Apple's GPU: use --device cpu.")
        chosen = "cpu"
    if compute_type == "auto":
        compute_type = "int8" if chosen == "cpu" else "float16"
    return chosen, compute_type


@register_backend("faster-whisper")
class WhisperBackend(Backend):
    """Settings: ``compute_type`` (auto: float16 on CUDA, int8 on CPU), ``cpu_threads``,
    ``num_workers``, and transcription defaults such as ``beam_size`` (5) or ``vad_filter``."""

    tasks = frozenset({Task.TRANSCRIPTION})
    requires = ("faster_whisper",)
    extra = "whisper"
    accepted_settings = (
        Setting("compute_type", str, "CTranslate2 precision (auto)", choices=COMPUTE_TYPES),
        Setting("cpu_threads", int, "CPU threads (0: CTranslate2's choice)", minimum=0),
        Setting("num_workers", int, "transcriptions at once (1)", minimum=1),
        Setting("beam_size", int, "beam search width (5)", minimum=1),
        Setting("best_of", int, "candidates when sampling (5)", minimum=1),
        Setting("temperature", float, "sampling temperature (0: greedy)", minimum=0),
        Setting("initial_prompt", str, "text to steer the transcript (names, spelling)"),
        Setting("vad_filter", bool, "skip silence with voice activity detection"),
        Setting("word_timestamps", bool, "time each word"),
        Setting("condition_on_previous_text", bool, "feed each window the text before it"),
        Setting(
            "no_speech_threshold",
            float,
            "silence probability to skip a window",
            minimum=0,
            maximum=1,
        ),
        Setting("hotwords", str, "words to favour"),
    )

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        """CTranslate2's compute types for the device (its own query)."""
        import ctranslate2

        if device.kind == "mps":
            return DeviceSupport(False, "CTranslate2 has no Apple GPU backend")
        if device.kind == "cuda":
            index = int(device.id.partition(":")[2])
            if index >= ctranslate2.get_cuda_device_count():
                return DeviceSupport(
                    False, "CTranslate2 sees no such CUDA device (it needs CUDA 12 and cuDNN 9)"
                )
            types = ctranslate2.get_supported_compute_types("cuda", index)
        else:
            types = ctranslate2.get_supported_compute_types("cpu")
        return DeviceSupport(True, f"CTranslate2 compute types {', '.join(sorted(types))}")

    def load(self) -> None:
        path = self.spec.source.resolve()
        device, compute_type = whisper_placement(
            self.options.device, str(self.settings.get("compute_type", "auto")), detect_devices()
        )
        from faster_whisper import WhisperModel

        kind, _, index = device.partition(":")
        try:
            self._model = WhisperModel(
                str(path),
                device=kind,
                device_index=int(index or 0),
                compute_type=compute_type,
                cpu_threads=int(self.settings.get("cpu_threads", 0)),
                num_workers=int(self.settings.get("num_workers", 1)),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelLoadError(
                f"faster-whisper could not load {path} ({error}): it must be a CTranslate2 "
                "Whisper model directory (model.bin, config.json, tokenizer.json)."
            ) from None
        self.device = device
        self.compute_type = compute_type

    def unload(self) -> None:
        self.__dict__.pop("_model", None)

    def transcribe(
        self, audio: Path | bytes | SpeechAudio, options: TranscribeOptions, cancel: threading.Event
    ) -> Iterator[Segment]:
        keywords = call_keywords(self.settings, options.extra, TRANSCRIBE_KEYWORDS, self.name)
        samples = decode(audio)
        try:
            segments, info = self._model.transcribe(samples, language=options.language, **keywords)
        except (ValueError, TypeError) as error:
            raise InvalidParameter(f"faster-whisper refused the options ({error}).") from None
        try:
            for segment in segments:
                yield Segment(segment.start, segment.end, segment.text)
                if cancel.is_set():
                    break
        finally:
            segments.close()
        return {"language": info.language, "duration": info.duration}


def decode(audio: Path | bytes | SpeechAudio) -> Any:
    """16 kHz mono float32 samples; PyAV decodes files and bytes and resamples other rates."""
    if isinstance(audio, SpeechAudio) and audio.sample_rate == SAMPLE_RATE:
        return audio.samples
    from faster_whisper import decode_audio

    if isinstance(audio, Path):
        source: Any = str(audio)
        what = str(audio)
    else:
        raw = audio if isinstance(audio, bytes) else wav_bytes(audio.samples, audio.sample_rate)
        source, what = io.BytesIO(raw), "the audio bytes"
    try:
        samples = decode_audio(source, sampling_rate=SAMPLE_RATE)
    except (ValueError, OSError) as error:  # PyAV's errors derive from these
        reason = getattr(error, "strerror", None) or str(error)
        raise InvalidAudio(
            f"Cannot read {what} as audio ({reason}): give a sound file (wav, mp3, flac, "
            "ogg...) or samples."
        ) from None
    if len(samples) == 0:
        raise InvalidAudio(f"{what} holds no audio samples.")
    return samples
