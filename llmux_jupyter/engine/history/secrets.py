"""The secret filter: every text the history stores passes through it first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Shorter values are not searched for: replacing every "1" or "yes" would mangle the log
# (a key that short protects nothing anyway).
MIN_SECRET_CHARS = 8


class SecretFilter:
    """Replaces each secret value (by its variable's name) with ``[secret NAME]``, in a text
    or in every string of nested lists and dicts."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        wanted = {value: name for name, value in secrets.items() if len(value) >= MIN_SECRET_CHARS}
        # The longest first, so that a key containing another is replaced whole.
        self._secrets = sorted(wanted.items(), key=lambda item: -len(item[0]))

    def text(self, text: str) -> str:
        for value, name in self._secrets:
            if value in text:
                text = text.replace(value, f"[secret {name}]")
        return text

    def scrub(self, data: Any) -> Any:
        """``data`` with every string (keys too) filtered."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {self.scrub(key): self.scrub(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub(item) for item in data]
        return data
