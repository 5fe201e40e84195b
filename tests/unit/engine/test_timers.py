from __future__ import annotations

import threading
import time

from llmux_jupyter.engine.timers import DeadlineTimer


def test_deadlines_call_back_in_order_and_cancel_all_forgets_the_rest():
    called: list[str] = []
    second = threading.Event()

    def callback(key: str) -> None:
        called.append(key)
        if key == "b":
            second.set()

    timer = DeadlineTimer(callback)
    now = time.time()
    timer.schedule("b", now + 0.10)
    timer.schedule("a", now + 0.05)
    assert second.wait(5)
    assert called == ["a", "b"]
    timer.schedule("late", time.time() + 0.2)
    timer.cancel_all()
    assert timer.pending() == []
    time.sleep(0.4)
    assert called == ["a", "b"]
