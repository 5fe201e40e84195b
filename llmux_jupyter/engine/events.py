"""One observer mechanism for every state change: the widget and the sidebar subscribe here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEvent:
    """Something happened to a model. ``kind`` is one of: loading, loaded, unloading, unloaded,
    evicted (``reason``), error (``message``), busy, idle, generating (``tokens``,
    ``tokens_per_second``), changed (``pinned`` / ``keep_alive``), default (``task``),
    registered, unregistered, budgets (model ''; the memory budgets were set anew)."""

    kind: str
    model: str
    detail: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


Listener = Callable[[ModelEvent], None]


class EventBus:
    """Synchronous publish/subscribe; a failing listener is logged, never propagated."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, kind: str, model: str, **detail: Any) -> None:
        event = ModelEvent(kind, model, detail)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("llmux event listener %r failed on %s", listener, event)

    def __len__(self) -> int:
        return len(self._listeners)
