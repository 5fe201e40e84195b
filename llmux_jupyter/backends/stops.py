"""Stop strings for backends that stream raw text: the text up to (not including) the first stop."""

from __future__ import annotations

from collections.abc import Sequence


class StopTrimmer:
    """Feed streamed text; get back what is safe to show.

    Text that could be the start of a stop string is held back until it is clearly not one.
    Once a stop string appears, ``stopped`` is set and everything from it on is dropped.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return text
        pending = self._held + text
        cut = min((i for i in (pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return pending[:cut]
        keep = max(_partial_suffix(pending, stop) for stop in self.stops)
        self._held = pending[len(pending) - keep :] if keep else ""
        return pending[: len(pending) - keep]

    def flush(self) -> str:
        """The held-back text at the end of the stream (it was not a stop string after all)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


def _partial_suffix(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``stop``."""
    for length in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-length:]):
            return length
    return 0
