"""What a model is: its catalog entry (backend, task, source, settings) and how to load it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..types.values import Task
from .sources import Source, source_from_dict


class DraftMethod(str, Enum):
    """Ways of drafting tokens for speculative decoding that need no second model."""

    # Copy what followed the same words earlier in the conversation (fast on rewrites, quotes,
    # code edits: wherever the answer repeats the prompt).
    PROMPT_LOOKUP = "prompt-lookup"


# The draft kind of a draft model (``Draft.kind``); the others are DraftMethod values.
DRAFT_MODEL = "model"


@dataclass(frozen=True)
class Draft:
    """What proposes tokens for speculative decoding: a small model of the same family, or a
    method that needs none. Backends say which kinds they take (``Backend.draft_kinds``)."""

    model: ModelSpec | None = None
    method: DraftMethod | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.method is None):
            raise ValueError("a Draft is either a model or a method")

    @property
    def kind(self) -> str:
        """``model``, or the method's name."""
        return DRAFT_MODEL if self.method is None else self.method.value

    @property
    def name(self) -> str:
        """The model's name, or the method's."""
        return self.model.name if self.model is not None else self.kind


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: device choice, backend-specific settings, an optional draft."""

    device: str = "auto"
    settings: dict[str, Any] = field(default_factory=dict)
    draft: Draft | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model the catalog knows: which backend runs it, for what, and from where."""

    name: str
    backend: str
    task: Task
    source: Source
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``models.json`` stores it."""
        return {
            "name": self.name,
            "backend": self.backend,
            "task": self.task.value,
            "source": self.source.to_dict(),
            "settings": dict(self.settings),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """A spec saved with ``to_dict``."""
        return cls(
            name=data["name"],
            backend=data["backend"],
            task=Task(data["task"]),
            source=source_from_dict(data["source"]),
            settings=dict(data.get("settings", {})),
            description=data.get("description", ""),
        )
