"""Streaming output: coalesced live display updates in Jupyter, plain text in a terminal."""

from __future__ import annotations

import contextvars
import json
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

INTERRUPTED_NOTE = "interrupted"

Bundle = dict[str, Any]
Publisher = Callable[[Bundle, dict[str, Any], bool], None]


def mime_bundle(text: str, fmt: str, final: bool = False) -> Bundle:
    """The display data of ``text`` in one of FORMATS (JSON is parsed once it is complete)."""
    if fmt == "text":
        return {"text/plain": text}
    if fmt == "json" and final:
        try:
            return {"application/json": json.loads(text), "text/plain": text}
        except ValueError:
            pass
    if fmt in ("code", "json") and not text.lstrip().startswith("```"):
        fence = "json" if fmt == "json" else ""
        return {"text/markdown": f"```{fence}\n{text}\n```", "text/plain": text}
    return {"text/markdown": text, "text/plain": text}


class LiveOutput(ABC):
    """Where a streaming answer goes while it grows; ``text`` is the answer so far."""

    text: str

    @abstractmethod
    def append(self, delta: str) -> None:
        """Add a piece of the answer."""

    @abstractmethod
    def finish(self, metadata: dict[str, Any], interrupted: bool = False, note: str = "") -> None:
        """Show the whole answer one last time, with its provenance (and a ``note`` under it)."""


class CoalescedDisplay:
    """One display updated in place, at most ``max_updates_per_second`` times a second.

    Make each change inside ``with display.change():`` (from one thread); ``render`` is then
    called under the same lock for the bundle to show. The first change is shown at once;
    later updates are published by a background thread, so the caller's loop never waits on
    the front end (a display costs ~2 ms in ipykernel).
    """

    def __init__(
        self,
        render: Callable[[], Bundle],
        max_updates_per_second: float = 15.0,
        publish: Publisher | None = None,
    ) -> None:
        self.interval = 1.0 / max_updates_per_second
        self.updates = 0
        self._render = render
        self._publish = publish or _ipython_publisher()
        self._lock = threading.Lock()
        self._dirty = False
        self._shown = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def change(self) -> Iterator[None]:
        with self._lock:
            yield
            self._dirty = True
        if self._thread is None:
            self._flush()
            context = contextvars.copy_context()  # keeps the kernel's parent message header
            self._thread = threading.Thread(
                target=context.run, args=(self._publish_periodically,), daemon=True
            )
            self._thread.start()

    def final(self, bundle: Bundle, metadata: dict[str, Any]) -> None:
        """Stop the live updates and show ``bundle`` one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._show(bundle, metadata)

    def _publish_periodically(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            bundle, self._dirty = self._render(), False
        self._show(bundle, {})

    def _show(self, bundle: Bundle, metadata: dict[str, Any]) -> None:
        self._publish(bundle, metadata, self._shown)
        self._shown = True
        self.updates += 1


class JupyterLiveOutput(LiveOutput):
    """The answer as one display updated in place (see CoalescedDisplay)."""

    def __init__(
        self,
        fmt: str = "markdown",
        max_updates_per_second: float = 15.0,
        publish: Publisher | None = None,
    ) -> None:
        self.fmt = fmt
        self.text = ""
        self._display = CoalescedDisplay(self._live_bundle, max_updates_per_second, publish)

    def append(self, delta: str) -> None:
        with self._display.change():
            self.text += delta

    def finish(self, metadata: dict[str, Any], interrupted: bool = False, note: str = "") -> None:
        bundle = mime_bundle(self.text, self.fmt, final=not interrupted)
        if interrupted and "text/markdown" in bundle:
            bundle["text/markdown"] += f"\n\n*⏹ {INTERRUPTED_NOTE}*"
        if note:
            for mime, line in (("text/markdown", f"*{note}*"), ("text/plain", note)):
                if mime in bundle:
                    bundle[mime] = f"{bundle[mime]}\n\n{line}".lstrip("\n")
        self._display.final(bundle, {"llmux": metadata})

    def _live_bundle(self) -> Bundle:
        return mime_bundle(self.text, self.fmt)


def _ipython_publisher() -> Publisher:
    from IPython.display import DisplayHandle, display

    handle = DisplayHandle()

    def publish(bundle: Bundle, metadata: dict[str, Any], update: bool) -> None:
        display(bundle, raw=True, metadata=metadata, display_id=handle.display_id, update=update)

    return publish


class TerminalLiveOutput(LiveOutput):
    """Prints each piece as it comes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.text = ""

    def append(self, delta: str) -> None:
        self.text += delta
        self.stream.write(delta)
        self.stream.flush()

    def finish(self, metadata: dict[str, Any], interrupted: bool = False, note: str = "") -> None:
        self.stream.write(f"\n[{INTERRUPTED_NOTE}]\n" if interrupted else "\n")
        if note:
            self.stream.write(f"({note})\n")
        self.stream.flush()


def in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (a front end renders rich output), False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live_output(fmt: str, max_updates_per_second: float) -> LiveOutput:
    if in_jupyter_kernel():
        return JupyterLiveOutput(fmt, max_updates_per_second)
    return TerminalLiveOutput()
