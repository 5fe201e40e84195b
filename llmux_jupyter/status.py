"""One JSON-ready picture of the multiplexer, shared by the picker widget and the sidebar."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .backends.base import path_size
from .errors import SourceNotFound

if TYPE_CHECKING:
    from .api import LLM
    from .specs import ModelSpec


@dataclass(frozen=True)
class ModelStatus:
    """A catalog model and, when loaded, its state in memory (times are Unix seconds)."""

    name: str
    backend: str
    task: str
    source: str
    size: int | None
    loaded: bool
    is_default: bool
    device: str | None = None
    state: str | None = None
    estimate: int | None = None
    measured: int | None = None
    pinned: bool = False
    keep_alive: float | None = None
    expires_at: float | None = None
    loaded_at: float | None = None
    last_used: float | None = None


def model_statuses(llm: LLM, *, sizes: bool = True) -> list[ModelStatus]:
    """Every known model, loaded or not; ``sizes=False`` skips resolving sources (a Hugging
    Face source not in the cache would download)."""
    manager = llm.manager
    loaded = {model.name: model for model in manager.loaded()}
    defaults = set(manager.defaults().values())
    statuses = []
    for spec in manager.catalog.all():
        common = {
            "name": spec.name, "backend": spec.backend, "task": spec.task.value,
            "source": spec.source.describe(), "size": source_size(spec) if sizes else None,
            "is_default": spec.name in defaults,
        }  # fmt: skip
        model = loaded.get(spec.name)
        if model is None:
            statuses.append(ModelStatus(**common, loaded=False))
            continue
        statuses.append(ModelStatus(
            **common, loaded=True, device=model.device, state=model.state,
            estimate=model.estimate.total, measured=model.measured.total, pinned=model.pinned,
            keep_alive=model.keep_alive, expires_at=model.expires_at,
            loaded_at=model.loaded_at, last_used=model.last_used,
        ))  # fmt: skip
    return statuses


def source_size(spec: ModelSpec) -> int | None:
    """Bytes of the model's files, or None when they are not on this machine."""
    try:
        return path_size(spec.source.resolve())
    except SourceNotFound:
        return None


def snapshot(llm: LLM, *, sizes: bool = True) -> dict[str, Any]:
    """Models, per-device memory and defaults, as plain JSON types."""
    return {
        "time": time.time(),
        "models": [asdict(status) for status in model_statuses(llm, sizes=sizes)],
        "devices": [asdict(use) for use in llm.budgets()],
        "defaults": {task.value: name for task, name in llm.manager.defaults().items()},
    }
