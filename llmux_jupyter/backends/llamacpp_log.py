"""llama.cpp's own log through Python logging, out of the cells.

llama.cpp writes its log (every tensor and metadata key at load, warnings such as "using
full-size SWA cache") through one process-wide callback. llama-cpp-python's callback prints
what its level table lets through to stderr, which a Jupyter kernel shows in the cell; its
table predates the current ggml levels, so warnings get through. ``install()`` puts ours in
its place (``llama_log_set``): the pieces are joined into lines and logged on
``llmux_jupyter.native.llama_cpp`` at their level. Inside ``scope(verbose=True)`` (a model
loaded or run with ``--set verbose=true``) each line is also written to stderr; every scope
keeps its error lines, so a failed load can say what llama.cpp said.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LOGGER = logging.getLogger("llmux_jupyter.native.llama_cpp")
# enum ggml_log_level of the llama.cpp in llama-cpp-python 0.3.x; CONT continues a line.
LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
CONTINUE = 5


@dataclass
class LogScope:
    """What one load or generation hears from llama.cpp."""

    verbose: bool = False
    errors: list[str] = field(default_factory=list)


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.level = logging.INFO
        self.scope: LogScope | None = None


_state = _ThreadState()
_callback: Any = None  # the ctypes function object must live as long as llama.cpp may call it


def install() -> None:
    """Route llama.cpp's log here (again, should something have replaced the callback)."""
    import llama_cpp

    global _callback
    if _callback is None:
        _callback = llama_cpp.llama_log_callback(_on_log)
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


@contextmanager
def scope(verbose: bool = False) -> Iterator[LogScope]:
    """Collect the llama.cpp log lines this thread hears inside (echoed to stderr if
    ``verbose``); scopes nest, the innermost one hears."""
    outer, _state.scope = _state.scope, LogScope(verbose)
    try:
        yield _state.scope
    finally:
        _state.scope = outer


def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    if level != CONTINUE:
        _state.level = LEVELS.get(level, logging.INFO)
    piece = text.decode("utf-8", errors="replace")
    _state.pieces.append(piece)
    if piece.endswith("\n"):
        line = "".join(_state.pieces).rstrip()
        _state.pieces.clear()
        _emit(_state.level, line)


def _emit(level: int, line: str) -> None:
    LOGGER.log(level, "%s", line)
    current = _state.scope
    if current is None:
        return
    if level >= logging.ERROR:
        current.errors.append(line)
    if current.verbose:
        print(line, file=sys.stderr)
