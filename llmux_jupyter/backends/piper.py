"""Piper (piper-tts, GPL-3.0, an optional extra): fast local speech, one chunk a sentence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidParameter, SourceNotFound
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import detect_devices, resolve_device
from ..types.audio import SpeechAudio, SpeechOptions, call_keywords
from ..types.values import RequiredMemory, Task
from .base import Backend, path_size
from .registry import register_backend
from .settings import Setting

SYNTHESIS_KEYWORDS = ("speaker_id", "length_scale", "noise_scale", "noise_w_scale", "volume")


def voice_files(path: Path) -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) of a voice given as the .onnx file or its folder."""
    if path.is_dir():
        models = sorted(path.glob("*.onnx"))
        if len(models) != 1:
            raise SourceNotFound(
                f"{path} holds {len(models)} .onnx voices: register the .onnx file itself."
            )
        path = models[0]
    config = path.with_name(path.name + ".json")
    if not config.is_file():
        raise SourceNotFound(f"The Piper voice {path.name} needs {config.name} beside it.")
    return path, config


@register_backend("piper")
class PiperBackend(Backend):
    """Settings: ``speaker_id`` (multi-speaker voices), ``length_scale`` (>1 is slower),
    ``noise_scale``, ``noise_w_scale``, ``volume``. Runs on CUDA only with onnxruntime-gpu."""

    tasks = frozenset({Task.SPEECH})
    requires = ("piper",)
    extra = "tts"
    accepted_settings = (
        Setting("speaker_id", int, "the speaker of a multi-speaker voice", minimum=0),
        Setting("length_scale", float, "speed: above 1 is slower", minimum=0.01),
        Setting("noise_scale", float, "voice variation", minimum=0),
        Setting("noise_w_scale", float, "rhythm variation", minimum=0),
        Setting("volume", float, "loudness (1)", minimum=0),
    )

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        """onnxruntime's execution providers (Piper asks for CUDA or the CPU)."""
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        if device.kind == "cpu":
            return DeviceSupport(True, "onnxruntime CPUExecutionProvider")
        if device.kind == "cuda" and "CUDAExecutionProvider" in providers:
            return DeviceSupport(True, "onnxruntime CUDAExecutionProvider")
        if device.kind == "cuda":
            return DeviceSupport(
                False, "onnxruntime has no CUDA provider: pip install onnxruntime-gpu"
            )
        return DeviceSupport(False, "Piper runs on CUDA or the CPU")

    def required_memory(self) -> RequiredMemory:
        model, _ = voice_files(self.spec.source.resolve())
        return RequiredMemory(ram=path_size(model))

    def load(self) -> None:
        model, config = voice_files(self.spec.source.resolve())
        import onnxruntime
        from piper import PiperVoice

        device = resolve_device(self.options.device, detect_devices())
        cuda_ready = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        if device != "cpu" and not (device.startswith("cuda") and cuda_ready):
            if self.options.device != "auto":
                raise InvalidParameter(
                    f"Piper cannot run on {device} here (CUDA needs onnxruntime-gpu): "
                    "use --device cpu."
                )
            device = "cpu"
        self._voice = PiperVoice.load(model, config, use_cuda=device != "cpu")
        self.device = device

    def unload(self) -> None:
        self.__dict__.pop("_voice", None)

    def synthesize(
        self, text: str, options: SpeechOptions, cancel: threading.Event
    ) -> Iterator[SpeechAudio]:
        if options.voice is not None:
            raise InvalidParameter(
                f"{self.spec.name!r} (Piper) speaks with its own voice and cannot clone one: "
                "use a Chatterbox model for --voice."
            )
        from piper import SynthesisConfig

        keywords = call_keywords(self.settings, options.extra, SYNTHESIS_KEYWORDS, self.name)
        for chunk in self._voice.synthesize(text, SynthesisConfig(**keywords)):
            yield SpeechAudio(chunk.sample_rate, chunk.audio_float_array)
            if cancel.is_set():
                break
