"""Chatterbox (chatterbox-tts by Resemble AI): expressive 24 kHz speech and voice cloning.

It pins an old torch and needs torchaudio, so it usually lives in its own environment
(README "Speech"). Long text is spoken sentence by sentence.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidAudio, InvalidParameter
from ..hardware.capabilities import DeviceCapabilities, DeviceSupport
from ..hardware.devices import detect_devices, resolve_device
from ..models.sources import HuggingFaceSource
from ..types.audio import SpeechAudio, SpeechOptions, call_keywords
from ..types.values import RequiredMemory, Task
from .base import Backend, path_size
from .registry import register_backend
from .settings import Setting
from .torch_devices import torch_support

HUB_REPO = "ResembleAI/chatterbox"
HUB_BYTES = 3_200_000_000  # ve + t3_cfg + s3gen of the hub release, fp32
GENERATE_KEYWORDS = ("exaggeration", "cfg_weight", "temperature", "repetition_penalty", "min_p")
GENERATE_KEYWORDS += ("top_p",)
DEFAULT_MAX_NEW_TOKENS = 1000  # what ChatterboxTTS.generate asks for (~40 s of speech)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """Split at sentence ends, so long text streams and each piece stays within the token cap."""
    return [part for part in (p.strip() for p in _SENTENCE_END.split(text)) if part]


@register_backend("chatterbox")
class ChatterboxBackend(Backend):
    """Settings: ``exaggeration`` (0.5), ``cfg_weight`` (0.5), ``temperature`` (0.8),
    ``repetition_penalty``, ``min_p``, ``top_p``, and ``max_new_tokens`` (1000): the cap on
    speech tokens per sentence (25 tokens are about a second)."""

    tasks = frozenset({Task.SPEECH})
    requires = ("chatterbox", "torchaudio")
    extra = "chatterbox"
    accepted_settings = (
        Setting("exaggeration", float, "emotional intensity (0.5)", minimum=0),
        Setting("cfg_weight", float, "classifier-free guidance, pace (0.5)", minimum=0),
        Setting("temperature", float, "sampling temperature (0.8)", minimum=0),
        Setting("repetition_penalty", float, "penalty on repeated speech tokens", minimum=0),
        Setting("min_p", float, "min-p sampling", minimum=0, maximum=1),
        Setting("top_p", float, "nucleus sampling", minimum=0, maximum=1),
        Setting("max_new_tokens", int, "speech tokens per sentence (1000)", minimum=1),
    )

    @classmethod
    def device_support(cls, device: DeviceCapabilities) -> DeviceSupport:
        return torch_support(device)

    def required_memory(self) -> RequiredMemory:
        if self._from_hub():
            return RequiredMemory(ram=HUB_BYTES)
        return RequiredMemory(ram=path_size(self.spec.source.resolve()))

    def _from_hub(self) -> bool:
        """The hub release: ChatterboxTTS.from_pretrained fetches just the files it needs."""
        source = self.spec.source
        hub = (HUB_REPO, None, None)
        return isinstance(source, HuggingFaceSource) and (
            (source.repo_id, source.filename, source.revision) == hub
        )

    def load(self) -> None:
        import torch  # noqa: F401 - imported first so device detection can ask it
        from chatterbox.tts import ChatterboxTTS

        device = resolve_device(self.options.device, detect_devices())
        if self._from_hub():
            model = ChatterboxTTS.from_pretrained(device)
        else:
            model = ChatterboxTTS.from_local(self.spec.source.resolve(), device)
        self._max_new_tokens = DEFAULT_MAX_NEW_TOKENS
        _cap_speech_tokens(model, lambda: self._max_new_tokens)
        self._model = model
        self.device = device

    def unload(self) -> None:
        self.__dict__.pop("_model", None)
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def synthesize(
        self, text: str, options: SpeechOptions, cancel: threading.Event
    ) -> Iterator[SpeechAudio]:
        allowed = (*GENERATE_KEYWORDS, "max_new_tokens")
        keywords = call_keywords(self.settings, options.extra, allowed, self.name)
        cap = int(keywords.pop("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        if cap < 1:
            raise InvalidParameter(f"max_new_tokens must be at least 1, not {cap}.")
        model = self._model
        built_in = model.conds
        if options.voice is not None:
            self._prepare_voice(options.voice, float(keywords.get("exaggeration", 0.5)))
        elif built_in is None:
            raise InvalidParameter(
                f"{self.spec.name!r} has no built-in voice (no conds.pt): pass a reference "
                "clip with --voice clip.wav."
            )
        self._max_new_tokens = cap
        try:
            for sentence in sentences(text):
                wav = model.generate(sentence, **keywords)
                yield SpeechAudio(model.sr, wav.squeeze(0).detach().cpu().numpy())
                if cancel.is_set():
                    break
        finally:
            model.conds = built_in  # a cloned voice lasts one call
            self._max_new_tokens = DEFAULT_MAX_NEW_TOKENS

    def _prepare_voice(self, voice: str, exaggeration: float) -> None:
        path = Path(voice).expanduser()
        if not path.is_file():
            raise InvalidAudio(f"No voice clip at {path}: check the path.")
        try:
            self._model.prepare_conditionals(str(path), exaggeration=exaggeration)
        except Exception as error:  # librosa/soundfile/audioread raise many kinds
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            raise InvalidAudio(
                f"Cannot use {path.name} as a voice clip ({reason}): give a few seconds of "
                "clear speech as wav, flac or mp3."
            ) from None


def _cap_speech_tokens(model: Any, limit: Any) -> None:
    """ChatterboxTTS.generate always asks T3 for 1000 tokens; cap that at ``limit()``."""
    inference = model.t3.inference

    def capped(**keywords: Any) -> Any:
        keywords["max_new_tokens"] = min(keywords.get("max_new_tokens") or limit(), limit())
        return inference(**keywords)

    model.t3.inference = capped
