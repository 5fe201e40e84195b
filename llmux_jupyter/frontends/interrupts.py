"""Turn the kernel's interrupt (SIGINT) into a cancel request: generation stops between tokens."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


@contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While inside, the first SIGINT sets ``cancel`` instead of raising KeyboardInterrupt.

    The backend then stops cleanly after the current token. A second SIGINT raises
    KeyboardInterrupt at once, in case a backend ignores the request. Outside the main
    thread (where signal handlers cannot be set) this does nothing and interrupts raise as usual.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_cancel(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, request_cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupts_raise(function: Callable[[], Any]) -> Any:
    """Run ``function`` (a tool: the user's own code) with the interrupt raising
    KeyboardInterrupt inside it, as it would in a plain cell."""
    if threading.current_thread() is not threading.main_thread():
        return function()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return function()
    finally:
        signal.signal(signal.SIGINT, previous)
