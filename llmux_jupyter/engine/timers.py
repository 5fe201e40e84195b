"""One daemon thread that calls back at deadlines: keep-alive expiry without a polling loop."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable


class DeadlineTimer:
    """``schedule(key, when)`` makes the thread call ``callback(key)`` at or after ``when``
    (``time.time()`` seconds). The callback re-checks whether the deadline still holds, so
    rescheduling a key just adds an entry."""

    def __init__(self, callback: Callable[[str], None]) -> None:
        self._callback = callback
        self._heap: list[tuple[float, str]] = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, key: str, when: float) -> None:
        with self._condition:
            heapq.heappush(self._heap, (when, key))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="llmux-keep-alive", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def cancel_all(self) -> None:
        """Forget every deadline: nothing scheduled so far is called back."""
        with self._condition:
            self._heap.clear()

    def pending(self) -> list[tuple[float, str]]:
        with self._condition:
            return sorted(self._heap)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                when, key = self._heap[0]
                delay = when - time.time()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
            self._callback(key)
