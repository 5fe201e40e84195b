"""What model libraries print while a model loads goes to logging, not into the cell.

Libraries print notes while loading (Chatterbox's watermarker says which checkpoint it read,
...). While ``backend.load()`` runs, Python's ``sys.stdout`` and ``sys.stderr`` write to the
``llmux_jupyter.native.<backend>`` logger (INFO, a record per line) unless the model's
``verbose`` setting is true. Python warnings raised meanwhile still reach the user: each
distinct one once per kernel, as a short line on stderr. The streams and the warning hook are
interpreter-wide, so whatever other threads print during a load is logged too.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator

NATIVE_LOGGER = "llmux_jupyter.native"
_shown_warnings: set[tuple[str, str]] = set()


class LineLogger(io.TextIOBase):
    """A text stream that logs each line written to it."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        self.logger = logger
        self.level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = re.split(r"[\r\n]", self._pending + text)
        for line in lines:
            self._log(line)
        return len(text)

    def flush(self) -> None:
        self._log(self._pending)
        self._pending = ""

    def _log(self, line: str) -> None:
        if line.strip():
            self.logger.log(self.level, "%s", line.rstrip())


@contextlib.contextmanager
def quiet_load(backend: str, verbose: bool = False) -> Iterator[None]:
    """Send what is printed inside to logging (unless ``verbose``); show new warnings once."""
    if verbose:
        yield
        return
    stream = LineLogger(logging.getLogger(f"{NATIVE_LOGGER}.{backend}"))
    with warnings.catch_warnings(record=True) as caught:
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield
        finally:
            stream.flush()
    for warning in caught:
        _show_once(warning)


def _show_once(warning: warnings.WarningMessage) -> None:
    text = str(warning.message).strip().splitlines()
    key = (warning.category.__name__, text[0] if text else "")
    if key not in _shown_warnings:
        _shown_warnings.add(key)
        print(f"{key[0]}: {key[1]}", file=sys.stderr)
