"""Tasks run in threads of their own; what they make reaches one consumer, in arrival order."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Emit = Callable[[Item], None]
Task = Callable[[Emit[Item]], None]

THREAD_NAME = "llmux-fan-in"


def emitting(items: Iterable[Item]) -> Task[Item]:
    """A task that emits each of ``items`` (made in its thread, as they are iterated)."""

    def emit_all(emit: Emit[Item]) -> None:
        for item in items:
            emit(item)

    return emit_all


class _Finished:
    """A task's last word: None, or the exception it raised."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def fan_in(
    tasks: Sequence[Task[Item]], cancel: threading.Event, inline: Iterable[Item] = ()
) -> Iterator[Item]:
    """Run each task in a thread of its own and yield what they emit, as it arrives.

    A task receives ``emit`` and calls it for each item. ``inline`` items are made in the
    consumer's own thread (where a cell computes its answers), the tasks' items passed on
    between two of them; after it, the consumer only waits on a queue, so a signal handler
    (the kernel's interrupt) runs at once. Leaving early (break, an exception,
    KeyboardInterrupt) or a task's exception sets ``cancel``; every thread is always joined,
    and a task's exception is then raised in the consumer.
    """
    items: queue.Queue[Item | _Finished] = queue.Queue()

    def run(task: Task[Item]) -> None:
        error = None
        try:
            task(items.put)
        except BaseException as raised:
            error = raised
        items.put(_Finished(error))

    threads = [
        threading.Thread(
            target=contextvars.copy_context().run,  # keeps the kernel's parent message header
            args=(run, task),
            name=THREAD_NAME,
            daemon=True,
        )
        for task in tasks
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    failure: BaseException | None = None

    def passed_on(item: Item | _Finished) -> bool:
        """Whether ``item`` is one to yield (else it ends a task)."""
        nonlocal running, failure
        if not isinstance(item, _Finished):
            return True
        running -= 1
        if item.error is not None and failure is None:
            failure = item.error
            cancel.set()
        return False

    own = iter(inline)
    try:
        for made_here in own:
            yield made_here
            while True:
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    break
                if passed_on(item):
                    yield item
        while running:
            item = items.get()
            if passed_on(item):
                yield item
    finally:
        if running:
            cancel.set()
        close = getattr(own, "close", None)
        if close is not None:
            close()
        for thread in threads:
            thread.join()
    if failure is not None:
        raise failure
