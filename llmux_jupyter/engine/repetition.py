"""Stopping an answer that says the same thing again and again (a small model's loop, e.g.
"The answer is 37." seven times until the token cap), checked on the text as it streams."""

from __future__ import annotations

import re
from collections import deque

DEFAULT_REPEATS = 4
MAX_PERIOD = 3  # a loop of up to three lines or sentences ("A. B. A. B. A. B.")
MIN_CHARS = 8  # shorter pieces ("}", "---", blank lines) repeat in sound answers: skipped
_END = re.compile(r"\n|[.!?](?=\s)")


class RepetitionGuard:
    """``feed`` the answer's deltas; it returns True once the last line or sentence (or a run
    of up to three) has come ``repeats`` times in a row, and ``repeated`` holds it. A text
    piece ends at a line break or at a sentence's end followed by white space."""

    def __init__(self, repeats: int = DEFAULT_REPEATS) -> None:
        self.repeats = repeats
        self.repeated: str | None = None
        self._partial = ""
        self._pieces: deque[str] = deque(maxlen=repeats * MAX_PERIOD)

    def feed(self, text: str) -> bool:
        if self.repeats < 2 or self.repeated is not None:
            return self.repeated is not None
        self._partial += text
        while match := _END.search(self._partial):
            piece = self._partial[: match.end()].strip()
            self._partial = self._partial[match.end() :]
            if len(piece) >= MIN_CHARS and any(c.isalnum() for c in piece):
                self._pieces.append(piece)
                self.repeated = self._loop()
                if self.repeated is not None:
                    return True
        return False

    def _loop(self) -> str | None:
        """The repeating run at the end of the pieces seen, if there is one."""
        pieces = list(self._pieces)
        for period in range(1, MAX_PERIOD + 1):
            run = pieces[-period:]
            if len(pieces) >= period * self.repeats and all(
                pieces[-period * (i + 1) : len(pieces) - period * i] == run
                for i in range(self.repeats)
            ):
                return " ".join(run)
        return None
