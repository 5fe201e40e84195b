"""What a model is: its catalog entry (backend, task, source, settings) and how to load it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..types.values import Task
from .sources import Source, source_from_dict


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: device choice, backend-specific settings, an optional draft model."""

    device: str = "auto"
    settings: dict[str, Any] = field(default_factory=dict)
    draft: ModelSpec | None = None


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
        return cls(
            name=data["name"],
            backend=data["backend"],
            task=Task(data["task"]),
            source=source_from_dict(data["source"]),
            settings=dict(data.get("settings", {})),
            description=data.get("description", ""),
        )
