"""Plain values every layer shares: tasks, messages, sampling parameters, usage, memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from ..errors import InvalidParameter
from .images import Image, placeholder


class Task(str, Enum):
    """What a model does."""

    CHAT = "chat"
    TRANSCRIPTION = "speech-to-text"
    SPEECH = "text-to-speech"
    EMBEDDING = "embedding"
    RERANK = "rerank"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Message:
    """One chat message: its text and the images that go with it. ``image_offsets`` says
    where each image sits in the text (character offsets, in order; by default all before
    it)."""

    role: str
    content: str
    images: tuple[Image, ...] = ()
    image_offsets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.images and not self.image_offsets:
            object.__setattr__(self, "image_offsets", (0,) * len(self.images))
        offsets = self.image_offsets
        if len(offsets) != len(self.images) or list(offsets) != sorted(offsets):
            raise ValueError("image_offsets must give each image's place, in order")
        if offsets and not 0 <= offsets[-1] <= len(self.content):
            raise ValueError("an image offset lies outside the message's text")

    def as_dict(self) -> dict[str, str]:
        """The text of the message (images left out) as a chat library takes it."""
        return {"role": self.role, "content": self.content}

    def parts(self) -> list[str | Image]:
        """The text and the images in their order (no empty texts)."""
        found: list[str | Image] = []
        start = 0
        for image, offset in zip(self.images, self.image_offsets, strict=True):
            if offset > start:
                found.append(self.content[start:offset])
            found.append(image)
            start = offset
        if start < len(self.content) or not found:
            found.append(self.content[start:])
        return found

    def without_images(self, note: bool = False) -> Message:
        """The message with its images left out, or (``note``) said in words where they were,
        for a model that takes only text."""
        if not self.images:
            return self
        if not note:
            return Message(self.role, self.content)
        text = "".join(
            part if isinstance(part, str) else f"{placeholder(part)}\n" for part in self.parts()
        )
        return Message(self.role, text)


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one generation; ``None`` means the backend's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Constrain the answer to this JSON schema (a dict), decoded under it by the backend.
    json_schema: dict[str, Any] | None = field(default=None, compare=False)
    # Tools (OpenAI-shaped dicts) for a chat template that describes tools itself.
    tools: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    # Under ``json_schema``: report the answer's log-probability (the sum, over its tokens,
    # of each chosen token's log-probability among those the schema allowed), for backends
    # whose ``answer_logprobs`` is true.
    logprobs: bool = False

    def __post_init__(self) -> None:
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        if self.max_tokens is not None and not (1 <= self.max_tokens <= 1_000_000):
            raise InvalidParameter(
                f"max_tokens must be between 1 and 1000000, not {self.max_tokens}."
            )
        if self.seed is not None and not (0 <= self.seed < 2**32):
            raise InvalidParameter(f"seed must be between 0 and 2**32-1, not {self.seed}.")
        if any(not s for s in self.stop):
            raise InvalidParameter("stop strings must not be empty.")

    def as_dict(self) -> dict[str, Any]:
        """The sampling parameters that were set, for provenance metadata (not the schema)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("json_schema", "tools", "logprobs"):
                continue
            value = getattr(self, f.name)
            if value is not None and value != ():
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if not math.isfinite(value) or not (low <= value <= high):
        raise InvalidParameter(f"{name} must be between {low} and {high}, not {value}.")


@dataclass(frozen=True)
class RequiredMemory:
    """Bytes of host RAM and of accelerator memory a model needs (estimated or measured)."""

    ram: int = 0
    vram: int = 0

    @property
    def total(self) -> int:
        """RAM and VRAM together, in bytes."""
        return self.ram + self.vram


@dataclass
class Usage:
    """What one generation cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_s: float | None = None
    duration_s: float = 0.0

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed: tokens after the first over the time after the first."""
        if self.time_to_first_token_s is None or self.completion_tokens < 2:
            return None
        decode_time = self.duration_s - self.time_to_first_token_s
        return (self.completion_tokens - 1) / decode_time if decode_time > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """The counts and timings, for provenance metadata."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "time_to_first_token_s": _rounded(self.time_to_first_token_s),
            "duration_s": _rounded(self.duration_s),
            "tokens_per_second": _rounded(self.tokens_per_second),
        }


@dataclass(frozen=True)
class DraftStats:
    """Speculative decoding: tokens the draft proposed, and how many of them the model
    accepted (the verification rounds the model finished)."""

    name: str
    drafted: int = 0
    accepted: int = 0

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.drafted if self.drafted else None

    def __add__(self, other: DraftStats) -> DraftStats:
        return DraftStats(self.name, self.drafted + other.drafted, self.accepted + other.accepted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "drafted": self.drafted,
            "accepted": self.accepted,
            "acceptance": _rounded(self.acceptance),
        }

    def __str__(self) -> str:
        if not self.drafted:
            return f"{self.name} (nothing drafted yet)"
        return f"{self.name}: {self.accepted} of {self.drafted} drafted tokens accepted"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# Weight precisions a ``dtype`` load setting accepts (backends that have one).
DTYPES = ("auto", "float16", "bfloat16", "float32")
